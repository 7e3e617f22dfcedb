// Permission bits (docs/permissions.md). Sets are 64-bit masks carried as
// decimal strings; BigInt keeps them exact.
export const Permissions = {
  CREATE_INVITE: 1n << 0n,
  KICK_MEMBERS: 1n << 1n,
  BAN_MEMBERS: 1n << 2n,
  ADMINISTRATOR: 1n << 3n,
  MANAGE_CHANNELS: 1n << 4n,
  MANAGE_SERVER: 1n << 5n,
  ADD_REACTIONS: 1n << 6n,
  VIEW_AUDIT_LOG: 1n << 7n,
  VIEW_CHANNEL: 1n << 10n,
  SEND_MESSAGES: 1n << 11n,
  MANAGE_MESSAGES: 1n << 13n,
  EMBED_LINKS: 1n << 14n,
  ATTACH_FILES: 1n << 15n,
  READ_MESSAGE_HISTORY: 1n << 16n,
  MENTION_EVERYONE: 1n << 17n,
  CHANGE_NICKNAME: 1n << 26n,
  MANAGE_NICKNAMES: 1n << 27n,
  MANAGE_ROLES: 1n << 28n,
} as const;
export type PermissionName = keyof typeof Permissions;
export const PermissionNames = Object.keys(Permissions) as PermissionName[];

/** Permissions that make sense in a channel overwrite. */
export const ChannelPermissionNames: PermissionName[] = ['CREATE_INVITE', 'MANAGE_CHANNELS', 'ADD_REACTIONS', 'VIEW_CHANNEL',
  'SEND_MESSAGES', 'MANAGE_MESSAGES', 'EMBED_LINKS', 'ATTACH_FILES', 'READ_MESSAGE_HISTORY', 'MENTION_EVERYONE', 'MANAGE_ROLES'];

export function has(set: string | bigint | undefined, p: PermissionName): boolean {
  const v = typeof set === 'bigint' ? set : BigInt(set || '0');
  return (v & Permissions[p]) !== 0n;
}
export function withBit(set: string, p: PermissionName, on: boolean): string {
  const v = BigInt(set || '0');
  return String(on ? v | Permissions[p] : v & ~Permissions[p]);
}
export function names(set: string): PermissionName[] {
  return PermissionNames.filter((n) => has(set, n));
}
