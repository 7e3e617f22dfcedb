package hotcache

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guildhall/guildhall/bus/bustest"
	"github.com/guildhall/guildhall/internal/cqldb/cqltest"
	"github.com/guildhall/guildhall/internal/redisdb/redistest"
	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/cql"
	"github.com/guildhall/guildhall/message/inmem"
	msgredis "github.com/guildhall/guildhall/message/redis"
)

// The read benchmarks of the history caches; see docs/benchmarks.md
// "History caches" for the command and the figures.

// latencies collects per-read latencies from parallel readers.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

// report adds p50, p99 (µs) and reads/s to b's result.
func (l *latencies) report(b *testing.B, elapsed time.Duration) {
	if len(l.all) == 0 {
		return
	}
	slices.Sort(l.all)
	q := func(p float64) float64 {
		return float64(l.all[min(len(l.all)-1, int(p*float64(len(l.all))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(float64(len(l.all))/elapsed.Seconds(), "reads/s")
}

// parallel runs read from parallel goroutines (4 per CPU) and reports
// its latency.
func parallel(b *testing.B, read func(ctx context.Context) error) {
	var l latencies
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		d := make([]time.Duration, 0, 1<<14)
		for pb.Next() {
			t := time.Now()
			if err := read(ctx); err != nil {
				b.Error(err)
				return
			}
			d = append(d, time.Since(t))
		}
		l.add(d)
	})
	elapsed := time.Since(start)
	b.StopTimer()
	l.report(b, elapsed)
}

// paced issues b.N reads at a fixed rate (reads/s) from 2 goroutines, in
// bursts every millisecond, and reports the latency of each read: what a
// read costs at that load, without the queueing of a saturated run.
func paced(b *testing.B, rate int, read func(ctx context.Context) error) {
	const workers = 2
	perTick := max(rate/1000/workers, 1)
	var l latencies
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(b.N))
	for range workers {
		wg.Go(func() {
			ctx := context.Background()
			d := make([]time.Duration, 0, b.N/workers+1)
			next := time.Now()
			for {
				for range perTick {
					if left.Add(-1) < 0 {
						l.add(d)
						return
					}
					t := time.Now()
					if err := read(ctx); err != nil {
						b.Error(err)
						l.add(d)
						return
					}
					d = append(d, time.Since(t))
				}
				next = next.Add(time.Millisecond)
				time.Sleep(time.Until(next))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	l.report(b, elapsed)
}

func page(ch, newest uint64, n int) []message.Message {
	out := make([]message.Message, 0, n)
	for id := newest; id > 0 && len(out) < n; id-- {
		out = append(out, message.Message{
			ID: id << 22, ChannelID: ch, ServerID: 9, AuthorID: 7, Seq: id,
			Content:   fmt.Sprintf("message %d of channel %d, about the length of a chat line", id, ch),
			CreatedAt: time.UnixMilli(int64(1_700_000_000_000 + id)).UTC(),
		})
	}
	return out
}

func want50(msgs []message.Message, complete bool, err error) error {
	if err != nil {
		return err
	}
	if len(msgs) != 50 || !complete {
		return fmt.Errorf("Latest = %d messages, complete=%v", len(msgs), complete)
	}
	return nil
}

// BenchmarkLatest50 reads a channel's latest 50 messages: from the hot
// layer's memory (over Redis), from Redis, from the embedded in-process
// cache, and from the CQL store (the cold path: what a miss costs, with
// and without the Fill that follows it).
func BenchmarkLatest50(b *testing.B) {
	ctx := b.Context()
	rc, prefix := redistest.MustClient(b)
	central := msgredis.NewCache(rc, msgredis.CacheConfig{Prefix: prefix})
	const ch = 42
	if err := central.Fill(ctx, ch, page(ch, 100, 100)); err != nil {
		b.Fatal(err)
	}

	b.Run("hot", func(b *testing.B) {
		nc := bustest.MustConnect(b, bustest.MustServer(b))
		hot, err := New(central, nc, Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer hot.Shutdown(context.Background())
		for range 100 { // promote the channel
			if _, _, err := hot.Latest(ctx, ch, 50); err != nil {
				b.Fatal(err)
			}
		}
		read := func(ctx context.Context) error { return want50(hot.Latest(ctx, ch, 50)) }
		b.Run("saturated", func(b *testing.B) { parallel(b, read) })
		b.Run("50k", func(b *testing.B) { paced(b, 50_000, read) })
		total := val(hot.m.hotHit) + val(hot.m.hotMiss) + val(hot.m.hotShared)
		b.ReportMetric(100*val(hot.m.hotHit)/total, "hot-hit-%")
	})
	b.Run("redis", func(b *testing.B) {
		read := func(ctx context.Context) error { return want50(central.Latest(ctx, ch, 50)) }
		b.Run("saturated", func(b *testing.B) { parallel(b, read) })
		b.Run("5k", func(b *testing.B) { paced(b, 5_000, read) })
	})
	b.Run("inmem", func(b *testing.B) {
		c := inmem.New(inmem.Config{})
		if err := c.Fill(ctx, ch, page(ch, 100, 100)); err != nil {
			b.Fatal(err)
		}
		read := func(ctx context.Context) error { return want50(c.Latest(ctx, ch, 50)) }
		b.Run("saturated", func(b *testing.B) { parallel(b, read) })
		b.Run("50k", func(b *testing.B) { paced(b, 50_000, read) })
	})

	store := cql.New(cqltest.MustSession(b, cql.Component, cql.Migrations))
	var next atomic.Uint64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for seq := next.Add(1); seq <= 1000; seq = next.Add(1) {
				if err := store.Insert(ctx, page(ch, seq, 1)[0]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	b.Run("cql", func(b *testing.B) {
		parallel(b, func(ctx context.Context) error {
			msgs, err := store.List(ctx, ch, message.Query{Limit: 50})
			return want50(msgs, true, err)
		})
	})
	// A miss in Redis: Latest, the store read, the Fill (then an untimed
	// Invalidate, so the next read misses again).
	b.Run("miss", func(b *testing.B) {
		var l latencies
		d := make([]time.Duration, 0, b.N)
		start := time.Now()
		var spent time.Duration
		for b.Loop() {
			t := time.Now()
			if _, complete, err := central.Latest(ctx, ch+1, 50); err != nil || complete {
				b.Fatalf("Latest of an invalidated channel: complete=%v, %v", complete, err)
			}
			msgs, err := store.List(ctx, ch, message.Query{Limit: 50})
			if err != nil {
				b.Fatal(err)
			}
			for i := range msgs {
				msgs[i].ChannelID = ch + 1
			}
			if err := central.Fill(ctx, ch+1, msgs); err != nil {
				b.Fatal(err)
			}
			d = append(d, time.Since(t))
			t2 := time.Now()
			if err := central.Invalidate(ctx, ch+1); err != nil {
				b.Fatal(err)
			}
			spent += time.Since(t2)
		}
		l.add(d)
		l.report(b, time.Since(start)-spent)
	})
}

// syntheticStore is the store behind the hit-ratio benchmark: every
// channel's history is generated from its last ID, so the benchmark
// measures the caches, not a store.
type syntheticStore struct {
	last  []atomic.Uint64
	reads atomic.Int64
}

func (s *syntheticStore) latest(ch uint64, n int) []message.Message {
	s.reads.Add(1)
	return page(ch, s.last[ch].Load(), n)
}

// BenchmarkZipfHitRatio reads the latest 50 messages of channels picked
// from a Zipf distribution (s=1.1) over 10,000 channels, with one write
// (an Add to the channel read) per 100 reads, the way the message Reader
// uses the cache: Latest, and on an incomplete window a store read and a
// Fill. It reports which tier served the reads: the hot layer's memory,
// the central cache (a complete window), or the store. "hot+redis" puts
// the hot layer over Redis, "redis" is Redis alone (the baseline), and
// "inmem-bounded" is the embedded cache alone with memory for about a
// tenth of the channels.
func BenchmarkZipfHitRatio(b *testing.B) {
	const channels = 10_000
	for _, bc := range []string{"hot+redis", "redis", "inmem-bounded"} {
		b.Run(bc, func(b *testing.B) {
			ctx := b.Context()
			store := &syntheticStore{last: make([]atomic.Uint64, channels+1)}
			for i := range store.last {
				store.last[i].Store(60)
			}
			var c message.Cache
			var hot *Cache
			switch bc {
			case "redis":
				rc, prefix := redistest.MustClient(b)
				c = msgredis.NewCache(rc, msgredis.CacheConfig{Prefix: prefix})
			case "hot+redis":
				rc, prefix := redistest.MustClient(b)
				nc := bustest.MustConnect(b, bustest.MustServer(b))
				var err error
				hot, err = New(msgredis.NewCache(rc, msgredis.CacheConfig{Prefix: prefix}), nc, Config{})
				if err != nil {
					b.Fatal(err)
				}
				defer hot.Shutdown(context.Background())
				c = hot
			default:
				// ~80 KB per full window (CachedSize of 100 messages of
				// this length): 1,000 channels' worth.
				c = inmem.New(inmem.Config{MaxBytes: 1000 * int64(100*message.CachedSize(page(1, 100, 1)[0])+256)})
			}
			var reads, storeReads atomic.Int64
			// op is one step of a reader: every 100th is a write.
			op := func(ch uint64, i int) error {
				if i%100 == 0 {
					id := store.last[ch].Add(1)
					return c.Add(ctx, page(ch, id, 1)[0])
				}
				reads.Add(1)
				msgs, complete, err := c.Latest(ctx, ch, 50)
				if err != nil || (complete && len(msgs) == 50) {
					return err
				}
				storeReads.Add(1)
				return c.Fill(ctx, ch, store.latest(ch, 100))
			}
			newZipf := func() *rand.Zipf {
				r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
				return rand.NewZipf(r, 1.1, 1, channels-1)
			}
			// Warm up (not counted): the caches start empty, and a short
			// run would measure mostly first reads.
			z := newZipf()
			for i := 1; i <= 50_000; i++ {
				if err := op(z.Uint64()+1, i); err != nil {
					b.Fatal(err)
				}
			}
			reads.Store(0)
			storeReads.Store(0)
			var hotBefore float64
			if hot != nil {
				hotBefore = val(hot.m.hotHit)
			}
			b.SetParallelism(4)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				z := newZipf()
				for i := 1; pb.Next(); i++ {
					if err := op(z.Uint64()+1, i); err != nil {
						b.Error(err)
						return
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			n := float64(reads.Load())
			b.ReportMetric(n/elapsed.Seconds(), "reads/s")
			b.ReportMetric(100*(n-float64(storeReads.Load()))/n, "cache-hit-%")
			if hot != nil {
				b.ReportMetric(100*(val(hot.m.hotHit)-hotBefore)/n, "hot-hit-%")
			}
		})
	}
}

// BenchmarkCrossNodeVisibility: how long after a write through node A
// returns does node B's hot layer (which holds the channel in memory, TTL
// 1 h) serve it: the NATS invalidation hop plus B's reload from Redis.
// Each op is one Add through A, then B reads until it sees it.
func BenchmarkCrossNodeVisibility(b *testing.B) {
	ctx := b.Context()
	ns := bustest.MustServer(b)
	rc, prefix := redistest.MustClient(b)
	central := msgredis.NewCache(rc, msgredis.CacheConfig{Prefix: prefix})
	a, err := New(central, bustest.MustConnect(b, ns), Config{NodeID: "a", Threshold: 1, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	nb, err := New(central, bustest.MustConnect(b, ns), Config{NodeID: "b", Threshold: 1, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer nb.Shutdown(context.Background())
	const ch = 7
	if err := central.Fill(ctx, ch, page(ch, 100, 100)); err != nil {
		b.Fatal(err)
	}
	var l latencies
	d := make([]time.Duration, 0, b.N)
	id := uint64(100)
	for b.Loop() {
		id++
		m := page(ch, id, 1)[0]
		if err := a.Add(ctx, m); err != nil {
			b.Fatal(err)
		}
		t := time.Now()
		for {
			got, _, err := nb.Latest(ctx, ch, 50)
			if err != nil {
				b.Fatal(err)
			}
			if len(got) > 0 && got[0].ID == m.ID {
				break
			}
			if time.Since(t) > 10*time.Second {
				b.Fatal("node B never saw the write")
			}
			runtime.Gosched() // a reader, not a spin loop starving the NATS goroutines
		}
		d = append(d, time.Since(t))
	}
	l.add(d)
	l.all = slices.Clip(l.all)
	slices.Sort(l.all)
	b.ReportMetric(float64(l.all[len(l.all)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(l.all[min(len(l.all)-1, len(l.all)*99/100)].Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(100*val(nb.m.hotHit)/(val(nb.m.hotHit)+val(nb.m.hotMiss)+val(nb.m.hotShared)), "b-reads-from-memory-%")
}
