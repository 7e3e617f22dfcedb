package inmem_test

import (
	"testing"

	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/inmem"
	"github.com/guildhall/guildhall/message/unreadtest"
)

func TestCounters(t *testing.T) {
	unreadtest.RunCounters(t, unreadtest.Options{MentionBound: 8}, func(t *testing.T) message.UnreadCounters {
		return inmem.NewCounters(inmem.CountersConfig{MentionBound: 8})
	})
}

// TestCountersBounded: past MaxUsers and MaxChannels, state is forgotten
// (and reads as unknown, so the service rebuilds it), never grown.
func TestCountersBounded(t *testing.T) {
	c := inmem.NewCounters(inmem.CountersConfig{MaxUsers: 64, MaxChannels: 64, MaxMentionSets: 2})
	ctx := t.Context()
	for i := uint64(1); i <= 10_000; i++ {
		if err := c.Accepted(ctx, message.Message{ID: i, ChannelID: i, AuthorID: i, Seq: 1, Mentions: message.Mentions{Users: []uint64{1, 2, 3}}}); err != nil {
			t.Fatal(err)
		}
	}
	qs := make([]message.CounterQuery, 10_000)
	for i := range qs {
		qs[i].ChannelID = uint64(i + 1)
	}
	known := 0
	for _, u := range []uint64{1, 2, 3} {
		st, err := c.Load(ctx, u, qs)
		if err != nil {
			t.Fatal(err)
		}
		heads, mentions := 0, uint64(0)
		for _, s := range st {
			if s.HeadKnown {
				heads++
			}
			mentions += s.Mentions
		}
		if heads > 64 {
			t.Fatalf("%d heads kept, bound 64", heads)
		}
		known += heads
		if mentions > 64 {
			t.Fatalf("user %d: %d mentions kept over at most 64 channels", u, mentions)
		}
	}
	if known == 0 {
		t.Fatal("nothing kept at all")
	}
}

// TestCountersBudgets: the mention seqs and the positions held in all
// stay near their budgets (each of 64 shards keeps its share).
func TestCountersBudgets(t *testing.T) {
	const entries, positions = 640, 256
	c := inmem.NewCounters(inmem.CountersConfig{MaxMentionEntries: entries, MaxPositions: positions})
	ctx := t.Context()
	qs := make([]message.CounterQuery, 200)
	for ch := uint64(1); ch <= 200; ch++ {
		qs[ch-1].ChannelID = ch
		for seq := uint64(1); seq <= 20; seq++ {
			if err := c.Accepted(ctx, message.Message{ID: seq, ChannelID: ch, Seq: seq, Mentions: message.Mentions{Users: []uint64{1}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := c.Load(ctx, 1, qs)
	if err != nil {
		t.Fatal(err)
	}
	var kept uint64
	for _, s := range st {
		kept += s.Mentions
	}
	if kept == 0 || kept > entries {
		t.Errorf("%d of 4000 mentions kept, want 1..%d", kept, entries)
	}
	for u := uint64(1); u <= 5000; u++ {
		if _, _, err := c.Ack(ctx, u, message.ReadPosition{ChannelID: 9, Seq: 1, ID: 1}); err != nil {
			t.Fatal(err)
		}
	}
	known := 0
	for u := uint64(1); u <= 5000; u++ {
		st, err := c.Load(ctx, u, qs[8:9])
		if err != nil {
			t.Fatal(err)
		}
		if st[0].ReadKnown {
			known++
		}
	}
	if known == 0 || known > positions {
		t.Errorf("%d of 5000 positions kept, want 1..%d", known, positions)
	}
}
