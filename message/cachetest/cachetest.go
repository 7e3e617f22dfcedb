// Package cachetest is the conformance suite of message.Cache. Every
// implementation runs it from its own tests:
//
//	func TestCache(t *testing.T) {
//		cachetest.Run(t, func(t *testing.T) cachetest.Setup {
//			return cachetest.Setup{Cache: newCache(t, cachetest.Window, cachetest.TTL, cachetest.CompleteTTL)}
//		})
//	}
//
// newCache must return an empty cache whose window holds Window messages,
// whose windows live TTL after their last write and whose "complete" mark
// lives CompleteTTL after a Fill. The subtests do not run in parallel.
//
// Besides what message.Cache documents, the suite pins down these rules,
// which every implementation keeps:
//   - Latest with limit < 1 fails with Invalid; Latest of an unknown
//     channel is empty and incomplete, without error;
//   - Add, Replace and Fill refuse a message with ID 0 or channel 0, Fill
//     refuses a message of another channel and a list that is not strictly
//     newest first (Invalid), and a refused call changes nothing;
//   - Fill keeps the filled messages plus what was cached newer than the
//     oldest of them (the cached copy of a message the fill also holds
//     loses to the fill's), so the result holds every message newer than
//     its oldest entry; Fill of an empty list keeps what was cached and
//     marks it complete;
//   - a Remove or Replace made shortly before a Fill wins over the filled
//     copy (the fill was read from the store before the change): a removed
//     message is not brought back, an edit is not undone;
//   - an Add older than the oldest entry of a complete, non-empty window
//     is dropped (keeping it could leave a gap in a complete window);
//   - the complete mark expires CompleteTTL after the Fill that set it
//     (the entries stay), the whole window TTL after its last write.
package cachetest

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/message"
)

// The configuration newCache must use.
const (
	Window      = 8
	TTL         = time.Hour
	CompleteTTL = 10 * time.Minute
)

// Setup is what newCache returns.
type Setup struct {
	Cache message.Cache
	// Advance moves the cache's clock forward by d. Nil when the
	// implementation's clock cannot be injected: the expiry test is then
	// skipped (the implementation tests expiry itself).
	Advance func(d time.Duration)
}

// Run runs the suite.
func Run(t *testing.T, newCache func(t *testing.T) Setup) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Setup)
	}{
		{"Empty", testEmpty},
		{"AddOrder", testAddOrder},
		{"Fields", testFields},
		{"Trim", testTrim},
		{"Replace", testReplace},
		{"Remove", testRemove},
		{"Fill", testFill},
		{"FillMerge", testFillMerge},
		{"FillTrim", testFillTrim},
		{"FillRace", testFillRace},
		{"FillConcurrentAdds", testFillConcurrentAdds},
		{"AddBelowComplete", testAddBelowComplete},
		{"Invalidate", testInvalidate},
		{"Isolation", testIsolation},
		{"Invalid", testInvalid},
		{"Expiry", testExpiry},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newCache(t)) })
	}
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Channels that differ in one low bit, one high bit and in the middle.
const (
	chA uint64 = 0x0000_0100_0000_0001
	chB uint64 = 0x0000_0100_0000_0002
	chC uint64 = 0x8000_0100_0000_0001
	chD uint64 = 0x0000_0100_0001_0001
)

// Msg is a message for tests: channel ch, ID id (seq id too), created id
// milliseconds after the suite's base time. IDs are large, like
// snowflakes, so an implementation that keeps them in float64 loses.
func Msg(ch, id uint64) message.Message {
	return message.Message{
		ID:        big + id,
		ChannelID: ch,
		ServerID:  9,
		AuthorID:  7,
		Content:   fmt.Sprintf("message %d", id),
		Seq:       id,
		CreatedAt: base.Add(time.Duration(id) * time.Millisecond),
	}
}

// big is added to every test ID: above 2^53, with low bits set.
const big uint64 = 1<<60 + 1<<20

func msgs(ch uint64, ids ...uint64) []message.Message {
	out := make([]message.Message, len(ids))
	for i, id := range ids {
		out[i] = Msg(ch, id)
	}
	return out
}

// span is Msg(ch, hi), Msg(ch, hi-1), ..., Msg(ch, lo): newest first.
func span(ch, hi, lo uint64) []message.Message {
	var out []message.Message
	for id := hi; id >= lo; id-- {
		out = append(out, Msg(ch, id))
	}
	return out
}

func mustAdd(tb testing.TB, c message.Cache, ms ...message.Message) {
	tb.Helper()
	for _, m := range ms {
		if err := c.Add(tb.Context(), m); err != nil {
			tb.Fatalf("Add(%d/%d): %v", m.ChannelID, m.ID-big, err)
		}
	}
}

func mustFill(tb testing.TB, c message.Cache, ch uint64, ms []message.Message) {
	tb.Helper()
	if err := c.Fill(tb.Context(), ch, ms); err != nil {
		tb.Fatalf("Fill(%d, %d messages): %v", ch, len(ms), err)
	}
}

// wantLatest checks Latest(ch, limit) against want (newest first) and
// the complete flag.
func wantLatest(tb testing.TB, c message.Cache, ch uint64, limit int, want []message.Message, complete bool) {
	tb.Helper()
	got, gotComplete, err := c.Latest(tb.Context(), ch, limit)
	if err != nil {
		tb.Fatalf("Latest(%d, %d): %v", ch, limit, err)
	}
	if !equal(got, want) || gotComplete != complete {
		tb.Fatalf("Latest(%d, %d) =\n  %s complete=%v\nwant\n  %s complete=%v", ch, limit, show(got), gotComplete, show(want), complete)
	}
}

func equal(a, b []message.Message) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !reflect.DeepEqual(norm(a[i]), norm(b[i])) {
			return false
		}
	}
	return true
}

func norm(m message.Message) message.Message {
	m.CreatedAt, m.EditedAt = m.CreatedAt.UTC(), m.EditedAt.UTC()
	if len(m.Mentions.Users) == 0 {
		m.Mentions.Users = nil
	}
	if len(m.Mentions.Roles) == 0 {
		m.Mentions.Roles = nil
	}
	return m
}

func show(ms []message.Message) string {
	s := "["
	for i, m := range ms {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%d:%q", m.ID-big, m.Content)
	}
	return s + "]"
}

func wantKind(tb testing.TB, what string, err error, kind guildhall.Kind) {
	tb.Helper()
	if err == nil || guildhall.KindOf(err) != kind {
		tb.Fatalf("%s: err = %v, want kind %v", what, err, kind)
	}
}

func testEmpty(t *testing.T, s Setup) {
	wantLatest(t, s.Cache, chA, 50, nil, false)
	// Remove, Replace and Invalidate of nothing are no-ops, not errors.
	if err := s.Cache.Remove(t.Context(), chA, big+1); err != nil {
		t.Fatal(err)
	}
	if err := s.Cache.Replace(t.Context(), Msg(chA, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Cache.Invalidate(t.Context(), chA); err != nil {
		t.Fatal(err)
	}
	wantLatest(t, s.Cache, chA, 50, nil, false)
	// An empty channel filled from the store is complete and empty.
	mustFill(t, s.Cache, chA, nil)
	wantLatest(t, s.Cache, chA, 50, nil, true)
}

func testAddOrder(t *testing.T, s Setup) {
	mustAdd(t, s.Cache, msgs(chA, 3, 1, 2, 5, 4)...)
	wantLatest(t, s.Cache, chA, 50, span(chA, 5, 1), false)
	wantLatest(t, s.Cache, chA, 2, span(chA, 5, 4), false)
	wantLatest(t, s.Cache, chA, 1, span(chA, 5, 5), false)
	// Adding again replaces.
	m := Msg(chA, 3)
	m.Content = "again"
	mustAdd(t, s.Cache, m)
	want := span(chA, 5, 1)
	want[2] = m
	wantLatest(t, s.Cache, chA, 50, want, false)
}

func testFields(t *testing.T, s Setup) {
	m := message.Message{
		ID:        1<<63 + 12345,
		ChannelID: chC,
		ServerID:  1<<62 + 1,
		AuthorID:  1<<61 + 3,
		Content:   "héllo, wörld 👋\nsecond line\x00with a NUL",
		Seq:       1 << 40,
		Nonce:     "client-nonce-1",
		CreatedAt: base.Add(1500 * time.Millisecond),
		EditedAt:  base.Add(time.Hour + 7*time.Millisecond),
		Mentions:  message.Mentions{Users: []uint64{1 << 62, 5}, Roles: []uint64{9}, Everyone: true},
	}
	mustAdd(t, s.Cache, m)
	wantLatest(t, s.Cache, chC, 1, []message.Message{m}, false)
	// A message with nothing optional set keeps its zero values.
	z := message.Message{ID: 1<<63 + 12346, ChannelID: chC}
	mustAdd(t, s.Cache, z)
	wantLatest(t, s.Cache, chC, 2, []message.Message{z, m}, false)
}

func testTrim(t *testing.T, s Setup) {
	for id := uint64(1); id <= Window+5; id++ {
		mustAdd(t, s.Cache, Msg(chA, id))
	}
	wantLatest(t, s.Cache, chA, 100, span(chA, Window+5, 6), false)
	// A late Add older than everything in a full window falls out at once.
	mustAdd(t, s.Cache, Msg(chA, 2))
	wantLatest(t, s.Cache, chA, 100, span(chA, Window+5, 6), false)
}

func testReplace(t *testing.T, s Setup) {
	mustAdd(t, s.Cache, msgs(chA, 1, 2, 3)...)
	e := Msg(chA, 2)
	e.Content, e.EditedAt = "edited", base.Add(time.Hour)
	if err := s.Cache.Replace(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	wantLatest(t, s.Cache, chA, 10, []message.Message{Msg(chA, 3), e, Msg(chA, 1)}, false)
	// Not cached: ignored, in this channel and in one with no window.
	if err := s.Cache.Replace(t.Context(), Msg(chA, 9)); err != nil {
		t.Fatal(err)
	}
	if err := s.Cache.Replace(t.Context(), Msg(chB, 2)); err != nil {
		t.Fatal(err)
	}
	wantLatest(t, s.Cache, chA, 10, []message.Message{Msg(chA, 3), e, Msg(chA, 1)}, false)
	wantLatest(t, s.Cache, chB, 10, nil, false)
	// Replace keeps a complete window complete.
	mustFill(t, s.Cache, chA, span(chA, 3, 1))
	e.Content = "edited twice"
	if err := s.Cache.Replace(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	wantLatest(t, s.Cache, chA, 10, []message.Message{Msg(chA, 3), e, Msg(chA, 1)}, true)
}

func testRemove(t *testing.T, s Setup) {
	mustAdd(t, s.Cache, msgs(chA, 1, 2, 3, 4)...)
	if err := s.Cache.Remove(t.Context(), chA, big+3); err != nil {
		t.Fatal(err)
	}
	wantLatest(t, s.Cache, chA, 10, msgs(chA, 4, 2, 1), false)
	if err := s.Cache.Remove(t.Context(), chA, big+3); err != nil {
		t.Fatal(err)
	}
	wantLatest(t, s.Cache, chA, 10, msgs(chA, 4, 2, 1), false)
	mustFill(t, s.Cache, chA, msgs(chA, 4, 2, 1))
	if err := s.Cache.Remove(t.Context(), chA, big+4); err != nil {
		t.Fatal(err)
	}
	wantLatest(t, s.Cache, chA, 10, msgs(chA, 2, 1), true)
}

func testFill(t *testing.T, s Setup) {
	mustFill(t, s.Cache, chA, span(chA, 5, 1))
	wantLatest(t, s.Cache, chA, 10, span(chA, 5, 1), true)
	wantLatest(t, s.Cache, chA, 3, span(chA, 5, 3), true)
	// Adds keep it complete, also once the window is full and trims.
	for id := uint64(6); id <= Window+3; id++ {
		mustAdd(t, s.Cache, Msg(chA, id))
	}
	wantLatest(t, s.Cache, chA, 100, span(chA, Window+3, 4), true)
}

func testFillMerge(t *testing.T, s Setup) {
	// Messages 8 and 9 were added while the reader read 1..6 from the
	// store (7 is not cached, e.g. its Add failed); 3 was added long ago
	// (cached, then the window was trimmed by another node, say).
	mustAdd(t, s.Cache, msgs(chA, 9, 8)...)
	stale := Msg(chA, 5)
	stale.Content = "cached copy"
	mustAdd(t, s.Cache, stale)
	mustFill(t, s.Cache, chA, span(chA, 6, 4))
	// 9, 8 (newer than the fill), 6..4 from the fill (the fill's 5 wins).
	wantLatest(t, s.Cache, chA, 10, append(msgs(chA, 9, 8), span(chA, 6, 4)...), true)

	// Something cached older than the fill's oldest is dropped: it might
	// leave a gap.
	mustAdd(t, s.Cache, msgs(chB, 1, 20)...)
	mustFill(t, s.Cache, chB, span(chB, 12, 10))
	wantLatest(t, s.Cache, chB, 10, append(msgs(chB, 20), span(chB, 12, 10)...), true)

	// Fill of an empty store keeps what was added (not yet persisted).
	mustAdd(t, s.Cache, msgs(chC, 1, 2)...)
	mustFill(t, s.Cache, chC, nil)
	wantLatest(t, s.Cache, chC, 10, msgs(chC, 2, 1), true)

	// A second Fill over a complete window merges the same way.
	mustFill(t, s.Cache, chC, msgs(chC, 1))
	wantLatest(t, s.Cache, chC, 10, msgs(chC, 2, 1), true)
}

func testFillTrim(t *testing.T, s Setup) {
	mustFill(t, s.Cache, chA, span(chA, Window+10, 1))
	wantLatest(t, s.Cache, chA, 100, span(chA, Window+10, 11), true)
	// Adds newer than a long fill push the fill's oldest out.
	mustAdd(t, s.Cache, Msg(chD, 100))
	mustFill(t, s.Cache, chD, span(chD, Window+10, 1))
	wantLatest(t, s.Cache, chD, 100, append(msgs(chD, 100), span(chD, Window+10, 12)...), true)
}

// testFillRace: a reader read the store, then a message was deleted or
// edited (its Remove or Replace reached the cache), then the reader's
// Fill arrives with the old copies.
func testFillRace(t *testing.T, s Setup) {
	ctx := t.Context()
	read := span(chA, 5, 1) // what the reader got from the store
	if err := s.Cache.Remove(ctx, chA, big+4); err != nil {
		t.Fatal(err)
	}
	e := Msg(chA, 2)
	e.Content, e.EditedAt = "edited after the read", base.Add(time.Hour)
	if err := s.Cache.Replace(ctx, e); err != nil {
		t.Fatal(err)
	}
	wantLatest(t, s.Cache, chA, 10, nil, false) // Replace of uncached shows nothing
	mustFill(t, s.Cache, chA, read)
	wantLatest(t, s.Cache, chA, 10, []message.Message{Msg(chA, 5), Msg(chA, 3), e, Msg(chA, 1)}, true)

	// The same with the window already there (incomplete).
	mustAdd(t, s.Cache, Msg(chB, 6))
	if err := s.Cache.Remove(ctx, chB, big+6); err != nil {
		t.Fatal(err)
	}
	mustFill(t, s.Cache, chB, span(chB, 6, 5))
	wantLatest(t, s.Cache, chB, 10, msgs(chB, 5), true)
}

// testFillConcurrentAdds: Fills racing with Adds never lose an Add (a
// Fill that read the window, then wrote it back, would).
func testFillConcurrentAdds(t *testing.T, s Setup) {
	ctx := t.Context()
	for round := range 20 {
		ch := chA + uint64(round)<<8
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for id := uint64(101); id <= 100+Window/2; id++ {
				if err := s.Cache.Add(ctx, Msg(ch, id)); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 3 {
				if err := s.Cache.Fill(ctx, ch, span(ch, 100, 101-Window/2)); err != nil {
					errs <- err
					return
				}
			}
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		wantLatest(t, s.Cache, ch, 100, span(ch, 100+Window/2, 101-Window/2), true)
	}
}

func testAddBelowComplete(t *testing.T, s Setup) {
	mustFill(t, s.Cache, chA, span(chA, 10, 8))
	mustAdd(t, s.Cache, Msg(chA, 5))
	wantLatest(t, s.Cache, chA, 10, span(chA, 10, 8), true)
	mustAdd(t, s.Cache, Msg(chA, 9)) // inside the window: replaces
	wantLatest(t, s.Cache, chA, 10, span(chA, 10, 8), true)
	// An empty complete window takes any Add.
	mustFill(t, s.Cache, chB, nil)
	mustAdd(t, s.Cache, Msg(chB, 5))
	wantLatest(t, s.Cache, chB, 10, msgs(chB, 5), true)
}

func testInvalidate(t *testing.T, s Setup) {
	mustFill(t, s.Cache, chA, span(chA, 5, 1))
	mustFill(t, s.Cache, chB, span(chB, 5, 1))
	if err := s.Cache.Invalidate(t.Context(), chA); err != nil {
		t.Fatal(err)
	}
	wantLatest(t, s.Cache, chA, 10, nil, false)
	wantLatest(t, s.Cache, chB, 10, span(chB, 5, 1), true)
	// Adds after an Invalidate start an incomplete window.
	mustAdd(t, s.Cache, Msg(chA, 6))
	wantLatest(t, s.Cache, chA, 10, msgs(chA, 6), false)
}

func testIsolation(t *testing.T, s Setup) {
	for i, ch := range []uint64{chA, chB, chC, chD} {
		mustAdd(t, s.Cache, msgs(ch, uint64(i+1), uint64(i+10))...)
	}
	mustFill(t, s.Cache, chB, msgs(chB, 10))
	if err := s.Cache.Remove(t.Context(), chC, big+3); err != nil {
		t.Fatal(err)
	}
	wantLatest(t, s.Cache, chA, 10, msgs(chA, 10, 1), false)
	wantLatest(t, s.Cache, chB, 10, msgs(chB, 11, 10), true)
	wantLatest(t, s.Cache, chC, 10, msgs(chC, 12), false)
	wantLatest(t, s.Cache, chD, 10, msgs(chD, 13, 4), false)
}

func testInvalid(t *testing.T, s Setup) {
	ctx := t.Context()
	mustAdd(t, s.Cache, msgs(chA, 1, 2)...)
	before := msgs(chA, 2, 1)
	for _, limit := range []int{0, -1} {
		_, _, err := s.Cache.Latest(ctx, chA, limit)
		wantKind(t, fmt.Sprintf("Latest(limit %d)", limit), err, guildhall.Invalid)
	}
	wantKind(t, "Add(id 0)", s.Cache.Add(ctx, message.Message{ChannelID: chA}), guildhall.Invalid)
	wantKind(t, "Add(channel 0)", s.Cache.Add(ctx, message.Message{ID: 5}), guildhall.Invalid)
	wantKind(t, "Replace(id 0)", s.Cache.Replace(ctx, message.Message{ChannelID: chA}), guildhall.Invalid)
	wantKind(t, "Fill(wrong channel)", s.Cache.Fill(ctx, chA, []message.Message{Msg(chA, 4), Msg(chB, 3)}), guildhall.Invalid)
	wantKind(t, "Fill(oldest first)", s.Cache.Fill(ctx, chA, msgs(chA, 3, 4)), guildhall.Invalid)
	wantKind(t, "Fill(duplicate)", s.Cache.Fill(ctx, chA, msgs(chA, 4, 4)), guildhall.Invalid)
	wantKind(t, "Fill(id 0)", s.Cache.Fill(ctx, chA, []message.Message{Msg(chA, 4), {ChannelID: chA}}), guildhall.Invalid)
	wantKind(t, "Fill(channel 0)", s.Cache.Fill(ctx, 0, nil), guildhall.Invalid)
	huge := Msg(chA, 3)
	huge.Content = string(make([]byte, 1<<20))
	wantKind(t, "Add(1 MiB)", s.Cache.Add(ctx, huge), guildhall.TooLarge)
	wantLatest(t, s.Cache, chA, 10, before, false)
}

func testExpiry(t *testing.T, s Setup) {
	if s.Advance == nil {
		t.Skip("the implementation's clock cannot be injected; it tests expiry itself")
	}
	mustFill(t, s.Cache, chA, span(chA, 3, 1))
	mustAdd(t, s.Cache, Msg(chB, 1))
	s.Advance(CompleteTTL - time.Second)
	wantLatest(t, s.Cache, chA, 10, span(chA, 3, 1), true)
	mustAdd(t, s.Cache, Msg(chA, 4)) // a write keeps the window, not the mark
	s.Advance(2 * time.Second)
	wantLatest(t, s.Cache, chA, 10, span(chA, 4, 1), false)
	s.Advance(TTL - CompleteTTL - time.Second)
	// chB's last write was TTL ago, chA's CompleteTTL-1s later.
	wantLatest(t, s.Cache, chB, 10, nil, false)
	wantLatest(t, s.Cache, chA, 10, span(chA, 4, 1), false)
	s.Advance(CompleteTTL)
	wantLatest(t, s.Cache, chA, 10, nil, false)
}

// testConcurrent runs writers and readers on a few channels at once (run
// it with -race) and checks the windows' invariants afterwards.
func testConcurrent(t *testing.T, s Setup) {
	ctx := t.Context()
	chans := []uint64{chA, chB, chC}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 150 {
				ch := chans[r.IntN(len(chans))]
				id := uint64(w*1000 + i + 1)
				var err error
				switch r.IntN(8) {
				case 0, 1, 2:
					err = s.Cache.Add(ctx, Msg(ch, id))
				case 3:
					m := Msg(ch, uint64(r.IntN(4000)+1))
					m.Content = "edited"
					err = s.Cache.Replace(ctx, m)
				case 4:
					err = s.Cache.Remove(ctx, ch, big+uint64(r.IntN(4000)+1))
				case 5:
					err = s.Cache.Fill(ctx, ch, span(ch, id, id-min(id-1, 3)))
				case 6:
					if r.IntN(4) == 0 {
						err = s.Cache.Invalidate(ctx, ch)
					}
				default:
					var got []message.Message
					got, _, err = s.Cache.Latest(ctx, ch, 1+r.IntN(Window))
					if err == nil {
						err = checkWindow(ch, got)
					}
				}
				if err != nil {
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
	for _, ch := range chans {
		got, _, err := s.Cache.Latest(ctx, ch, 100)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkWindow(ch, got); err != nil {
			t.Fatal(err)
		}
	}
}

func checkWindow(ch uint64, ms []message.Message) error {
	if len(ms) > Window {
		return fmt.Errorf("channel %d: %d messages, window is %d", ch, len(ms), Window)
	}
	for i, m := range ms {
		if m.ChannelID != ch {
			return fmt.Errorf("channel %d holds a message of channel %d", ch, m.ChannelID)
		}
		if i > 0 && m.ID >= ms[i-1].ID {
			return fmt.Errorf("channel %d: not newest first: %s", ch, show(ms))
		}
	}
	return nil
}
