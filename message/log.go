package message

import (
	"context"
	"errors"
	"time"
)

// Log is the durable, ordered log of accepted message changes (DESIGN.md
// §4 "Send"): a send is acked once its create is appended here, and the
// Persister copies the log into the Store afterwards. JetStream in every
// mode (message/jetstream).
//
// Positions are the log's own sequence numbers (not message seqs): they
// grow with every append to the log, in any channel.
type Log interface {
	// Head returns the channel's newest create still in the log; ok is
	// false if the log holds none (the channel never had a message, or
	// the log trimmed it, which it does only once the message is
	// persisted, so the Store's Last is then right).
	Head(ctx context.Context, channelID uint64) (h Head, ok bool, err error)
	// Append appends c durably and returns its position.
	//
	// For a ChangeCreate, expect is the position of the channel's newest
	// create as the caller last saw it (Head.Pos; 0 for "none in the
	// log"); if another create was appended since (another message
	// service process), Append appends nothing and fails with an error
	// for which errors.Is(err, ErrStaleHead) holds. This is what keeps
	// seqs gapless and unique across processes.
	//
	// dedupe, if not empty, makes the append idempotent within the log's
	// duplicate window: a later Append with the same key appends nothing
	// and returns dup = true with the change the first one appended.
	// expect is checked first, so a retry must come with a current head.
	// Edits and deletes are appended with expect and dedupe unused.
	Append(ctx context.Context, c Change, expect uint64, dedupe string) (pos uint64, orig Change, dup bool, err error)
	// Lag is how many changes the persister has not yet stored: appended
	// but not acknowledged. It may be a little out of date.
	Lag(ctx context.Context) (uint64, error)
	// Newest is the position of the channel's newest record of any kind
	// still in the log, 0 if none.
	Newest(ctx context.Context, channelID uint64) (uint64, error)
	// Persisted is the position up to which every change is stored (the
	// persisters' acknowledgement floor), exact at the time of the call.
	Persisted(ctx context.Context) (uint64, error)
}

// ErrStaleHead is the error Log.Append wraps when the channel's newest
// create is not the one the caller expected.
var ErrStaleHead = errors.New("message log: the channel's head moved")

// Head is where a channel stands: its newest seq, the ID of the message
// that took it, and that create's position in the log (0 when the head
// was read from the Store, the create no longer being in the log).
type Head struct {
	Seq, ID, Pos uint64
}

// LogSource is the persister's side of the Log: a shared, durable reader
// of the log. Any number of Persisters may read one LogSource; it hands
// out one batch at a time across all of them and redelivers a batch that
// was not acknowledged in time, so changes are stored in log order.
type LogSource interface {
	// Next waits up to wait for changes and returns at most max of them,
	// in log order, as soon as max are there or wait has passed (maybe
	// none). The batch must be acknowledged with Batch.Ack once it is
	// stored; until then (or until the source redelivers it) Next hands
	// out nothing newer.
	Next(ctx context.Context, max int, wait time.Duration) (Batch, error)
}

// Batch is a run of log changes handed to a persister.
type Batch struct {
	Changes []Change
	// Pending is how many changes were left in the log after this batch
	// when it was handed out, as far as the log knew: it may not count
	// the newest appends yet (for metrics, not for correctness).
	Pending uint64
	// Ack acknowledges the whole batch; nil for an empty one.
	Ack func(ctx context.Context) error
}
