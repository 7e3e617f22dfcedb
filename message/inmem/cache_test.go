package inmem

import (
	"sync"
	"testing"
	"time"

	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/cachetest"
)

// clock is a settable clock for tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestCache(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) cachetest.Setup {
		clk := &clock{now: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
		c := New(Config{Window: cachetest.Window, TTL: cachetest.TTL, CompleteTTL: cachetest.CompleteTTL, Now: clk.Now})
		return cachetest.Setup{Cache: c, Advance: clk.Advance}
	})
}

// TestEvictsColdChannels: past MaxBytes the least recently used channels
// go, the recently read ones stay.
func TestEvictsColdChannels(t *testing.T) {
	ctx := t.Context()
	c := New(Config{Window: 10, MaxBytes: 20_000, Shards: 1})
	msg := func(ch, id uint64) message.Message {
		return message.Message{ID: id, ChannelID: ch, Content: string(make([]byte, 100))}
	}
	const hot = 1
	for ch := uint64(1); ch <= 200; ch++ {
		for id := uint64(1); id <= 5; id++ {
			if err := c.Add(ctx, msg(ch, id)); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := c.Latest(ctx, hot, 1); err != nil {
			t.Fatal(err)
		}
		if st := c.Stats(); st.Bytes > 20_000 {
			t.Fatalf("after channel %d: %d bytes cached, MaxBytes is 20000", ch, st.Bytes)
		}
	}
	st := c.Stats()
	if st.Evictions == 0 || st.Channels >= 200 {
		t.Fatalf("stats %+v: expected evictions", st)
	}
	if got, _, _ := c.Latest(ctx, hot, 10); len(got) != 5 {
		t.Fatalf("the hot channel was evicted: %d messages", len(got))
	}
	if got, _, _ := c.Latest(ctx, 2, 10); len(got) != 0 {
		t.Fatalf("a cold channel survived: %d messages", len(got))
	}
	if got, _, _ := c.Latest(ctx, 200, 10); len(got) != 5 {
		t.Fatalf("the newest channel was evicted: %d messages", len(got))
	}
}

// TestExpiredDroppedOnWrite: expired windows do not pile up in a shard
// that keeps being written.
func TestExpiredDroppedOnWrite(t *testing.T) {
	ctx := t.Context()
	clk := &clock{now: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	c := New(Config{TTL: time.Minute, Shards: 1, Now: clk.Now})
	for ch := uint64(1); ch <= 100; ch++ {
		if err := c.Add(ctx, message.Message{ID: 1, ChannelID: ch}); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Minute)
	if err := c.Add(ctx, message.Message{ID: 1, ChannelID: 1000}); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Channels != 1 {
		t.Fatalf("%d channels cached after expiry, want 1", st.Channels)
	}
}

// TestChangesOnlyExpire: a Replace or Remove of an uncached message keeps
// a small record for ChangeTTL, not for the window TTL.
func TestChangesOnlyExpire(t *testing.T) {
	ctx := t.Context()
	clk := &clock{now: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	c := New(Config{ChangeTTL: time.Minute, Shards: 1, Now: clk.Now})
	for ch := uint64(1); ch <= 50; ch++ {
		if err := c.Remove(ctx, ch, 1); err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Stats(); st.Channels != 50 {
		t.Fatalf("%d channels, want 50", st.Channels)
	}
	clk.Advance(time.Minute)
	if err := c.Add(ctx, message.Message{ID: 1, ChannelID: 1000}); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Channels != 1 {
		t.Fatalf("%d channels after ChangeTTL, want 1", st.Channels)
	}
}
