package jetstream_test

import (
	"testing"
	"time"

	"github.com/guildhall/guildhall/message"
	messagejs "github.com/guildhall/guildhall/message/jetstream"
)

// TestChangesSince: the edits and deletions of the asked channels since
// a time, in log order, bounded; creates and other channels left out.
func TestChangesSince(t *testing.T) {
	ctx := t.Context()
	l := mustLog(t, messagejs.Config{})
	appendAll := func(cs ...message.Change) {
		t.Helper()
		for _, c := range cs {
			expect := uint64(0)
			if c.Kind == message.ChangeCreate {
				if h, ok, err := l.Head(ctx, c.Message.ChannelID); err != nil {
					t.Fatal(err)
				} else if ok {
					expect = h.Pos
				}
			}
			if _, _, _, err := l.Append(ctx, c, expect, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	edit := func(ch, id uint64, content string) message.Change {
		c := create(ch, id, id, content)
		c.Kind = message.ChangeEdit
		return c
	}
	del := func(ch, id uint64) message.Change {
		return message.Change{Kind: message.ChangeDelete, Message: message.Message{ID: id, ChannelID: ch, ServerID: 9, Seq: id}}
	}
	appendAll(create(1, 100, 1, "a"), create(2, 200, 1, "b"), edit(1, 100, "old edit"))
	if got, err := l.ChangesSince(ctx, []uint64{1, 2}, time.Now().Add(time.Hour), 10); err != nil || len(got) != 0 {
		t.Fatalf("ChangesSince(future) = %v, %v", got, err)
	}
	time.Sleep(5 * time.Millisecond) // the stream's clock moves past the old edit
	since := time.Now()
	appendAll(create(1, 101, 2, "c"), edit(2, 200, "b2"), edit(1, 101, "c2"), del(1, 100), create(3, 300, 1, "d"), edit(3, 300, "d2"), del(2, 200))

	got, err := l.ChangesSince(ctx, []uint64{1, 2}, since, 10)
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		kind    message.ChangeKind
		ch, id  uint64
		content string
	}
	want := []key{
		{message.ChangeEdit, 2, 200, "b2"}, {message.ChangeEdit, 1, 101, "c2"},
		{message.ChangeDelete, 1, 100, ""}, {message.ChangeDelete, 2, 200, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("ChangesSince = %v, want %v", got, want)
	}
	for i, c := range got {
		if k := (key{c.Kind, c.Message.ChannelID, c.Message.ID, c.Message.Content}); k != want[i] {
			t.Fatalf("change %d = %v, want %v", i, k, want[i])
		}
	}
	// Many channels (read in chunks): still in log order.
	many := []uint64{1}
	for ch := uint64(10); len(many) < 64; ch++ {
		many = append(many, ch)
	}
	many = append(many, 2)
	if got2, err := l.ChangesSince(ctx, many, since, 10); err != nil || len(got2) != len(got) {
		t.Fatalf("ChangesSince(many) = %v, %v", got2, err)
	} else {
		for i := range got2 {
			if got2[i].Kind != got[i].Kind || got2[i].Message.ID != got[i].Message.ID {
				t.Fatalf("ChangesSince(many) = %v, want %v", got2, got)
			}
		}
	}
	// Bounded: the first max.
	if got, err := l.ChangesSince(ctx, []uint64{1, 2}, since, 2); err != nil || len(got) != 2 || got[0].Message.ID != 200 || got[1].Message.ID != 101 {
		t.Fatalf("ChangesSince(max 2) = %v, %v", got, err)
	}
	// From the start: the old edit too; an unknown channel adds nothing.
	if got, err := l.ChangesSince(ctx, []uint64{1, 2, 4}, since.Add(-time.Hour), 10); err != nil || len(got) != 5 || got[0].Message.Content != "old edit" {
		t.Fatalf("ChangesSince(earlier) = %v, %v", got, err)
	}
}
