package message

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/singleflight"

	guildhall "github.com/guildhall/guildhall"
)

// Reader reads history with permission checks. It needs only the shared
// store and the shared cache, so any role that serves history (the REST
// edge) can have one without running the message service.
//
// Read-your-writes: a message is readable as soon as its send is acked,
// before the persister stored it, because the service puts it in the
// cache first and the Reader merges the cache's entries with what the
// store returns (deduplicated by ID, the cache's copy winning unless the
// store's was edited later). "Latest N" is served from the cache alone
// when its window is complete and holds N; a miss fills the window from
// the store, and concurrent misses for one channel share one store
// query. A cache error counts as a miss: with Redis down, reads go to the
// store (and then see only persisted messages).
//
// Before it reads the store, a Reader waits (up to a couple of seconds)
// until the persister has stored the channel's newest change, so that the
// store has every edit and deletion acked so far: the cache keeps no
// tombstones, so a deleted message could otherwise come back from the
// store. If the persister is slower than that, reads merge what the store
// has with the cache, which may show a message deleted moments ago.
type Reader struct {
	store  Store
	access Access
	cache  Cache
	log    Log
	fills  singleflight.Group
}

// fillSize is how many messages a cache miss reads from the store to
// fill the channel's window: a whole page of the largest size.
const fillSize = MaxPage

// NewReader returns a Reader over store and cache. cache may be nil;
// then, if log is not nil, a read first waits (up to a couple of seconds)
// until the persister has stored the channel's newest message, which
// keeps read-your-writes without a cache at the cost of two log requests
// per read. With neither, reads see what is persisted.
func NewReader(store Store, access Access, cache Cache, log Log) *Reader {
	return &Reader{store: store, access: access, cache: cache, log: log}
}

// History returns a page of a channel's messages, newest first.
func (r *Reader) History(ctx context.Context, actorID, channelID uint64, q Query) ([]Message, error) {
	const op = "message.History"
	if q.Limit == 0 {
		q.Limit = DefaultPage
	}
	if q.Limit < 1 || q.Limit > MaxPage {
		return nil, guildhall.E(op, guildhall.Invalid, "limit must be 1 to %d", MaxPage)
	}
	set := 0
	for _, c := range []uint64{q.Before, q.After, q.Around} {
		if c != 0 {
			set++
		}
	}
	if set > 1 {
		return nil, guildhall.E(op, guildhall.Invalid, "give at most one of before, after and around")
	}
	if _, err := r.access.CanRead(ctx, actorID, channelID); err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	list, err := r.list(ctx, channelID, q)
	return list, guildhall.Wrap(op, err)
}

// list is History without the checks.
func (r *Reader) list(ctx context.Context, channelID uint64, q Query) ([]Message, error) {
	if r.cache == nil {
		if err := r.awaitPersisted(ctx, channelID); err != nil {
			return nil, err
		}
		return r.store.List(ctx, channelID, q)
	}
	latest := q.Before == 0 && q.After == 0 && q.Around == 0
	recent, complete, err := r.cache.Latest(ctx, channelID, fillSize)
	if err != nil {
		return r.store.List(ctx, channelID, q) // a cache error is a miss
	}
	if latest && complete && len(recent) >= q.Limit {
		return recent[:q.Limit], nil
	}
	// The store read comes after the persister caught up with the
	// channel, so it has every edit and deletion made so far (the cache
	// holds no tombstones); if the persister is stuck, the merge with the
	// cache still shows every acked message.
	if err := r.awaitPersisted(ctx, channelID); err != nil {
		return merge(q, nil, recent), nil
	}
	var stored []Message
	if latest && q.Limit <= fillSize {
		stored, err = r.fill(ctx, channelID)
	} else {
		stored, err = r.store.List(ctx, channelID, q)
	}
	if err != nil {
		return nil, err
	}
	return merge(q, stored, recent), nil
}

// fill reads the channel's newest messages from the store and fills the
// cache with them; concurrent calls for one channel share one read.
func (r *Reader) fill(ctx context.Context, channelID uint64) ([]Message, error) {
	v, err, _ := r.fills.Do(fmt.Sprint(channelID), func() (any, error) {
		page, err := r.store.List(ctx, channelID, Query{Limit: fillSize})
		if err != nil {
			return nil, err
		}
		_ = r.cache.Fill(ctx, channelID, page) // a cache error costs only the next read
		return page, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]Message), nil
}

// persistWait bounds how long awaitPersisted waits (a variable for
// tests only).
var persistWait = 2 * time.Second

// awaitPersisted waits until the persister has stored the channel's
// newest change in the log, for at most persistWait; after that the
// caller reads what there is. Without a log it returns at once.
func (r *Reader) awaitPersisted(ctx context.Context, channelID uint64) error {
	if r.log == nil {
		return nil
	}
	pos, err := r.log.Newest(ctx, channelID)
	if err != nil || pos == 0 {
		return err // none in the log: the store has everything
	}
	deadline := time.Now().Add(persistWait)
	for {
		done, err := r.log.Persisted(ctx)
		if err != nil || done >= pos || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// get finds one message: in the cache first (it may not be persisted
// yet, and has the newest edit), then in the store.
func (r *Reader) get(ctx context.Context, channelID, id uint64) (Message, error) {
	if r.cache != nil {
		if recent, _, err := r.cache.Latest(ctx, channelID, fillSize); err == nil {
			for _, m := range recent {
				if m.ID == id {
					return m, nil
				}
			}
		}
	}
	return r.store.Get(ctx, channelID, id)
}

// merge joins a page read from the store for q with recent messages from
// the cache and answers q from the union: deduplicated by ID (the later
// edit wins, the cache on a tie), bounded by q's cursor, newest first.
func merge(q Query, stored, recent []Message) []Message {
	byID := make(map[uint64]Message, len(stored)+len(recent))
	for _, m := range stored {
		byID[m.ID] = m
	}
	for _, m := range recent {
		if old, ok := byID[m.ID]; ok && old.EditedAt.After(m.EditedAt) {
			continue
		}
		byID[m.ID] = m
	}
	all := make([]Message, 0, len(byID))
	for _, m := range byID {
		all = append(all, m)
	}
	slices.SortFunc(all, func(a, b Message) int { return cmpID(b.ID, a.ID) }) // newest first
	// Every message of the store's page is in the answer unless the page
	// was cut short by q.Limit on the far side; the cache's are added
	// where they fall within the cursor's bounds.
	switch {
	case q.Before != 0:
		return newest(filter(all, func(id uint64) bool { return id < q.Before }), q.Limit)
	case q.After != 0:
		return oldest(filter(all, func(id uint64) bool { return id > q.After }), q.Limit)
	case q.Around != 0:
		up := oldest(filter(all, func(id uint64) bool { return id >= q.Around }), q.Limit/2)
		down := newest(filter(all, func(id uint64) bool { return id < q.Around }), q.Limit-q.Limit/2)
		return append(up, down...)
	default:
		return newest(all, q.Limit)
	}
}

func cmpID(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func filter(desc []Message, keep func(id uint64) bool) []Message {
	out := desc[:0:0]
	for _, m := range desc {
		if keep(m.ID) {
			out = append(out, m)
		}
	}
	return out
}

// newest is the first n of desc (newest first).
func newest(desc []Message, n int) []Message {
	if len(desc) > n {
		desc = desc[:n]
	}
	return desc
}

// oldest is the last n of desc, still newest first.
func oldest(desc []Message, n int) []Message {
	if len(desc) > n {
		desc = desc[len(desc)-n:]
	}
	return desc
}

// Recent answers what read states need of messages (ReadMessages) for
// messages that may not be persisted yet: Get waits until the persister
// has stored the channel's newest change (so a deletion just made is
// seen), then looks in the cache and the store; Last is
// the channel's head in the log, or the store's when the log holds none.
type Recent struct{ r *Reader }

var _ ReadMessages = Recent{}

// Recent returns r's Recent view (no permission checks: for services).
func (r *Reader) Recent() Recent { return Recent{r} }

// Get implements ReadMessages.
func (x Recent) Get(ctx context.Context, channelID, id uint64) (Message, error) {
	if err := x.r.awaitPersisted(ctx, channelID); err != nil {
		return Message{}, err
	}
	return x.r.get(ctx, channelID, id)
}

// Last implements ReadMessages.
func (x Recent) Last(ctx context.Context, channelID uint64) (seq, id uint64, err error) {
	if x.r.log != nil {
		h, ok, err := x.r.log.Head(ctx, channelID)
		if err != nil || ok {
			return h.Seq, h.ID, err
		}
	}
	return x.r.store.Last(ctx, channelID)
}
