// Package pebble implements audit.Store on Pebble, the embedded LSM store
// that a single-process Guildhall keeps on local disk.
//
// The *pebble.DB is opened by the binary and shared with other stores, so
// every key this package writes starts with "a/". IDs are 8-byte
// big-endian so that byte order is numeric order; <time> is the creation
// time as 8 bytes of Unix seconds with the sign bit flipped (so that byte
// order is time order, before 1970 too) and 4 bytes of nanoseconds, all
// big-endian.
//
//	a/e/<server><entry>          entry record (actor, action, target, created, reason, changes)
//	a/t/<time><server><entry>    empty: the creation-time index that Prune scans
//
// Records are a format version byte (1) followed by the fields as uvarints,
// varints and length-prefixed strings; a time is its Unix seconds and
// nanoseconds, and comes back in UTC. IDs that are in the key are not
// repeated in the value. Changes are a count followed by (key, old, new)
// strings.
//
// # Reads
//
// List is one reverse scan of a/e/<server>, from just below Query.Before
// (or from the newest entry) down. One Pebble iterator reads one point in
// time, so List never sees half of a write, and takes no lock.
//
// Filters (ActorID, Action) are applied while scanning: the store has no
// index by actor or action, so a filtered page reads every entry it skips.
// To bound the cost of one call, List looks at no more than MaxScan
// entries and returns the matches found among them, which may be fewer
// than the limit or none, even though older matching entries exist.
// audit.Store returns no cursor saying where the scan stopped, so a client
// cannot page past the skipped entries with that filter (it can without
// the filter, or with Before set to an ID it got elsewhere). With 90 days
// of retention and admin actions being rare, few servers have MaxScan
// entries at all. A List that looks at all MaxScan entries and matches
// none takes about half a millisecond with the data in the block cache
// (BenchmarkListFilteredMiss).
//
// A limit below 1 is taken as audit.DefaultLimit, one over audit.MaxLimit
// as audit.MaxLimit.
//
// # Writes
//
// Append and every batch of Prune commit with pebble.Sync, so a write that
// returned nil survives a crash, and a failed write leaves nothing behind:
// an entry and its index key are written and deleted together. Writes run
// one at a time under a mutex, held by Append from its check that the ID
// is new to its commit and by Prune for each batch. That mutex is why this
// store is for one process only; Pebble's lock file refuses a second one
// anyway.
//
// Prune scans the creation-time index from its start to olderThan, so its
// cost is that of the entries it deletes, not of the whole log. It
// deletes at most pruneBatch entries per batch, lets Append in between
// batches, and stops between batches when its context is done, returning
// what it deleted so far with the context's error. Append and List do not
// consult their context: each is a short local disk access.
package pebble
