package jetstream

import (
	"context"
	"slices"
	"time"

	js "github.com/nats-io/nats.go/jetstream"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/message"
)

// changesChunk is how many channels' change subjects one ordered
// consumer filters on.
const changesChunk = 64

// changesWait bounds one fetch while reading changes.
const changesWait = 2 * time.Second

// ChangesSince returns the edits and deletions (never creates) made in
// the channels at or after since, in log order, at most max of them
// (the first max when there are more). It reads the stream's change
// subjects with short-lived ordered consumers: what the stream no longer
// holds (trimmed, so persisted long ago) is not returned. A record
// appended while it reads may or may not be included.
func (l *Log) ChangesSince(ctx context.Context, channelIDs []uint64, since time.Time, max int) ([]message.Change, error) {
	const op = "message/jetstream.ChangesSince"
	if max <= 0 || len(channelIDs) == 0 {
		return nil, nil
	}
	var recs []rec
	for chunk := range slices.Chunk(channelIDs, changesChunk) {
		subjects := make([]string, len(chunk))
		for i, ch := range chunk {
			subjects[i] = bus.MessageLogChange(ch)
		}
		start := since
		got, err := l.readChanges(ctx, subjects, start, max)
		if err != nil {
			return nil, guildhall.Wrap(op, err)
		}
		for _, r := range got {
			recs = append(recs, rec{r.seq, r.c})
		}
	}
	slices.SortFunc(recs, func(a, b rec) int { return cmpSeq(a.seq, b.seq) })
	if len(recs) > max {
		recs = recs[:max]
	}
	out := make([]message.Change, len(recs))
	for i, r := range recs {
		out[i] = r.c
	}
	return out, nil
}

type rec struct {
	seq uint64 // stream sequence
	c   message.Change
}

// readChanges reads, with an ephemeral consumer deleted afterwards, at
// most max edits and deletions on subjects from start.
func (l *Log) readChanges(ctx context.Context, subjects []string, start time.Time, max int) ([]rec, error) {
	const op = "message/jetstream.readChanges"
	cons, err := l.stream.CreateConsumer(ctx, js.ConsumerConfig{
		FilterSubjects:    subjects,
		DeliverPolicy:     js.DeliverByStartTimePolicy,
		OptStartTime:      &start,
		AckPolicy:         js.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute, // if the delete below is lost
	})
	if err != nil {
		return nil, unavailable(op, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), changesWait)
		defer cancel()
		_ = l.stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	var out []rec
	pending := cons.CachedInfo().NumPending
	for pending > 0 && len(out) < max {
		wait := changesWait
		if d, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(d))
		}
		if wait <= 0 {
			return nil, guildhall.E(op, guildhall.Unavailable, "message log: changes not read in time")
		}
		batch, err := cons.Fetch(int(min(pending, 256)), js.FetchMaxWait(wait))
		if err != nil {
			return nil, unavailable(op, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return nil, guildhall.Wrap(op, err)
			}
			pending = md.NumPending
			c, err := decode(m.Data())
			if err != nil {
				return nil, guildhall.Wrap(op, err)
			}
			if c.Kind != message.ChangeCreate && len(out) < max {
				out = append(out, rec{md.Sequence.Stream, c})
			}
		}
		if err := batch.Error(); err != nil {
			return nil, unavailable(op, err)
		}
		if n == 0 {
			return nil, guildhall.E(op, guildhall.Unavailable, "message log: changes not read in time")
		}
	}
	return out, nil
}
