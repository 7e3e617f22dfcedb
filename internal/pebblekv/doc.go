// Package pebblekv is the key and record encoding, and the small read
// helpers, that every Pebble store of Guildhall shares (member/pebble,
// message/pebble, role/pebble, audit/pebble). It has that one job: it
// knows nothing of any store's prefixes, key layouts, record types or
// record versions, which stay in the store that owns them, next to the
// documentation of its keys.
//
// # Keys
//
// Key is a prefix followed by IDs, each 8 bytes big-endian, so that byte
// order is numeric order; KeySep puts a separator byte between the IDs.
// PrefixEnd is the upper bound of a scan over a prefix, LastID the ID at
// the end of a key.
//
// # Records
//
// A record is a format version byte followed by its fields, in an order
// only the store knows:
//
//	Uint    uvarint
//	Int     varint (zig-zag)
//	Bool    uvarint 0 or 1; any other value is corrupt
//	Str     uvarint length, then the bytes
//	Bytes   uvarint length, then the bytes
//	Time    varint Unix seconds, then uvarint nanoseconds (below 1e9); read back in UTC
//
// Versions start at 1. A Decoder reads a record written in any version
// from 1 to the newest its type had, and exposes that version so the
// store can read the fields a version added. A store writes 8-byte
// counters and IDs as bare values, without a version byte (EncodeUint64).
//
// A Decoder fails sticky: the first malformed field makes it return zero
// values (a Time the Unix epoch) from then on, and Err and Done return
// ErrCorrupt. The caller reads every field and checks once. What a Decoder returns never aliases its
// input, which may be a buffer Pebble reuses once a Get is closed or an
// iterator moves: strings and bytes are copies (AppendBytes copies into
// the caller's buffer, so a field can be looked at without allocating).
//
// # Reads
//
// Get, Has, Scan and Count take a pebble.Reader: a *pebble.DB, a snapshot,
// a batch. Get decodes the value before Pebble's buffer is released. Scan
// and Count use one iterator, which reads one point in time, so they never
// see half of a batch; a read that spans several calls and must be
// consistent takes a snapshot. An error Pebble reports when a Get or an
// iterator is closed is returned too, unless there is already one to
// return (the decoder's, the callback's).
//
// # Concurrency
//
// The functions keep no state and are safe for concurrent use as far as
// their Reader is. An Encoder or a Decoder belongs to one goroutine.
package pebblekv
