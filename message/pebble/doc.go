// Package pebble implements message.Store on Pebble, the embedded LSM store
// that a single-process Guildhall keeps on local disk.
//
// The *pebble.DB is opened by the binary and shared with other stores, so
// every key this package writes starts with "g/". Numbers in keys are
// 8-byte big-endian, so byte order is numeric order and a channel's history
// is one contiguous range in ID order.
//
//	g/msg/<channel>/<id>                 message record
//	g/seq/<channel>/<seq>                message ID: the seq is taken
//	g/last/<channel>                     highest seq ever stored, 8-byte big-endian
//	g/nonce/<channel>/<author>/<nonce>   message ID, for idempotent sends
//
// A message record is a format version byte (2) followed by server ID,
// author ID, content, seq, nonce, created and edited time (uvarints,
// length-prefixed strings, and a time as its Unix seconds and nanoseconds,
// returned in UTC), then the mentions: everyone (a bool), the count of
// user IDs and the IDs, the count of role IDs and the IDs. Version 1
// records, without the mentions, are still read. The channel and ID are
// in the key only.
//
// # Persist
//
// Persist applies a batch of log changes in one indexed batch committed
// with pebble.Sync: one sync for the whole batch, which is what makes it
// much cheaper than an Insert per message. Each change reads through the
// batch, so it sees the earlier ones. A Create sets the record, the seq
// claim, the nonce entry and raises g/last; it checks nothing (the log
// assigned the seq), so replaying it rewrites the same keys.
//
// Delete removes the record and its nonce entry but keeps g/seq and
// g/last: a seq, once used, stays taken, and LastSeq never goes back, so
// unread counts and gap detection built on seq stay right.
//
// # History pages
//
// List with no cursor or with Before seeks to the end of the range (or to
// Before) and steps backwards. After seeks to After+1 and steps forwards
// taking the Limit oldest, then returns them newest first. Around steps
// forwards from Around for Limit/2 messages and backwards from it for the
// rest, each side on its own, and joins them newest first. Each page is
// read from one iterator, a consistent view of the database.
//
// # Atomicity and concurrency
//
// Every write commits one batch with pebble.Sync, so a write that
// returned nil survives a crash. Writes to one channel run one at a time
// under a lock held from their checks (seq taken, message exists) to their
// commit; channels hash onto 64 locks, so writes to different channels
// mostly proceed in parallel and Pebble can group their syncs. Persist
// takes the locks of every channel in its batch, in lock order. These locks
// are in-process: the store is for one process only (Pebble's lock file
// stops a second process from opening the database).
//
// Context arguments are accepted for the interface and not consulted: every
// call is a short local disk access that cannot be cancelled midway.
package pebble
