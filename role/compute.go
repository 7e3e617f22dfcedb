package role

// OverwriteType says whom a channel overwrite targets. The values are
// Discord's.
type OverwriteType uint8

const (
	OverwriteRole   OverwriteType = 0 // Overwrite.ID is a role ID (the server ID for @everyone)
	OverwriteMember OverwriteType = 1 // Overwrite.ID is a user ID
)

func (t OverwriteType) String() string {
	switch t {
	case OverwriteRole:
		return "role"
	case OverwriteMember:
		return "member"
	default:
		return "unknown"
	}
}

// Overwrite changes, in one channel, the permissions of one role or member:
// Deny removes permissions, Allow adds them. A bit is in at most one of them
// when written through the API, but Compute is defined for any values.
type Overwrite struct {
	ID    uint64        `json:"id,string"`
	Type  OverwriteType `json:"type"`
	Allow Permissions   `json:"allow"`
	Deny  Permissions   `json:"deny"`
}

// Role is what the computation needs of a role. The @everyone role has the
// server's ID and position 0; other roles have positions above 0, higher
// meaning more senior.
type Role struct {
	ID          uint64      `json:"id,string"`
	Position    int         `json:"position"`
	Permissions Permissions `json:"permissions"`

	// Presentation; the computation ignores these.
	Name        string `json:"name"`
	Color       int    `json:"color"` // 0xRRGGBB, 0 for none
	Hoist       bool   `json:"hoist"` // shown apart in the member list
	Mentionable bool   `json:"mentionable"`
}

// Input is everything the computation needs about one member of one server
// and, for Compute and Explain, one channel.
//
// IDs are snowflakes and never 0: an OwnerID of 0 means "no owner", so a zero
// Input has no permissions rather than the owner's.
type Input struct {
	ServerID   uint64
	OwnerID    uint64
	UserID     uint64
	Everyone   Permissions // the @everyone role's permissions
	Roles      []Role      // the member's roles, not including @everyone
	Overwrites []Overwrite // the channel's overwrites; nil for none
}

// isOwner reports whether the member owns the server.
func (in *Input) isOwner() bool { return in.OwnerID != 0 && in.UserID == in.OwnerID }

// holds reports whether the member has the role with the given ID. The
// @everyone role (ID == ServerID) never counts: its overwrite is applied on
// its own step, even if Roles lists it by mistake.
func (in *Input) holds(roleID uint64) bool {
	if roleID == in.ServerID {
		return false
	}
	for i := range in.Roles {
		if in.Roles[i].ID == roleID {
			return true
		}
	}
	return false
}

// Base returns the member's server-level permissions: All for the owner;
// otherwise the union of @everyone's and the member's roles' permissions,
// widened to All if that union includes Administrator. Channel overwrites
// and implicit rules play no part; Base never returns bits outside All.
func Base(in Input) Permissions {
	if in.isOwner() {
		return All
	}
	p := in.Everyone
	for i := range in.Roles {
		p |= in.Roles[i].Permissions
	}
	if p&Administrator != 0 {
		return All
	}
	return p & All
}

// Compute returns the member's permissions in the channel whose overwrites
// are in.Overwrites, in Discord's documented order:
//
//  1. Base (owner and Administrator get All and stop here).
//  2. The @everyone overwrite (type role, ID == ServerID): deny, then allow.
//  3. The overwrites of every role the member holds, merged: the union of
//     their denies is removed, then the union of their allows added, so an
//     allow on one role beats a deny on another whatever their positions.
//  4. The member's own overwrite (type member, ID == UserID): deny, then allow.
//  5. Implicit rules: without ViewChannel the result is 0; without
//     SendMessages, MentionEveryone, EmbedLinks and AttachFiles are removed.
//
// Overwrites for roles the member does not hold, for other members, or of an
// unknown type are ignored; several overwrites for the same target are merged
// as one. An overwrite cannot allow Administrator, and bits outside All are
// dropped. Compute does not allocate.
func Compute(in Input) Permissions {
	p := Base(in)
	if p&Administrator != 0 {
		return All
	}
	var everyoneDeny, everyoneAllow, roleDeny, roleAllow, memberDeny, memberAllow Permissions
	for i := range in.Overwrites {
		o := &in.Overwrites[i]
		switch {
		case o.Type == OverwriteRole && o.ID == in.ServerID:
			everyoneDeny |= o.Deny
			everyoneAllow |= o.Allow
		case o.Type == OverwriteRole && in.holds(o.ID):
			roleDeny |= o.Deny
			roleAllow |= o.Allow
		case o.Type == OverwriteMember && o.ID == in.UserID:
			memberDeny |= o.Deny
			memberAllow |= o.Allow
		}
	}
	p = p&^everyoneDeny | everyoneAllow&overwritable
	p = p&^roleDeny | roleAllow&overwritable
	p = p&^memberDeny | memberAllow&overwritable
	return implicit(p)
}

// overwritable is what an overwrite can allow. Administrator is a
// server-level permission: an overwrite never grants it (and denying it is
// moot, since an administrator's overwrites are never applied).
const overwritable = All &^ Administrator

// sendImplied are the permissions that mean nothing without SendMessages.
const sendImplied = MentionEveryone | EmbedLinks | AttachFiles

// implicit applies the implicit rules to channel permissions p.
func implicit(p Permissions) Permissions {
	if p&ViewChannel == 0 {
		return 0
	}
	if p&SendMessages == 0 {
		p &^= sendImplied
	}
	return p
}
