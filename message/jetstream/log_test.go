package jetstream_test

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/guildhall/guildhall/bus/bustest"
	"github.com/guildhall/guildhall/message"
	messagejs "github.com/guildhall/guildhall/message/jetstream"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func mustLog(tb testing.TB, cfg messagejs.Config) *messagejs.Log {
	tb.Helper()
	ns := bustest.MustServer(tb)
	l, err := messagejs.New(tb.Context(), bustest.MustConnect(tb, ns), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

func create(ch, id, seq uint64, content string) message.Change {
	return message.Change{Kind: message.ChangeCreate, Message: message.Message{
		ID: id, ChannelID: ch, ServerID: 9, AuthorID: 7, Content: content, Seq: seq,
		CreatedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Mentions:  message.Mentions{Users: []uint64{1, 2}, Roles: []uint64{3}, Everyone: true},
	}}
}

// TestHeadAndStaleAppend: the head follows creates; an append with a
// stale expectation appends nothing.
func TestHeadAndStaleAppend(t *testing.T) {
	ctx := t.Context()
	l := mustLog(t, messagejs.Config{})
	if _, ok, err := l.Head(ctx, 1); err != nil || ok {
		t.Fatalf("Head of an empty channel = %v, %v", ok, err)
	}
	pos1, _, dup, err := l.Append(ctx, create(1, 100, 1, "a"), 0, "")
	if err != nil || dup || pos1 == 0 {
		t.Fatalf("Append = %d, %v, %v", pos1, dup, err)
	}
	// Expecting "none" again, or anything but pos1, is stale.
	for _, expect := range []uint64{0, pos1 + 1} {
		if _, _, _, err := l.Append(ctx, create(1, 200, 2, "b"), expect, ""); !errors.Is(err, message.ErrStaleHead) {
			t.Errorf("Append(expect %d) = %v, want ErrStaleHead", expect, err)
		}
	}
	// Another channel is independent; an edit does not move the head.
	if _, _, _, err := l.Append(ctx, create(2, 150, 1, "other"), 0, ""); err != nil {
		t.Fatal(err)
	}
	edit := create(1, 100, 1, "a, edited")
	edit.Kind = message.ChangeEdit
	editPos, _, _, err := l.Append(ctx, edit, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	h, ok, err := l.Head(ctx, 1)
	if err != nil || !ok || h != (message.Head{Seq: 1, ID: 100, Pos: pos1}) {
		t.Fatalf("Head = %+v, %v, %v; want seq 1, ID 100 at %d", h, ok, err, pos1)
	}
	if n, err := l.Newest(ctx, 1); err != nil || n != editPos {
		t.Errorf("Newest = %d, %v; want the edit's %d", n, err, editPos)
	}
	pos2, _, _, err := l.Append(ctx, create(1, 200, 2, "b"), pos1, "")
	if err != nil {
		t.Fatalf("Append(current head) = %v", err)
	}
	if h, _, _ := l.Head(ctx, 1); h.Seq != 2 || h.Pos != pos2 {
		t.Errorf("Head = %+v", h)
	}
}

// TestDuplicate: an append with a dedupe key seen before appends nothing
// and returns the first record, whole.
func TestDuplicate(t *testing.T) {
	ctx := t.Context()
	l := mustLog(t, messagejs.Config{})
	first := create(1, 100, 1, "first")
	pos, _, _, err := l.Append(ctx, first, 0, "1/7/nonce\n with bytes")
	if err != nil {
		t.Fatal(err)
	}
	_, orig, dup, err := l.Append(ctx, create(1, 200, 2, "retry"), pos, "1/7/nonce\n with bytes")
	if err != nil || !dup {
		t.Fatalf("retry = %v, %v; want a duplicate", dup, err)
	}
	if orig.Kind != message.ChangeCreate || orig.Message.ID != 100 || orig.Message.Content != "first" ||
		!orig.Message.CreatedAt.Equal(first.Message.CreatedAt) || !orig.Message.Mentions.Everyone || len(orig.Message.Mentions.Users) != 2 {
		t.Errorf("original = %+v", orig)
	}
	if h, _, _ := l.Head(ctx, 1); h.ID != 100 {
		t.Errorf("the duplicate moved the head: %+v", h)
	}
}

// TestNextInOrder: batches come in log order, acknowledged ones never
// again; an unacknowledged batch comes back before anything newer.
func TestNextInOrder(t *testing.T) {
	ctx := t.Context()
	l := mustLog(t, messagejs.Config{AckWait: time.Second, LagRefresh: -1})
	var expect uint64
	for i := range uint64(10) {
		pos, _, _, err := l.Append(ctx, create(1, 100+i, i+1, "m"), expect, "")
		if err != nil {
			t.Fatal(err)
		}
		expect = pos
	}
	if lag, err := l.Lag(ctx); err != nil || lag != 10 {
		t.Fatalf("Lag = %d, %v; want 10", lag, err)
	}
	b, err := l.Next(ctx, 4, 50*time.Millisecond)
	// Pending comes from the server's count, which follows appends
	// asynchronously: it may still lag behind them.
	if err != nil || len(b.Changes) != 4 || b.Changes[0].Message.Seq != 1 || b.Pending > 6 {
		t.Fatalf("first batch = %+v, %v", b, err)
	}
	// Not acknowledged: the next batch waits for it, then gets it again.
	deadline := time.Now().Add(10 * time.Second)
	var again message.Batch
	for len(again.Changes) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the unacknowledged batch never came back")
		}
		if again, err = l.Next(ctx, 4, 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if again.Changes[0].Message.Seq != 1 {
		t.Fatalf("after a lost batch, got seq %d first; want 1", again.Changes[0].Message.Seq)
	}
	if err := again.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, c := range again.Changes {
		seqs = append(seqs, c.Message.Seq)
	}
	for len(seqs) < 10 && time.Now().Before(deadline) {
		b, err := l.Next(ctx, 4, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range b.Changes {
			seqs = append(seqs, c.Message.Seq)
		}
		if b.Ack != nil {
			if err := b.Ack(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seqs %v, want 1..10 once each in order", seqs)
		}
	}
	if lag, err := l.Lag(ctx); err != nil || lag != 0 {
		t.Errorf("Lag = %d, %v; want 0", lag, err)
	}
	if p, err := l.Persisted(ctx); err != nil || p != expect {
		t.Errorf("Persisted = %d, %v; want %d", p, err, expect)
	}
	// Nothing left: an empty batch after the wait.
	if b, err := l.Next(ctx, 4, 20*time.Millisecond); err != nil || b.Ack != nil {
		t.Errorf("Next on an empty log = %+v, %v", b, err)
	}
}

// TestTrimmedHead: once the stream dropped a channel's creates (it is
// full), Head says so and Append expects "none" again.
func TestTrimmedHead(t *testing.T) {
	ctx := t.Context()
	l := mustLog(t, messagejs.Config{MaxBytes: 64 << 10, Memory: true})
	pos, _, _, err := l.Append(ctx, create(1, 100, 1, "old"), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	big := string(make([]byte, 4000))
	var expect uint64
	for i := range uint64(40) { // 160 KB into another channel
		p, _, _, err := l.Append(ctx, create(2, 1000+i, i+1, big), expect, "")
		if err != nil {
			t.Fatal(err)
		}
		expect = p
	}
	if _, ok, err := l.Head(ctx, 1); err != nil || ok {
		t.Fatalf("Head of a trimmed channel = %v, %v; want none", ok, err)
	}
	if _, _, _, err := l.Append(ctx, create(1, 200, 2, "new"), pos, ""); !errors.Is(err, message.ErrStaleHead) {
		t.Errorf("Append(expecting the trimmed create) = %v, want ErrStaleHead", err)
	}
	if _, _, _, err := l.Append(ctx, create(1, 200, 2, "new"), 0, ""); err != nil {
		t.Errorf("Append(expecting none) = %v", err)
	}
}
