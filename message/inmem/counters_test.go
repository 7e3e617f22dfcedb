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
