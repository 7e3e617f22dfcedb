package audit

import (
	"context"
	"time"
	"unicode/utf8"
)

// Limits of the audit log; clients see them, so they belong in the API
// documentation.
const (
	MaxReason        = 512 // bytes of Entry.Reason; longer reasons are cut
	DefaultLimit     = 50  // entries in a page when Query.Limit is 0
	MaxLimit         = 100 // largest Query.Limit
	DefaultRetention = 90 * 24 * time.Hour
)

// Entry is one administrative action in a server.
type Entry struct {
	ID        uint64 // snowflake, time-ordered; assigned by Log.Record
	ServerID  uint64
	ActorID   uint64 // the user who did it
	Action    Action
	TargetID  uint64   // the role, channel, user, invite... acted on; 0 if none
	Changes   []Change // what changed, in the order the service reports it
	Reason    string   // optional, at most MaxReason bytes
	CreatedAt time.Time
}

// Change is one field an action changed. Old and New are the values as
// display text (`general`, `1024`, `true`); the API returns them as JSON
// strings. An empty Old means the field did not exist before (a create),
// an empty New that it no longer exists (a delete).
type Change struct {
	Key string
	Old string
	New string
}

// Action is what was done. The values are part of the API (clients filter
// on them and show them): never change one.
type Action string

// The actions the log records.
const (
	ServerUpdate     Action = "server_update"
	ChannelCreate    Action = "channel_create"
	ChannelUpdate    Action = "channel_update"
	ChannelDelete    Action = "channel_delete"
	OverwriteUpdate  Action = "overwrite_update"
	OverwriteDelete  Action = "overwrite_delete"
	RoleCreate       Action = "role_create"
	RoleUpdate       Action = "role_update"
	RoleDelete       Action = "role_delete"
	MemberRoleAdd    Action = "member_role_add"
	MemberRoleRemove Action = "member_role_remove"
	MemberKick       Action = "member_kick"
	MemberBanAdd     Action = "member_ban_add"
	MemberBanRemove  Action = "member_ban_remove"
	MemberUpdate     Action = "member_update" // nickname
	InviteCreate     Action = "invite_create"
)

// Valid reports whether a is one of the actions above.
func (a Action) Valid() bool {
	switch a {
	case ServerUpdate, ChannelCreate, ChannelUpdate, ChannelDelete,
		OverwriteUpdate, OverwriteDelete, RoleCreate, RoleUpdate, RoleDelete,
		MemberRoleAdd, MemberRoleRemove, MemberKick, MemberBanAdd, MemberBanRemove,
		MemberUpdate, InviteCreate:
		return true
	}
	return false
}

// Query selects a page of a server's log, newest first.
type Query struct {
	Before  uint64 // only entries with a smaller ID; 0 means from the newest
	Limit   int    // 1..MaxLimit; Log.List turns 0 into DefaultLimit
	ActorID uint64 // only entries by this user; 0 means anyone
	Action  Action // only entries of this action; "" means any
}

// Store keeps audit entries.
type Store interface {
	// Append stores e, whose ID is new in its server. An ID that the
	// server's log already holds is a Conflict; an ID of 0 is Invalid.
	Append(ctx context.Context, e Entry) error

	// List returns entries of serverID that match q, newest (largest ID)
	// first, at most q.Limit of them. An implementation may clamp
	// q.Limit and may stop looking after a number of entries it
	// documents, so a short page of a filtered query does not prove
	// that no older entry matches. An unknown server has an empty log.
	List(ctx context.Context, serverID uint64, q Query) ([]Entry, error)

	// Prune deletes the entries, of every server, created before
	// olderThan and returns how many it deleted.
	Prune(ctx context.Context, olderThan time.Time) (int, error)
}

// reasonKey is the context key of the reason.
type reasonKey struct{}

// WithReason returns a context that carries the reason for the
// administrative actions done with it, as given by the client.
func WithReason(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, reasonKey{}, reason)
}

// ReasonFrom returns the reason that ctx carries, "" if none. It is
// returned as given to WithReason, not yet cut to MaxReason.
func ReasonFrom(ctx context.Context) string {
	r, _ := ctx.Value(reasonKey{}).(string)
	return r
}

// truncateReason cuts r to at most MaxReason bytes without splitting a
// UTF-8 sequence: a character that would be cut in two is dropped whole.
// Bytes that are not valid UTF-8 are kept as they are.
func truncateReason(r string) string {
	if len(r) <= MaxReason {
		return r
	}
	// Find the start of the character holding byte MaxReason, the first
	// byte that must go; it is at most UTFMax-1 bytes back.
	for i := MaxReason; i > MaxReason-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(r[i]) {
			if _, size := utf8.DecodeRuneInString(r[i:]); i < MaxReason && i+size > MaxReason {
				return r[:i]
			}
			break
		}
	}
	return r[:MaxReason]
}
