package cql

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"
	"golang.org/x/sync/errgroup"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/audit"
)

// MaxScan is how many entries one List looks at, matching or not.
const MaxScan = 10_000

const (
	// bucketShift makes the bucket of an entry ID: id >> bucketShift. A
	// snowflake has its milliseconds above bit 22, so a bucket holds 2^31
	// ms of IDs, about 24.9 days. A power of two keeps each bucket on one
	// side of 2^63, so that within a bucket the bigint order of the IDs is
	// their uint64 order.
	bucketShift = 53
	// hourMS is the span of a partition of the creation-time index.
	hourMS = int64(time.Hour / time.Millisecond)
	// shards splits each hour of the creation-time index in as many
	// partitions, so that a busy hour is not one huge partition.
	shards = 16
	// scanPage is how many entries a filtered List reads per statement;
	// prunePage how many index rows Prune reads per page.
	scanPage  = 1000
	prunePage = 1000
	// pruneWorkers is how many deletions Prune runs at once.
	pruneWorkers = 16
)

const (
	stmtInsert = `INSERT INTO audit_entries (server_id, bucket, id, actor_id, action, target_id, changes, reason, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`
	stmtIndex      = `INSERT INTO audit_by_time (hour, shard, created_at, server_id, id) VALUES (?, ?, ?, ?, ?)`
	stmtBucketMark = `INSERT INTO audit_buckets (server_id, bucket) VALUES (?, ?)`
	stmtHourMark   = `INSERT INTO audit_hours (part, hour) VALUES (0, ?)`

	stmtBuckets = `SELECT bucket FROM audit_buckets WHERE server_id = ? AND bucket <= ?`
	stmtPage    = `SELECT id, actor_id, action, target_id, changes, reason, created_at FROM audit_entries
		WHERE server_id = ? AND bucket = ? AND id <= ? LIMIT ?`

	stmtHours   = `SELECT hour FROM audit_hours WHERE part = 0 AND hour <= ?`
	stmtIndexed = `SELECT created_at, server_id, id FROM audit_by_time WHERE hour = ? AND shard = ? AND created_at < ?`
	stmtDelete  = `DELETE FROM audit_entries WHERE server_id = ? AND bucket = ? AND id = ? IF created_at = ?`
	stmtUnindex = `DELETE FROM audit_by_time WHERE hour = ? AND shard = ? AND created_at = ? AND server_id = ? AND id = ?`
)

// Store is an audit.Store on a CQL keyspace migrated with Migrations. It
// keeps no state of its own: any number of Stores, in any number of
// processes, may share the keyspace.
type Store struct {
	session gocqlx.Session
}

var _ audit.Store = (*Store)(nil)

// New returns a Store on s, whose keyspace has Migrations applied under
// Component. The caller closes s.
func New(s gocqlx.Session) *Store {
	return &Store{session: s}
}

// Append implements audit.Store. It takes a lightweight transaction, so
// that an ID taken by any process is a Conflict; see doc.go.
func (s *Store) Append(ctx context.Context, e audit.Entry) error {
	const op = "audit/cql.Append"
	if e.ID == 0 {
		return guildhall.E(op, guildhall.Invalid, "entry without ID")
	}
	if !utf8.ValidString(string(e.Action)) {
		return guildhall.E(op, guildhall.Invalid, "action is not UTF-8")
	}
	if err := ctx.Err(); err != nil {
		return wrap(op, err)
	}
	created := e.CreatedAt.UnixMilli()
	bucket, hour := bucketOf(e.ID), floorDiv(created, hourMS)
	// The markers go first, so that the entry is listed as soon as it is
	// stored; they are idempotent, and harmless if the entry is not.
	b := s.session.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
	b.Query(stmtBucketMark, e.ServerID, bucket)
	b.Query(stmtHourMark, hour)
	if err := s.session.ExecuteBatch(b); err != nil {
		return wrap(op, err)
	}
	q := s.session.ContextQuery(ctx, stmtInsert, nil).
		Bind(e.ServerID, bucket, e.ID, e.ActorID, string(e.Action), e.TargetID, changes(e.Changes), e.Reason, created)
	q.SerialConsistency(gocql.LocalSerial)
	applied, err := q.ExecCASRelease()
	if err != nil {
		return wrap(op, err)
	}
	if !applied {
		return guildhall.E(op, guildhall.Conflict, "entry ID taken")
	}
	// The index row goes after the entry: written first, it could point
	// Prune at the entry of another Append with the same ID.
	ix := s.session.ContextQuery(context.WithoutCancel(ctx), stmtIndex, nil).
		Bind(hour, shardOf(e.ServerID, e.ID), created, e.ServerID, e.ID)
	ix.Idempotent(true)
	return wrap(op, ix.ExecRelease())
}

// List implements audit.Store. It looks at no more than MaxScan entries;
// see doc.go.
func (s *Store) List(ctx context.Context, serverID uint64, q audit.Query) ([]audit.Entry, error) {
	const op = "audit/cql.List"
	limit := q.Limit
	switch {
	case limit < 1:
		limit = audit.DefaultLimit
	case limit > audit.MaxLimit:
		limit = audit.MaxLimit
	}
	last := ^uint64(0) // the largest ID wanted
	if q.Before != 0 {
		if q.Before == 1 {
			return []audit.Entry{}, nil
		}
		last = q.Before - 1
	}
	var buckets []int
	if err := s.session.ContextQuery(ctx, stmtBuckets, nil).Bind(serverID, bucketOf(last)).SelectRelease(&buckets); err != nil {
		return nil, wrap(op, err)
	}
	filtered := q.ActorID != 0 || q.Action != ""
	entries := make([]audit.Entry, 0, min(limit, 16))
	scanned := 0
	for _, b := range buckets {
		// Within bucket b, from min(last, the bucket's largest ID) down.
		from := bucketEnd(b)
		if b == bucketOf(last) {
			from = last
		}
		for len(entries) < limit && scanned < MaxScan {
			n := limit - len(entries)
			if filtered {
				n = min(scanPage, MaxScan-scanned)
			}
			iter := s.session.ContextQuery(ctx, stmtPage, nil).Bind(serverID, b, from, n).Iter()
			rows, lastID := 0, uint64(0)
			var e audit.Entry
			var action string
			var cs []change
			var created int64
			for iter.Scan(&e.ID, &e.ActorID, &action, &e.TargetID, &cs, &e.Reason, &created) {
				rows++
				scanned++
				lastID = e.ID
				if (q.ActorID != 0 && e.ActorID != q.ActorID) || (q.Action != "" && action != string(q.Action)) {
					continue
				}
				e.ServerID, e.Action, e.Changes = serverID, audit.Action(action), fromChanges(cs)
				e.CreatedAt = time.UnixMilli(created).UTC()
				entries = append(entries, e)
				cs = nil
				if len(entries) == limit {
					break
				}
			}
			if err := iter.Close(); err != nil {
				return nil, wrap(op, err)
			}
			// A short page, or one that ends at the bottom of the
			// bucket, is the end of the bucket.
			if rows < n || lastID == bucketStart(b) {
				break
			}
			from = lastID - 1
		}
		if len(entries) == limit || scanned >= MaxScan {
			break
		}
	}
	return entries, nil
}

// Prune implements audit.Store: it walks the creation-time index of every
// hour that started before olderThan and deletes the entries created
// before it; see doc.go for the cost. It stops when ctx is done, returning
// what it deleted so far with the context's error.
func (s *Store) Prune(ctx context.Context, olderThan time.Time) (int, error) {
	const op = "audit/cql.Prune"
	// Stored times are whole milliseconds: created < olderThan is
	// created < olderThan rounded up to the millisecond.
	bound := olderThan.UnixMilli()
	if olderThan.Nanosecond()%int(time.Millisecond) != 0 {
		bound++
	}
	var hours []int64
	if err := s.session.ContextQuery(ctx, stmtHours, nil).Bind(floorDiv(bound-1, hourMS)).SelectRelease(&hours); err != nil {
		return 0, wrap(op, err)
	}
	var deleted atomic.Int64
	for _, hour := range hours {
		for shard := range shards {
			if err := s.pruneShard(ctx, hour, shard, bound, &deleted); err != nil {
				return int(deleted.Load()), wrap(op, err)
			}
		}
	}
	return int(deleted.Load()), nil
}

// indexRow is a row of audit_by_time.
type indexRow struct {
	created      int64
	serverID, id uint64
}

// pruneShard deletes the entries of one partition of the index created
// before bound (Unix milliseconds), a page at a time, and adds how many it
// deleted to deleted.
func (s *Store) pruneShard(ctx context.Context, hour int64, shard int, bound int64, deleted *atomic.Int64) error {
	q := s.session.ContextQuery(ctx, stmtIndexed, nil).Bind(hour, shard, bound)
	q.PageSize(prunePage)
	iter := q.Iter()
	for {
		// One page of the index; iter fetches the next one as it goes.
		page := make([]indexRow, 0, prunePage)
		var r indexRow
		for len(page) < prunePage && iter.Scan(&r.created, &r.serverID, &r.id) {
			page = append(page, r)
		}
		if len(page) == 0 {
			return iter.Close()
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(err, iter.Close())
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(pruneWorkers)
		for _, r := range page {
			g.Go(func() error {
				ok, err := s.pruneOne(gctx, hour, shard, r)
				if ok {
					deleted.Add(1)
				}
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return errors.Join(err, iter.Close())
		}
	}
}

// pruneOne deletes the entry of an index row if it still has that creation
// time, then the index row. It reports whether it deleted the entry: not
// if another Prune, or its TTL, got there first.
func (s *Store) pruneOne(ctx context.Context, hour int64, shard int, r indexRow) (bool, error) {
	q := s.session.ContextQuery(ctx, stmtDelete, nil).Bind(r.serverID, bucketOf(r.id), r.id, r.created)
	q.SerialConsistency(gocql.LocalSerial)
	applied, err := q.ExecCASRelease()
	if err != nil {
		return false, err
	}
	u := s.session.ContextQuery(ctx, stmtUnindex, nil).Bind(hour, shard, r.created, r.serverID, r.id)
	u.Idempotent(true)
	return applied, u.ExecRelease()
}

// bucketOf is the bucket of an entry ID, 0 to 2047.
func bucketOf(id uint64) int { return int(id >> bucketShift) }

// bucketStart and bucketEnd are the smallest and largest IDs of bucket b.
func bucketStart(b int) uint64 { return uint64(b) << bucketShift }
func bucketEnd(b int) uint64   { return bucketStart(b) | (1<<bucketShift - 1) }

// shardOf spreads the entries of an hour over the index's partitions.
// Snowflakes made at a low rate have their low bits at 0, so the IDs are
// mixed (splitmix64's finalizer) rather than taken modulo.
func shardOf(serverID, id uint64) int {
	x := serverID ^ id
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return int((x ^ x>>31) % shards)
}

// floorDiv is a/b rounded down, for times before 1970 too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// change is an audit.Change as a (key, old, new) tuple of blobs: the
// values are display text, but nothing guarantees they are UTF-8, which a
// CQL text must be.
type change struct{ Key, Old, New []byte }

// changes is what Append binds for an entry's changes: null when there
// are none.
func changes(cs []audit.Change) []change {
	if len(cs) == 0 {
		return nil
	}
	out := make([]change, len(cs))
	for i, c := range cs {
		out[i] = change{[]byte(c.Key), []byte(c.Old), []byte(c.New)}
	}
	return out
}

// fromChanges is the inverse of changes.
func fromChanges(cs []change) []audit.Change {
	if len(cs) == 0 {
		return nil
	}
	out := make([]audit.Change, len(cs))
	for i, c := range cs {
		out[i] = audit.Change{Key: string(c.Key), Old: string(c.Old), New: string(c.New)}
	}
	return out
}
