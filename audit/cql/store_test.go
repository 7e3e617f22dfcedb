package cql_test

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/audit"
	"github.com/guildhall/guildhall/audit/audittest"
	"github.com/guildhall/guildhall/audit/cql"
	"github.com/guildhall/guildhall/internal/cqldb/cqltest"
	"github.com/guildhall/guildhall/snowflake"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mustStore returns a Store on a new keyspace, dropped when tb ends.
func mustStore(tb testing.TB) *cql.Store {
	tb.Helper()
	return cql.New(cqltest.MustSession(tb, cql.Component, cql.Migrations))
}

func TestStore(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audit.Store { return mustStore(t) })
}

func entry(serverID, id, actorID uint64, action audit.Action, created time.Time) audit.Entry {
	return audit.Entry{ID: id, ServerID: serverID, ActorID: actorID, Action: action, CreatedAt: created}
}

// mustAppendAll appends es, a few at a time and in a random order: each
// Append is a lightweight transaction, a few milliseconds apiece, and
// those of one partition (server and bucket) contend with each other.
func mustAppendAll(tb testing.TB, s audit.Store, es []audit.Entry) {
	tb.Helper()
	es = slices.Clone(es)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
	g, ctx := errgroup.WithContext(tb.Context())
	g.SetLimit(8)
	for _, e := range es {
		g.Go(func() error { return s.Append(ctx, e) })
	}
	if err := g.Wait(); err != nil {
		tb.Fatalf("Append: %v", err)
	}
}

// spread is the i-th of a run of IDs a thousand to a bucket, in order,
// so that loading many entries into one server is not one partition.
func spread(i uint64) uint64 { return i << 43 }

// Entries made months apart by snowflake generators land in different
// buckets; List pages across them, filtered or not, and Before may point
// into any of them or between them.
func TestBuckets(t *testing.T) {
	s := mustStore(t)
	var es []audit.Entry
	var ids []uint64
	start := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	for day := 0; day < 200; day += 5 { // 40 entries over ~8 buckets
		at := start.Add(time.Duration(day) * 24 * time.Hour)
		gen, err := snowflake.New(day%7, func() time.Time { return at })
		if err != nil {
			t.Fatal(err)
		}
		id := gen.Next()
		actor := uint64(100)
		if day%20 == 0 {
			actor = 200
		}
		es = append(es, entry(1000, id, actor, audit.RoleUpdate, at))
		ids = append(ids, id)
	}
	// IDs on both sides of 2^63, and the largest.
	for _, id := range []uint64{1<<63 - 1, 1 << 63, 1<<63 + 1, math.MaxUint64} {
		es = append(es, entry(1000, id, 200, audit.RoleUpdate, start))
		ids = append(ids, id)
	}
	mustAppendAll(t, s, es)
	slices.Sort(ids)
	slices.Reverse(ids)

	var got []uint64
	var before uint64
	for {
		page, err := s.List(t.Context(), 1000, audit.Query{Before: before, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			got = append(got, e.ID)
		}
		before = page[len(page)-1].ID
	}
	if !slices.Equal(got, ids) {
		t.Errorf("paged IDs = %v\nwant %v", got, ids)
	}

	var want []uint64
	for _, e := range es {
		if e.ActorID == 200 {
			want = append(want, e.ID)
		}
	}
	slices.Sort(want)
	slices.Reverse(want)
	audittest.WantIDs(t, s, 1000, audit.Query{ActorID: 200, Limit: 100}, want...)
	audittest.WantIDs(t, s, 1000, audit.Query{ActorID: 200, Before: want[2], Limit: 2}, want[3:5]...)
	// Before between two buckets, and at the first ID of one.
	for _, i := range []int{10, 20, 30} {
		audittest.WantIDs(t, s, 1000, audit.Query{Before: ids[i] + 1, Limit: 3}, ids[i:i+3]...)
		audittest.WantIDs(t, s, 1000, audit.Query{Before: ids[i], Limit: 3}, ids[i+1:i+4]...)
	}
	audittest.WantIDs(t, s, 1000, audit.Query{Before: 1 << 63, Limit: 2}, ids[3:5]...)
}

// A filtered List looks at no more than MaxScan entries.
func TestScanCap(t *testing.T) {
	s := mustStore(t)
	// Entries 1 and 2 by actor 200, then MaxScan-1 newer entries by actor
	// 100: entry 2 is the last one a List from the newest looks at. The
	// entries span ten buckets, so the cap is counted across buckets.
	es := make([]audit.Entry, 0, cql.MaxScan+1)
	for i := uint64(1); i <= cql.MaxScan+1; i++ {
		actor := uint64(100)
		if i <= 2 {
			actor = 200
		}
		es = append(es, entry(1000, spread(i), actor, audit.MemberUpdate, audittest.At(time.Duration(i)*time.Millisecond)))
	}
	mustAppendAll(t, s, es)
	audittest.WantIDs(t, s, 1000, audit.Query{ActorID: 200, Limit: 10}, spread(2))
	audittest.WantIDs(t, s, 1000, audit.Query{ActorID: 200, Before: spread(2), Limit: 10}, spread(1))
	audittest.WantIDs(t, s, 1000, audit.Query{Action: audit.MemberKick, Limit: 10})
	// The cap counts entries looked at, not pages: unfiltered pages are
	// never short.
	audittest.WantIDs(t, s, 1000, audit.Query{Before: spread(3), Limit: 10}, spread(2), spread(1))
	audittest.WantIDs(t, s, 1000, audit.Query{Limit: 2}, spread(cql.MaxScan+1), spread(cql.MaxScan))
}

// Prune goes through index pages and hours; the count is the sum over
// all of them.
func TestPruneMany(t *testing.T) {
	s := mustStore(t)
	const n = 2500
	es := make([]audit.Entry, 0, n)
	for id := uint64(1); id <= n; id++ {
		// Three servers, over about 42 minutes from base - 20 minutes:
		// the entries span two hours of the index.
		es = append(es, entry(1000+id%3, id, 100, audit.ChannelUpdate, audittest.At(time.Duration(id)*time.Second-20*time.Minute)))
	}
	mustAppendAll(t, s, es)
	got, err := s.Prune(t.Context(), audittest.At((n-5)*time.Second-20*time.Minute))
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
	slices.Sort(left)
	if want := []uint64{n - 5, n - 4, n - 3, n - 2, n - 1, n}; !slices.Equal(left, want) {
		t.Errorf("entries left = %v, want %v", left, want)
	}
	// Two Prunes at once count each entry once.
	counts := make([]int, 2)
	var g errgroup.Group
	for i := range counts {
		g.Go(func() (err error) {
			counts[i], err = s.Prune(t.Context(), audittest.At(time.Hour))
			return err
		})
	}
	if err := g.Wait(); err != nil || counts[0]+counts[1] != 6 {
		t.Errorf("concurrent Prunes = %v, %v; want 6 in all", counts, err)
	}
}

func TestPruneCancelled(t *testing.T) {
	s := mustStore(t)
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
	s := mustStore(t)
	var es []audit.Entry
	for id := uint64(1); id <= audit.MaxLimit+10; id++ {
		es = append(es, entry(1000, id, 100, audit.RoleCreate, audittest.At(0)))
	}
	mustAppendAll(t, s, es)
	for limit, want := range map[int]int{0: audit.DefaultLimit, -1: audit.DefaultLimit, audit.MaxLimit + 1: audit.MaxLimit, 1 << 30: audit.MaxLimit} {
		es, err := s.List(t.Context(), 1000, audit.Query{Limit: limit})
		if err != nil || len(es) != want {
			t.Errorf("List(limit %d) = %d entries, %v; want %d", limit, len(es), err, want)
		}
	}
}

// Two Appends of one ID at once: one wins, the other is a Conflict.
func TestAppendRace(t *testing.T) {
	s := mustStore(t)
	for id := uint64(1); id <= 10; id++ {
		errs := make([]error, 4)
		var g errgroup.Group
		for i := range errs {
			g.Go(func() error {
				errs[i] = s.Append(t.Context(), entry(1000, id, uint64(i), audit.RoleCreate, audittest.At(time.Duration(i)*time.Second)))
				return nil
			})
		}
		_ = g.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case guildhall.KindOf(err) != guildhall.Conflict:
				t.Errorf("Append(%d): %v, want a conflict", id, err)
			}
		}
		if won != 1 {
			t.Errorf("Append(%d) succeeded %d times, want once", id, won)
		}
	}
	n, err := s.Prune(t.Context(), audittest.At(time.Hour))
	if err != nil || n != 10 {
		t.Errorf("Prune = %d, %v; want 10: the losers left nothing", n, err)
	}
}

// BenchmarkListPage is a page of the newest entries, as the audit log view
// shows it first.
func BenchmarkListPage(b *testing.B) {
	s := mustStore(b)
	var es []audit.Entry
	for id := uint64(1); id <= 1000; id++ {
		e := entry(1000, id, 100, audit.RoleUpdate, audittest.At(time.Duration(id)*time.Millisecond))
		e.Changes = []audit.Change{{Key: "permissions", Old: `"1024"`, New: `"3072"`}}
		es = append(es, e)
	}
	mustAppendAll(b, s, es)
	q := audit.Query{Limit: audit.DefaultLimit}
	b.ReportAllocs()
	for b.Loop() {
		es, err := s.List(b.Context(), 1000, q)
		if err != nil || len(es) != audit.DefaultLimit {
			b.Fatalf("List = %d, %v", len(es), err)
		}
	}
}

// BenchmarkListFilteredMiss is the worst case of a filtered page: a filter
// that matches nothing among MaxScan entries.
func BenchmarkListFilteredMiss(b *testing.B) {
	s := mustStore(b)
	es := make([]audit.Entry, 0, cql.MaxScan)
	for i := uint64(1); i <= cql.MaxScan; i++ {
		e := entry(1000, spread(i), 100, audit.RoleUpdate, audittest.At(time.Duration(i)*time.Millisecond))
		e.Changes = []audit.Change{{Key: "permissions", Old: `"1024"`, New: `"3072"`}}
		es = append(es, e)
	}
	mustAppendAll(b, s, es)
	q := audit.Query{ActorID: 999, Limit: audit.MaxLimit}
	b.ReportAllocs()
	for b.Loop() {
		es, err := s.List(b.Context(), 1000, q)
		if err != nil || len(es) != 0 {
			b.Fatalf("List = %d, %v", len(es), err)
		}
	}
}

// BenchmarkAppend is one Append: a lightweight transaction and a logged
// batch.
func BenchmarkAppend(b *testing.B) {
	s := mustStore(b)
	id := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		id++
		e := entry(1000, id, 100, audit.RoleUpdate, audittest.At(time.Duration(id)*time.Millisecond))
		if err := s.Append(b.Context(), e); err != nil {
			b.Fatal(err)
		}
	}
}
