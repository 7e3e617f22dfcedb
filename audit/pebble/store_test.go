package pebble_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/audit"
	"github.com/guildhall/guildhall/audit/audittest"
	"github.com/guildhall/guildhall/audit/pebble"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mustOpen opens a Pebble database in dir and closes it when tb ends.
func mustOpen(tb testing.TB, dir string) *pebbledb.DB {
	tb.Helper()
	db := open(tb, dir, nil)
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close pebble: %v", err)
		}
	})
	return db
}

// mustOpenMem opens a Pebble database in memory, for tests that write
// thousands of entries and would otherwise wait for as many fsyncs.
func mustOpenMem(tb testing.TB) *pebbledb.DB {
	tb.Helper()
	db := open(tb, "", vfs.NewMem())
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close pebble: %v", err)
		}
	})
	return db
}

// open opens a Pebble database in dir, on fs if not nil; the caller closes it.
func open(tb testing.TB, dir string, fs vfs.FS) *pebbledb.DB {
	tb.Helper()
	db, err := pebbledb.Open(dir, &pebbledb.Options{FS: fs, Logger: quietLogger{}})
	if err != nil {
		tb.Fatalf("open pebble: %v", err)
	}
	return db
}

// quietLogger drops Pebble's informational messages (WAL recovery, ...).
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	pebbledb.DefaultLogger.Errorf(format, args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	pebbledb.DefaultLogger.Fatalf(format, args...)
}

func TestStore(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audit.Store {
		return pebble.New(mustOpen(t, t.TempDir()))
	})
}

func entry(serverID, id, actorID uint64, action audit.Action, created time.Time) audit.Entry {
	return audit.Entry{ID: id, ServerID: serverID, ActorID: actorID, Action: action, CreatedAt: created}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, nil)
	s := pebble.New(db)
	kick := audit.Entry{ID: 12, ServerID: 1000, ActorID: 100, Action: audit.MemberKick, TargetID: 102,
		Reason: "raid", CreatedAt: audittest.At(2 * time.Hour),
		Changes: []audit.Change{{Key: "nick", Old: `"x"`}}}
	audittest.MustAppend(t, s, entry(1000, 10, 100, audit.RoleCreate, audittest.At(0)))
	audittest.MustAppend(t, s, entry(1000, 11, 101, audit.RoleUpdate, audittest.At(time.Hour)))
	audittest.MustAppend(t, s, kick)
	audittest.MustAppend(t, s, entry(2000, 13, 100, audit.RoleCreate, audittest.At(0)))
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s = pebble.New(mustOpen(t, dir))
	ctx := t.Context()
	audittest.WantEntries(t, s, 1000, audit.Query{Limit: 1}, kick)
	audittest.WantIDs(t, s, 1000, audit.Query{Limit: 100}, 12, 11, 10)
	audittest.WantIDs(t, s, 1000, audit.Query{ActorID: 101, Limit: 100}, 11)
	err := s.Append(ctx, entry(1000, 11, 100, audit.RoleDelete, audittest.At(0)))
	if guildhall.KindOf(err) != guildhall.Conflict {
		t.Errorf("Append(taken ID) after reopen = %v, want conflict", err)
	}
	// The creation-time index survived too.
	if n, err := s.Prune(ctx, audittest.At(90*time.Minute)); err != nil || n != 3 {
		t.Errorf("Prune after reopen = %d, %v; want 3", n, err)
	}
	audittest.WantIDs(t, s, 1000, audit.Query{Limit: 100}, 12)
	audittest.WantIDs(t, s, 2000, audit.Query{Limit: 100})
}

// A filtered List looks at no more than MaxScan entries.
func TestScanCap(t *testing.T) {
	s := pebble.New(mustOpenMem(t))
	// IDs 1 and 2 by actor 200, then MaxScan-1 newer entries by actor 100:
	// entry 2 is the last one a List from the newest looks at.
	for id := uint64(1); id <= pebble.MaxScan+1; id++ {
		actor := uint64(100)
		if id <= 2 {
			actor = 200
		}
		audittest.MustAppend(t, s, entry(1000, id, actor, audit.MemberUpdate, audittest.At(time.Duration(id)*time.Millisecond)))
	}
	audittest.WantIDs(t, s, 1000, audit.Query{ActorID: 200, Limit: 10}, 2)
	audittest.WantIDs(t, s, 1000, audit.Query{ActorID: 200, Before: 2, Limit: 10}, 1)
	audittest.WantIDs(t, s, 1000, audit.Query{Action: audit.MemberKick, Limit: 10})
	// The cap counts entries looked at, not pages: unfiltered pages are
	// never short.
	audittest.WantIDs(t, s, 1000, audit.Query{Before: 3, Limit: 10}, 2, 1)
	audittest.WantIDs(t, s, 1000, audit.Query{Limit: 2}, pebble.MaxScan+1, pebble.MaxScan)
}

// Prune deletes in batches; the count is the sum over all of them.
func TestPruneManyBatches(t *testing.T) {
	s := pebble.New(mustOpenMem(t))
	const n = 2500
	for id := uint64(1); id <= n; id++ {
		audittest.MustAppend(t, s, entry(1000+id%3, id, 100, audit.ChannelUpdate, audittest.At(time.Duration(id)*time.Second)))
	}
	got, err := s.Prune(t.Context(), audittest.At((n-5)*time.Second))
	if err != nil || got != n-6 {
		t.Fatalf("Prune = %d, %v; want %d", got, err, n-6)
	}
	var left []uint64
	for _, srv := range []uint64{1000, 1001, 1002} {
		es, err := s.List(t.Context(), srv, audit.Query{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			left = append(left, e.ID)
		}
	}
	if len(left) != 6 {
		t.Errorf("entries left = %v, want the 6 newest", left)
	}
	for _, id := range left {
		if id < n-5 {
			t.Errorf("entry %d survived the prune", id)
		}
	}
}

func TestPruneCancelled(t *testing.T) {
	s := pebble.New(mustOpen(t, t.TempDir()))
	audittest.MustAppend(t, s, entry(1000, 1, 100, audit.RoleCreate, audittest.At(0)))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	n, err := s.Prune(ctx, audittest.At(time.Hour))
	if err == nil || n != 0 {
		t.Errorf("Prune(cancelled) = %d, %v; want 0 and an error", n, err)
	}
	audittest.WantIDs(t, s, 1000, audit.Query{Limit: 10}, 1)
}

func TestLimitClamped(t *testing.T) {
	s := pebble.New(mustOpenMem(t))
	for id := uint64(1); id <= audit.MaxLimit+10; id++ {
		audittest.MustAppend(t, s, entry(1000, id, 100, audit.RoleCreate, audittest.At(0)))
	}
	for limit, want := range map[int]int{0: audit.DefaultLimit, -1: audit.DefaultLimit, audit.MaxLimit + 1: audit.MaxLimit, 1 << 30: audit.MaxLimit} {
		es, err := s.List(t.Context(), 1000, audit.Query{Limit: limit})
		if err != nil || len(es) != want {
			t.Errorf("List(limit %d) = %d entries, %v; want %d", limit, len(es), err, want)
		}
	}
}

// A record that does not decode is an Internal error, not a short page.
func TestCorrupt(t *testing.T) {
	db := mustOpenMem(t)
	s := pebble.New(db)
	audittest.MustAppend(t, s, entry(1000, 1, 100, audit.RoleCreate, audittest.At(0)))
	audittest.MustAppend(t, s, entry(1000, 3, 100, audit.RoleCreate, audittest.At(0)))
	k := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte("a/e/"), 1000), 2)
	for _, v := range [][]byte{nil, {2}, {1}, {1, 100, 200}, {1, 100, 0, 0, 0, 0, 0, 0, 5}} {
		if err := db.Set(k, v, pebbledb.Sync); err != nil {
			t.Fatal(err)
		}
		_, err := s.List(t.Context(), 1000, audit.Query{Limit: 10})
		if guildhall.KindOf(err) != guildhall.Internal || err == nil {
			t.Errorf("List over record %x: error %v, want internal", v, err)
		}
	}
	// Entries newer than the bad one still list.
	audittest.WantIDs(t, s, 1000, audit.Query{Limit: 1}, 3)

	// A malformed index key stops Prune.
	if err := db.Set([]byte("a/t/short"), nil, pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(t.Context(), audittest.At(time.Hour)); err == nil {
		t.Error("Prune over a malformed index key: no error")
	}
}

// BenchmarkListFilteredMiss is the worst case of a filtered page: a filter
// that matches nothing among MaxScan entries. The database is in memory
// so that loading it does not wait for fsyncs; reads do not sync anyway.
func BenchmarkListFilteredMiss(b *testing.B) {
	s := pebble.New(mustOpenMem(b))
	for id := uint64(1); id <= pebble.MaxScan; id++ {
		e := entry(1000, id, 100, audit.RoleUpdate, audittest.At(time.Duration(id)*time.Millisecond))
		e.Changes = []audit.Change{{Key: "permissions", Old: `"1024"`, New: `"3072"`}}
		audittest.MustAppend(b, s, e)
	}
	q := audit.Query{ActorID: 999, Limit: audit.MaxLimit}
	for b.Loop() {
		es, err := s.List(b.Context(), 1000, q)
		if err != nil || len(es) != 0 {
			b.Fatalf("List = %d, %v", len(es), err)
		}
	}
}

// BenchmarkListPage is a page of the newest entries, as the audit log view
// shows it first.
func BenchmarkListPage(b *testing.B) {
	s := pebble.New(mustOpenMem(b))
	for id := uint64(1); id <= 1000; id++ {
		e := entry(1000, id, 100, audit.RoleUpdate, audittest.At(time.Duration(id)*time.Millisecond))
		e.Changes = []audit.Change{{Key: "permissions", Old: `"1024"`, New: `"3072"`}}
		audittest.MustAppend(b, s, e)
	}
	q := audit.Query{Limit: audit.DefaultLimit}
	for b.Loop() {
		es, err := s.List(b.Context(), 1000, q)
		if err != nil || len(es) != audit.DefaultLimit {
			b.Fatalf("List = %d, %v", len(es), err)
		}
	}
}
