// Types of the REST API (docs/api.md). Gateway frame types are generated
// from proto/ into proto.gen.ts; those shared with REST are re-exported.
export type { User, Server, Channel, Message, MessageDelete, ReadState, Frame, Event, Ready, TypingStart } from './proto.gen.js';

export interface Member { user_id: string; username: string; nick: string; joined_at: string; roles?: string[] }
export interface Role { id: string; name: string; permissions: string; position: number; color: number; hoist: boolean; mentionable: boolean }
export interface Overwrite { id: string; type: 'role' | 'member'; allow: string; deny: string }
export interface Visibility { private: boolean; allow: { type: 'role' | 'member'; id: string }[]; deny: { type: 'role' | 'member'; id: string }[] }
export interface Ban { user_id: string; username: string; reason: string; created_at: string }
export interface AuditEntry { id: string; actor_id: string; action: string; target_id: string | null; changes?: { key: string; old?: string; new?: string }[]; reason?: string; created_at: string }
export interface Invite { code: string; server_id: string; max_uses: number; uses: number; expires_at: string | null }
export interface PermissionSet { permissions: string; names: string[] }
/** RestMessage: a message as REST sends it (seq is a number here, a string on the gateway). */
export interface RestMessage {
  id: string; channel_id: string; server_id: string; author_id: string; content: string;
  seq: number | string; nonce?: string; created_at: string; edited_at: string | null;
  mention_user_ids?: string[]; mention_role_ids?: string[]; mention_everyone?: boolean;
}
/** ReadStateRest: GET /users/@me/read-states, one per channel. */
export interface ReadStateRest {
  channel_id: string; server_id?: string; last_read_id?: string; last_read_seq?: number | string;
  last_seq?: number | string; unread_count?: number | string; mention_count?: number | string;
}
