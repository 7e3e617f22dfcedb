// Package pebble implements member.Store on Pebble, the embedded LSM store
// that a single-process Guildhall keeps on local disk.
//
// The *pebble.DB is opened by the binary and shared with other stores, so
// every key this package writes starts with "m/". IDs are 8-byte big-endian
// so that byte order is numeric order; <name> is a lower-cased username,
// escaped so that byte order is (name, ID) order (a 0x00 byte becomes
// 0x00 0xff and the name ends with 0x00 0x01).
//
//	m/u/<user>                   user record (username, created, password hash)
//	m/un/<lower(username)>       user ID: the case-insensitive username index
//	m/t/<sha256>                 token record (user, created, expires)
//	m/s/<server>                 server record (name, owner, created)
//	m/us/<user><server>          empty: the servers a user is a member of
//	m/c/<channel>                channel record (server, name, type, position, parent, created, synced)
//	m/sc/<server><channel>       the same channel record, so a server's channels are one scan
//	m/sm/<server><user>          member record (username, joined, nick): members in user ID order
//	m/sn/<server><name><user>    the same member record: members in (name, user ID) order
//	m/mc/<server>                member count, 8-byte big-endian
//	m/i/<code>                   invite record (server, creator, max uses, uses, expires, created)
//	m/b/<server><user>           ban record (username, actor, reason, created): bans in user ID order
//
// Records are a format version byte followed by the fields as uvarints,
// varints and length-prefixed strings; a time is its Unix seconds and
// nanoseconds, and comes back in UTC, and a bool is a uvarint 0 or 1. IDs
// and codes that are in the key are not repeated in the value.
//
// # Record versions
//
// Every record type is written in its newest version and read in all the
// versions it has had, so a database written by an older build keeps
// working without a migration:
//
//	version 1   every record type as first written
//	version 2   channel: version 1 + synced; member: version 1 + nick
//
// A version 1 channel reads as not synced and a version 1 member as having
// no nick; the record is rewritten in version 2 the next time it is
// written (UpdateChannel, UpdateMember, ...). The reverse does not hold:
// a build older than version 2 finds version 2 records corrupt, so a
// database cannot go back to such a build once written to. A version a
// record type never had (a ban in version 2, say) is corrupt.
//
// # Nicknames and bans
//
// The nick is stored in the member record only: the (name, user ID) index
// and prefix search stay on the username, so renaming a member in a server
// (UpdateMember) moves no key. Nick values are stored as given; limits on
// them are the service's.
//
// Ban in an unknown server is NotFound; the user is not looked up, so
// anyone can be banned, member or not. It writes the ban record (replacing
// an earlier one) and, if the user is a member, removes the membership
// exactly as RemoveMember does (both member keys, m/us/ and the count), in
// one batch. JoinByInvite refuses a user with a ban record with Forbidden
// before it looks at their membership or the invite's limits, and then
// counts no use. Unban deletes only the ban record; it does not restore
// the membership.
//
// # Atomicity and concurrency
//
// Every method that writes commits one batch with pebble.Sync, so a write
// that returned nil survives a crash, and a failed write leaves nothing
// behind. Writes run one at a time under a mutex held from their checks
// (username taken, invite used up, user banned, member count) to their
// commit, so a join and a ban of the same user never interleave. That
// mutex is why this store is for one process only: two processes must
// not open the same database (Pebble's lock file refuses it anyway).
//
// Reads take no lock. A read that looks at more than one key (a member page
// with a name cursor, a ban page, the servers of a user) reads from one
// Pebble snapshot, so it never sees half of a write.
//
// Context arguments are accepted for the interface and not consulted: every
// call is a short local disk access that cannot be cancelled midway.
package pebble
