// Package role computes what a member of a server may do: the permission
// bits, the channel-permission algorithm, an explanation of its result, and
// the role-hierarchy rules. It is pure: no storage, no I/O, no clock, no
// goroutines. Every function is safe for concurrent use, and Compute and
// Base do not allocate, so they can run on every message.
//
// The rules are Discord's, as documented in the "Permissions" topic of the
// Discord developer documentation (sections "Permission Hierarchy",
// "Permission Overwrites" and "Implicit Permissions"), so that people and
// bots used to Discord find no surprises. Bit values are Discord's too.
//
// # Server level
//
// Base: the owner has All. Anyone else has the union of the @everyone role's
// permissions and those of each of their roles; if that union includes
// Administrator, they have All.
//
// # Channel level
//
// Compute starts from Base; owner and administrators keep All and channel
// overwrites do not apply to them. Otherwise, in this order:
//
//  1. the @everyone overwrite (a role overwrite whose ID is the server ID)
//     removes its deny, then adds its allow;
//  2. the overwrites of all the roles the member holds are merged — their
//     denies into one deny, their allows into one allow — and applied once,
//     deny then allow. Role positions play no part: if one role denies a
//     permission and another allows it, the member has it;
//  3. the member's own overwrite removes its deny, then adds its allow;
//  4. implicit rules: without ViewChannel the member has nothing in the
//     channel; without SendMessages, MentionEveryone, EmbedLinks and
//     AttachFiles are dropped, as they only qualify sending.
//
// Overwrites for roles the member does not hold, for other members, or of
// unknown type are ignored. Two choices go beyond Discord's text: an
// overwrite cannot grant Administrator (it is server-level only), and an
// OwnerID or UserID of 0 never makes anyone the owner.
//
// Explain replays the same steps for one permission and lists those that
// touched it; its Allowed always equals Compute(in).Has(p). The tests hold
// Compute to a one-bit-at-a-time reference implementation written straight
// from the rules above, with table, random and fuzz tests.
//
// # Hierarchy
//
// Roles have positions; @everyone is 0 and a member's highest position is
// that of their most senior role (HighestPosition). The owner is above the
// hierarchy. Anyone else, administrators included:
//
//   - may manage (edit, assign, delete) only roles strictly below their
//     highest role, and only with ManageRoles (CanManageRole);
//   - may grant only permissions they have themselves (CanGrant);
//   - may kick, ban or rename only members whose highest role is strictly
//     below theirs, and never the owner (CanModerate). The permission for
//     the action itself is checked separately, with Base.
//
// Hierarchy applies to nothing else: channel overwrites ignore positions.
package role
