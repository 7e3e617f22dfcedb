// Package cql implements message.Store on ScyllaDB or Cassandra through
// gocqlx: the production home of message history.
//
// # Tables
//
// Every ID, seq and channel is a bigint holding the uint64's bits.
// Message IDs and seqs are clustering keys, whose order is the signed
// order, so the store takes only those below 2^63; snowflakes always are
// (41 bits of milliseconds above 22 bits of node and sequence).
//
//	messages             ((channel_id, bucket), id DESC)  the messages
//	message_buckets      (channel_id, bucket DESC)        the buckets a channel has used
//	message_seqs         ((channel_id, block), seq DESC)  id: who claimed the seq
//	message_channel_meta (channel_id)                     last_seq, last_id: a hint
//	message_nonces       ((channel_id, author_id, nonce)) id, for idempotent sends
//
// A message lives in partition (channel, bucket), where bucket is the
// number of whole BucketWidths (10 days) between snowflake.Epoch and the
// time in its ID (see Bucket), newest first. A partition is therefore
// bounded by how much a channel says in ten days, and a channel's history
// is a run of partitions in time order. message_buckets lists the buckets
// that ever held a message of the channel, one small partition per
// channel (about 37 rows a year).
//
// message_seqs records which ID took each seq. Its partitions hold 65,536
// seqs of a channel (block = seq >> 16), so a busy channel never grows one
// huge partition. message_channel_meta holds the highest seq and its ID,
// written with the seq as the write timestamp (USING TIMESTAMP), so that
// of all the writes the one with the largest seq wins, in whatever order
// they land, without a read or a transaction. Never write or delete that
// row with ordinary timestamps: a tombstone at the current time would
// hide every later hint. (LastSeq would still be right, see below, only
// slower.) On Cassandra 5 the minimum_timestamp guardrails must stay off.
//
// # Insert
//
// Insert runs three steps:
//
//  1. it reads the ID of seq m.Seq-1 and refuses (Conflict) an ID not above
//     it;
//  2. it claims (channel, seq) in message_seqs with INSERT ... IF NOT
//     EXISTS, a lightweight transaction (Paxos): of any number of writers,
//     in any number of processes, exactly one gets a seq; the others get
//     Conflict. Either refusal writes nothing;
//  3. it writes the message, its bucket in message_buckets, the hint and
//     the nonce entry in one logged batch: they land all or none.
//
// The check in step 1 is a read before the claim, not part of it: it is
// exact for writers that, like message.Service, claim seq N+1 only after
// they have seen seq N claimed (through Last), which is how seqs are
// assigned.
//
// A writer that dies, or times out, between steps 2 and 3 leaves the seq
// taken with no message, as if its message had been deleted; Last sees
// the claim. A batch that timed out (Unavailable) may still be applied
// later from the batchlog.
//
// Inserting the very message that already holds its seq is a Conflict
// like any taken seq (the contract says so) and changes nothing: it cannot
// bring back a deleted message or undo an edit. Replaying the message log
// is Persist's job, which is idempotent (below).
//
// # Persist
//
// Persist writes a batch read from the message log (message.Persister).
// The log has already ordered the changes and given every seq once, so
// Persist uses no lightweight transaction for creates and edits: a create
// is one unlogged batch (one round trip) of plain writes to messages,
// message_buckets, message_seqs (the claim, without IF NOT EXISTS),
// the message_channel_meta hint and message_nonces; an edit reads the
// message and, if it is there, sets content and edited_at; a delete reads
// it and removes it, then frees its nonce with DELETE ... IF id = <the
// message> as Delete does. None of it is atomic and all of it is
// idempotent: a batch replayed after a crash rewrites the same values
// and ends in the same state. Changes to different messages run in
// parallel (32 at a time); the changes of one message, and the creates
// that set one nonce entry, run in log order. That is what makes a batch
// much cheaper than one Insert (a Paxos round and a logged batch) per
// message; see docs/benchmarks.md.
//
// The persister applies one batch at a time, in log order, across all
// processes, so Persist's read-then-write of edits and deletes never
// races another Persist on the same message.
//
// Migration 2 adds the mentions: mention_users and mention_roles
// (frozen<list<bigint>>) and mention_everyone (boolean), left unset when
// empty.
//
// # Last and LastSeq
//
// Last reads the hint, then looks in message_seqs for a claim above it:
// normally one empty read, two reads in all. A claim whose batch has not
// landed (or never will) is found there, and the look goes on past the
// end of a block; without a hint at all it walks one read per block.
//
// # Reading, editing and deleting
//
// Get is a single-row read. ByNonce reads the nonce entry, then the
// message, and ignores an entry whose message is gone.
//
// Update is UPDATE ... IF EXISTS and Delete is DELETE ... IF EXISTS, both
// lightweight transactions on the message's partition: an edit racing a
// delete cannot bring back half a message, and of two deletes of one
// message exactly one succeeds. Delete then frees the nonce with DELETE
// ... IF id = <the message>, so it never removes the entry of a newer
// message that reused the nonce. The only plain write to a message row is
// its creation, which is done before any edit or delete can see it.
// Delete keeps the message's seq taken and the hint as it is.
//
// The store does not enforce that a nonce is used once per author and
// channel: message.Service checks ByNonce before it appends to the log,
// and the log's duplicate window (Nats-Msg-Id, message/jetstream) makes
// a retry through any process within it return the first message.
//
// # History pages
//
// A page walks the channel's buckets from the cursor's bucket away from
// it (down for the latest and Before, up for After), reading from each
// bucket only what the page still lacks: "latest 50" is one read of
// message_buckets and, normally, one partition read. Buckets come in
// order, and IDs in a bucket too, so pages join without sorting. The walk
// reads only buckets that held messages and stops after the channel's
// first (or last) one, however long the channel was quiet in between. The
// first bucket is read alone; while the page is still short the next 2,
// then 4, then 8 are read in parallel, each limited to what the page
// lacks. Around is an upward walk for Limit/2 messages from Around and a
// downward one for the rest below it. A bucket whose messages were all
// deleted stays listed and costs one empty read; deleted messages are
// tombstones that a read skips over until compaction drops them.
//
// # Consistency and concurrency
//
// Statements run at the session's consistency (cqldb: LOCAL_QUORUM) and
// lightweight transactions at its serial consistency (SERIAL unless the
// cluster config says otherwise; LOCAL_SERIAL would let two datacenters
// claim the same seq). A Store keeps no state: any number of them, in any
// number of processes, may share a keyspace, and each is safe for
// concurrent use. List's parallel reads run on goroutines that end before
// it returns. Errors of an unreachable, overloaded or slow cluster are
// Unavailable.
package cql
