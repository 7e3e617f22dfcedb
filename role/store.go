package role

import "context"

// Store persists roles, member role assignments and channel overwrites.
// The @everyone role has ID == server ID and position 0; a server whose
// @everyone was never stored behaves as if it had DefaultEveryone.
//
// Writes never touch per-member rows for a role- or channel-level change:
// deleting a role leaves stale IDs in member role lists, which readers
// drop (Roles no longer lists the role). Every write that can change a
// permission in a server bumps that server's Version, so caches keyed by
// (server, version) are invalidated precisely.
type Store interface {
	// Roles lists a server's stored roles by (position, ID).
	Roles(ctx context.Context, serverID uint64) ([]Role, error)
	// PutRole creates or replaces a role.
	PutRole(ctx context.Context, serverID uint64, r Role) error
	// DeleteRole removes a role; NotFound if it does not exist.
	DeleteRole(ctx context.Context, serverID, roleID uint64) error

	// MemberRoles lists the role IDs assigned to a member (may include
	// IDs of deleted roles).
	MemberRoles(ctx context.Context, serverID, userID uint64) ([]uint64, error)
	AddMemberRole(ctx context.Context, serverID, userID, roleID uint64) error
	// RemoveMemberRole is a no-op if the member does not hold the role.
	RemoveMemberRole(ctx context.Context, serverID, userID, roleID uint64) error

	// Overwrites lists a channel's overwrites.
	Overwrites(ctx context.Context, channelID uint64) ([]Overwrite, error)
	// PutOverwrite creates or replaces the overwrite for (ow.Type, ow.ID).
	PutOverwrite(ctx context.Context, serverID, channelID uint64, ow Overwrite) error
	// DeleteOverwrite removes it; NotFound if absent.
	DeleteOverwrite(ctx context.Context, serverID, channelID, targetID uint64) error

	// ClearMember drops a member's role assignments (they left, were
	// kicked or banned) and bumps the version.
	ClearMember(ctx context.Context, serverID, userID uint64) error
	// DeleteChannel drops a deleted channel's overwrites and bumps the version.
	DeleteChannel(ctx context.Context, serverID, channelID uint64) error
	// Bump bumps the version alone: for changes kept elsewhere that still
	// change who sees what (a channel moved or re-synced, membership).
	Bump(ctx context.Context, serverID uint64) error

	// Version is a counter bumped by every write above for the server.
	Version(ctx context.Context, serverID uint64) (uint64, error)
}
