package message_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/guildhall/guildhall/bus/bustest"
	"github.com/guildhall/guildhall/message"
	messagejs "github.com/guildhall/guildhall/message/jetstream"
)

// wait bounds every poll; no test relies on it for timing.
const wait = 15 * time.Second

// checkFor calls f until it returns nil, failing the test with f's last
// error after wait.
func checkFor(tb testing.TB, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %v", wait, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// mustLog returns a message log on ns's JetStream (file storage in the
// server's store directory), on a connection of its own, as another
// message service process would have.
func mustLog(tb testing.TB, ns *server.Server, cfg messagejs.Config) *messagejs.Log {
	tb.Helper()
	nc := bustest.MustConnect(tb, ns)
	if cfg.LagRefresh == 0 {
		cfg.LagRefresh = -1 // exact, for settle
	}
	l, err := messagejs.New(tb.Context(), nc, cfg)
	if err != nil {
		tb.Fatalf("message log: %v", err)
	}
	return l
}

// mustPersister runs a persister until the test ends.
func mustPersister(tb testing.TB, cfg message.PersisterConfig) *message.Persister {
	tb.Helper()
	if cfg.BatchWait == 0 {
		cfg.BatchWait = 5 * time.Millisecond
	}
	p, err := message.StartPersister(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return p
}

// settle waits until the persister has stored everything in the log.
func settle(tb testing.TB, l message.Log) {
	tb.Helper()
	checkFor(tb, func() error {
		lag, err := l.Lag(tb.Context())
		if err != nil {
			return err
		}
		if lag != 0 {
			return errors.New("persister behind")
		}
		return nil
	})
}

// memCache is a small message.Cache for these tests (the real ones live
// in message/inmem and message/redis and have their own suite).
type memCache struct {
	mu       sync.Mutex
	windows  map[uint64][]message.Message // newest first
	complete map[uint64]bool
	err      error // returned by every call when set
}

const memCacheSize = 200

func newMemCache() *memCache {
	return &memCache{windows: map[uint64][]message.Message{}, complete: map[uint64]bool{}}
}

func (c *memCache) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

func (c *memCache) put(m message.Message) {
	w := slices.DeleteFunc(c.windows[m.ChannelID], func(o message.Message) bool { return o.ID == m.ID })
	w = append(w, m)
	slices.SortFunc(w, func(a, b message.Message) int {
		if a.ID > b.ID {
			return -1
		}
		return 1
	})
	if len(w) > memCacheSize {
		w = w[:memCacheSize]
	}
	c.windows[m.ChannelID] = w
}

func (c *memCache) Add(_ context.Context, m message.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.put(m)
	return nil
}

func (c *memCache) Replace(_ context.Context, m message.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if slices.ContainsFunc(c.windows[m.ChannelID], func(o message.Message) bool { return o.ID == m.ID }) {
		c.put(m)
	}
	return nil
}

func (c *memCache) Remove(_ context.Context, channelID, id uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.windows[channelID] = slices.DeleteFunc(c.windows[channelID], func(o message.Message) bool { return o.ID == id })
	return nil
}

func (c *memCache) Latest(_ context.Context, channelID uint64, limit int) ([]message.Message, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, false, c.err
	}
	w := c.windows[channelID]
	return slices.Clone(w[:min(limit, len(w))]), c.complete[channelID], nil
}

func (c *memCache) Fill(_ context.Context, channelID uint64, msgs []message.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	for _, m := range msgs {
		if !slices.ContainsFunc(c.windows[channelID], func(o message.Message) bool { return o.ID == m.ID }) {
			c.put(m)
		}
	}
	c.complete[channelID] = true
	return nil
}

func (c *memCache) Invalidate(_ context.Context, channelID uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.windows, channelID)
	delete(c.complete, channelID)
	return c.err
}

var _ message.Cache = (*memCache)(nil)
