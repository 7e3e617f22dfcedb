// Package member holds users, servers, channels, membership and invites:
// the domain types, the Store they persist in, and the Service that applies
// the rules (limits, ownership, invite use) on top of a Store.
//
// Implementations of Store live in subpackages named after what they
// depend on (member/pebble); member/membertest is the conformance suite
// every implementation passes.
package member

import (
	"context"
	"time"
)

// User is an account.
type User struct {
	ID        uint64
	Username  string
	CreatedAt time.Time
}

// Token is a session credential. Only the SHA-256 of the bearer token is
// stored; the token itself is shown to the client once.
type Token struct {
	Hash      [32]byte
	UserID    uint64
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Server is a community.
type Server struct {
	ID        uint64
	Name      string
	OwnerID   uint64
	CreatedAt time.Time
}

// ChannelType says what a channel is.
type ChannelType uint8

const (
	ChannelText     ChannelType = 0
	ChannelCategory ChannelType = 1
)

// Channel belongs to one server.
type Channel struct {
	ID       uint64
	ServerID uint64
	Name     string
	Type     ChannelType
	Position int
	ParentID uint64 // category, 0 for none
	// Synced channels take their category's permission overwrites.
	Synced    bool
	CreatedAt time.Time
}

// Member is a user's membership of a server.
type Member struct {
	ServerID uint64
	UserID   uint64
	Username string // copied from the user, for listing and prefix search
	Nick     string // server nickname, empty for none
	JoinedAt time.Time
}

// Ban keeps a user out of a server: they are removed and cannot join again
// by invite until unbanned.
type Ban struct {
	ServerID  uint64
	UserID    uint64
	Username  string
	ActorID   uint64 // who banned
	Reason    string
	CreatedAt time.Time
}

// Invite lets whoever holds the code join a server.
type Invite struct {
	Code      string
	ServerID  uint64
	CreatorID uint64
	MaxUses   int // 0 means unlimited
	Uses      int
	ExpiresAt time.Time // zero means never
	CreatedAt time.Time
}

// Expired reports whether the invite can no longer be used at now.
func (i Invite) Expired(now time.Time) bool {
	return (!i.ExpiresAt.IsZero() && !now.Before(i.ExpiresAt)) || (i.MaxUses > 0 && i.Uses >= i.MaxUses)
}

// MemberQuery pages through a server's members.
type MemberQuery struct {
	// After is the user ID of the last member of the previous page (0 for
	// the first page). Without Prefix, pages are in user ID order; with it,
	// in (lower-cased username, user ID) order.
	After  uint64
	Limit  int
	Prefix string // lower-cased username prefix; empty for all
}

// Store persists the member domain. Every method returns errors built with
// guildhall.E: NotFound for unknown IDs, Conflict for taken names.
// Implementations must make each method atomic.
type Store interface {
	// CreateUser fails with Conflict if the username is taken; usernames
	// are compared case-insensitively.
	CreateUser(ctx context.Context, u User, passwordHash []byte) error
	User(ctx context.Context, id uint64) (User, error)
	// UserByName finds a user by case-insensitive username and returns the
	// stored password hash with it.
	UserByName(ctx context.Context, username string) (User, []byte, error)

	CreateToken(ctx context.Context, t Token) error
	Token(ctx context.Context, hash [32]byte) (Token, error)
	DeleteToken(ctx context.Context, hash [32]byte) error

	// CreateServer stores the server, its first channels and its owner's
	// membership in one step.
	CreateServer(ctx context.Context, s Server, channels []Channel, owner Member) error
	Server(ctx context.Context, id uint64) (Server, error)
	// ServersOf lists the servers userID is a member of, by server ID.
	ServersOf(ctx context.Context, userID uint64) ([]Server, error)
	// UpdateServer replaces a server's name; the owner and creation time
	// stay as stored. An unknown server is NotFound.
	UpdateServer(ctx context.Context, s Server) error
	// DeleteServer is not in this scope.

	CreateChannel(ctx context.Context, c Channel) error
	Channel(ctx context.Context, id uint64) (Channel, error)
	// Channels lists a server's channels by (position, ID).
	Channels(ctx context.Context, serverID uint64) ([]Channel, error)
	UpdateChannel(ctx context.Context, c Channel) error
	DeleteChannel(ctx context.Context, id uint64) error

	Member(ctx context.Context, serverID, userID uint64) (Member, error)
	Members(ctx context.Context, serverID uint64, q MemberQuery) ([]Member, error)
	MemberCount(ctx context.Context, serverID uint64) (int, error)
	// RemoveMember fails with NotFound if userID is not a member.
	RemoveMember(ctx context.Context, serverID, userID uint64) error
	// UpdateMember replaces a member's nickname; NotFound if not a member.
	UpdateMember(ctx context.Context, m Member) error

	// Ban records b and removes the user from the server if they are a
	// member, in one step. Banning a banned user replaces the record.
	Ban(ctx context.Context, b Ban) error
	// Unban fails with NotFound if the user is not banned.
	Unban(ctx context.Context, serverID, userID uint64) error
	// BanOf returns the ban of a user; NotFound if none.
	BanOf(ctx context.Context, serverID, userID uint64) (Ban, error)
	// Bans pages through a server's bans by user ID, after the given one.
	Bans(ctx context.Context, serverID, after uint64, limit int) ([]Ban, error)

	CreateInvite(ctx context.Context, inv Invite) error
	Invite(ctx context.Context, code string) (Invite, error)
	// JoinByInvite adds m to the invite's server and counts one use, in one
	// step: it fails with NotFound for an unknown code, with Forbidden if
	// the user is banned from the server or the invite expired or is used
	// up at m.JoinedAt. A user who is already a member gets their existing
	// membership and uses nothing.
	JoinByInvite(ctx context.Context, code string, m Member) (Member, error)
}
