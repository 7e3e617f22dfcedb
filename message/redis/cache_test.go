package redis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/internal/redisdb/redistest"
	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/cachetest"
)

func TestCache(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) cachetest.Setup {
		rc, prefix := redistest.MustClient(t)
		return cachetest.Setup{Cache: NewCache(rc, CacheConfig{
			Prefix: prefix, Window: cachetest.Window, TTL: cachetest.TTL, CompleteTTL: cachetest.CompleteTTL,
		})}
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
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCacheExpiry: the complete mark goes after CompleteTTL, the window
// after TTL (on the Redis server's clock).
func TestCacheExpiry(t *testing.T) {
	ctx := t.Context()
	rc, prefix := redistest.MustClient(t)
	c := NewCache(rc, CacheConfig{Prefix: prefix, TTL: 400 * time.Millisecond, CompleteTTL: 100 * time.Millisecond})
	m := message.Message{ID: 1, ChannelID: 5, Content: "x"}
	if err := c.Fill(ctx, 5, []message.Message{m}); err != nil {
		t.Fatal(err)
	}
	got, complete, err := c.Latest(ctx, 5, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("Latest = %v, %v, %v", got, complete, err)
	}
	checkFor(t, 10*time.Second, func() error {
		got, complete, err := c.Latest(ctx, 5, 10)
		if err != nil || complete || len(got) != 1 {
			return errors.New("complete mark did not expire alone")
		}
		return nil
	})
	checkFor(t, 10*time.Second, func() error {
		got, _, err := c.Latest(ctx, 5, 10)
		if err != nil || len(got) != 0 {
			return errors.New("window did not expire")
		}
		return nil
	})
	n, err := rc.Keys(ctx, prefix+"*").Result()
	if err != nil || len(n) != 0 {
		t.Fatalf("keys left: %v %v", n, err)
	}
}

// TestCacheKeysUnderPrefix: everything the cache writes is under its
// prefix, with a TTL.
func TestCacheKeysUnderPrefix(t *testing.T) {
	ctx := t.Context()
	rc, prefix := redistest.MustClient(t)
	c := NewCache(rc, CacheConfig{Prefix: prefix})
	m := message.Message{ID: 1, ChannelID: 5, Content: "x"}
	for _, err := range []error{c.Add(ctx, m), c.Replace(ctx, m), c.Remove(ctx, 5, 2), c.Fill(ctx, 5, []message.Message{m})} {
		if err != nil {
			t.Fatal(err)
		}
	}
	keys, err := rc.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) != 4 {
		t.Fatalf("keys %v, %v; want 4", keys, err)
	}
	for _, k := range keys {
		if ttl := rc.PTTL(ctx, k).Val(); ttl <= 0 {
			t.Errorf("key %s has no TTL (%v)", k, ttl)
		}
	}
}

// TestCacheBrokenWindow: when Redis evicted the bodies but not the IDs
// (maxmemory), the next read drops the window instead of failing.
func TestCacheBrokenWindow(t *testing.T) {
	ctx := t.Context()
	rc, prefix := redistest.MustClient(t)
	c := NewCache(rc, CacheConfig{Prefix: prefix})
	if err := c.Fill(ctx, 5, []message.Message{{ID: 2, ChannelID: 5}, {ID: 1, ChannelID: 5}}); err != nil {
		t.Fatal(err)
	}
	rc.Del(ctx, c.keys(5)[1])
	got, complete, err := c.Latest(ctx, 5, 10)
	if err != nil || complete || len(got) != 0 {
		t.Fatalf("Latest = %v, %v, %v; want a miss", got, complete, err)
	}
	if n := rc.Exists(ctx, c.keys(5)[0]).Val(); n != 0 {
		t.Fatal("the orphaned ID list was not dropped")
	}
}

// TestCacheUnavailable: with Redis down every method fails fast with
// Unavailable.
func TestCacheUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	rc := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rc.Close() })
	c := NewCache(rc, CacheConfig{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	m := message.Message{ID: 1, ChannelID: 5}
	_, _, latestErr := c.Latest(ctx, 5, 10)
	for name, err := range map[string]error{
		"Add": c.Add(ctx, m), "Replace": c.Replace(ctx, m), "Remove": c.Remove(ctx, 5, 1),
		"Fill": c.Fill(ctx, 5, nil), "Invalidate": c.Invalidate(ctx, 5), "Latest": latestErr,
	} {
		if guildhall.KindOf(err) != guildhall.Unavailable {
			t.Errorf("%s: %v, want Unavailable", name, err)
		}
		if ctx.Err() != nil {
			t.Errorf("%s hung until the caller's deadline", name)
		}
	}
}

// proxy forwards TCP connections to Redis until cut.
type proxy struct {
	l     net.Listener
	to    string
	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func mustProxy(t *testing.T, to string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, to: to}
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); p.cut(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.down {
				p.mu.Unlock()
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", to)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// TestCacheWriteDuringOutage: an Add lost to an outage must not leave a
// complete window without the message: the node that failed to write
// invalidates the window before reading it again.
func TestCacheWriteDuringOutage(t *testing.T) {
	ctx := t.Context()
	_, prefix := redistest.MustClient(t)
	p := mustProxy(t, redistest.Addr(t))
	rc := redis.NewClient(&redis.Options{Addr: p.l.Addr().String(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { rc.Close() })
	c := NewCache(rc, CacheConfig{Prefix: prefix, FailFast: time.Millisecond})
	m := func(id uint64) message.Message { return message.Message{ID: id, ChannelID: 5, Content: "x"} }
	if err := c.Fill(ctx, 5, []message.Message{m(2), m(1)}); err != nil {
		t.Fatal(err)
	}
	p.cut()
	if err := c.Add(ctx, m(3)); guildhall.KindOf(err) != guildhall.Unavailable {
		t.Fatalf("Add during the outage: %v, want Unavailable", err)
	}
	p.restore()
	checkFor(t, 10*time.Second, func() error {
		got, complete, err := c.Latest(ctx, 5, 10)
		if err != nil {
			return err
		}
		if complete || len(got) != 0 {
			return fmt.Errorf("after a lost Add: %d messages, complete=%v; want an invalidated window", len(got), complete)
		}
		return nil
	})
}

// TestCacheHungRedis: a Redis that accepts connections and never answers
// costs each call at most Timeout, then Unavailable.
func TestCacheHungRedis(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	// A client like redisdb.Open's: the ctx deadline bounds socket I/O.
	rc := redis.NewClient(&redis.Options{Addr: l.Addr().String(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rc.Close() })
	c := NewCache(rc, CacheConfig{Timeout: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, _, err = c.Latest(ctx, 5, 10)
	if guildhall.KindOf(err) != guildhall.Unavailable || ctx.Err() != nil {
		t.Fatalf("Latest: %v (caller's ctx: %v); want Unavailable within Timeout", err, ctx.Err())
	}
	if err := c.Add(ctx, message.Message{ID: 1, ChannelID: 5}); guildhall.KindOf(err) != guildhall.Unavailable {
		t.Fatalf("Add: %v, want Unavailable", err)
	}
}
