package pebble_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"go.uber.org/goleak"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/messagetest"
	"github.com/guildhall/guildhall/message/pebble"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mustOpen opens a Pebble database in dir and closes it when tb ends.
func mustOpen(tb testing.TB, dir string) *pebbledb.DB {
	tb.Helper()
	db := open(tb, dir)
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close pebble: %v", err)
		}
	})
	return db
}

// open opens a Pebble database in dir; the caller closes it.
func open(tb testing.TB, dir string) *pebbledb.DB {
	tb.Helper()
	db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: quietLogger{}})
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
	messagetest.Run(t, func(t *testing.T) message.Store {
		return pebble.New(mustOpen(t, t.TempDir()))
	})
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	s := pebble.New(db)
	for i := uint64(1); i <= 5; i++ {
		m := messagetest.Msg(42, 100*i, i)
		m.Nonce = fmt.Sprint("nonce-", i)
		messagetest.MustInsert(t, s, m)
	}
	if err := s.Delete(t.Context(), 42, 500); err != nil {
		t.Fatal(err)
	}
	edit := messagetest.Msg(42, 300, 3)
	edit.Content, edit.EditedAt = "edited", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	if err := s.Update(t.Context(), edit); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s = pebble.New(mustOpen(t, dir))
	ctx := t.Context()
	if seq, err := s.LastSeq(ctx, 42); err != nil || seq != 5 {
		t.Errorf("LastSeq after reopen = %d, %v; want 5", seq, err)
	}
	page, err := s.List(ctx, 42, message.Query{Limit: 10})
	if err != nil || len(page) != 4 || page[0].ID != 400 || page[3].ID != 100 {
		t.Errorf("List after reopen = %v, %v; want 400..100", page, err)
	}
	if m, err := s.Get(ctx, 42, 300); err != nil || m.Content != "edited" || !m.EditedAt.Equal(edit.EditedAt) {
		t.Errorf("Get(edited) after reopen = %+v, %v", m, err)
	}
	if m, ok, err := s.ByNonce(ctx, 42, 7, "nonce-2"); err != nil || !ok || m.ID != 200 {
		t.Errorf("ByNonce after reopen = %+v, %v, %v", m, ok, err)
	}
	if err := s.Insert(ctx, messagetest.Msg(42, 600, 5)); guildhall.KindOf(err) != guildhall.Conflict {
		t.Errorf("Insert(seq 5) after reopen = %v, want conflict", err)
	}
}

// Writers to many channels at once: every seq is taken exactly once.
func TestConcurrentInsert(t *testing.T) {
	s := pebble.New(mustOpen(t, t.TempDir()))
	const channels, writers, seqs = 4, 4, 20
	var won, lost atomic.Int64
	var wg sync.WaitGroup
	for ch := range uint64(channels) {
		for w := range uint64(writers) {
			wg.Go(func() {
				for seq := uint64(1); seq <= seqs; seq++ {
					m := messagetest.Msg(ch+1, seq*100+w, seq)
					switch err := s.Insert(t.Context(), m); {
					case err == nil:
						won.Add(1)
					case guildhall.KindOf(err) == guildhall.Conflict:
						lost.Add(1)
					default:
						t.Errorf("Insert: %v", err)
					}
				}
			})
		}
	}
	wg.Wait()
	if won.Load() != channels*seqs || lost.Load() != channels*seqs*(writers-1) {
		t.Errorf("won %d, lost %d; want %d and %d", won.Load(), lost.Load(), channels*seqs, channels*seqs*(writers-1))
	}
	for ch := range uint64(channels) {
		page, err := s.List(t.Context(), ch+1, message.Query{Limit: 1000})
		if err != nil || len(page) != seqs {
			t.Errorf("channel %d: %d messages, %v; want %d", ch+1, len(page), err, seqs)
		}
	}
}

func TestListRejectsTwoCursors(t *testing.T) {
	s := pebble.New(mustOpen(t, t.TempDir()))
	_, err := s.List(t.Context(), 1, message.Query{Before: 10, After: 5, Limit: 10})
	if guildhall.KindOf(err) != guildhall.Invalid {
		t.Errorf("List(before and after) = %v, want invalid", err)
	}
}

// BenchmarkListLatest reads the latest 50 messages of a channel of 10,000.
func BenchmarkListLatest(b *testing.B) {
	s := pebble.New(mustOpen(b, b.TempDir()))
	const n = 10000
	for i := uint64(1); i <= n; i++ {
		messagetest.MustInsert(b, s, messagetest.Msg(1, i<<22, i))
	}
	q := message.Query{Limit: 50}
	for b.Loop() {
		page, err := s.List(b.Context(), 1, q)
		if err != nil || len(page) != 50 {
			b.Fatalf("List = %d, %v", len(page), err)
		}
	}
}

// BenchmarkInsert appends to one channel; each insert waits for its fsync.
func BenchmarkInsert(b *testing.B) {
	s := pebble.New(mustOpen(b, b.TempDir()))
	var seq uint64
	for b.Loop() {
		seq++
		m := messagetest.Msg(1, seq<<22, seq)
		m.Nonce = fmt.Sprint("n", seq)
		if err := s.Insert(b.Context(), m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInsertParallel appends to a channel per goroutine, 8 goroutines
// per CPU, so Pebble can group the fsyncs of different channels.
func BenchmarkInsertParallel(b *testing.B) {
	s := pebble.New(mustOpen(b, b.TempDir()))
	var channel atomic.Uint64
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		ch := channel.Add(1) << 22
		var seq uint64
		for pb.Next() {
			seq++
			if err := s.Insert(b.Context(), messagetest.Msg(ch, seq<<22, seq)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
