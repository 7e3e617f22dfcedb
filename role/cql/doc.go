// Package cql implements role.Store on a CQL database (ScyllaDB in
// production, Apache Cassandra in tests), shared by every process that
// serves the same servers.
//
// # Schema
//
// Migrations (component "role") creates, in the session's keyspace:
//
//	roles          PRIMARY KEY (server_id, role_id)             position, permissions, name, color, hoist, mentionable
//	member_roles   PRIMARY KEY ((server_id, user_id), role_id)  nothing else: a role ID the member holds
//	overwrites     PRIMARY KEY (channel_id, type, target_id)    allow_bits, deny_bits
//	role_versions  PRIMARY KEY (server_id)                      version counter
//
// IDs and permission bits are uint64s stored as the bits of a bigint
// (IDs above 2^63-1 read as negative numbers in cqlsh, and come back
// intact); type is the role.OverwriteType (0 role, 1 member). Roles reads
// one partition and sorts it by (position, ID) in Go. MemberRoles and
// Overwrites return one partition in clustering order, that of the
// bigints (IDs of 2^63 and above first); role.Store leaves their order
// open. Absent data is an empty, non-nil list and version 0, never
// NotFound. Overwrites are keyed by channel alone, as Overwrites
// takes no server; PutOverwrite and DeleteOverwrite trust the serverID
// they are given and bump that server's version. DeleteOverwrite has no
// type, so it removes the target's overwrites of both types.
//
// # Versions
//
// A server's version is a counter column, bumped by
//
//	UPDATE role_versions SET version = version + 1 WHERE server_id = ?
//
// after the write's data statement has returned. Counters make
// concurrent writers cheap (one statement, no read-modify-write by the
// client, no lightweight transaction and so no contention retries) and
// count every bump, so N writes raise the version by at least N. A counter
// cannot share a batch with the data, so the two are separate statements,
// and the order is what makes caches safe:
//
//   - a writer W writes its data D at LOCAL_QUORUM, and only once D is
//     acknowledged sends its bump B;
//   - the resolver (role.Resolver) reads the version, then the data, both at
//     LOCAL_QUORUM, and caches that data under that version.
//
// If the reader's version read counts B, then B was sent before that read,
// so D was acknowledged by a quorum before it, and the data read, which
// starts later and reaches a quorum too, sees D: data cached under a
// version is at least as new as every write that version counts. If the
// version read misses B, the data read may or may not see D; seeing it is
// only fresher than the version promises, and the entry is dropped when a
// later Version read counts B. Either way no reader caches data older
// than the version it read it at. The argument needs reads and writes at
// (LOCAL_)QUORUM, cqldb's default, or stronger; at ONE it does not hold.
// It also assumes that once a read counted a bump, later reads count it
// too (quorum reads with read repair give that): otherwise one value of the
// counter could stand for two different sets of writes.
//
// The costs of the split, and what is done about them:
//
//   - a data statement that fails may still have been applied (a
//     timeout), so the bump is sent whatever the data statement returned;
//     the write still returns the error. A write whose context is done
//     before it starts sends nothing. A failed data statement that reached
//     fewer replicas than a quorum can still spread later (hints, repair)
//     with no bump after it: caches see it at the server's next write, and
//     a caller that retries the failed write gets a bump of its own;
//   - the bump goes on when the write's context is cancelled after the
//     data statement, and is tried up to bumpAttempts times: a counter
//     update that timed out may have counted, so a retry can bump twice,
//     which only invalidates caches once more. A bump that fails every try
//     makes the write return an error although its data is stored;
//   - a process that dies between the data statement and the bump leaves a
//     change that no version counts: caches keyed by the old version serve
//     the old roles until the server's next write. Nothing in this
//     package repairs that; a cache that must bound it needs a maximum age.
//
// Failed validation (NotFound, Invalid) writes nothing and bumps nothing.
// Every other write bumps, even one that changes nothing (adding a role
// the member holds, removing one they do not, clearing a member with no
// roles).
//
// # Limits
//
// A server has at most 250 roles (@everyone included), a channel at most
// 500 overwrites, a member at most 250 role IDs; a write that would add one
// more is Invalid, while replacing a role or overwrite, or adding a role the
// member holds, always succeeds. The check reads the partition's keys and
// then writes, with no lock: two processes adding to the same server at
// the same moment can both see 249 roles and both add one. The overshoot
// is at most the number of writers adding at once to the same partition,
// that is a handful at most, since only administrators write roles and
// overwrites; everything downstream copes with a few more, and further
// adds are refused until deletes bring the count under the limit. Making
// the limit exact would take a lightweight transaction (Paxos, four round
// trips) on a per-partition count on every add, and contention retries
// when several run at once; the limits are there to bound the size of a
// permission computation, which a few extra rows do not threaten.
//
// Deleting a role leaves its ID in member role lists (see role.Store), so
// stale IDs count towards a member's limit: when a member is at the limit,
// AddMemberRole drops the IDs of roles no longer stored in the same batch
// (one partition, so applied together) as the new ID. If that would not
// bring the member under the limit, nothing is written.
//
// # Concurrency
//
// Store holds no state but the session: it is safe for concurrent use, and
// several Stores in several processes behave as one. Cells are
// last-write-wins by the client's timestamp, so two writes of the same
// role or overwrite from two processes end with the later one as the
// clocks see it; keep the clocks in sync (NTP).
package cql
