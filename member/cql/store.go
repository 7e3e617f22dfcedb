package cql

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/member"
)

const (
	// maxPage caps a member or ban page whatever the caller asked for.
	maxPage = 1000
	// maxAttempts bounds a compare-and-set loop that keeps losing races.
	maxAttempts = 64
	// inChunk is the most keys one IN (...) query asks for.
	inChunk = 100
)

// Store is a member.Store on a CQL keyspace migrated with Migrations.
// Several processes may share one keyspace: every check-then-write is a
// lightweight transaction, never an in-process lock.
type Store struct {
	db gocqlx.Session
	// now is the clock for token TTLs, stale username claims and the
	// versions that order index writes.
	now func() time.Time
}

var _ member.Store = (*Store)(nil)

// New returns a Store on s, whose keyspace has Migrations applied under
// Component. The caller closes s.
func New(s gocqlx.Session) *Store {
	return &Store{db: s, now: time.Now}
}

// fold is the case-insensitive form of a username.
func fold(s string) string { return strings.ToLower(s) }

// checkIDs refuses IDs that do not fit in a CQL bigint. IDs are stored as
// int64(id), so that ID order is bigint order; snowflake IDs are 63 bits.
func checkIDs(op string, ids ...uint64) error {
	for _, id := range ids {
		if id > math.MaxInt64 {
			return guildhall.E(op, guildhall.Invalid, "ID %d out of range", id)
		}
	}
	return nil
}

// checkText refuses strings that a CQL text column cannot hold.
func checkText(op string, ss ...string) error {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return guildhall.E(op, guildhall.Invalid, "text is not valid UTF-8")
		}
	}
	return nil
}

// dbErr wraps a driver error. Timeouts and missing replicas are
// Unavailable: the caller may retry, and for a write the outcome is
// unknown. Anything else is Internal.
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var ge *guildhall.Error
	if errors.As(err, &ge) {
		return guildhall.Wrap(op, err)
	}
	var (
		wt *gocql.RequestErrWriteTimeout
		rt *gocql.RequestErrReadTimeout
		un *gocql.RequestErrUnavailable
		cu *gocql.RequestErrCASWriteUnknown
	)
	if errors.As(err, &wt) || errors.As(err, &rt) || errors.As(err, &un) || errors.As(err, &cu) ||
		errors.Is(err, gocql.ErrTimeoutNoResponse) || errors.Is(err, gocql.ErrNoConnections) ||
		errors.Is(err, gocql.ErrConnectionClosed) {
		return &guildhall.Error{Op: op, Kind: guildhall.Unavailable, Msg: "database unavailable, retry", Err: err}
	}
	return guildhall.Wrap(op, err)
}

// retry runs attempt until it reports done or fails, pausing a little
// longer after each lost race. It is the loop around a compare-and-set
// whose expected value went stale.
func retry(ctx context.Context, op string, attempt func() (done bool, err error)) error {
	for i := range maxAttempts {
		if i > 1 {
			d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(i-1, 5)))
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return guildhall.Wrap(op, ctx.Err())
			case <-t.C:
			}
		}
		done, err := attempt()
		if err != nil || done {
			return err
		}
	}
	return guildhall.E(op, guildhall.Unavailable, "too much contention, retry")
}

// micros is now in microseconds, the unit of CQL write timestamps.
func (s *Store) micros() int64 { return s.now().UnixMicro() }

// nextVersion is a version after prev: now, or prev+1 if the clock is
// behind it.
func (s *Store) nextVersion(prev int64) int64 { return max(s.micros(), prev+1) }

// get scans the first row of a query into dest and reports whether there
// was one.
func (s *Store) get(ctx context.Context, dest any, stmt string, args ...any) (bool, error) {
	err := s.db.ContextQuery(ctx, stmt, nil).Bind(args...).GetRelease(dest)
	if errors.Is(err, gocql.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// sel scans every row of a query into dest, a pointer to a slice.
func (s *Store) sel(ctx context.Context, dest any, stmt string, args ...any) error {
	return s.db.ContextQuery(ctx, stmt, nil).Bind(args...).SelectRelease(dest)
}

// exec runs a statement that returns no rows.
func (s *Store) exec(ctx context.Context, stmt string, args ...any) error {
	return s.db.ContextQuery(ctx, stmt, nil).Bind(args...).ExecRelease()
}

// cas runs a lightweight transaction. When it is not applied, prev holds
// the current values of the columns in its condition (all columns for IF
// NOT EXISTS); it is empty if the row does not exist.
func (s *Store) cas(ctx context.Context, stmt string, args ...any) (applied bool, prev map[string]any, err error) {
	q := s.db.ContextQuery(ctx, stmt, nil).Bind(args...)
	defer q.Release()
	prev = map[string]any{}
	applied, err = q.MapScanCAS(prev)
	return applied, prev, err
}

// stmt is one statement of a batch.
type stmt struct {
	cql  string
	args []any
}

func st(cql string, args ...any) stmt { return stmt{cql, args} }

// casBatch runs a conditional batch: statements on one partition of one
// table, applied together if every condition holds, under one Paxos round.
func (s *Store) casBatch(ctx context.Context, stmts ...stmt) (bool, error) {
	b := s.db.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
	for _, x := range stmts {
		b.Query(x.cql, x.args...)
	}
	applied, iter, err := s.db.MapExecuteBatchCAS(b, map[string]any{})
	if err != nil {
		if iter != nil {
			_ = iter.Close()
		}
		return false, err
	}
	return applied, iter.Close()
}

// loggedBatch runs statements on several partitions through the batch log:
// once it returns nil all of them are applied, and if the coordinator dies
// midway the log replays them. Readers may see some before others.
func (s *Store) loggedBatch(ctx context.Context, stmts ...stmt) error {
	if len(stmts) == 0 {
		return nil
	}
	b := s.db.NewBatch(gocql.LoggedBatch).WithContext(ctx)
	for _, x := range stmts {
		b.Query(x.cql, x.args...)
	}
	return s.db.ExecuteBatch(b)
}

// chunks splits ids into slices of at most inChunk.
func chunks(ids []int64) [][]int64 {
	var out [][]int64
	for len(ids) > inChunk {
		out = append(out, ids[:inChunk])
		ids = ids[inChunk:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}

// utc is t in UTC, and the zero time for the empty timestamp.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
