package role

import (
	"math/bits"
	"strconv"

	"github.com/guildhall/guildhall"
)

// Permissions is a 64-bit permission set. Bit positions are Discord's, so a
// value means the same thing here as in Discord's API; Guildhall defines only
// the subset of bits below. On the wire it is a decimal string (see String
// and ParsePermissions), as in Discord's API v8 and later.
type Permissions uint64

// The permission bits Guildhall knows. Values are Discord's; the gaps are
// Discord bits Guildhall does not implement (voice, threads, ...).
const (
	CreateInvite       Permissions = 1 << 0  // create invites to the server
	KickMembers        Permissions = 1 << 1  // kick members
	BanMembers         Permissions = 1 << 2  // ban members
	Administrator      Permissions = 1 << 3  // every permission; channel overwrites do not apply
	ManageChannels     Permissions = 1 << 4  // create, edit and delete channels
	ManageServer       Permissions = 1 << 5  // edit the server (Discord's MANAGE_GUILD)
	AddReactions       Permissions = 1 << 6  // add new reactions to messages
	ViewAuditLog       Permissions = 1 << 7  // read the audit log
	ViewChannel        Permissions = 1 << 10 // see a channel and read its live messages
	SendMessages       Permissions = 1 << 11 // send messages in a channel
	ManageMessages     Permissions = 1 << 13 // delete or pin other members' messages
	EmbedLinks         Permissions = 1 << 14 // links in sent messages get embeds
	AttachFiles        Permissions = 1 << 15 // attach files to sent messages
	ReadMessageHistory Permissions = 1 << 16 // read messages sent before one joined the channel
	MentionEveryone    Permissions = 1 << 17 // mention @everyone and @here
	ChangeNickname     Permissions = 1 << 26 // change one's own nickname
	ManageNicknames    Permissions = 1 << 27 // change other members' nicknames
	ManageRoles        Permissions = 1 << 28 // create, edit, assign and delete roles below one's highest role
)

// All is the union of every permission Guildhall defines. The owner and
// administrators have All; ParsePermissions rejects any bit outside it.
const All = CreateInvite | KickMembers | BanMembers | Administrator |
	ManageChannels | ManageServer | AddReactions | ViewAuditLog |
	ViewChannel | SendMessages | ManageMessages | EmbedLinks | AttachFiles |
	ReadMessageHistory | MentionEveryone | ChangeNickname | ManageNicknames |
	ManageRoles

// DefaultEveryone is what the @everyone role of a new server allows.
const DefaultEveryone = ViewChannel | SendMessages | ReadMessageHistory |
	CreateInvite | ChangeNickname | AddReactions | EmbedLinks | AttachFiles

// names maps a bit position to the permission's stable name. The names are
// part of the API (clients and audit logs show them): never change one.
// They follow the Go constant names, so CreateInvite is CREATE_INVITE where
// Discord says CREATE_INSTANT_INVITE, and ManageServer is MANAGE_SERVER where
// Discord says MANAGE_GUILD.
var names = [64]string{
	0:  "CREATE_INVITE",
	1:  "KICK_MEMBERS",
	2:  "BAN_MEMBERS",
	3:  "ADMINISTRATOR",
	4:  "MANAGE_CHANNELS",
	5:  "MANAGE_SERVER",
	6:  "ADD_REACTIONS",
	7:  "VIEW_AUDIT_LOG",
	10: "VIEW_CHANNEL",
	11: "SEND_MESSAGES",
	13: "MANAGE_MESSAGES",
	14: "EMBED_LINKS",
	15: "ATTACH_FILES",
	16: "READ_MESSAGE_HISTORY",
	17: "MENTION_EVERYONE",
	26: "CHANGE_NICKNAME",
	27: "MANAGE_NICKNAMES",
	28: "MANAGE_ROLES",
}

// Has reports whether p holds every permission in q. Has(0) is true.
func (p Permissions) Has(q Permissions) bool { return p&q == q }

// Names returns the names of the permissions in p, lowest bit first, e.g.
// ["VIEW_CHANNEL", "SEND_MESSAGES"]. Bits outside All are left out. It
// returns an empty, non-nil slice for 0.
func (p Permissions) Names() []string {
	p &= All
	out := make([]string, 0, bits.OnesCount64(uint64(p)))
	for p != 0 {
		out = append(out, names[bits.TrailingZeros64(uint64(p))])
		p &= p - 1
	}
	return out
}

// Named returns the permission with the given name (as Names spells it).
func Named(name string) (Permissions, bool) {
	for i, n := range names {
		if n != "" && n == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// String returns p as a decimal string, the form Discord's API v8 and
// Guildhall's JSON use.
func (p Permissions) String() string { return strconv.FormatUint(uint64(p), 10) }

// ParsePermissions parses the decimal-string form written by String. It
// rejects anything but an unsigned decimal integer (no sign, spaces or hex),
// values over 64 bits, and bits outside All; the error is of kind
// guildhall.Invalid.
func ParsePermissions(s string) (Permissions, error) {
	const op = "role.ParsePermissions"
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, guildhall.E(op, guildhall.Invalid, "permissions %q: not a decimal integer below 2^64", clip(s))
	}
	p := Permissions(v)
	if unknown := p &^ All; unknown != 0 {
		return 0, guildhall.E(op, guildhall.Invalid, "permissions %q: unknown permission bits %#x", clip(s), uint64(unknown))
	}
	return p, nil
}

// clip keeps an echoed client string short in an error message.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// MarshalText writes p as its decimal string, so encoding/json writes
// Permissions as a JSON string ("1024"), like Discord.
func (p Permissions) MarshalText() ([]byte, error) {
	return strconv.AppendUint(nil, uint64(p), 10), nil
}

// UnmarshalText reads the decimal string written by MarshalText, with the
// checks of ParsePermissions.
func (p *Permissions) UnmarshalText(b []byte) error {
	v, err := ParsePermissions(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
