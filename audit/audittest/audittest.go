// Package audittest is the conformance suite of audit.Store. Every
// implementation runs it from its own tests:
//
//	func TestStore(t *testing.T) {
//		audittest.Run(t, func(t *testing.T) audit.Store { return newStore(t) })
//	}
//
// The suite talks to the store only through audit.Store. newStore must
// return an empty store for each call; the subtests do not run in
// parallel, so an implementation on a shared server may reset it in
// newStore. Times are in UTC and whole milliseconds, which every backend
// can keep exactly. Pages are at most audit.MaxLimit entries and filtered
// queries never skip more than a few hundred entries, so an implementation
// that clamps the limit or caps its scan (as audit.Store allows) passes.
//
// Besides what audit.Store documents, the suite pins down these rules:
//   - every field of an entry comes back as appended; nil and empty
//     Changes are the same;
//   - Before is exclusive and need not be the ID of an entry;
//   - Prune deletes entries created strictly before olderThan, in every
//     server, and counts only what it deleted.
package audittest

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/audit"
)

// Run runs the suite; newStore returns a new, empty store.
func Run(t *testing.T, newStore func(t *testing.T) audit.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s audit.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Order", testOrder},
		{"Paging", testPaging},
		{"Filters", testFilters},
		{"FilteredPaging", testFilteredPaging},
		{"ServerIsolation", testServerIsolation},
		{"DuplicateID", testDuplicateID},
		{"Prune", testPrune},
		{"PruneThenAppend", testPruneThenAppend},
		{"ConcurrentAppend", testConcurrentAppend},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

// base is the suite's clock: every time is base plus an offset.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// At returns the suite's base time plus d.
func At(d time.Duration) time.Time { return base.Add(d) }

func testRoundTrip(t *testing.T, s audit.Store) {
	want := []audit.Entry{
		{ID: 10, ServerID: 1000, ActorID: 100, Action: audit.ChannelCreate, TargetID: 2000, CreatedAt: At(time.Second),
			Changes: []audit.Change{{Key: "name", New: `"general"`}, {Key: "type", New: "0"}}},
		{ID: 11, ServerID: 1000, ActorID: 100, Action: audit.RoleUpdate, TargetID: 3000, CreatedAt: At(2 * time.Second),
			Reason:  "spring cleaning — ünïcödé 🧹",
			Changes: []audit.Change{{Key: "permissions", Old: `"1024"`, New: `"3072"`}, {Key: "color", Old: "0", New: "16711680"}}},
		{ID: 12, ServerID: 1000, ActorID: 101, Action: audit.MemberKick, TargetID: 102, CreatedAt: At(3 * time.Second),
			Reason: "spam"},
		{ID: 13, ServerID: 1000, ActorID: 101, Action: audit.ServerUpdate, CreatedAt: At(4 * time.Second),
			Changes: []audit.Change{{Key: "name", Old: `"a\u0000b"`, New: "\"\x00\xff\""}, {Key: "", Old: "", New: ""}}},
		{ID: 14, ServerID: 1000, ActorID: 101, Action: audit.InviteCreate, CreatedAt: At(5 * time.Second),
			Changes: []audit.Change{}, Reason: string(make([]byte, audit.MaxReason))},
		{ID: math.MaxUint64, ServerID: math.MaxUint64, ActorID: math.MaxUint64, Action: audit.MemberBanAdd, TargetID: math.MaxUint64,
			CreatedAt: time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC)},
	}
	for _, e := range want {
		MustAppend(t, s, e)
	}
	WantEntries(t, s, 1000, audit.Query{Limit: 100}, reversed(want[:5])...)
	WantEntries(t, s, math.MaxUint64, audit.Query{Limit: 100}, want[5])
}

func testOrder(t *testing.T, s audit.Store) {
	// IDs appended out of order, with creation times that disagree with
	// them: the order is by ID.
	ids := []uint64{500, 20, 7000, 1, 300, 299, 301, 1 << 40, 1<<40 + 1}
	for i, id := range ids {
		MustAppend(t, s, entry(1000, id, 100, audit.RoleCreate, At(time.Duration(len(ids)-i)*time.Minute)))
	}
	want := slices.Clone(ids)
	slices.Sort(want)
	slices.Reverse(want)
	WantIDs(t, s, 1000, audit.Query{Limit: 100}, want...)
	WantIDs(t, s, 1000, audit.Query{Limit: 1}, want[0])
	WantIDs(t, s, 1000, audit.Query{Limit: 3}, want[:3]...)
}

func testPaging(t *testing.T, s audit.Store) {
	const n = 250
	var ids []uint64
	for i := range n {
		ids = append(ids, uint64(1000+3*i))
	}
	shuffled := slices.Clone(ids)
	rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, id := range shuffled {
		MustAppend(t, s, entry(1000, id, 100+id%3, actions[id%uint64(len(actions))], At(time.Duration(id)*time.Millisecond)))
	}
	slices.Reverse(ids) // newest first

	var all []uint64
	var before uint64
	for page := 0; ; page++ {
		es, err := s.List(t.Context(), 1000, audit.Query{Before: before, Limit: 100})
		if err != nil {
			t.Fatalf("List(before %d): %v", before, err)
		}
		if want := min(100, n-len(all)); len(es) != want {
			t.Fatalf("page %d has %d entries, want %d", page, len(es), want)
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			all = append(all, e.ID)
		}
		before = es[len(es)-1].ID
	}
	if !slices.Equal(all, ids) {
		t.Errorf("paged IDs = %v\nwant %v", all, ids)
	}

	// Before is exclusive and may be any ID, entry or not.
	WantIDs(t, s, 1000, audit.Query{Before: ids[10], Limit: 3}, ids[11:14]...)
	WantIDs(t, s, 1000, audit.Query{Before: ids[10] + 1, Limit: 3}, ids[10:13]...)
	WantIDs(t, s, 1000, audit.Query{Before: ids[10] - 1, Limit: 3}, ids[11:14]...)
	WantIDs(t, s, 1000, audit.Query{Before: ids[n-2], Limit: 100}, ids[n-1])
	WantIDs(t, s, 1000, audit.Query{Before: ids[n-1], Limit: 100})
	WantIDs(t, s, 1000, audit.Query{Before: 1, Limit: 100})
	WantIDs(t, s, 1000, audit.Query{Before: math.MaxUint64, Limit: 2}, ids[:2]...)
}

// actions are the actions the suite cycles through.
var actions = []audit.Action{audit.ChannelCreate, audit.RoleUpdate, audit.MemberKick, audit.MemberBanAdd, audit.InviteCreate}

func testFilters(t *testing.T, s audit.Store) {
	type row struct {
		id     uint64
		actor  uint64
		action audit.Action
	}
	rows := []row{
		{1, 100, audit.ChannelCreate},
		{2, 101, audit.ChannelCreate},
		{3, 100, audit.RoleUpdate},
		{4, 102, audit.MemberKick},
		{5, 100, audit.ChannelCreate},
		{6, 101, audit.RoleUpdate},
		{7, 100, audit.MemberKick},
		{8, 102, audit.ChannelCreate},
	}
	for _, r := range rows {
		MustAppend(t, s, entry(1000, r.id, r.actor, r.action, At(time.Duration(r.id)*time.Second)))
	}
	// The same actors and actions in another server never show up.
	MustAppend(t, s, entry(2000, 9, 100, audit.ChannelCreate, At(time.Hour)))

	q := func(actor uint64, action audit.Action, before uint64, limit int) audit.Query {
		return audit.Query{ActorID: actor, Action: action, Before: before, Limit: limit}
	}
	WantIDs(t, s, 1000, q(100, "", 0, 100), 7, 5, 3, 1)
	WantIDs(t, s, 1000, q(0, audit.ChannelCreate, 0, 100), 8, 5, 2, 1)
	WantIDs(t, s, 1000, q(100, audit.ChannelCreate, 0, 100), 5, 1)
	WantIDs(t, s, 1000, q(101, audit.MemberKick, 0, 100))
	WantIDs(t, s, 1000, q(999, "", 0, 100))
	WantIDs(t, s, 1000, q(0, audit.MemberBanRemove, 0, 100))
	WantIDs(t, s, 1000, q(100, "", 0, 2), 7, 5)
	WantIDs(t, s, 1000, q(100, "", 5, 2), 3, 1)
	WantIDs(t, s, 1000, q(100, "", 6, 1), 5)
	WantIDs(t, s, 1000, q(0, audit.RoleUpdate, 6, 100), 3)
	WantIDs(t, s, 1000, q(102, audit.ChannelCreate, 8, 100))
	WantIDs(t, s, 2000, q(100, audit.ChannelCreate, 0, 100), 9)
}

// A filter that matches few entries pages through many that it skips.
func testFilteredPaging(t *testing.T, s audit.Store) {
	var want []uint64
	for id := uint64(1); id <= 300; id++ {
		actor := uint64(100)
		if id%30 == 0 {
			actor = 200
			want = append(want, id)
		}
		MustAppend(t, s, entry(1000, id, actor, audit.MemberUpdate, At(time.Duration(id)*time.Second)))
	}
	slices.Reverse(want)
	var got []uint64
	var before uint64
	for range 20 {
		es, err := s.List(t.Context(), 1000, audit.Query{ActorID: 200, Before: before, Limit: 3})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			if e.ActorID != 200 {
				t.Errorf("List(actor 200) returned an entry by %d", e.ActorID)
			}
			got = append(got, e.ID)
		}
		before = es[len(es)-1].ID
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged filtered IDs = %v\nwant %v", got, want)
	}
}

func testServerIsolation(t *testing.T, s audit.Store) {
	MustAppend(t, s, entry(1000, 10, 100, audit.RoleCreate, At(0)))
	MustAppend(t, s, entry(1001, 11, 100, audit.RoleCreate, At(0)))
	MustAppend(t, s, entry(999, 12, 100, audit.RoleCreate, At(0)))
	MustAppend(t, s, entry(1000, 13, 100, audit.RoleDelete, At(0)))
	MustAppend(t, s, entry(1<<32+1000, 14, 100, audit.RoleCreate, At(0)))
	WantIDs(t, s, 1000, audit.Query{Limit: 100}, 13, 10)
	WantIDs(t, s, 1001, audit.Query{Limit: 100}, 11)
	WantIDs(t, s, 999, audit.Query{Limit: 100}, 12)
	WantIDs(t, s, 1<<32+1000, audit.Query{Limit: 100}, 14)
	WantIDs(t, s, 1000, audit.Query{Before: 13, Limit: 100}, 10)
	WantIDs(t, s, 1001, audit.Query{Before: 11, Limit: 100})
	// An unknown server has an empty log.
	WantIDs(t, s, 4242, audit.Query{Limit: 100})
	WantIDs(t, s, 0, audit.Query{Limit: 100})
}

func testDuplicateID(t *testing.T, s audit.Store) {
	first := entry(1000, 10, 100, audit.RoleCreate, At(0))
	first.Reason = "first"
	MustAppend(t, s, first)
	again := entry(1000, 10, 101, audit.RoleDelete, At(time.Hour))
	wantKind(t, "Append(taken ID)", s.Append(t.Context(), again), guildhall.Conflict)
	WantEntries(t, s, 1000, audit.Query{Limit: 100}, first)
	// The refused entry left nothing behind for Prune to count.
	n, err := s.Prune(t.Context(), At(2*time.Hour))
	if err != nil || n != 1 {
		t.Errorf("Prune = %d, %v; want 1 entry", n, err)
	}
	WantIDs(t, s, 1000, audit.Query{Limit: 100})

	wantKind(t, "Append(ID 0)", s.Append(t.Context(), entry(1000, 0, 100, audit.RoleCreate, At(0))), guildhall.Invalid)
	WantIDs(t, s, 1000, audit.Query{Limit: 100})
}

func testPrune(t *testing.T, s audit.Store) {
	ctx := t.Context()
	// Server 1000 has an entry a minute, server 2000 one every two; IDs
	// and times disagree for 2000 so that Prune cannot go by ID.
	for i := range 10 {
		MustAppend(t, s, entry(1000, uint64(100+i), 1, audit.ChannelUpdate, At(time.Duration(i)*time.Minute)))
		MustAppend(t, s, entry(2000, uint64(300-i), 1, audit.ChannelUpdate, At(time.Duration(2*i)*time.Minute)))
	}
	// The log of an entry far in the past and one far in the future.
	MustAppend(t, s, entry(3000, 1, 1, audit.ServerUpdate, time.Date(1901, 1, 1, 0, 0, 0, 0, time.UTC)))
	MustAppend(t, s, entry(3000, 2, 1, audit.ServerUpdate, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)))

	wantPrune := func(olderThan time.Time, want int) {
		t.Helper()
		n, err := s.Prune(ctx, olderThan)
		if err != nil {
			t.Fatalf("Prune(%v): %v", olderThan, err)
		}
		if n != want {
			t.Errorf("Prune(%v) = %d, want %d", olderThan, n, want)
		}
	}
	wantPrune(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), 0)
	wantPrune(At(-time.Minute), 1) // the 1901 entry
	WantIDs(t, s, 3000, audit.Query{Limit: 100}, 2)
	WantIDs(t, s, 1000, audit.Query{Limit: 100}, 109, 108, 107, 106, 105, 104, 103, 102, 101, 100)

	// Strictly before: the entries created at exactly 4 minutes stay.
	// Deleted: 1000's at 0..3 minutes, 2000's at 0 and 2.
	wantPrune(At(4*time.Minute), 6)
	WantIDs(t, s, 1000, audit.Query{Limit: 100}, 109, 108, 107, 106, 105, 104)
	WantIDs(t, s, 2000, audit.Query{Limit: 100}, 298, 297, 296, 295, 294, 293, 292, 291)
	wantPrune(At(4*time.Minute), 0)
	wantPrune(At(4*time.Minute+time.Millisecond), 2)
	WantIDs(t, s, 1000, audit.Query{Limit: 100}, 109, 108, 107, 106, 105)
	WantIDs(t, s, 2000, audit.Query{Limit: 100}, 297, 296, 295, 294, 293, 292, 291)
	WantIDs(t, s, 2000, audit.Query{Before: 296, Limit: 2}, 295, 294)

	// Everything up to the year 2100: all but the far-future entry.
	wantPrune(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), 12)
	WantIDs(t, s, 1000, audit.Query{Limit: 100})
	WantIDs(t, s, 2000, audit.Query{Limit: 100})
	WantIDs(t, s, 3000, audit.Query{Limit: 100}, 2)
	wantPrune(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), 0)
}

func testPruneThenAppend(t *testing.T, s audit.Store) {
	ctx := t.Context()
	MustAppend(t, s, entry(1000, 10, 100, audit.RoleCreate, At(0)))
	if n, err := s.Prune(ctx, At(time.Second)); err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	// A pruned ID is free again; new entries list and prune as usual.
	again := entry(1000, 10, 101, audit.RoleDelete, At(time.Hour))
	MustAppend(t, s, again)
	MustAppend(t, s, entry(1000, 11, 101, audit.RoleDelete, At(2*time.Hour)))
	WantIDs(t, s, 1000, audit.Query{Limit: 100}, 11, 10)
	WantEntries(t, s, 1000, audit.Query{Before: 11, Limit: 100}, again)
	if n, err := s.Prune(ctx, At(90*time.Minute)); err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	WantIDs(t, s, 1000, audit.Query{Limit: 100}, 11)
}

func testConcurrentAppend(t *testing.T, s audit.Store) {
	const writers, each = 8, 12
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := uint64(1 + i*writers + w)
				if err := s.Append(t.Context(), entry(1000, id, uint64(w), audit.MemberRoleAdd, At(time.Duration(id)*time.Second))); err != nil {
					errs <- fmt.Errorf("Append(%d): %w", id, err)
				}
			}
		})
	}
	// Readers run meanwhile and must always see a consistent page.
	wg.Go(func() {
		for range 20 {
			es, err := s.List(t.Context(), 1000, audit.Query{Limit: 100})
			if err != nil {
				errs <- err
				return
			}
			if !slices.IsSortedFunc(es, func(a, b audit.Entry) int { return cmp.Compare(b.ID, a.ID) }) {
				errs <- fmt.Errorf("List during appends is not newest first: %v", ids(es))
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var want []uint64
	for id := uint64(writers * each); id >= 1; id-- {
		want = append(want, id)
	}
	WantIDs(t, s, 1000, audit.Query{Limit: 100}, want...)
	WantIDs(t, s, 1000, audit.Query{ActorID: 3, Limit: 100}, 92, 84, 76, 68, 60, 52, 44, 36, 28, 20, 12, 4)
}

func reversed(es []audit.Entry) []audit.Entry {
	out := slices.Clone(es)
	slices.Reverse(out)
	return out
}
