// Package cql implements member.Store on ScyllaDB or Cassandra through
// gocqlx, for Guildhall deployments where several processes share the
// member data. There is no in-process lock: every check-then-write is a
// lightweight transaction (LWT, Paxos on one partition), so processes may
// call any method concurrently.
//
// # Schema
//
// IDs are stored as bigint, int64(id), so that ID order is bigint order;
// IDs of 2^63 and up (never made by package snowflake) are Invalid when
// creating, and found nowhere when looking up. Text must be UTF-8 (Invalid
// otherwise); a username prefix that is not matches nothing.
//
// Tables that hold the truth, written only with LWTs:
//
//	users           (id)                  username, password hash, created
//	users_by_name   (name_lower)          user_id, claimed_at: the username claim
//	tokens          (hash)                user, created, expires; TTL = expiry + 1 day
//	servers         (id)                  name, owner, created, pending
//	channels        (id)                  server, name, type, position, parent, synced, created, version, pending
//	invites         (code)                server, creator, max_uses, uses, expires, created
//	members         ((server_id), user_id) member_count STATIC;
//	                                       a membership (banned = false: username, nick, joined_at)
//	                                       or a ban (banned = true: ban_username, ban_actor_id, ...),
//	                                       each with a version
//
// Index tables, written without LWTs, every write carrying the version of
// the row it follows as its timestamp (USING TIMESTAMP):
//
//	channels_by_server ((server_id), id)                 a copy of the channel, for Channels
//	servers_by_user    ((user_id), server_id)            for ServersOf
//	members_by_name    ((server_id), name_lower, user_id) for prefix search
//	bans               ((server_id), user_id)            for Bans
//
// A user's row in members is their membership or their ban, never both
// (Ban removes the membership), so one LWT on that row orders every join,
// removal, ban and unban of that user in that server. Members in user ID
// order are that partition, ban rows skipped. BanOf reads the row; the
// bans table only lists which users to read.
//
// The member count is the static member_count of the server's members
// partition, not a counter table: a counter cannot take part in an LWT,
// so it could only be bumped after the membership row committed, drifting
// for good on a crash in between or on a retried timeout (counter updates
// are not idempotent). As a static column it is compare-and-set in the
// same conditional batch (one partition, one Paxos round) as the
// membership row it counts, so it is exact. The price is that two joins
// of one server that read the same count retry; they would queue on that
// partition's Paxos anyway, since every membership LWT of a server is on
// its partition.
//
// channels_by_server is clustered by channel ID, not by position, and
// Channels sorts by (position, ID) itself (a server has at most a few
// hundred channels). With position in the key a move is a delete and an
// insert, and a crash between an update's steps could leave a channel
// listed twice or a deleted one listed; with one row per channel every
// listing write is an overwrite, and the version timestamps make the
// newest win whatever order writes land in.
//
// # Atomicity and crashes
//
// Within one partition a conditional batch is atomic. Across tables
// nothing is; each method orders its writes so that a crash between them
// leaves nothing a reader is shown that breaks the member.Store contract,
// and reads check index rows against the rows they index:
//
//   - CreateUser claims the name (INSERT IF NOT EXISTS), then the ID. The
//     user exists once its users row does; a claim without one (a crash
//     between the writes) finds no user, and after staleClaim (1 minute)
//     another CreateUser takes it over. A taken ID gives the name back.
//   - CreateServer claims the server row, marked pending, then the channel
//     rows, pending too (a taken channel ID deletes the claims made so far:
//     Conflict, nothing left); then the indexes, the owner's membership with
//     member_count 1, the channels, and last the server are made live. A
//     pending server or channel reads as unknown, so after a crash Server,
//     ServersOf and Channel show nothing of it; only reads by the ID that
//     was never handed out (Member, Channels of that server) find rows.
//   - CreateChannel claims the channel row, then lists it. UpdateChannel
//     compare-and-sets the row on its version, then rewrites the listing.
//     DeleteChannel first frees the channel's children (each its own
//     step), unlists it at a version past its own, then deletes the row if
//     that version is still current. A crash leaves at worst a channel
//     that Channel finds but Channels does not list (or lists as before
//     the update) until its next update or delete.
//   - JoinByInvite claims a use of the invite (compare-and-set of uses,
//     refusing once max_uses are used), writes the index rows at a new
//     version in a logged batch, then, in one conditional batch, inserts
//     the membership row if the user has none and sets the count. That is
//     the commit point. If it finds a membership (a concurrent join) or a
//     ban, the use is given back and that row decides. A crash, or an
//     error, between the use and the commit leaves the invite one use
//     short and index rows that reads skip.
//   - RemoveMember deletes the membership row and decrements the count in
//     one conditional batch, on the version it read; Ban turns the row into
//     a ban the same way (or inserts a ban row, or replaces the ban), after
//     listing it in bans. The index rows of the membership are deleted
//     after, best effort, at its version: the deletes cannot touch the
//     index rows of a later membership of the same user, which carry a
//     later version. A crash in Ban between the listing and the row leaves
//     a listing that Bans skips and the user still a member: the Ban call
//     did not return, and calling it again finishes it.
//   - Unban deletes the ban row on its version, then its listing.
//   - UpdateMember is one LWT on the membership row. Tokens and invites
//     are one row each.
//
// Index rows without the row they index, or with a row that no longer
// matches (a member who left, a name that differs), are skipped by
// Members, ServersOf and Bans; they stay until the key is written again.
// Because deletes of index rows carry the version of what they delete,
// the scheme assumes that the clocks of the processes are closer than the
// time between a user leaving a server and joining it again.
//
// # Reads and consistency
//
// The session's consistency (cqldb default LOCAL_QUORUM) applies to reads
// and to the commit of LWTs; the Paxos phase uses the server's default
// SERIAL. A read that takes several queries (a member page and the rows it
// lists, a user's servers) sees no snapshot: it may see a write that
// landed between its queries. A compare-and-set that loses retries with
// the values it reads again, up to 64 times with a growing random pause,
// then fails with Unavailable, as do driver timeouts (for a write, its
// outcome is then unknown: a JoinByInvite that timed out in its commit
// checks the row for its own version).
//
// Every join of one server, and every use of one invite, goes through
// Paxos on one partition; expect a few hundred joins per second per server
// at most, not thousands.
package cql
