package pebble

import (
	"context"
	"errors"
	"sync"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/audit"
	"github.com/guildhall/guildhall/internal/pebblekv"
)

// MaxScan is how many entries one List looks at, matching or not.
const MaxScan = 10_000

// pruneBatch is how many entries Prune deletes per committed batch.
const pruneBatch = 1000

// Store is an audit.Store on a Pebble database.
type Store struct {
	db *pebbledb.DB

	// mu serializes writes: Append from its check to its commit, Prune
	// one batch at a time.
	mu sync.Mutex
}

var _ audit.Store = (*Store)(nil)

// New returns a Store that keeps its data in db under the "a/" prefix. The
// caller opens and closes db.
func New(db *pebbledb.DB) *Store {
	return &Store{db: db}
}

// Append implements audit.Store.
func (s *Store) Append(_ context.Context, e audit.Entry) error {
	const op = "audit/pebble.Append"
	if e.ID == 0 {
		return guildhall.E(op, guildhall.Invalid, "entry without ID")
	}
	v := encodeEntry(e)
	k := pebblekv.Key(pEntry, e.ServerID, e.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, err := pebblekv.Has(s.db, k); err != nil {
		return guildhall.Wrap(op, err)
	} else if ok {
		return guildhall.E(op, guildhall.Conflict, "entry ID taken")
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.Set(k, v, nil)
	_ = b.Set(timeKey(e.CreatedAt, e.ServerID, e.ID), nil, nil)
	return guildhall.Wrap(op, b.Commit(pebbledb.Sync))
}

// List implements audit.Store. It looks at no more than MaxScan entries;
// see the package documentation.
func (s *Store) List(_ context.Context, serverID uint64, q audit.Query) ([]audit.Entry, error) {
	const op = "audit/pebble.List"
	limit := q.Limit
	switch {
	case limit < 1:
		limit = audit.DefaultLimit
	case limit > audit.MaxLimit:
		limit = audit.MaxLimit
	}
	lower := pebblekv.Key(pEntry, serverID)
	upper := pebblekv.PrefixEnd(lower)
	if q.Before != 0 {
		upper = pebblekv.Key(pEntry, serverID, q.Before)
	}
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	entries := make([]audit.Entry, 0, min(limit, 16))
	scanned := 0
	for valid := it.Last(); valid && len(entries) < limit && scanned < MaxScan; valid = it.Prev() {
		scanned++
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, guildhall.Wrap(op, errors.Join(err, it.Close()))
		}
		e, ok, err := decodeEntry(serverID, pebblekv.LastID(it.Key()), v, q)
		if err != nil {
			return nil, guildhall.Wrap(op, errors.Join(err, it.Close()))
		}
		if ok {
			entries = append(entries, e)
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	return entries, nil
}

// Prune implements audit.Store. It commits a batch per pruneBatch entries
// and checks ctx between batches.
func (s *Store) Prune(ctx context.Context, olderThan time.Time) (int, error) {
	const op = "audit/pebble.Prune"
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, guildhall.Wrap(op, err)
		}
		n, err := s.pruneSome(olderThan)
		total += n
		if err != nil {
			return total, guildhall.Wrap(op, err)
		}
		if n < pruneBatch {
			return total, nil
		}
	}
}

// pruneSome deletes up to pruneBatch of the oldest entries created before
// olderThan and returns how many it deleted.
func (s *Store) pruneSome(olderThan time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, err := s.db.NewIter(&pebbledb.IterOptions{
		LowerBound: []byte(pTime),
		UpperBound: timeKey(olderThan, 0, 0),
	})
	if err != nil {
		return 0, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	for valid := it.First(); valid && n < pruneBatch; valid = it.Next() {
		serverID, id, err := timeKeyIDs(it.Key())
		if err != nil {
			return 0, errors.Join(err, it.Close())
		}
		_ = b.Delete(it.Key(), nil)
		_ = b.Delete(pebblekv.Key(pEntry, serverID, id), nil)
		n++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	if err := b.Commit(pebbledb.Sync); err != nil {
		return 0, err
	}
	return n, nil
}
