// Package pebble implements role.Store on Pebble, the embedded LSM store
// that a single-process Guildhall keeps on local disk.
//
// The *pebble.DB is opened by the binary and shared with other stores, so
// every key this package writes starts with "r/". IDs are 8-byte big-endian
// so that byte order is numeric order; the '/' between them is a literal
// byte, and <type> is one byte, the role.OverwriteType (0 role, 1 member).
//
//	r/role/<server>/<role>               role record (position, permissions, name, color, flags)
//	r/mrole/<server>/<user>/<role>       empty: a role ID the member holds
//	r/ow/<channel>/<type>/<target>       overwrite record (allow, deny)
//	r/ver/<server>                       the server's version, 8-byte big-endian
//
// Records are a format version byte (1) followed by the fields as uvarints,
// varints and length-prefixed strings; Hoist and Mentionable are bits of
// one flags uvarint. IDs and types that are in the key are not repeated in
// the value. Permission bits are stored as given, including bits outside
// role.All.
//
// # Reads
//
// Roles scans the server's roles in ID order and sorts them by (position,
// ID); MemberRoles returns role IDs in ID order; Overwrites returns a
// channel's overwrites in (type, target ID) order, role overwrites first.
// Each is one iterator over one key range, and a Pebble iterator reads one
// point in time, so a read never sees half of a write. Reads take no lock.
// Absent data is an empty, non-nil list and version 0, never NotFound: the
// store knows nothing of which servers, channels and members exist.
//
// # Writes and versions
//
// Every method that writes commits one batch with pebble.Sync that also
// sets r/ver/<server> to its old value plus one, so a write that returned
// nil survives a crash together with its version, and a failed write
// leaves nothing behind, version included. Data and version become visible
// together: a reader that reads Version first and the data after gets data
// at least as new as that version, which is what a cache keyed by
// (server, version) needs. Every successful write bumps
// the version, even one that changes nothing (adding a role the member
// holds, removing one they do not). Writes run one at a time under a mutex
// held from their first read (existence, limits, the old version) to their
// commit. That mutex is why this store is for one process only: two
// processes must not open the same database (Pebble's lock file refuses it
// anyway).
//
// Overwrites are keyed by channel alone, as Overwrites takes no server;
// PutOverwrite and DeleteOverwrite trust the serverID they are given and
// bump that server's version. DeleteOverwrite has no type, so it removes
// the target's overwrites of both types.
//
// # Limits
//
// A server has at most 250 roles (@everyone included), a channel at most
// 500 overwrites, a member at most 250 role IDs; a write that would add one
// more is Invalid, while replacing a role or overwrite, or adding a role
// the member holds, always succeeds. Deleting a role leaves its ID in member
// role lists (see role.Store), so stale IDs count towards a member's limit:
// when a member is at the limit, AddMemberRole first drops the IDs of roles
// no longer stored, in the same batch.
//
// Context arguments are accepted for the interface and not consulted: every
// call is a short local disk access that cannot be cancelled midway.
package pebble
