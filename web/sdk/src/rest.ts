// REST client for /api/v1 (docs/api.md).
import type { Channel, Server, User } from './types.js';
import type { Member, Role, Overwrite, Visibility, Ban, AuditEntry, Invite, RestMessage, PermissionSet, ReadStateRest } from './types.js';

/** ApiError is every failed REST call: status, the stable `code` and a human `message`. */
export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) {
    super(message);
    this.name = 'ApiError';
  }
  /** retryable: the request may succeed if sent again (network, 503, 500). */
  get retryable(): boolean {
    return this.status === 0 || this.status === 503 || this.status === 502 || this.status === 504 || this.status === 429;
  }
}

export interface RestOptions {
  /** Base URL of the server, e.g. "http://127.0.0.1:8080" ('' for the page's own origin). */
  baseUrl?: string;
  token?: string;
  fetch?: typeof fetch;
}

export interface RequestOptions {
  /** X-Audit-Log-Reason for administrative actions. */
  reason?: string;
  query?: Record<string, string | number | undefined | null>;
  signal?: AbortSignal;
}

export class RestClient {
  baseUrl: string;
  token: string;
  private fetchFn: typeof fetch;

  constructor(opts: RestOptions = {}) {
    this.baseUrl = (opts.baseUrl ?? '').replace(/\/$/, '');
    this.token = opts.token ?? '';
    this.fetchFn = opts.fetch ?? ((...a: Parameters<typeof fetch>) => fetch(...a));
  }

  /** request performs one call and decodes the JSON reply; it throws ApiError. */
  async request<T>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
    let url = `${this.baseUrl}/api/v1${path}`;
    if (opts.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(opts.query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
      const s = q.toString();
      if (s) url += `?${s}`;
    }
    const headers: Record<string, string> = {};
    if (this.token) headers['Authorization'] = `Bearer ${this.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    // A header carries only ASCII: the reason is percent-encoded, and the
    // server decodes it (docs/api.md, X-Audit-Log-Reason).
    if (opts.reason) headers['X-Audit-Log-Reason'] = encodeURIComponent(opts.reason);
    let res: Response;
    try {
      res = await this.fetchFn(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: opts.signal });
    } catch (e) {
      throw new ApiError(0, 'network', `cannot reach the server (${(e as Error).message || 'network error'})`);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let data: any = undefined;
    if (text) {
      try { data = JSON.parse(text); } catch {
        throw new ApiError(res.status, 'bad_response', `the server sent a reply that is not JSON (HTTP ${res.status})`);
      }
    }
    if (!res.ok) {
      const code = data && typeof data.code === 'string' ? data.code : 'http_' + res.status;
      const msg = data && typeof data.message === 'string' ? data.message : `HTTP ${res.status}`;
      throw new ApiError(res.status, code, msg);
    }
    return data as T;
  }

  // --- accounts
  register(username: string, password: string) { return this.request<{ user: User; token: string }>('POST', '/auth/register', { username, password }); }
  login(username: string, password: string) { return this.request<{ user: User; token: string }>('POST', '/auth/login', { username, password }); }
  logout() { return this.request<void>('POST', '/auth/logout'); }
  me() { return this.request<User>('GET', '/users/@me'); }

  // --- servers
  myServers() { return this.request<Server[]>('GET', '/users/@me/servers'); }
  createServer(name: string) { return this.request<Server>('POST', '/servers', { name }); }
  getServer(id: string) { return this.request<Server>('GET', `/servers/${id}`); }
  /** renameServer needs MANAGE_SERVER; the name is trimmed and must be 1–100 characters. */
  renameServer(id: string, name: string, o?: RequestOptions) { return this.request<Server>('PATCH', `/servers/${id}`, { name }, o); }

  // --- channels
  channels(serverId: string) { return this.request<RestChannel[]>('GET', `/servers/${serverId}/channels`); }
  createChannel(serverId: string, c: { name: string; type?: 'text' | 'category'; parent_id?: string | null; sync?: boolean }, o?: RequestOptions) {
    return this.request<RestChannel>('POST', `/servers/${serverId}/channels`, c, o);
  }
  getChannel(id: string) { return this.request<RestChannel>('GET', `/channels/${id}`); }
  updateChannel(id: string, patch: { name?: string; parent_id?: string | null; sync?: boolean; position?: number }, o?: RequestOptions) {
    return this.request<RestChannel>('PATCH', `/channels/${id}`, patch, o);
  }
  deleteChannel(id: string, o?: RequestOptions) { return this.request<RestChannel>('DELETE', `/channels/${id}`, undefined, o); }

  // --- invites
  createInvite(serverId: string, opts: { max_uses?: number; max_age?: number } = {}) { return this.request<Invite>('POST', `/servers/${serverId}/invites`, opts); }
  joinInvite(code: string) { return this.request<Server>('POST', `/invites/${encodeURIComponent(code)}`); }

  // --- members
  members(serverId: string, q: { limit?: number; after?: string; q?: string } = {}) { return this.request<Member[]>('GET', `/servers/${serverId}/members`, undefined, { query: q }); }
  member(serverId: string, userId: string) { return this.request<Member>('GET', `/servers/${serverId}/members/${userId}`); }
  setNick(serverId: string, userId: string, nick: string) { return this.request<Member>('PATCH', `/servers/${serverId}/members/${userId}`, { nick }); }
  kick(serverId: string, userId: string, o?: RequestOptions) { return this.request<void>('DELETE', `/servers/${serverId}/members/${userId}`, undefined, o); }
  leave(serverId: string) { return this.request<void>('DELETE', `/servers/${serverId}/members/@me`); }
  addRole(serverId: string, userId: string, roleId: string, o?: RequestOptions) { return this.request<void>('PUT', `/servers/${serverId}/members/${userId}/roles/${roleId}`, undefined, o); }
  removeRole(serverId: string, userId: string, roleId: string, o?: RequestOptions) { return this.request<void>('DELETE', `/servers/${serverId}/members/${userId}/roles/${roleId}`, undefined, o); }

  // --- bans
  bans(serverId: string, q: { limit?: number; after?: string } = {}) { return this.request<Ban[]>('GET', `/servers/${serverId}/bans`, undefined, { query: q }); }
  /** ban: the reason is the ban's, and the audit log entry's too. */
  ban(serverId: string, userId: string, reason?: string) {
    return this.request<Ban>('PUT', `/servers/${serverId}/bans/${userId}`, reason ? { reason } : undefined, { reason });
  }
  unban(serverId: string, userId: string, o?: RequestOptions) { return this.request<void>('DELETE', `/servers/${serverId}/bans/${userId}`, undefined, o); }

  // --- roles
  roles(serverId: string) { return this.request<Role[]>('GET', `/servers/${serverId}/roles`); }
  createRole(serverId: string, r: Partial<Omit<Role, 'id'>>, o?: RequestOptions) { return this.request<Role>('POST', `/servers/${serverId}/roles`, r, o); }
  updateRole(serverId: string, roleId: string, r: Partial<Omit<Role, 'id'>>, o?: RequestOptions) { return this.request<Role>('PATCH', `/servers/${serverId}/roles/${roleId}`, r, o); }
  reorderRoles(serverId: string, moves: { id: string; position: number }[], o?: RequestOptions) { return this.request<Role[]>('PATCH', `/servers/${serverId}/roles`, moves, o); }
  deleteRole(serverId: string, roleId: string, o?: RequestOptions) { return this.request<void>('DELETE', `/servers/${serverId}/roles/${roleId}`, undefined, o); }

  // --- permissions
  myServerPermissions(serverId: string) { return this.request<PermissionSet>('GET', `/servers/${serverId}/permissions/@me`); }
  myChannelPermissions(channelId: string) { return this.request<PermissionSet>('GET', `/channels/${channelId}/permissions/@me`); }
  overwrites(channelId: string) { return this.request<Overwrite[]>('GET', `/channels/${channelId}/permissions`); }
  setOverwrite(channelId: string, targetId: string, ow: { type: 'role' | 'member'; allow: string; deny: string }, o?: RequestOptions) {
    return this.request<Overwrite>('PUT', `/channels/${channelId}/permissions/${targetId}`, ow, o);
  }
  deleteOverwrite(channelId: string, targetId: string, o?: RequestOptions) { return this.request<void>('DELETE', `/channels/${channelId}/permissions/${targetId}`, undefined, o); }
  visibility(channelId: string) { return this.request<Visibility>('GET', `/channels/${channelId}/visibility`); }
  setVisibility(channelId: string, list: 'allow' | 'deny', targetId: string, type: 'role' | 'member', on: boolean, o?: RequestOptions) {
    return this.request<Visibility>(on ? 'PUT' : 'DELETE', `/channels/${channelId}/visibility/${list}/${targetId}`, undefined, { ...o, query: { type } });
  }

  // --- audit log
  auditLog(serverId: string, q: { limit?: number; before?: string; actor_id?: string; action?: string } = {}) {
    return this.request<AuditEntry[]>('GET', `/servers/${serverId}/audit-log`, undefined, { query: q });
  }

  // --- messages
  messages(channelId: string, q: { limit?: number; before?: string; after?: string; around?: string } = {}) {
    return this.request<RestMessage[]>('GET', `/channels/${channelId}/messages`, undefined, { query: q });
  }
  sendMessage(channelId: string, content: string, nonce?: string) {
    return this.request<RestMessage>('POST', `/channels/${channelId}/messages`, nonce ? { content, nonce } : { content });
  }
  editMessage(channelId: string, messageId: string, content: string) { return this.request<RestMessage>('PATCH', `/channels/${channelId}/messages/${messageId}`, { content }); }
  deleteMessage(channelId: string, messageId: string) { return this.request<void>('DELETE', `/channels/${channelId}/messages/${messageId}`); }

  // --- read states (unread counts)
  /** ack marks the channel read up to messageId (inclusive). */
  ack(channelId: string, messageId: string) { return this.request<ReadStateRest>('POST', `/channels/${channelId}/ack`, { message_id: messageId }); }
  /** readStates: one page of read states, paged by server (`next` is the next `after`, null on the last page). */
  readStates(q: { server_id?: string; after?: string; limit?: number } = {}) {
    return this.request<{ read_states: ReadStateRest[]; next: string | null }>('GET', '/users/@me/read-states', undefined, { query: q });
  }
  /** allReadStates pages through every read state of the user. */
  async allReadStates(): Promise<ReadStateRest[]> {
    const out: ReadStateRest[] = [];
    let after: string | undefined;
    for (let i = 0; i < 100; i++) {
      const page = await this.readStates({ after, limit: 25 });
      out.push(...(page.read_states ?? []));
      if (!page.next) break;
      after = page.next;
    }
    return out;
  }
}

/** RestChannel is a channel as REST sends it. */
export interface RestChannel {
  id: string;
  server_id: string;
  name: string;
  type: 'text' | 'category';
  position: number;
  parent_id: string | null;
  synced?: boolean;
}

/**
 * sendWithRetry sends a message through REST and retries with the same
 * nonce while the failure is retryable (network loss, 503): the server
 * dedupes on the nonce, so a retry never posts twice.
 */
export async function sendWithRetry(rest: RestClient, channelId: string, content: string, nonce: string,
  opts: { attempts?: number; delayMs?: number; sleep?: (ms: number) => Promise<void> } = {}): Promise<RestMessage> {
  const attempts = opts.attempts ?? 5;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let delay = opts.delayMs ?? 500;
  for (let i = 1; ; i++) {
    try {
      return await rest.sendMessage(channelId, content, nonce);
    } catch (e) {
      if (!(e instanceof ApiError) || !e.retryable || i >= attempts) throw e;
      await sleep(delay);
      delay = Math.min(delay * 2, 8000);
    }
  }
}

/** newNonce returns a random nonce (≤ 64 bytes) for idempotent sends. */
export function newNonce(): string {
  const b = new Uint8Array(12);
  globalThis.crypto.getRandomValues(b);
  return 'n-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
