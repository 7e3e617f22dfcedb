// Package messagetest is the conformance suite of message.Store. Every
// implementation runs it from its own tests:
//
//	func TestStore(t *testing.T) {
//		messagetest.Run(t, func(t *testing.T) message.Store { return newStore(t) })
//	}
//
// The suite talks to the store only through message.Store. newStore must
// return an empty store for each call; the subtests do not run in parallel,
// so an implementation on a shared server may reset it in newStore. Times
// are in UTC and whole milliseconds, which every backend can keep exactly.
//
// Besides what message.Store documents, the suite pins down these rules:
//   - Update changes Content and EditedAt only, whatever else m carries;
//   - a deleted message's seq stays taken and LastSeq does not go back;
//   - ByNonce does not find a deleted message;
//   - List with After = the largest uint64 is empty.
package messagetest

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/message"
)

// Run runs the suite; newStore returns a new, empty store.
func Run(t *testing.T, newStore func(t *testing.T) message.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s message.Store)
	}{
		{"InsertGet", testInsertGet},
		{"SeqConflict", testSeqConflict},
		{"LastSeq", testLastSeq},
		{"IDsGrowWithSeq", testIDsGrowWithSeq},
		{"ByNonce", testByNonce},
		{"Update", testUpdate},
		{"Delete", testDelete},
		{"ListEmpty", testListEmpty},
		{"List", testList},
		{"ListAroundGaps", testListAroundGaps},
		{"ListIsolated", testListIsolated},
		{"Mentions", testMentions},
		{"PersistCreate", testPersistCreate},
		{"PersistReplay", testPersistReplay},
		{"PersistInOrder", testPersistInOrder},
		{"PersistMissing", testPersistMissing},
		{"PersistAfterInsert", testPersistAfterInsert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

// base is the suite's clock: every time is base plus an offset.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Channel IDs that differ in one low bit, in one high bit and in the
// middle, so a store that mixes up channel boundaries shows it.
const (
	chA uint64 = 0x0000_0100_0000_0001
	chB uint64 = 0x0000_0100_0000_0002
	chC uint64 = 0x8000_0100_0000_0001
	chD uint64 = 0x0000_0100_0001_0001
)

// Msg is a message for tests: channel ch, ID id, seq seq, by author 7 in
// server 9, created id milliseconds after the suite's base time.
func Msg(ch, id, seq uint64) message.Message {
	return message.Message{
		ID:        id,
		ChannelID: ch,
		ServerID:  9,
		AuthorID:  7,
		Content:   fmt.Sprintf("message %d", id),
		Seq:       seq,
		CreatedAt: base.Add(time.Duration(id) * time.Millisecond),
	}
}

// MustInsert inserts each message or fails tb.
func MustInsert(tb testing.TB, s message.Store, msgs ...message.Message) {
	tb.Helper()
	for _, m := range msgs {
		if err := s.Insert(tb.Context(), m); err != nil {
			tb.Fatalf("Insert(channel %d, id %d, seq %d): %v", m.ChannelID, m.ID, m.Seq, err)
		}
	}
}

func testInsertGet(t *testing.T, s message.Store) {
	ctx := t.Context()
	m := message.Message{
		ID:        1 << 40,
		ChannelID: chA,
		ServerID:  1 << 41,
		AuthorID:  1<<42 + 5,
		Content:   "héllo, wörld 👋\nsecond line\x00with a NUL",
		Seq:       1,
		Nonce:     "client-nonce-1",
		CreatedAt: base.Add(1500 * time.Millisecond),
	}
	MustInsert(t, s, m)
	got, err := s.Get(ctx, chA, m.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	wantEqual(t, "Get", norm(got), m)

	edited := Msg(chA, 2<<40, 2)
	edited.EditedAt = base.Add(time.Hour)
	MustInsert(t, s, edited)
	got, err = s.Get(ctx, chA, edited.ID)
	if err != nil {
		t.Fatalf("Get(edited): %v", err)
	}
	wantEqual(t, "Get(edited)", norm(got), edited)

	_, err = s.Get(ctx, chA, 3<<40)
	wantKind(t, "Get(unknown)", err, guildhall.NotFound)
	_, err = s.Get(ctx, chB, m.ID)
	wantKind(t, "Get(other channel)", err, guildhall.NotFound)
	_, err = s.Get(ctx, chC, m.ID)
	wantKind(t, "Get(other channel)", err, guildhall.NotFound)
}

func testSeqConflict(t *testing.T, s message.Store) {
	ctx := t.Context()
	MustInsert(t, s, Msg(chA, 100, 1), Msg(chA, 200, 2))
	for _, m := range []message.Message{Msg(chA, 300, 1), Msg(chA, 300, 2)} {
		wantKind(t, fmt.Sprintf("Insert(seq %d again)", m.Seq), s.Insert(ctx, m), guildhall.Conflict)
		_, err := s.Get(ctx, chA, m.ID)
		wantKind(t, "Get(rejected)", err, guildhall.NotFound)
	}
	// A rejected insert must not leave its nonce behind.
	dup := Msg(chA, 400, 2)
	dup.Nonce = "n"
	wantKind(t, "Insert(taken seq, with nonce)", s.Insert(ctx, dup), guildhall.Conflict)
	if m, ok, err := s.ByNonce(ctx, chA, dup.AuthorID, "n"); err != nil || ok {
		t.Errorf("ByNonce(nonce of rejected insert) = %+v, %v, %v; want none", m, ok, err)
	}
	wantIDs(t, s, chA, message.Query{Limit: 10}, 200, 100)
	wantLastSeq(t, s, chA, 2)

	// The same seq in another channel is free.
	MustInsert(t, s, Msg(chB, 300, 1), Msg(chB, 400, 2))
	wantIDs(t, s, chB, message.Query{Limit: 10}, 400, 300)
}

func testLastSeq(t *testing.T, s message.Store) {
	wantLastSeq(t, s, chA, 0)
	MustInsert(t, s, Msg(chA, 10, 1))
	wantLastSeq(t, s, chA, 1)
	MustInsert(t, s, Msg(chA, 20, 2), Msg(chA, 30, 3))
	wantLastSeq(t, s, chA, 3)
	wantLastSeq(t, s, chB, 0)
	wantLastSeq(t, s, chC, 0)
	MustInsert(t, s, Msg(chB, 15, 1))
	wantLastSeq(t, s, chB, 1)
	wantLastSeq(t, s, chA, 3)
	// A late insert of a lower seq does not lower it.
	MustInsert(t, s, Msg(chD, 50, 5), Msg(chD, 40, 4))
	wantLastSeq(t, s, chD, 5)
}

func testByNonce(t *testing.T, s message.Store) {
	ctx := t.Context()
	m := Msg(chA, 100, 1)
	m.Nonce = "abc"
	plain := Msg(chA, 200, 2)
	MustInsert(t, s, m, plain)

	got, ok, err := s.ByNonce(ctx, chA, m.AuthorID, "abc")
	if err != nil || !ok {
		t.Fatalf("ByNonce = %v, %v; want the message", ok, err)
	}
	wantEqual(t, "ByNonce", norm(got), m)

	for _, tc := range []struct {
		what   string
		ch     uint64
		author uint64
		nonce  string
	}{
		{"other author", chA, m.AuthorID + 1, "abc"},
		{"other channel", chB, m.AuthorID, "abc"},
		{"other nonce", chA, m.AuthorID, "abd"},
		{"prefix of the nonce", chA, m.AuthorID, "ab"},
		{"nonce extended", chA, m.AuthorID, "abcd"},
	} {
		if got, ok, err := s.ByNonce(ctx, tc.ch, tc.author, tc.nonce); err != nil || ok {
			t.Errorf("ByNonce(%s) = %+v, %v, %v; want none", tc.what, got, ok, err)
		}
	}

	// The same nonce from another author is another message.
	other := Msg(chA, 300, 3)
	other.AuthorID, other.Nonce = 8, "abc"
	MustInsert(t, s, other)
	if got, ok, err := s.ByNonce(ctx, chA, 8, "abc"); err != nil || !ok || got.ID != other.ID {
		t.Errorf("ByNonce(author 8) = %+v, %v, %v; want message %d", got, ok, err, other.ID)
	}
	if got, ok, err := s.ByNonce(ctx, chA, m.AuthorID, "abc"); err != nil || !ok || got.ID != m.ID {
		t.Errorf("ByNonce(author 7) = %+v, %v, %v; want message %d", got, ok, err, m.ID)
	}

	// An edit shows through the nonce; a deleted message is gone from it.
	m.Content, m.EditedAt = "edited", base.Add(time.Hour)
	if err := s.Update(ctx, m); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got, ok, err := s.ByNonce(ctx, chA, m.AuthorID, "abc"); err != nil || !ok || got.Content != "edited" {
		t.Errorf("ByNonce(after edit) = %+v, %v, %v; want the edited message", got, ok, err)
	}
	if err := s.Delete(ctx, chA, m.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got, ok, err := s.ByNonce(ctx, chA, m.AuthorID, "abc"); err != nil || ok {
		t.Errorf("ByNonce(deleted) = %+v, %v, %v; want none", got, ok, err)
	}
}

func testUpdate(t *testing.T, s message.Store) {
	ctx := t.Context()
	m := Msg(chA, 100, 1)
	m.Nonce = "n1"
	MustInsert(t, s, m, Msg(chA, 200, 2))

	// Only Content and EditedAt count; the rest of the argument is ignored.
	edit := message.Message{ID: m.ID, ChannelID: chA, Content: "new content", EditedAt: base.Add(time.Hour), Seq: 99, AuthorID: 1234}
	if err := s.Update(ctx, edit); err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := m
	want.Content, want.EditedAt = edit.Content, edit.EditedAt
	got, err := s.Get(ctx, chA, m.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	wantEqual(t, "Get(updated)", norm(got), want)
	page, err := s.List(ctx, chA, message.Query{Limit: 10})
	if err != nil || len(page) != 2 {
		t.Fatalf("List = %v, %v", page, err)
	}
	wantEqual(t, "List()[1]", norm(page[1]), want)
	wantLastSeq(t, s, chA, 2)

	err = s.Update(ctx, message.Message{ID: 300, ChannelID: chA, Content: "x", EditedAt: base})
	wantKind(t, "Update(unknown)", err, guildhall.NotFound)
	err = s.Update(ctx, message.Message{ID: m.ID, ChannelID: chB, Content: "x", EditedAt: base})
	wantKind(t, "Update(other channel)", err, guildhall.NotFound)
	_, err = s.Get(ctx, chB, m.ID)
	wantKind(t, "Get(after failed update)", err, guildhall.NotFound)
	wantIDs(t, s, chA, message.Query{Limit: 10}, 200, 100)
}

func testDelete(t *testing.T, s message.Store) {
	ctx := t.Context()
	MustInsert(t, s, Msg(chA, 100, 1), Msg(chA, 200, 2), Msg(chA, 300, 3))
	if err := s.Delete(ctx, chA, 300); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Get(ctx, chA, 300)
	wantKind(t, "Get(deleted)", err, guildhall.NotFound)
	wantKind(t, "Delete(deleted)", s.Delete(ctx, chA, 300), guildhall.NotFound)
	wantKind(t, "Delete(unknown)", s.Delete(ctx, chA, 400), guildhall.NotFound)
	wantKind(t, "Delete(other channel)", s.Delete(ctx, chB, 200), guildhall.NotFound)
	wantKind(t, "Update(deleted)", s.Update(ctx, message.Message{ID: 300, ChannelID: chA, Content: "x", EditedAt: base}), guildhall.NotFound)
	_, err = s.Get(ctx, chA, 300)
	wantKind(t, "Get(deleted, after update)", err, guildhall.NotFound)

	// The seq of a deleted message stays taken and LastSeq stays.
	wantLastSeq(t, s, chA, 3)
	wantKind(t, "Insert(seq of a deleted message)", s.Insert(ctx, Msg(chA, 400, 3)), guildhall.Conflict)
	MustInsert(t, s, Msg(chA, 400, 4))
	wantLastSeq(t, s, chA, 4)
	wantIDs(t, s, chA, message.Query{Limit: 10}, 400, 200, 100)
	if _, err := s.Get(ctx, chA, 200); err != nil {
		t.Errorf("Get(neighbour of deleted): %v", err)
	}
}

func testListEmpty(t *testing.T, s message.Store) {
	for _, q := range []message.Query{
		{Limit: 50},
		{Limit: 1},
		{Before: 100, Limit: 50},
		{After: 100, Limit: 50},
		{After: 1, Limit: 50},
		{Around: 100, Limit: 50},
		{Around: 100, Limit: 1},
	} {
		wantIDs(t, s, chA, q)
	}
	// A channel with messages does not leak into an empty one next to it.
	MustInsert(t, s, Msg(chB, 100, 1))
	wantIDs(t, s, chA, message.Query{Limit: 50})
	wantIDs(t, s, chA, message.Query{Around: 100, Limit: 50})
}

// history is ten messages, IDs 10, 20, ..., 100 with seq 1..10.
func history(tb testing.TB, s message.Store, ch uint64) {
	tb.Helper()
	for i := uint64(1); i <= 10; i++ {
		MustInsert(tb, s, Msg(ch, 10*i, i))
	}
}

func testList(t *testing.T, s message.Store) {
	history(t, s, chA)
	for _, tc := range []struct {
		q    message.Query
		want []uint64
	}{
		// Latest.
		{message.Query{Limit: 3}, ids(100, 90, 80)},
		{message.Query{Limit: 1}, ids(100)},
		{message.Query{Limit: 10}, ids(100, 90, 80, 70, 60, 50, 40, 30, 20, 10)},
		{message.Query{Limit: 100}, ids(100, 90, 80, 70, 60, 50, 40, 30, 20, 10)},
		// Before: strictly older.
		{message.Query{Before: 50, Limit: 3}, ids(40, 30, 20)},
		{message.Query{Before: 55, Limit: 3}, ids(50, 40, 30)},
		{message.Query{Before: 30, Limit: 5}, ids(20, 10)},
		{message.Query{Before: 11, Limit: 5}, ids(10)},
		{message.Query{Before: 10, Limit: 5}, nil},
		{message.Query{Before: 1, Limit: 5}, nil},
		{message.Query{Before: 1000, Limit: 2}, ids(100, 90)},
		{message.Query{Before: math.MaxUint64, Limit: 2}, ids(100, 90)},
		// After: the oldest ones strictly newer, newest first.
		{message.Query{After: 50, Limit: 3}, ids(80, 70, 60)},
		{message.Query{After: 45, Limit: 3}, ids(70, 60, 50)},
		{message.Query{After: 1, Limit: 2}, ids(20, 10)},
		{message.Query{After: 10, Limit: 2}, ids(30, 20)},
		{message.Query{After: 80, Limit: 5}, ids(100, 90)},
		{message.Query{After: 95, Limit: 5}, ids(100)},
		{message.Query{After: 100, Limit: 5}, nil},
		{message.Query{After: 1000, Limit: 5}, nil},
		{message.Query{After: math.MaxUint64, Limit: 5}, nil},
		{message.Query{After: 1, Limit: 100}, ids(100, 90, 80, 70, 60, 50, 40, 30, 20, 10)},
		// Around: Limit/2 with ID >= Around, the rest with ID < Around.
		{message.Query{Around: 50, Limit: 4}, ids(60, 50, 40, 30)},
		{message.Query{Around: 50, Limit: 5}, ids(60, 50, 40, 30, 20)},
		{message.Query{Around: 50, Limit: 2}, ids(50, 40)},
		{message.Query{Around: 50, Limit: 1}, ids(40)},
		{message.Query{Around: 55, Limit: 4}, ids(70, 60, 50, 40)},
		{message.Query{Around: 100, Limit: 6}, ids(100, 90, 80, 70)},
		{message.Query{Around: 90, Limit: 6}, ids(100, 90, 80, 70, 60)},
		{message.Query{Around: 10, Limit: 4}, ids(20, 10)},
		{message.Query{Around: 20, Limit: 6}, ids(40, 30, 20, 10)},
		{message.Query{Around: 1, Limit: 4}, ids(20, 10)},
		{message.Query{Around: 1000, Limit: 4}, ids(100, 90)},
		{message.Query{Around: 50, Limit: 100}, ids(100, 90, 80, 70, 60, 50, 40, 30, 20, 10)},
	} {
		wantIDs(t, s, chA, tc.q, tc.want...)
	}
}

func testListAroundGaps(t *testing.T, s message.Store) {
	ctx := t.Context()
	history(t, s, chA)
	for _, id := range []uint64{50, 90} {
		if err := s.Delete(ctx, chA, id); err != nil {
			t.Fatalf("Delete(%d): %v", id, err)
		}
	}
	for _, tc := range []struct {
		q    message.Query
		want []uint64
	}{
		{message.Query{Limit: 3}, ids(100, 80, 70)},
		{message.Query{Around: 50, Limit: 4}, ids(70, 60, 40, 30)},
		{message.Query{Around: 45, Limit: 4}, ids(70, 60, 40, 30)},
		{message.Query{Around: 90, Limit: 4}, ids(100, 80, 70)},
		{message.Query{Before: 60, Limit: 2}, ids(40, 30)},
		{message.Query{After: 40, Limit: 2}, ids(70, 60)},
		{message.Query{After: 80, Limit: 5}, ids(100)},
	} {
		wantIDs(t, s, chA, tc.q, tc.want...)
	}
}

func testListIsolated(t *testing.T, s message.Store) {
	history(t, s, chA)
	// Neighbouring channels with interleaved and equal IDs.
	for i := uint64(1); i <= 10; i++ {
		MustInsert(t, s, Msg(chB, 10*i+5, i), Msg(chC, 10*i, i))
	}
	MustInsert(t, s, Msg(chD, 55, 1))
	all := ids(100, 90, 80, 70, 60, 50, 40, 30, 20, 10)
	for _, q := range []message.Query{
		{Limit: 100},
		{After: 1, Limit: 100},
		{Before: 1000, Limit: 100},
		{Around: 55, Limit: 100},
	} {
		wantIDs(t, s, chA, q, all...)
	}
	wantIDs(t, s, chA, message.Query{Before: 60, Limit: 2}, 50, 40)
	wantIDs(t, s, chA, message.Query{After: 50, Limit: 2}, 70, 60)
	wantIDs(t, s, chA, message.Query{Around: 55, Limit: 2}, 60, 50)
	wantIDs(t, s, chB, message.Query{Limit: 2}, 105, 95)
	wantIDs(t, s, chB, message.Query{Around: 50, Limit: 4}, 65, 55, 45, 35)
	wantIDs(t, s, chD, message.Query{Limit: 100}, 55)
	wantIDs(t, s, chD, message.Query{After: 55, Limit: 100})
	wantLastSeq(t, s, chA, 10)
	wantLastSeq(t, s, chD, 1)
}

func ids(v ...uint64) []uint64 { return v }

func wantIDs(tb testing.TB, s message.Store, ch uint64, q message.Query, want ...uint64) {
	tb.Helper()
	page, err := s.List(tb.Context(), ch, q)
	if err != nil {
		tb.Fatalf("List(%d, %+v): %v", ch, q, err)
	}
	got := make([]uint64, 0, len(page))
	for _, m := range page {
		if m.ChannelID != ch {
			tb.Errorf("List(%d, %+v) returned message %d of channel %d", ch, q, m.ID, m.ChannelID)
		}
		got = append(got, m.ID)
	}
	if !slices.Equal(got, want) {
		tb.Errorf("List(%d, %+v) = %v, want %v", ch, q, got, want)
	}
}

func wantLastSeq(tb testing.TB, s message.Store, ch, want uint64) {
	tb.Helper()
	got, err := s.LastSeq(tb.Context(), ch)
	if err != nil {
		tb.Fatalf("LastSeq(%d): %v", ch, err)
	}
	if got != want {
		tb.Errorf("LastSeq(%d) = %d, want %d", ch, got, want)
	}
}

func wantKind(tb testing.TB, what string, err error, kind guildhall.Kind) {
	tb.Helper()
	if err == nil {
		tb.Errorf("%s: no error, want %s", what, kind.Code())
		return
	}
	if got := guildhall.KindOf(err); got != kind {
		tb.Errorf("%s: error %q is %s, want %s", what, err, got.Code(), kind.Code())
	}
}

func wantEqual(tb testing.TB, what string, got, want message.Message) {
	tb.Helper()
	if !reflect.DeepEqual(got, want) {
		tb.Errorf("%s = %+v\nwant %+v", what, got, want)
	}
}

// norm makes times comparable with ==: a store may hand back an equal time
// in another location.
func norm(m message.Message) message.Message {
	m.CreatedAt, m.EditedAt = m.CreatedAt.UTC(), m.EditedAt.UTC()
	return m
}

// testIDsGrowWithSeq: a message whose ID is not above the previous seq's
// is refused, so paging by ID and by seq always agree; Last gives the ID
// of the last seq, even once that message is deleted.
func testIDsGrowWithSeq(t *testing.T, s message.Store) {
	ctx := t.Context()
	if seq, id, err := s.Last(ctx, chA); err != nil || seq != 0 || id != 0 {
		t.Fatalf("Last of an empty channel = %d, %d, %v", seq, id, err)
	}
	MustInsert(t, s, Msg(chA, 100, 1))
	if err := s.Insert(ctx, Msg(chA, 99, 2)); guildhall.KindOf(err) != guildhall.Conflict {
		t.Fatalf("Insert with an ID below the previous seq's: %v, want Conflict", err)
	}
	if err := s.Insert(ctx, Msg(chA, 100+0, 2)); guildhall.KindOf(err) != guildhall.Conflict {
		t.Fatalf("Insert with the previous seq's ID: %v, want Conflict", err)
	}
	MustInsert(t, s, Msg(chA, 101, 2))
	if err := s.Delete(ctx, chA, 101); err != nil {
		t.Fatal(err)
	}
	if seq, id, err := s.Last(ctx, chA); err != nil || seq != 2 || id != 101 {
		t.Fatalf("Last = %d, %d, %v; want 2, 101", seq, id, err)
	}
	wantLastSeq(t, s, chA, 2)
}

func create(m message.Message) message.Change {
	return message.Change{Kind: message.ChangeCreate, Message: m}
}

func edit(m message.Message, content string, at time.Time) message.Change {
	m.Content, m.EditedAt = content, at
	return message.Change{Kind: message.ChangeEdit, Message: m}
}

func del(ch, id uint64) message.Change {
	return message.Change{Kind: message.ChangeDelete, Message: message.Message{ChannelID: ch, ID: id}}
}

// MustPersist persists changes or fails tb.
func MustPersist(tb testing.TB, s message.Store, changes ...message.Change) {
	tb.Helper()
	if err := s.Persist(tb.Context(), changes); err != nil {
		tb.Fatalf("Persist(%d changes): %v", len(changes), err)
	}
}

func mustGet(tb testing.TB, s message.Store, ch, id uint64) message.Message {
	tb.Helper()
	m, err := s.Get(tb.Context(), ch, id)
	if err != nil {
		tb.Fatalf("Get(%d, %d): %v", ch, id, err)
	}
	return norm(m)
}

// testMentions: mentions survive Insert and Persist, through Get, List
// and ByNonce.
func testMentions(t *testing.T, s message.Store) {
	ctx := t.Context()
	a := Msg(chA, 100, 1)
	a.Mentions = message.Mentions{Users: []uint64{1 << 40, 1<<62 + 3}, Roles: []uint64{5}, Everyone: true}
	a.Nonce = "na"
	b := Msg(chA, 200, 2)
	b.Mentions = message.Mentions{Roles: []uint64{7, 8}}
	MustInsert(t, s, a)
	MustPersist(t, s, create(b))
	wantEqual(t, "Get(inserted)", mustGet(t, s, chA, a.ID), a)
	wantEqual(t, "Get(persisted)", mustGet(t, s, chA, b.ID), b)
	page, err := s.List(ctx, chA, message.Query{Limit: 10})
	if err != nil || len(page) != 2 {
		t.Fatalf("List = %v, %v", page, err)
	}
	wantEqual(t, "List()[0]", norm(page[0]), b)
	wantEqual(t, "List()[1]", norm(page[1]), a)
	if got, ok, err := s.ByNonce(ctx, chA, a.AuthorID, "na"); err != nil || !ok {
		t.Fatalf("ByNonce = %v, %v", ok, err)
	} else {
		wantEqual(t, "ByNonce", norm(got), a)
	}
	// An edit keeps them.
	MustPersist(t, s, edit(a, "edited", base.Add(time.Hour)))
	want := a
	want.Content, want.EditedAt = "edited", base.Add(time.Hour)
	wantEqual(t, "Get(edited)", mustGet(t, s, chA, a.ID), want)
}

// testPersistCreate: persisted creates read back like inserted ones,
// with their seq, last seq and nonce.
func testPersistCreate(t *testing.T, s message.Store) {
	ctx := t.Context()
	var changes []message.Change
	for i := uint64(1); i <= 10; i++ {
		m := Msg(chA, 10*i, i)
		if i == 3 {
			m.Nonce = "n3"
		}
		changes = append(changes, create(m))
	}
	changes = append(changes, create(Msg(chB, 15, 1)))
	MustPersist(t, s, changes...)
	wantIDs(t, s, chA, message.Query{Limit: 3}, 100, 90, 80)
	wantIDs(t, s, chA, message.Query{After: 40, Limit: 2}, 60, 50)
	wantIDs(t, s, chB, message.Query{Limit: 10}, 15)
	wantLastSeq(t, s, chA, 10)
	if seq, id, err := s.Last(ctx, chA); err != nil || seq != 10 || id != 100 {
		t.Errorf("Last = %d, %d, %v; want 10, 100", seq, id, err)
	}
	wantEqual(t, "Get", mustGet(t, s, chA, 30), changes[2].Message)
	if got, ok, err := s.ByNonce(ctx, chA, 7, "n3"); err != nil || !ok || got.ID != 30 {
		t.Errorf("ByNonce = %+v, %v, %v; want message 30", got, ok, err)
	}
	// A persisted seq is taken for Insert too.
	wantKind(t, "Insert(persisted seq)", s.Insert(ctx, Msg(chA, 500, 10)), guildhall.Conflict)
	MustInsert(t, s, Msg(chA, 500, 11))
	wantLastSeq(t, s, chA, 11)
	MustPersist(t, s) // nothing is fine
}

// testPersistReplay: a batch persisted twice, or a prefix then the
// whole, ends as if persisted once.
func testPersistReplay(t *testing.T, s message.Store) {
	ctx := t.Context()
	m1, m2, m3 := Msg(chA, 100, 1), Msg(chA, 200, 2), Msg(chA, 300, 3)
	m2.Nonce = "n2"
	batch := []message.Change{
		create(m1), create(m2), create(m3),
		edit(m1, "one, edited", base.Add(time.Hour)),
		del(chA, 200),
	}
	MustPersist(t, s, batch[:2]...)
	MustPersist(t, s, batch...)
	MustPersist(t, s, batch...)
	MustPersist(t, s, batch[3:]...)
	wantIDs(t, s, chA, message.Query{Limit: 10}, 300, 100)
	if got := mustGet(t, s, chA, 100); got.Content != "one, edited" || !got.EditedAt.Equal(base.Add(time.Hour)) {
		t.Errorf("Get(edited) = %+v", got)
	}
	_, err := s.Get(ctx, chA, 200)
	wantKind(t, "Get(deleted)", err, guildhall.NotFound)
	if got, ok, err := s.ByNonce(ctx, chA, m2.AuthorID, "n2"); err != nil || ok {
		t.Errorf("ByNonce(deleted) = %+v, %v, %v; want none", got, ok, err)
	}
	wantLastSeq(t, s, chA, 3)
}

// testPersistInOrder: one batch creates, edits and deletes the same
// messages; every change sees the ones before it.
func testPersistInOrder(t *testing.T, s message.Store) {
	ctx := t.Context()
	m1, m2, m3 := Msg(chA, 100, 1), Msg(chA, 200, 2), Msg(chC, 300, 1)
	m3.Nonce = "n"
	reuse := Msg(chC, 400, 2)
	reuse.Nonce = "n"
	MustPersist(t, s,
		create(m1),
		edit(m1, "first edit", base.Add(time.Minute)),
		create(m2),
		edit(m1, "second edit", base.Add(2*time.Minute)),
		del(chA, 200),
		edit(m2, "edit after delete", base.Add(3*time.Minute)),
		create(m3),
		del(chC, 300),
		create(reuse), // the nonce of a deleted message, reused
	)
	got := mustGet(t, s, chA, 100)
	if got.Content != "second edit" || !got.EditedAt.Equal(base.Add(2*time.Minute)) {
		t.Errorf("Get(100) = %+v; want the second edit", got)
	}
	_, err := s.Get(ctx, chA, 200)
	wantKind(t, "Get(edited after delete)", err, guildhall.NotFound)
	wantIDs(t, s, chA, message.Query{Limit: 10}, 100)
	wantIDs(t, s, chC, message.Query{Limit: 10}, 400)
	wantLastSeq(t, s, chA, 2)
	if got, ok, err := s.ByNonce(ctx, chC, reuse.AuthorID, "n"); err != nil || !ok || got.ID != 400 {
		t.Errorf("ByNonce(reused) = %+v, %v, %v; want message 400", got, ok, err)
	}
}

// testPersistMissing: editing or deleting what is not stored is skipped,
// not an error, and creates nothing.
func testPersistMissing(t *testing.T, s message.Store) {
	ctx := t.Context()
	MustPersist(t, s, edit(Msg(chA, 100, 1), "x", base), del(chA, 200), del(chB, 300))
	wantIDs(t, s, chA, message.Query{Limit: 10})
	_, err := s.Get(ctx, chA, 100)
	wantKind(t, "Get(edited, never created)", err, guildhall.NotFound)
	wantLastSeq(t, s, chA, 0)
	// A zero ID is refused whole.
	if err := s.Persist(ctx, []message.Change{create(Msg(chA, 0, 1))}); err == nil {
		t.Errorf("Persist(create with ID 0) succeeded")
	}
	wantIDs(t, s, chA, message.Query{Limit: 10})
}

// testPersistAfterInsert: Persist and Insert share one history: a
// persisted edit or delete applies to an inserted message.
func testPersistAfterInsert(t *testing.T, s message.Store) {
	ctx := t.Context()
	m := Msg(chA, 100, 1)
	m.Nonce = "x"
	MustInsert(t, s, m, Msg(chA, 200, 2))
	MustPersist(t, s, create(Msg(chA, 300, 3)), edit(m, "edited", base.Add(time.Hour)), del(chA, 200))
	wantIDs(t, s, chA, message.Query{Limit: 10}, 300, 100)
	if got := mustGet(t, s, chA, 100); got.Content != "edited" {
		t.Errorf("Get = %+v", got)
	}
	wantLastSeq(t, s, chA, 3)
	if got, ok, err := s.ByNonce(ctx, chA, m.AuthorID, "x"); err != nil || !ok || got.Content != "edited" {
		t.Errorf("ByNonce = %+v, %v, %v", got, ok, err)
	}
}
