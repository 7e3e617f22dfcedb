package redis_test

import (
	"net"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/internal/redisdb/redistest"
	"github.com/guildhall/guildhall/message"
	msgredis "github.com/guildhall/guildhall/message/redis"
	"github.com/guildhall/guildhall/message/unreadtest"
)

func TestCounters(t *testing.T) {
	unreadtest.RunCounters(t, unreadtest.Options{MentionBound: 8}, func(t *testing.T) message.UnreadCounters {
		rc, prefix := redistest.MustClient(t)
		return msgredis.NewCounters(rc, msgredis.CountersConfig{Prefix: prefix, MentionBound: 8})
	})
}

// TestCountersKeys: every key is under the prefix, expires, and a mention
// set holds at most its bound.
func TestCountersKeys(t *testing.T) {
	rc, prefix := redistest.MustClient(t)
	const bound = 4
	ttl := 90 * time.Minute
	c := msgredis.NewCounters(rc, msgredis.CountersConfig{Prefix: prefix, MentionBound: bound, TTL: ttl})
	ctx := t.Context()
	for seq := uint64(1); seq <= 10; seq++ {
		m := message.Message{ID: seq * 10, ChannelID: 5, AuthorID: 7, Seq: seq,
			Mentions: message.Mentions{Users: []uint64{8}, Roles: []uint64{9}, Everyone: true}}
		if err := c.Accepted(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.Ack(ctx, 8, message.ReadPosition{ChannelID: 5, Seq: 3, ID: 30}); err != nil {
		t.Fatal(err)
	}
	if err := c.Fill(ctx, 9, []message.ReadPosition{{ChannelID: 5, Seq: 1, ID: 10}}); err != nil {
		t.Fatal(err)
	}
	if err := c.RaiseHead(ctx, 6, 0); err != nil {
		t.Fatal(err)
	}
	keys, err := rc.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	// heads of 5 and 6, hashes of 7, 8, 9, sets @everyone, user 8, role 9
	if len(keys) != 8 {
		t.Fatalf("keys under the prefix: %v", keys)
	}
	for _, k := range keys {
		d, err := rc.TTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if d <= 0 || d > ttl {
			t.Errorf("key %s: TTL %v, want in (0, %v]", k, d, ttl)
		}
		if typ, _ := rc.Type(ctx, k).Result(); typ == "zset" {
			if n, _ := rc.ZCard(ctx, k).Result(); n != bound {
				t.Errorf("set %s holds %d, want %d", k, n, bound)
			}
		}
	}
}

// TestCountersBigBatches: Fill and Load larger than one script's batch.
func TestCountersBigBatches(t *testing.T) {
	rc, prefix := redistest.MustClient(t)
	c := msgredis.NewCounters(rc, msgredis.CountersConfig{Prefix: prefix})
	ctx := t.Context()
	const n = 2500
	ps := make([]message.ReadPosition, n)
	qs := make([]message.CounterQuery, n+1)
	for i := range ps {
		ps[i] = message.ReadPosition{ChannelID: uint64(i + 1), Seq: uint64(i + 1), ID: uint64(100 * (i + 1))}
		qs[i] = message.CounterQuery{ChannelID: uint64(i + 1), Roles: []uint64{1, 2}}
	}
	qs[n] = message.CounterQuery{ChannelID: n + 1}
	if err := c.Fill(ctx, 3, ps); err != nil {
		t.Fatal(err)
	}
	got, err := c.Load(ctx, 3, qs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n+1 {
		t.Fatalf("%d states for %d queries", len(got), n+1)
	}
	for i, st := range got[:n] {
		if !st.ReadKnown || st.Read != ps[i] {
			t.Fatalf("query %d: %+v, want %+v", i, st, ps[i])
		}
	}
	if st := got[n]; !st.ReadKnown || st.Read != (message.ReadPosition{ChannelID: n + 1}) {
		t.Fatalf("channel never read after Fill: %+v", st)
	}
}

// TestCountersErrors: a key of the wrong type (an error reply) is
// Internal; a server that cannot be reached is Unavailable.
func TestCountersErrors(t *testing.T) {
	rc, prefix := redistest.MustClient(t)
	ctx := t.Context()
	c := msgredis.NewCounters(rc, msgredis.CountersConfig{Prefix: prefix})
	if err := rc.HSet(ctx, prefix+"uh:5", "x", "y").Err(); err != nil { // the head key of channel 5, as a hash
		t.Fatal(err)
	}
	err := c.Accepted(ctx, message.Message{ID: 1, ChannelID: 5, Seq: 1})
	if guildhall.KindOf(err) != guildhall.Internal {
		t.Errorf("Accepted over a hash: %v, want internal", err)
	}
	down := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer down.Close()
	err = msgredis.NewCounters(down, msgredis.CountersConfig{Prefix: prefix}).Accepted(ctx, message.Message{ID: 1, ChannelID: 6, Seq: 1})
	if guildhall.KindOf(err) != guildhall.Unavailable {
		t.Errorf("Accepted with Redis down: %v, want unavailable", err)
	}
}

// TestCountersSilentRedis: a Redis that accepts connections and never
// answers makes every call fail with Unavailable (bounded by Timeout)
// rather than hang.
func TestCountersSilentRedis(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	rc := goredis.NewClient(&goredis.Options{Addr: ln.Addr().String(), ContextTimeoutEnabled: true, MaxRetries: -1, ReadTimeout: time.Hour, WriteTimeout: time.Hour})
	defer rc.Close()
	c := msgredis.NewCounters(rc, msgredis.CountersConfig{Timeout: 50 * time.Millisecond})
	ctx := t.Context()
	p := message.ReadPosition{ChannelID: 1, Seq: 1, ID: 1}
	calls := map[string]error{
		"Accepted":  c.Accepted(ctx, message.Message{ID: 1, ChannelID: 1, Seq: 1}),
		"RaiseHead": c.RaiseHead(ctx, 1, 1),
		"Fill":      c.Fill(ctx, 1, []message.ReadPosition{p}),
	}
	_, _, calls["Ack"] = c.Ack(ctx, 1, p)
	_, calls["Load"] = c.Load(ctx, 1, []message.CounterQuery{{ChannelID: 1}})
	for name, err := range calls {
		if guildhall.KindOf(err) != guildhall.Unavailable {
			t.Errorf("%s against a silent Redis: %v, want unavailable", name, err)
		}
	}
}
