package cql_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/scylladb/gocqlx/v2"
	"go.uber.org/goleak"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/internal/cqldb/cqltest"
	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/cql"
	"github.com/guildhall/guildhall/message/messagetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestStore(t *testing.T) {
	messagetest.Run(t, func(t *testing.T) message.Store {
		return cql.New(cqltest.MustSession(t, cql.Component, cql.Migrations))
	})
}

// mustStore returns a Store on a fresh keyspace and its session, for
// tests that look at the tables themselves.
func mustStore(tb testing.TB) (*cql.Store, gocqlx.Session) {
	tb.Helper()
	s := cqltest.MustSession(tb, cql.Component, cql.Migrations)
	return cql.New(s), s
}

func mustExec(tb testing.TB, s gocqlx.Session, stmt string, args ...any) {
	tb.Helper()
	if err := s.ContextQuery(tb.Context(), stmt, nil).Bind(args...).ExecRelease(); err != nil {
		tb.Fatalf("%s: %v", stmt, err)
	}
}

func wantKind(tb testing.TB, what string, err error, kind guildhall.Kind) {
	tb.Helper()
	if got := guildhall.KindOf(err); err == nil || got != kind {
		tb.Errorf("%s = %v, want %s", what, err, kind.Code())
	}
}

func wantLast(tb testing.TB, s message.Store, ch, seq, id uint64) {
	tb.Helper()
	gotSeq, gotID, err := s.Last(tb.Context(), ch)
	if err != nil || gotSeq != seq || gotID != id {
		tb.Errorf("Last(%d) = %d, %d, %v; want %d, %d", ch, gotSeq, gotID, err, seq, id)
	}
}

func pageIDs(tb testing.TB, s message.Store, ch uint64, q message.Query) []uint64 {
	tb.Helper()
	page, err := s.List(tb.Context(), ch, q)
	if err != nil {
		tb.Fatalf("List(%+v): %v", q, err)
	}
	ids := make([]uint64, len(page))
	for i, m := range page {
		ids[i] = m.ID
	}
	return ids
}

func TestBucket(t *testing.T) {
	for _, b := range []int32{1, 2, 10, 2500} {
		start := cql.BucketStart(b)
		if got := cql.Bucket(start); got != b {
			t.Errorf("Bucket(BucketStart(%d)) = %d", b, got)
		}
		if got := cql.Bucket(start - 1); got != b-1 {
			t.Errorf("Bucket(BucketStart(%d)-1) = %d", b, got)
		}
	}
	if got := cql.Bucket(math.MaxInt64); got < 2500 {
		t.Errorf("Bucket(MaxInt64) = %d", got)
	}
}

// TestBucketWalk spreads a channel over buckets with empty ones (never
// used, and one emptied by deletes) in between, and checks every kind of
// page at every interesting cursor against a model.
func TestBucketWalk(t *testing.T) {
	s, _ := mustStore(t)
	ctx := t.Context()
	const ch = 77
	var ids []uint64 // ascending
	for _, b := range []int32{1, 2, 4, 9, 10, 11, 30, 31, 60} {
		start, next := cql.BucketStart(b), cql.BucketStart(b+1)
		// The first and last IDs of the bucket, and some in between.
		for _, id := range []uint64{start, start + 1, start + (next-start)/2, next - 1} {
			ids = append(ids, id)
		}
	}
	for i, id := range ids {
		messagetest.MustInsert(t, s, messagetest.Msg(ch, id, uint64(i+1)))
	}
	// A neighbouring channel in the same buckets must not show through.
	for i, id := range ids[:10] {
		messagetest.MustInsert(t, s, messagetest.Msg(ch+1, id, uint64(i+1)))
	}
	// Empty bucket 10 (it stays in the bucket list) and thin out 30.
	for _, id := range slices.Concat(ids[16:20], ids[25:27]) {
		if err := s.Delete(ctx, ch, id); err != nil {
			t.Fatalf("Delete(%d): %v", id, err)
		}
	}
	live := slices.Concat(ids[:16], ids[20:25], ids[27:])

	cursors := []uint64{1, 2, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64}
	for _, id := range ids {
		cursors = append(cursors, id-1, id, id+1)
	}
	for _, b := range []int32{0, 3, 5, 8, 12, 29, 32, 59, 61, 62} { // empty buckets
		cursors = append(cursors, cql.BucketStart(b)+1, cql.BucketStart(b+1)-1)
	}
	t.Run("pages", func(t *testing.T) {
		for _, limit := range []int{1, 3, 100} {
			t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
				t.Parallel()
				check(t, s, ch, message.Query{Limit: limit}, modelDown(live, 0, limit))
				for _, c := range cursors {
					check(t, s, ch, message.Query{Before: c, Limit: limit}, modelDown(live, c, limit))
					check(t, s, ch, message.Query{After: c, Limit: limit}, modelAfter(live, c, limit))
					check(t, s, ch, message.Query{Around: c, Limit: limit}, modelAround(live, c, limit))
				}
			})
		}
	})

	// Paging through the whole history either way visits every message once.
	var down []uint64
	for q := (message.Query{Limit: 4}); ; {
		page := pageIDs(t, s, ch, q)
		if len(page) == 0 {
			break
		}
		down = append(down, page...)
		q.Before = page[len(page)-1]
	}
	var up []uint64
	for q := (message.Query{After: 1, Limit: 4}); ; {
		page := pageIDs(t, s, ch, q)
		if len(page) == 0 {
			break
		}
		slices.Reverse(page)
		up = append(up, page...)
		q.After = page[len(page)-1]
	}
	slices.Reverse(down)
	if !slices.Equal(down, live) || !slices.Equal(up, live) {
		t.Errorf("paging down gave %v\npaging up gave %v\nwant %v", down, up, live)
	}
}

func check(tb testing.TB, s message.Store, ch uint64, q message.Query, want []uint64) {
	tb.Helper()
	if got := pageIDs(tb, s, ch, q); !slices.Equal(got, want) {
		tb.Errorf("List(%+v) = %v, want %v", q, got, want)
	}
}

// modelDown: the n largest of ids (ascending) below before (any if 0),
// newest first.
func modelDown(ids []uint64, before uint64, n int) []uint64 {
	var out []uint64
	for i := len(ids) - 1; i >= 0 && len(out) < n; i-- {
		if before == 0 || ids[i] < before {
			out = append(out, ids[i])
		}
	}
	return out
}

// modelUp: the n smallest of ids at or above from, oldest first.
func modelUp(ids []uint64, from uint64, n int) []uint64 {
	var out []uint64
	for _, id := range ids {
		if len(out) < n && id >= from {
			out = append(out, id)
		}
	}
	return out
}

func modelAfter(ids []uint64, after uint64, n int) []uint64 {
	if after == math.MaxUint64 {
		return nil
	}
	out := modelUp(ids, after+1, n)
	slices.Reverse(out)
	return out
}

func modelAround(ids []uint64, around uint64, n int) []uint64 {
	out := modelUp(ids, around, n/2)
	slices.Reverse(out)
	return append(out, modelDown(ids, around, n-n/2)...)
}

// TestSeqClaimRace: writers racing for one seq, each with its own message
// and nonce; exactly one wins, and the losers leave nothing behind.
func TestSeqClaimRace(t *testing.T) {
	s, _ := mustStore(t)
	ctx := t.Context()
	const ch, writers, rounds = 5, 8, 10
	var winners []uint64
	for seq := uint64(1); seq <= rounds; seq++ {
		errs := make([]error, writers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range writers {
			wg.Go(func() {
				m := messagetest.Msg(ch, seq*1000+uint64(w), seq)
				m.Nonce = fmt.Sprintf("n-%d-%d", seq, w)
				<-start
				errs[w] = s.Insert(ctx, m)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for w, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("seq %d: writers %d and %d both won", seq, winner, w)
			case err == nil:
				winner = w
			case guildhall.KindOf(err) != guildhall.Conflict:
				t.Fatalf("seq %d, writer %d: %v, want nil or conflict", seq, w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("seq %d: no writer won", seq)
		}
		id := seq*1000 + uint64(winner)
		winners = append(winners, id)
		wantLast(t, s, ch, seq, id)
		for w := range writers {
			m, ok, err := s.ByNonce(ctx, ch, 7, fmt.Sprintf("n-%d-%d", seq, w))
			if err != nil || ok != (w == winner) || (ok && m.ID != id) {
				t.Errorf("seq %d: ByNonce(writer %d) = %d, %v, %v (winner %d)", seq, w, m.ID, ok, err, winner)
			}
		}
	}
	slices.Reverse(winners)
	check(t, s, ch, message.Query{Limit: 100}, winners)
}

// TestLastAfterLostBatch: a writer that claimed a seq and died before its
// batch leaves the seq taken; Last sees it, across seq blocks too, and
// the next insert goes after it.
func TestLastAfterLostBatch(t *testing.T) {
	s, sess := mustStore(t)
	ctx := t.Context()
	const ch = 9
	claim := func(seq, id uint64) {
		mustExec(t, sess, `INSERT INTO message_seqs (channel_id, block, seq, id) VALUES (?, ?, ?, ?)`, ch, seq>>16, seq, id)
	}
	messagetest.MustInsert(t, s, messagetest.Msg(ch, 100, 1))
	claim(2, 200)
	wantLast(t, s, ch, 2, 200)
	wantKind(t, "Insert(seq 3, ID below the lost seq 2's)", s.Insert(ctx, messagetest.Msg(ch, 150, 3)), guildhall.Conflict)
	messagetest.MustInsert(t, s, messagetest.Msg(ch, 300, 3))
	wantLast(t, s, ch, 3, 300)
	check(t, s, ch, message.Query{Limit: 10}, []uint64{300, 100})

	// Lost claims running over the end of a seq block.
	for seq := uint64(4); seq <= 1<<16+2; seq++ {
		if seq%4096 == 0 || seq >= 1<<16-1 {
			claim(seq, seq*100)
		}
	}
	wantLast(t, s, ch, 1<<16+2, (1<<16+2)*100)
	messagetest.MustInsert(t, s, messagetest.Msg(ch, 1<<30, 1<<16+3))
	wantLast(t, s, ch, 1<<16+3, 1<<30)
	if seq, err := s.LastSeq(ctx, ch); err != nil || seq != 1<<16+3 {
		t.Errorf("LastSeq = %d, %v", seq, err)
	}
}

// TestLastSeqHintNeverGoesBack: the hint is written with the seq as its
// write time, so a late, lower seq does not lower it.
func TestLastSeqHintNeverGoesBack(t *testing.T) {
	s, sess := mustStore(t)
	const ch = 11
	messagetest.MustInsert(t, s, messagetest.Msg(ch, 500, 5), messagetest.Msg(ch, 400, 4), messagetest.Msg(ch, 300, 3))
	var seq, id uint64
	iter := sess.ContextQuery(t.Context(), `SELECT last_seq, last_id FROM message_channel_meta WHERE channel_id = ?`, nil).Bind(ch).Iter()
	if found, err := iter.Scan(&seq, &id), iter.Close(); err != nil || !found || seq != 5 || id != 500 {
		t.Errorf("hint = %d, %d (found %v, %v); want 5, 500", seq, id, found, err)
	}
	wantLast(t, s, ch, 5, 500)
}

// TestReplay: inserting the message that already holds its seq is a
// Conflict and changes nothing, even after an edit or a delete.
func TestReplay(t *testing.T) {
	s, _ := mustStore(t)
	ctx := t.Context()
	const ch = 13
	m := messagetest.Msg(ch, 100, 1)
	m.Nonce = "n"
	messagetest.MustInsert(t, s, m, messagetest.Msg(ch, 200, 2))
	err := s.Insert(ctx, m)
	wantKind(t, "Insert(same message)", err, guildhall.Conflict)
	if !strings.Contains(guildhall.Message(err), "already holds this message") {
		t.Errorf("Insert(same message) = %q, want it told apart from another message's seq", guildhall.Message(err))
	}
	edited := m
	edited.Content, edited.EditedAt = "edited", m.CreatedAt.Add(1e9)
	if err := s.Update(ctx, edited); err != nil {
		t.Fatal(err)
	}
	wantKind(t, "Insert(same message, after an edit)", s.Insert(ctx, m), guildhall.Conflict)
	if got, err := s.Get(ctx, ch, m.ID); err != nil || got.Content != "edited" {
		t.Errorf("Get after replay = %+v, %v; want the edit kept", got, err)
	}
	if err := s.Delete(ctx, ch, m.ID); err != nil {
		t.Fatal(err)
	}
	wantKind(t, "Insert(same message, after a delete)", s.Insert(ctx, m), guildhall.Conflict)
	if _, err := s.Get(ctx, ch, m.ID); guildhall.KindOf(err) != guildhall.NotFound {
		t.Errorf("Get after replaying a deleted message: %v, want not found", err)
	}
	wantLast(t, s, ch, 2, 200)
}

// TestEditDeleteRace: an edit racing a delete never brings back part of
// the message, and of two deletes exactly one succeeds.
func TestEditDeleteRace(t *testing.T) {
	s, sess := mustStore(t)
	ctx := t.Context()
	const ch = 15
	for i := uint64(1); i <= 10; i++ {
		m := messagetest.Msg(ch, i*100, i)
		m.Nonce = fmt.Sprint("n", i)
		messagetest.MustInsert(t, s, m)
		edit := m
		edit.Content, edit.EditedAt = "edited", m.CreatedAt.Add(1e9)
		var editErr, del1, del2 error
		var wg sync.WaitGroup
		wg.Go(func() { editErr = s.Update(ctx, edit) })
		wg.Go(func() { del1 = s.Delete(ctx, ch, m.ID) })
		wg.Go(func() { del2 = s.Delete(ctx, ch, m.ID) })
		wg.Wait()
		if editErr != nil && guildhall.KindOf(editErr) != guildhall.NotFound {
			t.Errorf("Update: %v", editErr)
		}
		if (del1 == nil) == (del2 == nil) {
			t.Errorf("two deletes of message %d: %v and %v; want exactly one to succeed", m.ID, del1, del2)
		}
		for _, err := range []error{del1, del2} {
			if err != nil && guildhall.KindOf(err) != guildhall.NotFound {
				t.Errorf("Delete: %v", err)
			}
		}
		iter := sess.ContextQuery(ctx, `SELECT id FROM messages WHERE channel_id = ? AND bucket = ? AND id = ?`, nil).
			Bind(uint64(ch), cql.Bucket(m.ID), m.ID).Iter()
		if n, err := iter.NumRows(), iter.Close(); err != nil || n != 0 {
			t.Errorf("message %d: %d rows left after the race, %v", m.ID, n, err)
		}
		if _, ok, err := s.ByNonce(ctx, ch, m.AuthorID, m.Nonce); err != nil || ok {
			t.Errorf("ByNonce(deleted) = %v, %v", ok, err)
		}
	}
}

func TestInvalid(t *testing.T) {
	s, _ := mustStore(t)
	ctx := t.Context()
	for _, m := range []message.Message{
		messagetest.Msg(1, 0, 1),
		messagetest.Msg(1, 10, 0),
		messagetest.Msg(1, math.MaxInt64+1, 1),
		messagetest.Msg(1, 10, math.MaxInt64+1),
	} {
		wantKind(t, fmt.Sprintf("Insert(id %d, seq %d)", m.ID, m.Seq), s.Insert(ctx, m), guildhall.Invalid)
	}
	wantLast(t, s, 1, 0, 0)
	_, err := s.List(ctx, 1, message.Query{Before: 10, After: 5, Limit: 10})
	wantKind(t, "List(before and after)", err, guildhall.Invalid)
	for _, id := range []uint64{0, math.MaxInt64 + 1, math.MaxUint64} {
		_, err := s.Get(ctx, 1, id)
		wantKind(t, fmt.Sprintf("Get(%d)", id), err, guildhall.NotFound)
		wantKind(t, fmt.Sprintf("Update(%d)", id), s.Update(ctx, message.Message{ChannelID: 1, ID: id, Content: "x"}), guildhall.NotFound)
		wantKind(t, fmt.Sprintf("Delete(%d)", id), s.Delete(ctx, 1, id), guildhall.NotFound)
	}
}
