// Package cql implements audit.Store on a CQL database (ScyllaDB in
// production, Apache Cassandra in tests), shared by every process that
// records or lists audit entries.
//
// # Schema
//
// Migrations (component "audit") creates, in the session's keyspace:
//
//	audit_entries  PRIMARY KEY ((server_id, bucket), id) id DESC   actor_id, action, target_id, changes, reason, created_at
//	audit_buckets  PRIMARY KEY (server_id, bucket) bucket DESC     the buckets a server has entries in
//	audit_by_time  PRIMARY KEY ((hour, shard), created_at, server_id, id)   the creation-time index Prune walks
//	audit_hours    PRIMARY KEY (part, hour)                         the hours the index has rows in; part is always 0
//
// An entry's bucket is its ID >> 53: with snowflake IDs, 2^31 ms or about
// 24.9 days, so that a server's log is a few partitions of bounded size
// (a 90-day log spans four or five). IDs are uint64s stored as the bits
// of a bigint; a bucket never straddles 2^63, so within a partition the
// clustering order is the IDs' order. hour is the creation time in whole
// hours since 1970 (negative before), shard a hash of (server, ID) mod 16,
// so that a busy hour of the whole platform is sixteen partitions, not one.
// Changes are a list of (key, old, new) tuples and the reason a blob:
// neither is guaranteed to be UTF-8, which a CQL text must be. Times are
// CQL timestamps, whole milliseconds (sub-millisecond parts are dropped),
// and come back in UTC.
//
// # Retention
//
// Every table has default_time_to_live = 7,776,000 s, audit.DefaultRetention,
// and the entry tables use TimeWindowCompactionStrategy in 3-day windows,
// so expired data goes as whole SSTables rather than through compaction.
// TTL counts from the write, so an entry normally expires when audit.Log's
// Prune would delete it anyway; Prune is left with what TTL does not cover
// (entries created well before they were appended, a retention shortened
// since) and finds nothing most of the time. audit.Store cannot tell the
// store the retention: a deployment that keeps the log longer, or forever,
// must alter default_time_to_live of all four tables to match (0 for
// forever), or lose entries at 90 days. Rows written before the change
// keep the TTL they were written with.
//
// # Append
//
// Append is, in order:
//
//  1. one unlogged batch of the bucket and hour markers, idempotent, so
//     that List and Prune will look where the entry goes;
//  2. INSERT ... IF NOT EXISTS of the entry, a lightweight transaction at
//     LOCAL_SERIAL, so that an ID taken by any process is a Conflict;
//  3. the index row, only once the entry is in: written before, it could
//     point Prune at the entry of another Append of the same ID, created
//     at another time.
//
// The index row is written after the entry with the same TTL, so it
// expires after it; the markers are written just before, and may expire
// a few milliseconds before the entry, which then stops being listed a
// little before it expires. A failure at step 1 stores nothing. At step 2
// the outcome of a timeout is unknown: the entry may be stored, listed,
// and without an index row, so only its TTL removes it. At step 3 the
// entry is stored and listed, but Prune will not find it; Append returns
// the error all the same, and audit.Log logs the entry as lost although a
// List shows it.
//
// An Append costs a Paxos round (four round trips to a quorum) plus two
// plain writes: a few milliseconds, fine for administrative actions, which
// are rare. Paxos runs per partition, so concurrent Appends to one server
// and bucket contend: a burst of dozens at once makes some time out
// (Unavailable). audit_entries is only ever written through lightweight
// transactions, by Append and by Prune, so that an ID pruned and appended
// again is ordered by Paxos, not by the clocks of the processes.
//
// # List
//
// List reads the server's buckets at or below that of Query.Before - 1
// (one small partition), then each bucket newest first, from just below
// Before, one statement per page with the ID bound and a LIMIT, until the
// page is full. An entry is listed by any List that starts after its
// Append returned: reads and writes are at LOCAL_QUORUM (cqldb's default)
// or stronger. Buckets whose entries were all pruned are still read, and
// found empty, until their marker expires.
//
// Filters (ActorID, Action) are applied in Go while reading: there is no
// index by actor or action, so a filtered page reads every entry it skips,
// 1,000 rows per statement. To bound the cost of one call, List looks at
// no more than MaxScan entries and returns the matches found among them,
// which may be fewer than the limit or none, even though older matching
// entries exist; audit.Store allows it. A List that looks at all MaxScan
// entries and matches none is ten statements of 1,000 rows
// (BenchmarkListFilteredMiss).
//
// A limit below 1 is taken as audit.DefaultLimit, one over audit.MaxLimit
// as audit.MaxLimit.
//
// # Prune
//
// Prune reads the hours that started before olderThan (one partition of
// audit_hours), and for each of them the sixteen index partitions, rows
// created before olderThan, 1,000 at a time. For each row it deletes the
// entry with DELETE ... IF created_at = ? (a lightweight transaction: an
// entry that TTL, another Prune, or a delete and re-append of its ID got
// to first is not deleted and not counted), then the index row; sixteen
// at a time. So Prune counts exactly what it deleted, even with several
// Prunes at once, at the price of a Paxos round per entry deleted, which
// is acceptable because TTL leaves it little to delete.
//
// Marker rows are not deleted by Prune (a marker deleted while an Append
// of an old entry writes its index row would hide that entry from Prune);
// they expire by TTL. The fixed cost of a Prune is therefore one read of
// audit_hours plus sixteen reads per hour whose marker has not expired
// yet and that started before olderThan: with appends at their creation
// time, that is the hour or two around now - retention, whose index rows
// are mostly expired already (tombstones that the reads skip, about an
// hour's worth of the platform's entries divided by sixteen). Entries
// appended long after their creation time keep an old hour's marker alive
// for the retention, and each Prune reads its sixteen partitions again.
//
// Prune checks its context between pages and stops with what it deleted
// so far and the context's error.
//
// # Concurrency
//
// Store holds no state but the session: it is safe for concurrent use, and
// several Stores in several processes behave as one.
package cql
