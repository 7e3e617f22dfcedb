package hotcache

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/bus/bustest"
	"github.com/guildhall/guildhall/internal/redisdb/redistest"
	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/cachetest"
	"github.com/guildhall/guildhall/message/inmem"
	msgredis "github.com/guildhall/guildhall/message/redis"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

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

// val reads a counter.
func val(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// mustNew starts a hot layer that shuts down when the test ends.
func mustNew(t *testing.T, inner message.Cache, b Bus, cfg Config) *Cache {
	t.Helper()
	c, err := New(inner, b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return c
}

// TestConformance runs the suite through a hot layer that promotes every
// channel at its first read, over inmem (with its injected clock) and over
// the real Redis.
func TestConformance(t *testing.T) {
	t.Run("inmem", func(t *testing.T) {
		cachetest.Run(t, func(t *testing.T) cachetest.Setup {
			nc := bustest.MustConnect(t, bustest.MustServer(t))
			clk := &clock{now: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
			inner := inmem.New(inmem.Config{Window: cachetest.Window, TTL: cachetest.TTL, CompleteTTL: cachetest.CompleteTTL, Now: clk.Now})
			c := mustNew(t, inner, nc, Config{Threshold: 1, Now: clk.Now})
			return cachetest.Setup{Cache: c, Advance: clk.Advance}
		})
	})
	t.Run("redis", func(t *testing.T) {
		cachetest.Run(t, func(t *testing.T) cachetest.Setup {
			nc := bustest.MustConnect(t, bustest.MustServer(t))
			rc, prefix := redistest.MustClient(t)
			inner := msgredis.NewCache(rc, msgredis.CacheConfig{Prefix: prefix, Window: cachetest.Window, TTL: cachetest.TTL, CompleteTTL: cachetest.CompleteTTL})
			return cachetest.Setup{Cache: mustNew(t, inner, nc, Config{Threshold: 1})}
		})
	})
}

// checkFor polls f until it returns nil or the time runs out.
func checkFor(t *testing.T, total time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func msg(ch, id uint64, content string) message.Message {
	return message.Message{ID: id, ChannelID: ch, Content: content}
}

// TestTwoNodes: two nodes' hot layers over one Redis cache; a channel hot
// on node B sees a write made through node A at its next reads, well
// before B's copy would expire.
func TestTwoNodes(t *testing.T) {
	ctx := t.Context()
	ns := bustest.MustServer(t)
	rc, prefix := redistest.MustClient(t)
	central := msgredis.NewCache(rc, msgredis.CacheConfig{Prefix: prefix})
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	a := mustNew(t, central, bustest.MustConnect(t, ns), Config{NodeID: "a", Threshold: 3, TTL: time.Hour, Registerer: regA})
	b := mustNew(t, central, bustest.MustConnect(t, ns), Config{NodeID: "b", Threshold: 3, TTL: time.Hour, Registerer: regB})
	const ch = 77
	if err := a.Fill(ctx, ch, []message.Message{msg(ch, 2, "two"), msg(ch, 1, "one")}); err != nil {
		t.Fatal(err)
	}
	// Make the channel hot on B and check B serves it from memory.
	for range 5 {
		if got, complete, err := b.Latest(ctx, ch, 50); err != nil || len(got) != 2 || !complete {
			t.Fatalf("Latest = %v, %v, %v", got, complete, err)
		}
	}
	if n := val(b.m.hotHit); n < 1 {
		t.Fatalf("no hot hits on B after 5 reads (%v)", n)
	}
	if n := val(b.m.reads.WithLabelValues("central", "hit")); n > 3 {
		t.Fatalf("B read the central cache %v times for 5 reads with threshold 3", n)
	}
	for _, w := range []struct {
		name  string
		write func() error
		want  string // B's newest message's content, "" for none
		n     int
	}{
		{"Add", func() error { return a.Add(ctx, msg(ch, 3, "three")) }, "three", 3},
		{"Replace", func() error { return a.Replace(ctx, msg(ch, 3, "three, edited")) }, "three, edited", 3},
		{"Remove", func() error { return a.Remove(ctx, ch, 3) }, "two", 2},
		{"Invalidate", func() error { return a.Invalidate(ctx, ch) }, "", 0},
	} {
		// Both copies are fresh (read again now), then A writes.
		for _, n := range []*Cache{a, b, a, b, a, b} {
			if _, _, err := n.Latest(ctx, ch, 50); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.write(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		// A reads its own write at once: its copy went before the write
		// returned.
		if got, _, err := a.Latest(ctx, ch, 50); err != nil || len(got) != w.n || (w.n > 0 && got[0].Content != w.want) {
			t.Fatalf("after %s, A reads %d messages (%v); want %d, newest %q", w.name, len(got), err, w.n, w.want)
		}
		checkFor(t, 10*time.Second, func() error {
			got, _, err := b.Latest(ctx, ch, 50)
			if err != nil {
				return err
			}
			newest := ""
			if len(got) > 0 {
				newest = got[0].Content
			}
			if len(got) != w.n || newest != w.want {
				return fmt.Errorf("after %s through A, B reads %d messages, newest %q; want %d, %q", w.name, len(got), newest, w.n, w.want)
			}
			return nil
		})
	}
	if n := val(b.m.received); n < 4 {
		t.Fatalf("B received %v invalidations, want at least 4", n)
	}
	if n := val(a.m.sent); n != 5 {
		t.Fatalf("A sent %v invalidations, want 5", n)
	}
	// The metrics are registered.
	mfs, err := regB.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"guildhall_message_cache_reads_total", "guildhall_message_cache_invalidations_total", "guildhall_message_cache_hot_channels"} {
		if !names[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
}

// TestColdNotPromoted: a channel read less than Threshold times per Period
// is never held locally; once hot, its copy expires after TTL.
func TestColdNotPromoted(t *testing.T) {
	ctx := t.Context()
	nc := bustest.MustConnect(t, bustest.MustServer(t))
	clk := &clock{now: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	inner := inmem.New(inmem.Config{})
	c := mustNew(t, inner, nc, Config{Threshold: 10, Period: time.Second, TTL: time.Second, Now: clk.Now})
	if err := inner.Fill(ctx, 1, []message.Message{msg(1, 1, "x")}); err != nil {
		t.Fatal(err)
	}
	for range 30 { // 5 reads a second: never hot
		if _, _, err := c.Latest(ctx, 1, 10); err != nil {
			t.Fatal(err)
		}
		clk.Advance(200 * time.Millisecond)
	}
	if n := val(c.m.hotHit); n != 0 || c.hot.Load() != 0 {
		t.Fatalf("a cold channel was served from memory (%v hits, %d hot)", n, c.hot.Load())
	}
	for range 20 { // a burst: hot
		if _, _, err := c.Latest(ctx, 1, 10); err != nil {
			t.Fatal(err)
		}
	}
	if n := val(c.m.hotHit); n < 5 {
		t.Fatalf("a hot channel got %v local hits in 20 reads", n)
	}
	// A write that bypasses the layer (another process without one) is
	// seen once the copy expires.
	if err := inner.Add(ctx, msg(1, 2, "y")); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := c.Latest(ctx, 1, 10); len(got) != 1 {
		t.Fatalf("copy not served: %d messages", len(got))
	}
	clk.Advance(time.Second)
	if got, _, _ := c.Latest(ctx, 1, 10); len(got) != 2 {
		t.Fatalf("expired copy served: %d messages", len(got))
	}
}

// TestSharedLoad: concurrent readers of a channel that just became hot
// share one read of the inner cache.
func TestSharedLoad(t *testing.T) {
	ctx := t.Context()
	nc := bustest.MustConnect(t, bustest.MustServer(t))
	inner := &countingCache{Cache: inmem.New(inmem.Config{}), gate: make(chan struct{})}
	c := mustNew(t, inner, nc, Config{Threshold: 1, TTL: time.Hour})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := c.Latest(ctx, 1, 10); err != nil {
				t.Error(err)
			}
		}()
	}
	checkFor(t, 10*time.Second, func() error {
		if n := val(c.m.hotMiss); n != 1 {
			return fmt.Errorf("%v loads started", n)
		}
		return nil
	})
	close(inner.gate)
	wg.Wait()
	if n := inner.latest.Load(); n != 1 {
		t.Fatalf("%d inner reads for 20 concurrent readers, want 1", n)
	}
}

// TestLoadRacesWrite: a load that read the inner cache before a write
// must not be kept as the local copy.
func TestLoadRacesWrite(t *testing.T) {
	ctx := t.Context()
	nc := bustest.MustConnect(t, bustest.MustServer(t))
	inner := &countingCache{Cache: inmem.New(inmem.Config{}), gate: make(chan struct{})}
	c := mustNew(t, inner, nc, Config{Threshold: 1, TTL: time.Hour})
	if err := inner.Cache.Add(ctx, msg(1, 1, "x")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, _, err := c.Latest(ctx, 1, 10); err != nil {
			t.Error(err)
		}
	}()
	checkFor(t, 10*time.Second, func() error {
		if n := inner.latest.Load(); n != 1 {
			return fmt.Errorf("%d inner reads", n)
		}
		return nil
	})
	if err := c.Add(ctx, msg(1, 2, "y")); err != nil {
		t.Fatal(err)
	}
	close(inner.gate)
	<-done
	if got, _, err := c.Latest(ctx, 1, 10); err != nil || len(got) != 2 {
		t.Fatalf("after the write: %d messages, %v; the stale load was kept", len(got), err)
	}
}

// countingCache counts Latest calls and holds their results until gate
// closes.
type countingCache struct {
	message.Cache
	gate   chan struct{}
	latest atomicInt
}

type atomicInt struct {
	mu sync.Mutex
	n  int
}

func (a *atomicInt) Add() { a.mu.Lock(); a.n++; a.mu.Unlock() }
func (a *atomicInt) Load() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

func (c *countingCache) Latest(ctx context.Context, ch uint64, limit int) ([]message.Message, bool, error) {
	c.latest.Add()
	msgs, complete, err := c.Cache.Latest(ctx, ch, limit)
	<-c.gate
	return msgs, complete, err
}

// TestBadInvalidation: garbage on the subject is ignored.
func TestBadInvalidation(t *testing.T) {
	ctx := t.Context()
	ns := bustest.MustServer(t)
	nc := bustest.MustConnect(t, ns)
	c := mustNew(t, inmem.New(inmem.Config{}), nc, Config{Threshold: 1, TTL: time.Hour})
	if err := c.Add(ctx, msg(1, 1, "x")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(bus.MessageCacheInvalidate, []byte("\xff\xff not protobuf")); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, _, err := c.Latest(ctx, 1, 10); err != nil || len(got) != 1 {
		t.Fatalf("Latest = %v, %v", got, err)
	}
}

// TestShutdown: Shutdown is idempotent and bounded by its ctx.
func TestShutdown(t *testing.T) {
	nc := bustest.MustConnect(t, bustest.MustServer(t))
	c, err := New(inmem.New(inmem.Config{}), nc, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := c.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestInvalidInput: refused input reaches neither the inner cache nor the
// bus.
func TestInvalidInput(t *testing.T) {
	ctx := t.Context()
	nc := bustest.MustConnect(t, bustest.MustServer(t))
	c := mustNew(t, inmem.New(inmem.Config{}), nc, Config{})
	big := msg(1, 1, strings.Repeat("x", message.MaxCachedSize))
	for name, err := range map[string]error{
		"Add(big)":        c.Add(ctx, big),
		"Replace(id 0)":   c.Replace(ctx, msg(1, 0, "")),
		"Remove(chan 0)":  c.Remove(ctx, 0, 1),
		"Fill(unordered)": c.Fill(ctx, 1, []message.Message{msg(1, 1, ""), msg(1, 2, "")}),
	} {
		if k := guildhall.KindOf(err); k != guildhall.Invalid && k != guildhall.TooLarge {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := val(c.m.sent); n != 0 {
		t.Fatalf("%v invalidations sent for refused writes", n)
	}
}

// TestInnerUnavailable: with Redis down, reads and writes through the
// layer fail with the inner cache's Unavailable (the caller reads the
// store), and writes still tell the other nodes.
func TestInnerUnavailable(t *testing.T) {
	ctx := t.Context()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rc.Close() })
	nc := bustest.MustConnect(t, bustest.MustServer(t))
	c := mustNew(t, msgredis.NewCache(rc, msgredis.CacheConfig{}), nc, Config{Threshold: 1})
	for range 3 {
		if _, _, err := c.Latest(ctx, 1, 10); guildhall.KindOf(err) != guildhall.Unavailable {
			t.Fatalf("Latest: %v, want Unavailable", err)
		}
	}
	if err := c.Add(ctx, msg(1, 1, "x")); guildhall.KindOf(err) != guildhall.Unavailable {
		t.Fatalf("Add: %v, want Unavailable", err)
	}
	if n := val(c.m.sent); n != 1 {
		t.Fatalf("%v invalidations sent, want 1", n)
	}
	if n := val(c.m.reads.WithLabelValues("central", "error")); n != 3 {
		t.Fatalf("%v central errors counted, want 3", n)
	}
}

// TestTwoNodesConverge: readers and writers on two nodes at once; once the
// writes stop, both nodes read exactly what the central cache holds, long
// before their copies would expire (no stale copy survives a race).
func TestTwoNodesConverge(t *testing.T) {
	ctx := t.Context()
	ns := bustest.MustServer(t)
	rc, prefix := redistest.MustClient(t)
	central := msgredis.NewCache(rc, msgredis.CacheConfig{Prefix: prefix, Window: 20})
	nodes := []*Cache{
		mustNew(t, central, bustest.MustConnect(t, ns), Config{NodeID: "a", Threshold: 1, TTL: time.Hour}),
		mustNew(t, central, bustest.MustConnect(t, ns), Config{NodeID: "b", Threshold: 1, TTL: time.Hour}),
	}
	chans := []uint64{1, 2, 3}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i, n := range nodes {
		wg.Add(2)
		go func() { // writer
			defer wg.Done()
			for k := range 60 {
				ch := chans[k%len(chans)]
				id := uint64(1000*(i+1) + k)
				var err error
				switch k % 4 {
				case 3:
					err = n.Replace(ctx, msg(ch, id-3, "edited"))
				default:
					err = n.Add(ctx, msg(ch, id, "x"))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() { // reader
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := n.Latest(ctx, chans[k%len(chans)], 20); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	// Let the writers finish, then stop the readers.
	checkFor(t, 30*time.Second, func() error {
		if n := val(nodes[0].m.sent) + val(nodes[1].m.sent); n < 120 {
			return fmt.Errorf("%v writes done", n)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	for _, ch := range chans {
		want, _, err := central.Latest(ctx, ch, 20)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			checkFor(t, 10*time.Second, func() error {
				got, _, err := n.Latest(ctx, ch, 20)
				if err != nil {
					return err
				}
				if !slices.EqualFunc(got, want, func(a, b message.Message) bool { return a.ID == b.ID && a.Content == b.Content }) {
					return fmt.Errorf("node %s, channel %d: %d messages differ from the central cache's %d", n.cfg.NodeID, ch, len(got), len(want))
				}
				return nil
			})
		}
	}
}
