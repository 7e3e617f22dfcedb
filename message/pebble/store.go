package pebble

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/internal/pebblekv"
	"github.com/guildhall/guildhall/message"
)

// maxPage caps a history page whatever the caller asked for.
const maxPage = 1000

// Store is a message.Store on a Pebble database.
type Store struct {
	db *pebbledb.DB

	// locks serialize the writes to one channel, each from its first
	// check to its commit; see lock.
	locks [64]sync.Mutex
}

var _ message.Store = (*Store)(nil)

// New returns a Store that keeps its data in db under the "g/" prefix. The
// caller opens and closes db.
func New(db *pebbledb.DB) *Store {
	return &Store{db: db}
}

// lock returns the lock of channelID. Snowflake IDs differ mostly in their
// high bits, so they are mixed (Fibonacci hashing) before picking one.
func (s *Store) lock(channelID uint64) *sync.Mutex {
	return &s.locks[s.lockIndex(channelID)]
}

func (s *Store) lockIndex(channelID uint64) int {
	return int((channelID * 0x9e3779b97f4a7c15) >> 58)
}

// Insert implements message.Store. Besides a taken seq, a taken message ID
// and a nonce the author already used in the channel are Conflicts. A zero
// ID or seq is Invalid.
func (s *Store) Insert(_ context.Context, m message.Message) error {
	const op = "message/pebble.Insert"
	if m.ID == 0 || m.Seq == 0 {
		return guildhall.E(op, guildhall.Invalid, "message needs an ID and a seq")
	}
	mu := s.lock(m.ChannelID)
	mu.Lock()
	defer mu.Unlock()
	sk := seqKey(m.ChannelID, m.Seq)
	if ok, err := pebblekv.Has(s.db, sk); err != nil {
		return guildhall.Wrap(op, err)
	} else if ok {
		return guildhall.E(op, guildhall.Conflict, "seq %d already taken", m.Seq)
	}
	mk := msgKey(m.ChannelID, m.ID)
	if ok, err := pebblekv.Has(s.db, mk); err != nil {
		return guildhall.Wrap(op, err)
	} else if ok {
		return guildhall.E(op, guildhall.Conflict, "message ID taken")
	}
	var nk []byte
	if m.Nonce != "" {
		nk = nonceKey(m.ChannelID, m.AuthorID, m.Nonce)
		if ok, err := pebblekv.Has(s.db, nk); err != nil {
			return guildhall.Wrap(op, err)
		} else if ok {
			return guildhall.E(op, guildhall.Conflict, "nonce already used")
		}
	}
	last, _, err := pebblekv.Get(s.db, lastKey(m.ChannelID), pebblekv.DecodeUint64)
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	if m.Seq > 1 {
		prev, ok, err := pebblekv.Get(s.db, seqKey(m.ChannelID, m.Seq-1), pebblekv.DecodeUint64)
		if err != nil {
			return guildhall.Wrap(op, err)
		}
		if ok && m.ID <= prev {
			return guildhall.E(op, guildhall.Conflict, "message ID %d is not above the ID of seq %d", m.ID, m.Seq-1)
		}
	}

	b := s.db.NewBatch()
	defer b.Close()
	id := pebblekv.EncodeUint64(m.ID)
	set(b, mk, encodeMessage(m))
	set(b, sk, id)
	if m.Seq > last {
		set(b, lastKey(m.ChannelID), pebblekv.EncodeUint64(m.Seq))
	}
	if nk != nil {
		set(b, nk, id)
	}
	return guildhall.Wrap(op, b.Commit(pebbledb.Sync))
}

// LastSeq implements message.Store. Deleting a message does not lower it.
func (s *Store) LastSeq(_ context.Context, channelID uint64) (uint64, error) {
	const op = "message/pebble.LastSeq"
	last, _, err := pebblekv.Get(s.db, lastKey(channelID), pebblekv.DecodeUint64)
	return last, guildhall.Wrap(op, err)
}

// Last implements message.Store.
func (s *Store) Last(_ context.Context, channelID uint64) (uint64, uint64, error) {
	const op = "message/pebble.Last"
	snap := s.db.NewSnapshot()
	defer snap.Close()
	last, _, err := pebblekv.Get(snap, lastKey(channelID), pebblekv.DecodeUint64)
	if err != nil || last == 0 {
		return 0, 0, guildhall.Wrap(op, err)
	}
	id, _, err := pebblekv.Get(snap, seqKey(channelID, last), pebblekv.DecodeUint64)
	return last, id, guildhall.Wrap(op, err)
}

// ByNonce implements message.Store.
func (s *Store) ByNonce(_ context.Context, channelID, authorID uint64, nonce string) (message.Message, bool, error) {
	const op = "message/pebble.ByNonce"
	if nonce == "" {
		return message.Message{}, false, nil
	}
	// Insert and Delete write the nonce entry and the record together, so
	// an entry whose record is gone only means a Delete ran in between.
	id, ok, err := pebblekv.Get(s.db, nonceKey(channelID, authorID, nonce), pebblekv.DecodeUint64)
	if err != nil || !ok {
		return message.Message{}, false, guildhall.Wrap(op, err)
	}
	m, ok, err := s.get(channelID, id)
	return m, ok, guildhall.Wrap(op, err)
}

// Get implements message.Store.
func (s *Store) Get(_ context.Context, channelID, id uint64) (message.Message, error) {
	const op = "message/pebble.Get"
	m, ok, err := s.get(channelID, id)
	if err != nil {
		return message.Message{}, guildhall.Wrap(op, err)
	}
	if !ok {
		return message.Message{}, guildhall.E(op, guildhall.NotFound, "unknown message")
	}
	return m, nil
}

func (s *Store) get(channelID, id uint64) (message.Message, bool, error) {
	return pebblekv.Get(s.db, msgKey(channelID, id), func(v []byte) (message.Message, error) {
		return decodeMessage(channelID, id, v)
	})
}

// Update implements message.Store: only Content and EditedAt change.
func (s *Store) Update(_ context.Context, m message.Message) error {
	const op = "message/pebble.Update"
	mu := s.lock(m.ChannelID)
	mu.Lock()
	defer mu.Unlock()
	old, ok, err := s.get(m.ChannelID, m.ID)
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown message")
	}
	old.Content, old.EditedAt = m.Content, m.EditedAt
	return guildhall.Wrap(op, s.db.Set(msgKey(m.ChannelID, m.ID), encodeMessage(old), pebbledb.Sync))
}

// Delete implements message.Store. The message's seq stays taken; its
// nonce is freed.
func (s *Store) Delete(_ context.Context, channelID, id uint64) error {
	const op = "message/pebble.Delete"
	mu := s.lock(channelID)
	mu.Lock()
	defer mu.Unlock()
	m, ok, err := s.get(channelID, id)
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown message")
	}
	b := s.db.NewBatch()
	defer b.Close()
	del(b, msgKey(channelID, id))
	if m.Nonce != "" {
		del(b, nonceKey(channelID, m.AuthorID, m.Nonce))
	}
	return guildhall.Wrap(op, b.Commit(pebbledb.Sync))
}

// List implements message.Store. More than one cursor is Invalid; Limit is
// clamped to 1..1000.
func (s *Store) List(_ context.Context, channelID uint64, q message.Query) ([]message.Message, error) {
	const op = "message/pebble.List"
	cursors := 0
	for _, c := range []uint64{q.Before, q.After, q.Around} {
		if c != 0 {
			cursors++
		}
	}
	if cursors > 1 {
		return nil, guildhall.E(op, guildhall.Invalid, "at most one of before, after and around")
	}
	limit := min(max(q.Limit, 1), maxPage)

	it, err := s.db.NewIter(&pebbledb.IterOptions{
		LowerBound: historyLower(channelID),
		UpperBound: historyUpper(channelID),
	})
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	h := history{it: it, channelID: channelID, page: make([]message.Message, 0, limit)}
	switch {
	case q.After == math.MaxUint64:
		// nothing can come after it
	case q.After != 0:
		h.forward(msgKey(channelID, q.After+1), limit)
		slices.Reverse(h.page)
	case q.Around != 0:
		h.forward(msgKey(channelID, q.Around), limit/2)
		slices.Reverse(h.page)
		h.backward(msgKey(channelID, q.Around), limit-limit/2)
	case q.Before != 0:
		h.backward(msgKey(channelID, q.Before), limit)
	default:
		h.backward(nil, limit)
	}
	if err := errors.Join(h.err, it.Error(), it.Close()); err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	return h.page, nil
}

// history collects a page from an iterator bounded to one channel.
type history struct {
	it        *pebbledb.Iterator
	channelID uint64
	page      []message.Message
	err       error
}

// forward appends up to n messages from the first with key >= from, in
// ascending ID order.
func (h *history) forward(from []byte, n int) {
	if n == 0 {
		return
	}
	for ok := h.it.SeekGE(from); ok && n > 0 && h.add(); ok = h.it.Next() {
		n--
	}
}

// backward appends up to n messages before the key before (before the end
// of the channel if nil), in descending ID order.
func (h *history) backward(before []byte, n int) {
	if n == 0 {
		return
	}
	var ok bool
	if before == nil {
		ok = h.it.Last()
	} else {
		ok = h.it.SeekLT(before)
	}
	for ; ok && n > 0 && h.add(); ok = h.it.Prev() {
		n--
	}
}

// add appends the message under the iterator; false if it could not.
func (h *history) add() bool {
	v, err := h.it.ValueAndErr()
	if err != nil {
		h.err = err
		return false
	}
	m, err := decodeMessage(h.channelID, pebblekv.LastID(h.it.Key()), v)
	if err != nil {
		h.err = err
		return false
	}
	h.page = append(h.page, m)
	return true
}

// set and del add to a batch. On a batch that is not indexed they cannot
// fail.
func set(b *pebbledb.Batch, k, v []byte) { _ = b.Set(k, v, nil) }
func del(b *pebbledb.Batch, k []byte)    { _ = b.Delete(k, nil) }

// Persist implements message.Store: the whole batch is one indexed
// Pebble batch, committed with one sync.
func (s *Store) Persist(_ context.Context, changes []message.Change) error {
	const op = "message/pebble.Persist"
	if len(changes) == 0 {
		return nil
	}
	for _, c := range changes {
		if c.Message.ID == 0 || (c.Kind == message.ChangeCreate && c.Message.Seq == 0) {
			return guildhall.E(op, guildhall.Invalid, "change %d of message %d needs an ID and a seq", c.Kind, c.Message.ID)
		}
	}
	// Lock every channel of the batch, in lock order, so that an Insert,
	// Update or Delete of the same channels does not interleave.
	var held []int
	for _, c := range changes {
		i := s.lockIndex(c.Message.ChannelID)
		if !slices.Contains(held, i) {
			held = append(held, i)
		}
	}
	slices.Sort(held)
	for _, i := range held {
		s.locks[i].Lock()
	}
	defer func() {
		for _, i := range held {
			s.locks[i].Unlock()
		}
	}()

	b := s.db.NewIndexedBatch()
	defer b.Close()
	for _, c := range changes {
		m := c.Message
		switch c.Kind {
		case message.ChangeCreate:
			id := pebblekv.EncodeUint64(m.ID)
			if old, ok, err := s.getFrom(b, m.ChannelID, m.ID); err != nil {
				return guildhall.Wrap(op, err)
			} else if ok && old.Nonce != "" && old.Nonce != m.Nonce {
				del(b, nonceKey(m.ChannelID, old.AuthorID, old.Nonce))
			}
			set(b, msgKey(m.ChannelID, m.ID), encodeMessage(m))
			set(b, seqKey(m.ChannelID, m.Seq), id)
			last, _, err := pebblekv.Get(b, lastKey(m.ChannelID), pebblekv.DecodeUint64)
			if err != nil {
				return guildhall.Wrap(op, err)
			}
			if m.Seq > last {
				set(b, lastKey(m.ChannelID), pebblekv.EncodeUint64(m.Seq))
			}
			if m.Nonce != "" {
				set(b, nonceKey(m.ChannelID, m.AuthorID, m.Nonce), id)
			}
		case message.ChangeEdit:
			old, ok, err := s.getFrom(b, m.ChannelID, m.ID)
			if err != nil {
				return guildhall.Wrap(op, err)
			}
			if !ok {
				continue // deleted since: nothing to edit
			}
			old.Content, old.EditedAt = m.Content, m.EditedAt
			set(b, msgKey(m.ChannelID, m.ID), encodeMessage(old))
		case message.ChangeDelete:
			old, ok, err := s.getFrom(b, m.ChannelID, m.ID)
			if err != nil {
				return guildhall.Wrap(op, err)
			}
			if !ok {
				continue
			}
			del(b, msgKey(m.ChannelID, m.ID))
			if old.Nonce != "" {
				del(b, nonceKey(m.ChannelID, old.AuthorID, old.Nonce))
			}
		default:
			return guildhall.E(op, guildhall.Invalid, "unknown change kind %d", c.Kind)
		}
	}
	return guildhall.Wrap(op, b.Commit(pebbledb.Sync))
}

func (s *Store) getFrom(r pebbledb.Reader, channelID, id uint64) (message.Message, bool, error) {
	return pebblekv.Get(r, msgKey(channelID, id), func(v []byte) (message.Message, error) {
		return decodeMessage(channelID, id, v)
	})
}
