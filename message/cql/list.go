package cql

import (
	"context"
	"math"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/message"
)

// maxPage caps a history page whatever the caller asked for.
const maxPage = 1000

// How a page walks the buckets: bucket numbers are fetched bucketPage at
// a time (a page of history rarely spans more; a long walk fetches the
// next ones as it goes); the first bucket is read alone, then, while the
// page is short, the next 2, 4, then up to maxWindow buckets at once.
const (
	bucketPage = 32
	maxWindow  = 8
)

const (
	stmtBucketsDown = `SELECT bucket FROM message_buckets WHERE channel_id = ? AND bucket <= ?`
	stmtBucketsUp   = `SELECT bucket FROM message_buckets WHERE channel_id = ? AND bucket >= ? ORDER BY bucket ASC`
	stmtPageDown    = `SELECT ` + msgColumns + ` FROM messages WHERE channel_id = ? AND bucket = ? AND id <= ? LIMIT ?`
	stmtPageUp      = `SELECT ` + msgColumns + ` FROM messages WHERE channel_id = ? AND bucket = ? AND id >= ? ORDER BY id ASC LIMIT ?`
)

// List implements message.Store. More than one cursor is Invalid; Limit is
// clamped to 1..1000. See doc.go for how a page walks the buckets.
func (s *Store) List(ctx context.Context, channelID uint64, q message.Query) ([]message.Message, error) {
	const op = "message/cql.List"
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

	var page []message.Message
	var err error
	switch {
	case q.After != 0:
		if q.After == math.MaxUint64 {
			break // nothing comes after it
		}
		page, err = s.up(ctx, channelID, q.After+1, limit)
		slices.Reverse(page)
	case q.Around != 0:
		if page, err = s.up(ctx, channelID, q.Around, limit/2); err == nil {
			slices.Reverse(page)
			var older []message.Message
			older, err = s.down(ctx, channelID, q.Around, limit-limit/2)
			page = append(page, older...)
		}
	default: // Before, or the latest when it is 0
		page, err = s.down(ctx, channelID, q.Before, limit)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	if page == nil {
		page = []message.Message{}
	}
	return page, nil
}

// down returns up to n messages with ID < before (any ID if before is 0),
// newest first, walking the channel's buckets from the one of before down
// to its first.
func (s *Store) down(ctx context.Context, channelID, before uint64, n int) ([]message.Message, error) {
	if n == 0 || before == 1 {
		return nil, nil
	}
	upper := uint64(math.MaxInt64) // inclusive
	if before != 0 {
		upper = min(before-1, upper)
	}
	return s.walk(ctx, channelID, stmtBucketsDown, stmtPageDown, upper, n)
}

// up returns up to n messages with ID >= from, oldest first, walking the
// channel's buckets from the one of from up to its last.
func (s *Store) up(ctx context.Context, channelID, from uint64, n int) ([]message.Message, error) {
	if n == 0 || from > math.MaxInt64 {
		return nil, nil
	}
	return s.walk(ctx, channelID, stmtBucketsUp, stmtPageUp, from, n)
}

// walk reads the channel's buckets with stmtBuckets, starting at the
// bucket of bound and going away from it, and from each bucket the
// messages stmtPage selects with bound, until it has n messages or runs
// out of buckets. Buckets and the IDs in them are in the same order, so
// the pages of successive buckets join into one ordered page.
//
// A window of buckets is read in parallel, each read limited to what the
// page still lacks, so a window can read up to window-1 bucket pages it
// then drops; the window grows only while the buckets come up short.
func (s *Store) walk(ctx context.Context, channelID uint64, stmtBuckets, stmtPage string, bound uint64, n int) ([]message.Message, error) {
	bq := s.session.ContextQuery(ctx, stmtBuckets, nil).Bind(channelID, Bucket(bound))
	defer bq.Release()
	bq.PageSize(bucketPage)
	buckets := bq.Iter()
	var page []message.Message
	window := make([]int32, 0, maxWindow)
	for size := 1; len(page) < n; size = min(2*size, maxWindow) {
		window = window[:0]
		for b := int32(0); len(window) < size && buckets.Scan(&b); {
			window = append(window, b)
		}
		if len(window) == 0 {
			break
		}
		pages := make([][]message.Message, len(window))
		g, gctx := errgroup.WithContext(ctx)
		for i, b := range window {
			g.Go(func() (err error) {
				q := s.session.ContextQuery(gctx, stmtPage, nil).Bind(channelID, b, bound, n-len(page))
				defer q.Release()
				pages[i], err = scan(q.Iter(), channelID, nil)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			_ = buckets.Close()
			return nil, err
		}
		for _, p := range pages {
			page = append(page, p[:min(len(p), n-len(page))]...)
		}
	}
	return page, buckets.Close()
}
