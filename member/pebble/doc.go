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
//	m/c/<channel>                channel record (server, name, type, position, parent, created)
//	m/sc/<server><channel>       the same channel record, so a server's channels are one scan
//	m/sm/<server><user>          member record (username, joined): members in user ID order
//	m/sn/<server><name><user>    the same member record: members in (name, user ID) order
//	m/mc/<server>                member count, 8-byte big-endian
//	m/i/<code>                   invite record (server, creator, max uses, uses, expires, created)
//
// Records are a format version byte (1) followed by the fields as uvarints,
// varints and length-prefixed strings; a time is its Unix seconds and
// nanoseconds, and comes back in UTC. IDs and codes that are in the key are
// not repeated in the value.
//
// # Atomicity and concurrency
//
// Every method that writes commits one batch with pebble.Sync, so a write
// that returned nil survives a crash, and a failed write leaves nothing
// behind. Writes run one at a time under a mutex held from their checks
// (username taken, invite used up, member count) to their commit. That
// mutex is why this store is for one process only: two processes must
// not open the same database (Pebble's lock file refuses it anyway).
//
// Reads take no lock. A read that looks at more than one key (a member page
// with a name cursor, the servers of a user) reads from one Pebble snapshot,
// so it never sees half of a write.
//
// Context arguments are accepted for the interface and not consulted: every
// call is a short local disk access that cannot be cancelled midway.
package pebble
