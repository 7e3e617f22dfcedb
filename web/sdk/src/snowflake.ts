// Snowflake IDs are 64-bit, so they stay strings (they do not fit in a JS
// number); these compare them and read their time.

/** cmpId orders two decimal ID strings numerically. */
export function cmpId(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function maxId(a: string, b: string): string { return cmpId(a, b) >= 0 ? a : b; }

/** Epoch of Guildhall snowflakes: 2026-01-01T00:00:00Z (snowflake/snowflake.go). */
export const EPOCH_MS = Date.UTC(2026, 0, 1);

/** idTime is when the ID was made: 41 bits of milliseconds since EPOCH_MS, then 22 bits of node and sequence. */
export function idTime(id: string): Date {
  return new Date(EPOCH_MS + Number(BigInt(id) >> 22n));
}
