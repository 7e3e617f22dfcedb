// Package jetstream implements message.Log and message.LogSource on a
// NATS JetStream stream: the durable log a send is acked on (DESIGN.md §4
// "Send"), in both the embedded mode (the in-process NATS server, state in
// <data-dir>/nats) and the distributed one (an external NATS cluster).
//
// # Stream and subjects
//
// One stream (Config.Stream, default GH_MESSAGES, file storage) holds
// every accepted change, each a pb.MessageLogRecord:
//
//	gh.msglog.<channel>.create   new messages (bus.MessageLogCreate)
//	gh.msglog.<channel>.change   edits and deletions (bus.MessageLogChange)
//
// Both are in the one stream, so its order is the order the message
// service accepted them in, and the persisters apply them in that order:
// an edit or deletion always lands after the create it follows.
//
// # Gapless seqs across processes
//
// The service assigns seq = head.Seq+1 and appends with
// Nats-Expected-Last-Subject-Sequence = the stream sequence of the
// channel's newest create as it last saw it (0: none in the stream). The
// server refuses the append if another create reached the subject since
// (error 10071, "wrong last sequence"), which Append returns as
// message.ErrStaleHead; the service then reads the head again and
// retries. Of two processes that assigned the same seq, exactly one
// append succeeds. The head comes from the stream (Head: the last
// message on the create subject, a direct get) or, when the subject has
// no message left in the stream, from the store's Last.
//
// # Retention, and why the head lookup stays right
//
// The stream uses limits retention with MaxBytes (default 1 GiB) and
// DiscardOld, and by default no MaxAge. The persister does not delete
// what it stored; old records leave only when the stream is full. Two
// things must hold:
//
//  1. An unpersisted record is never dropped. The message service stops
//     accepting changes (Unavailable, "retry later") while the persister
//     is more than MaxLag records behind (message.Config.MaxLag, default
//     50,000). So at most MaxLag records, plus the few appended between a
//     lag check and its append, are unpersisted at any time: at most
//     about 50,000 x 16.5 KiB = 825 MiB even if every one were a
//     4,000-character message of 4-byte characters, under MaxBytes. Only
//     the oldest records are dropped, and they are persisted. Keep
//     MaxBytes above MaxLag x 16.5 KiB when changing either. A MaxAge
//     would break this: a store outage longer than MaxAge would age out
//     unpersisted records. That is why it is off by default.
//  2. When a channel's newest create is not in the stream, the store has
//     it. By (1) a create leaves the stream only once persisted, so
//     falling back to the store's Last is right. The one gap is a head
//     read from the store (expect = 0) going stale before its append: if
//     another process appended a create of the channel and the stream
//     then dropped it (1 GiB of later records) between this process's
//     look and its append, "no create on the subject" would hold again
//     and the check would pass with a taken seq. The service makes that
//     window one send long (it never keeps a head read from the store;
//     a send has a 10 s deadline), and dropping 1 GiB of records takes
//     far longer than that at any rate the service can accept. A head
//     this process appended (Pos > 0) is safe to keep forever: if its
//     create is dropped, the subject's last sequence no longer matches
//     and the append is refused.
//
// # Idempotent sends
//
// A send with a nonce carries Nats-Msg-Id = a hash of (channel, author,
// nonce); the stream's duplicate window (Config.Duplicates, default 10
// minutes) makes a retry through any process append nothing and return
// the original record, which Append decodes and returns (dup = true).
// The server checks the expected last subject sequence before the
// duplicate, so a retry needs a current head, as every append has.
// Beyond the window, the service's nonce check against the store applies.
//
// # The persisters' consumer
//
// One durable pull consumer (Config.Consumer, default "persister") is
// shared by every persister, with AckAll and MaxAckPending = MaxBatch
// (default 1000): at most one batch is out at a time across all of them,
// so batches are stored in stream order, and a batch not acknowledged
// within AckWait (default 30 s; a persister's write times out well before
// it) is handed out again, in order, before anything newer. Lag is the
// consumer's pending plus unacknowledged records, refreshed at most every
// LagRefresh (100 ms) so a send costs no extra round trip.
//
// # Reads
//
// Newest (the last record on either subject of a channel, a direct get
// on a wildcard subject) and Persisted (the consumer's ack floor) let a
// reader wait until the store has every change of a channel made so far
// before it reads the store (message.Reader): read-your-writes for edits
// and deletions, which the cache alone cannot give.
//
// ChangesSince reads the edits and deletions of some channels since a
// time (a gateway resume after a link node died replays them): one
// short-lived ephemeral consumer per 64 channels filtering on their
// change subjects, from that time, deleted afterwards; the results are
// merged in stream order.
//
// A Log is safe for concurrent use. It owns no goroutines; the NATS
// connection is the caller's.
package jetstream
