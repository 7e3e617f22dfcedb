// Package unreadtest is the conformance suite of message.UnreadCounters
// and message.ReadStateStore. Every implementation runs it from its own
// tests:
//
//	func TestCounters(t *testing.T) {
//		unreadtest.RunCounters(t, unreadtest.Options{MentionBound: 8},
//			func(t *testing.T) message.UnreadCounters { return newCounters(t, 8) })
//	}
//	func TestReadStateStore(t *testing.T) {
//		unreadtest.RunStore(t, func(t *testing.T) message.ReadStateStore { return newStore(t) })
//	}
//
// The constructors must return an empty implementation for each call;
// implementations on a shared server use a fresh key prefix or keyspace.
//
// Besides what the interfaces document, the suite pins down:
//   - a head or a position only ever goes up, including under concurrent
//     writers, and writing the same value twice changes nothing;
//   - Accepted raises the author's position to the message, so their own
//     @everyone is not counted for them;
//   - a message mentioning a user through several sets (directly, a role,
//     @everyone) counts once;
//   - a mention set keeps its MentionBound newest seqs;
//   - channels, users and roles never see each other's counts;
//   - Accepted without a channel or seq and Ack without a channel, seq or
//     ID are Invalid and change nothing (message.CheckCounted,
//     message.CheckAck); past message.MaxMentions users and roles in one
//     message, the rest are not counted.
package unreadtest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/message"
)

// Options describe the implementation under test.
type Options struct {
	// MentionBound is the number of newest seqs the implementation keeps
	// per mention set, as configured by the constructor; the suite sends
	// more than that to one set. Keep it small (say 8): 0 skips the test.
	MentionBound int
}

// IDs used by the suite. Channel IDs differ in one low bit and in one high
// (but below 2^63) bit so a backend that mixes up keys shows it.
const (
	chA    uint64 = 0x0000_0100_0000_0001
	chB    uint64 = 0x0000_0100_0000_0002
	chC    uint64 = 0x4000_0100_0000_0001
	server uint64 = 900
	alice  uint64 = 11
	bob    uint64 = 12
	carol  uint64 = 13
	roleX  uint64 = 31
	roleY  uint64 = 32
)

// msg is message seq in channel ch by author, with the given mentions; its
// ID is 1000*seq so IDs grow with seq.
func msg(ch, seq, author uint64, mentions message.Mentions) message.Message {
	return message.Message{ID: 1000 * seq, ChannelID: ch, ServerID: server, AuthorID: author, Seq: seq, Mentions: mentions}
}

// RunCounters runs the UnreadCounters suite; newCounters returns a new,
// empty implementation.
func RunCounters(t *testing.T, o Options, newCounters func(t *testing.T) message.UnreadCounters) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c message.UnreadCounters)
	}{
		{"Empty", testEmpty},
		{"Head", testHead},
		{"AckRaises", testAckRaises},
		{"FillMerges", testFillMerges},
		{"MentionsDirect", testMentionsDirect},
		{"MentionsEveryone", testMentionsEveryone},
		{"MentionsRoles", testMentionsRoles},
		{"MentionsDistinct", testMentionsDistinct},
		{"AcceptedIdempotent", testAcceptedIdempotent},
		{"AuthorReads", testAuthorReads},
		{"Concurrent", testConcurrent},
		{"Invalid", testInvalid},
		{"TooManyMentions", testTooManyMentions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newCounters(t)) })
	}
	t.Run("MentionBound", func(t *testing.T) {
		if o.MentionBound <= 0 {
			t.Skip("no MentionBound given")
		}
		testMentionBound(t, newCounters(t), o.MentionBound)
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, c message.UnreadCounters, user uint64, qs ...message.CounterQuery) []message.CounterState {
	t.Helper()
	got, err := c.Load(t.Context(), user, qs)
	must(t, err)
	if len(got) != len(qs) {
		t.Fatalf("Load(%d queries) = %d states", len(qs), len(got))
	}
	return got
}

func load1(t *testing.T, c message.UnreadCounters, user, ch uint64, roles ...uint64) message.CounterState {
	t.Helper()
	return load(t, c, user, message.CounterQuery{ChannelID: ch, Roles: roles})[0]
}

func accept(t *testing.T, c message.UnreadCounters, ms ...message.Message) {
	t.Helper()
	for _, m := range ms {
		must(t, c.Accepted(t.Context(), m))
	}
}

func ack(t *testing.T, c message.UnreadCounters, user, ch, seq uint64) (message.ReadPosition, bool) {
	t.Helper()
	p, moved, err := c.Ack(t.Context(), user, message.ReadPosition{ChannelID: ch, Seq: seq, ID: 1000 * seq})
	must(t, err)
	return p, moved
}

func pos(ch, seq uint64) message.ReadPosition {
	if seq == 0 {
		return message.ReadPosition{ChannelID: ch}
	}
	return message.ReadPosition{ChannelID: ch, Seq: seq, ID: 1000 * seq}
}

func mentions(t *testing.T, c message.UnreadCounters, user, ch uint64, roles ...uint64) uint64 {
	t.Helper()
	return load1(t, c, user, ch, roles...).Mentions
}

func testEmpty(t *testing.T, c message.UnreadCounters) {
	if got, err := c.Load(t.Context(), alice, nil); err != nil || len(got) != 0 {
		t.Fatalf("Load(nil) = %v, %v; want empty", got, err)
	}
	st := load1(t, c, alice, chA, roleX)
	if st.HeadKnown || st.ReadKnown || st.Mentions != 0 || st.Head != 0 || st.Read.Seq != 0 {
		t.Fatalf("empty counters: %+v", st)
	}
}

func testHead(t *testing.T, c message.UnreadCounters) {
	accept(t, c, msg(chA, 3, carol, message.Mentions{}))
	accept(t, c, msg(chA, 2, carol, message.Mentions{})) // late: no effect
	if st := load1(t, c, alice, chA); !st.HeadKnown || st.Head != 3 {
		t.Fatalf("head after seqs 3, 2: %+v", st)
	}
	if st := load1(t, c, alice, chB); st.HeadKnown {
		t.Fatalf("chB has a head: %+v", st)
	}
	must(t, c.RaiseHead(t.Context(), chA, 5))
	must(t, c.RaiseHead(t.Context(), chA, 4))
	must(t, c.RaiseHead(t.Context(), chB, 0)) // known to be empty
	got := load(t, c, alice, message.CounterQuery{ChannelID: chA}, message.CounterQuery{ChannelID: chB}, message.CounterQuery{ChannelID: chC})
	if !got[0].HeadKnown || got[0].Head != 5 {
		t.Errorf("chA head after RaiseHead 5, 4: %+v", got[0])
	}
	if !got[1].HeadKnown || got[1].Head != 0 {
		t.Errorf("chB head after RaiseHead 0: %+v", got[1])
	}
	if got[2].HeadKnown {
		t.Errorf("chC has a head: %+v", got[2])
	}
}

func testAckRaises(t *testing.T, c message.UnreadCounters) {
	if p, moved := ack(t, c, alice, chA, 5); p != pos(chA, 5) || !moved {
		t.Fatalf("first ack = %+v, %v", p, moved)
	}
	if p, moved := ack(t, c, alice, chA, 3); p != pos(chA, 5) || moved {
		t.Fatalf("ack backwards = %+v, %v; want position 5, not moved", p, moved)
	}
	if p, moved := ack(t, c, alice, chA, 5); p != pos(chA, 5) || moved {
		t.Fatalf("ack again = %+v, %v; want position 5, not moved", p, moved)
	}
	if p, moved := ack(t, c, alice, chA, 7); p != pos(chA, 7) || !moved {
		t.Fatalf("ack forwards = %+v, %v", p, moved)
	}
	got := load(t, c, alice, message.CounterQuery{ChannelID: chA}, message.CounterQuery{ChannelID: chB})
	if !got[0].ReadKnown || got[0].Read != pos(chA, 7) {
		t.Errorf("alice in chA: %+v", got[0])
	}
	if got[1].ReadKnown {
		t.Errorf("alice in chB is known before Fill: %+v", got[1])
	}
	if st := load1(t, c, bob, chA); st.ReadKnown {
		t.Errorf("bob in chA is known: %+v", st)
	}
}

func testFillMerges(t *testing.T, c message.UnreadCounters) {
	ack(t, c, alice, chA, 10)
	must(t, c.Fill(t.Context(), alice, []message.ReadPosition{pos(chA, 5), pos(chB, 3)}))
	got := load(t, c, alice,
		message.CounterQuery{ChannelID: chA}, message.CounterQuery{ChannelID: chB}, message.CounterQuery{ChannelID: chC})
	want := []message.ReadPosition{pos(chA, 10), pos(chB, 3), pos(chC, 0)}
	for i := range got {
		if !got[i].ReadKnown || got[i].Read != want[i] {
			t.Errorf("after Fill, query %d: %+v; want known %+v", i, got[i], want[i])
		}
	}
	if st := load1(t, c, bob, chC); st.ReadKnown {
		t.Errorf("Fill of alice made bob known: %+v", st)
	}
	// Filling again with older positions moves nothing back.
	must(t, c.Fill(t.Context(), alice, []message.ReadPosition{pos(chB, 1)}))
	if st := load1(t, c, alice, chB); st.Read != pos(chB, 3) {
		t.Errorf("Fill moved chB back: %+v", st)
	}
	if p, moved := ack(t, c, alice, chC, 2); p != pos(chC, 2) || !moved {
		t.Errorf("ack after Fill = %+v, %v", p, moved)
	}
}

func testMentionsDirect(t *testing.T, c message.UnreadCounters) {
	accept(t, c,
		msg(chA, 1, carol, message.Mentions{Users: []uint64{alice}}),
		msg(chA, 2, carol, message.Mentions{}),
		msg(chA, 3, carol, message.Mentions{Users: []uint64{alice, bob}}),
		msg(chA, 4, carol, message.Mentions{Users: []uint64{bob}}),
		msg(chB, 1, carol, message.Mentions{Users: []uint64{alice}}),
	)
	if n := mentions(t, c, alice, chA); n != 2 {
		t.Errorf("alice in chA: %d mentions, want 2", n)
	}
	if n := mentions(t, c, bob, chA); n != 2 {
		t.Errorf("bob in chA: %d mentions, want 2", n)
	}
	if n := mentions(t, c, alice, chB); n != 1 {
		t.Errorf("alice in chB: %d mentions, want 1", n)
	}
	if n := mentions(t, c, alice, chC); n != 0 {
		t.Errorf("alice in chC: %d mentions, want 0", n)
	}
	ack(t, c, alice, chA, 1)
	if n := mentions(t, c, alice, chA); n != 1 {
		t.Errorf("alice in chA after reading seq 1: %d mentions, want 1", n)
	}
	ack(t, c, alice, chA, 3)
	if n := mentions(t, c, alice, chA); n != 0 {
		t.Errorf("alice in chA after reading seq 3: %d mentions, want 0", n)
	}
	if n := mentions(t, c, bob, chA); n != 2 {
		t.Errorf("alice's ack changed bob's mentions: %d, want 2", n)
	}
}

func testMentionsEveryone(t *testing.T, c message.UnreadCounters) {
	accept(t, c,
		msg(chA, 1, carol, message.Mentions{Everyone: true}),
		msg(chA, 2, carol, message.Mentions{Everyone: true}),
		msg(chB, 1, carol, message.Mentions{}),
	)
	for _, u := range []uint64{alice, bob, 999_999_999} { // any user, no member list
		if n := mentions(t, c, u, chA); n != 2 {
			t.Errorf("user %d in chA: %d mentions, want 2", u, n)
		}
		if n := mentions(t, c, u, chB); n != 0 {
			t.Errorf("user %d in chB: %d mentions, want 0", u, n)
		}
	}
	ack(t, c, bob, chA, 1)
	if n := mentions(t, c, bob, chA); n != 1 {
		t.Errorf("bob after reading seq 1: %d, want 1", n)
	}
	if n := mentions(t, c, alice, chA); n != 2 {
		t.Errorf("bob's ack changed alice's count: %d, want 2", n)
	}
}

func testMentionsRoles(t *testing.T, c message.UnreadCounters) {
	accept(t, c,
		msg(chA, 1, carol, message.Mentions{Roles: []uint64{roleX}}),
		msg(chA, 2, carol, message.Mentions{Roles: []uint64{roleY}}),
		msg(chA, 3, carol, message.Mentions{Roles: []uint64{roleX, roleY}}),
		msg(chB, 1, carol, message.Mentions{Roles: []uint64{roleX}}),
	)
	cases := []struct {
		roles []uint64
		want  uint64
	}{
		{nil, 0},
		{[]uint64{roleX}, 2},
		{[]uint64{roleY}, 2},
		{[]uint64{roleX, roleY}, 3},
		{[]uint64{777}, 0},
	}
	for _, tc := range cases {
		if n := mentions(t, c, alice, chA, tc.roles...); n != tc.want {
			t.Errorf("roles %v in chA: %d mentions, want %d", tc.roles, n, tc.want)
		}
	}
	if n := mentions(t, c, alice, chB, roleY); n != 0 {
		t.Errorf("roleY in chB: %d, want 0", n)
	}
	ack(t, c, alice, chA, 2)
	if n := mentions(t, c, alice, chA, roleX, roleY); n != 1 {
		t.Errorf("roles X, Y after reading seq 2: %d, want 1", n)
	}
}

func testMentionsDistinct(t *testing.T, c message.UnreadCounters) {
	accept(t, c, msg(chA, 1, carol, message.Mentions{Users: []uint64{alice}, Roles: []uint64{roleX, roleY}, Everyone: true}))
	if n := mentions(t, c, alice, chA, roleX, roleY); n != 1 {
		t.Errorf("one message through four sets: %d mentions, want 1", n)
	}
}

func testAcceptedIdempotent(t *testing.T, c message.UnreadCounters) {
	m := msg(chA, 4, carol, message.Mentions{Users: []uint64{alice}, Roles: []uint64{roleX}, Everyone: true})
	accept(t, c, m, m)
	accept(t, c, msg(chA, 5, carol, message.Mentions{Users: []uint64{alice}}), m)
	st := load1(t, c, alice, chA, roleX)
	if st.Head != 5 || st.Mentions != 2 {
		t.Fatalf("after replays: %+v; want head 5, 2 mentions", st)
	}
	if st := load1(t, c, bob, chA, roleX); st.Mentions != 1 {
		t.Fatalf("bob after replays: %+v; want 1 mention", st)
	}
}

func testAuthorReads(t *testing.T, c message.UnreadCounters) {
	accept(t, c,
		msg(chA, 1, carol, message.Mentions{Everyone: true}),
		msg(chA, 2, alice, message.Mentions{Everyone: true}),
	)
	st := load1(t, c, alice, chA)
	if !st.ReadKnown || st.Read != pos(chA, 2) || st.Mentions != 0 {
		t.Fatalf("author after sending seq 2: %+v; want position 2, no mentions", st)
	}
	if st := load1(t, c, bob, chA); st.Mentions != 2 || st.ReadKnown {
		t.Fatalf("bob: %+v; want 2 mentions, position unknown", st)
	}
	accept(t, c, msg(chA, 1, alice, message.Mentions{})) // an old replay does not move her back
	if st := load1(t, c, alice, chA); st.Read != pos(chA, 2) {
		t.Fatalf("replay moved the author back: %+v", st)
	}
}

func testInvalid(t *testing.T, c message.UnreadCounters) {
	ctx := t.Context()
	for _, m := range []message.Message{
		{ID: 5, ChannelID: 0, Seq: 1, AuthorID: alice, Mentions: message.Mentions{Everyone: true}},
		{ID: 5, ChannelID: chA, Seq: 0, AuthorID: alice, Mentions: message.Mentions{Everyone: true}},
	} {
		if err := c.Accepted(ctx, m); guildhall.KindOf(err) != guildhall.Invalid {
			t.Errorf("Accepted(%+v) = %v, want Invalid", m, err)
		}
	}
	for _, p := range []message.ReadPosition{{ChannelID: 0, Seq: 1, ID: 1}, {ChannelID: chA, Seq: 0, ID: 1}, {ChannelID: chA, Seq: 1, ID: 0}} {
		if _, _, err := c.Ack(ctx, alice, p); guildhall.KindOf(err) != guildhall.Invalid {
			t.Errorf("Ack(%+v) = %v, want Invalid", p, err)
		}
	}
	st := load(t, c, alice, message.CounterQuery{ChannelID: chA}, message.CounterQuery{ChannelID: 0})
	for i, s := range st {
		if s.HeadKnown || s.ReadKnown || s.Mentions != 0 {
			t.Errorf("query %d after refused calls: %+v", i, s)
		}
	}
}

func testTooManyMentions(t *testing.T, c message.UnreadCounters) {
	var users []uint64
	for u := uint64(1); u <= message.MaxMentions+10; u++ {
		users = append(users, 1000+u)
	}
	accept(t, c, msg(chA, 1, carol, message.Mentions{Users: users, Roles: []uint64{roleX}}))
	if n := mentions(t, c, users[0], chA); n != 1 {
		t.Errorf("first mentioned user: %d mentions, want 1", n)
	}
	if n := mentions(t, c, users[len(users)-1], chA, roleX); n != 0 {
		t.Errorf("user past MaxMentions (and its role): %d mentions, want 0", n)
	}
}

func testMentionBound(t *testing.T, c message.UnreadCounters, bound int) {
	n := uint64(bound + 5)
	for seq := uint64(1); seq <= n; seq++ {
		accept(t, c, msg(chA, seq, carol, message.Mentions{Users: []uint64{alice}, Roles: []uint64{roleX}, Everyone: true}))
	}
	if got := mentions(t, c, alice, chA, roleX); got != uint64(bound) {
		t.Fatalf("%d mentions in one set bounded to %d: counted %d", n, bound, got)
	}
	if got := mentions(t, c, bob, chA); got != uint64(bound) {
		t.Fatalf("%d @everyone bounded to %d: counted %d", n, bound, got)
	}
	// The newest are the ones kept: reading up to n-2 leaves 2.
	ack(t, c, alice, chA, n-2)
	if got := mentions(t, c, alice, chA, roleX); got != 2 {
		t.Fatalf("after reading up to %d of %d: %d mentions, want 2", n-2, n, got)
	}
}

func testConcurrent(t *testing.T, c message.UnreadCounters) {
	const workers, per = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	ctx := t.Context()
	for w := range uint64(workers) {
		wg.Add(2)
		go func() { // seqs w+1, w+1+workers, ... interleaved across workers
			defer wg.Done()
			for i := range uint64(per) {
				seq := 1 + w + i*workers
				if err := c.Accepted(ctx, msg(chA, seq, carol, message.Mentions{})); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range uint64(per) {
				seq := 1 + w + i*workers
				if _, _, err := c.Ack(ctx, bob, pos(chA, seq)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	const top = workers * per
	got := load(t, c, alice, message.CounterQuery{ChannelID: chA})[0]
	if got.Head != top {
		t.Errorf("alice after %d concurrent sends: %+v; want head %d", top, got, top)
	}
	if st := load1(t, c, bob, chA); st.Read != pos(chA, top) {
		t.Errorf("bob after concurrent acks: %+v; want position %d", st, top)
	}
}

// RunStore runs the ReadStateStore suite; newStore returns a new, empty
// store.
func RunStore(t *testing.T, newStore func(t *testing.T) message.ReadStateStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s message.ReadStateStore)
	}{
		{"Empty", testStoreEmpty},
		{"Raise", testStoreRaise},
		{"Isolated", testStoreIsolated},
		{"Invalid", testStoreInvalid},
		{"Concurrent", testStoreConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

func put(t *testing.T, s message.ReadStateStore, user, ch, seq uint64) {
	t.Helper()
	must(t, s.PutReadPosition(t.Context(), user, pos(ch, seq)))
}

func positions(t *testing.T, s message.ReadStateStore, user uint64) []message.ReadPosition {
	t.Helper()
	ps, err := s.ReadPositions(t.Context(), user)
	must(t, err)
	return ps
}

func wantPositions(t *testing.T, s message.ReadStateStore, user uint64, want ...message.ReadPosition) {
	t.Helper()
	got := positions(t, s, user)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("positions of %d = %+v, want %+v", user, got, want)
	}
}

func testStoreEmpty(t *testing.T, s message.ReadStateStore) {
	wantPositions(t, s, alice)
}

func testStoreRaise(t *testing.T, s message.ReadStateStore) {
	put(t, s, alice, chA, 5)
	wantPositions(t, s, alice, pos(chA, 5))
	put(t, s, alice, chA, 3)
	wantPositions(t, s, alice, pos(chA, 5))
	put(t, s, alice, chA, 5)
	wantPositions(t, s, alice, pos(chA, 5))
	put(t, s, alice, chA, 9)
	wantPositions(t, s, alice, pos(chA, 9))
}

func testStoreIsolated(t *testing.T, s message.ReadStateStore) {
	put(t, s, alice, chC, 7)
	put(t, s, alice, chB, 2)
	put(t, s, alice, chA, 4)
	put(t, s, bob, chA, 1)
	put(t, s, alice+1<<40, chA, 3) // a user ID that differs in a high bit
	wantPositions(t, s, alice, pos(chA, 4), pos(chB, 2), pos(chC, 7))
	wantPositions(t, s, bob, pos(chA, 1))
	wantPositions(t, s, carol)
}

func testStoreInvalid(t *testing.T, s message.ReadStateStore) {
	bad := []message.ReadPosition{
		{ChannelID: chA, Seq: 0, ID: 5},
		{ChannelID: chA, Seq: 5, ID: 0},
		{ChannelID: 0, Seq: 5, ID: 5},
		{ChannelID: chA, Seq: 1 << 63, ID: 5},
		{ChannelID: chA, Seq: 5, ID: 1 << 63},
	}
	for _, p := range bad {
		err := s.PutReadPosition(t.Context(), alice, p)
		if guildhall.KindOf(err) != guildhall.Invalid {
			t.Errorf("PutReadPosition(%+v) = %v, want Invalid", p, err)
		}
	}
	if err := s.PutReadPosition(t.Context(), 0, pos(chA, 1)); guildhall.KindOf(err) != guildhall.Invalid {
		t.Errorf("PutReadPosition(user 0) = %v, want Invalid", err)
	}
	wantPositions(t, s, alice)
}

func testStoreConcurrent(t *testing.T, s message.ReadStateStore) {
	const workers, per = 4, 10
	ctx := context.WithoutCancel(t.Context())
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range uint64(workers) {
		wg.Go(func() {
			for i := range uint64(per) {
				seq := 1 + w + i*workers
				for _, ch := range []uint64{chA, chB} {
					if err := s.PutReadPosition(ctx, alice, pos(ch, seq)); err != nil {
						errs <- fmt.Errorf("put %d: %w", seq, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wantPositions(t, s, alice, pos(chA, workers*per), pos(chB, workers*per))
}
