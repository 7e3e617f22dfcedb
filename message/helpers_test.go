package message_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/guildhall/guildhall/bus/bustest"
	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/inmem"
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

// memCache is the embedded cache (message/inmem) with a switch that
// makes every call fail, as Redis does when it is down.
type memCache struct {
	inner *inmem.Cache
	mu    sync.Mutex
	err   error // returned by every call when set
}

func newMemCache() *memCache { return &memCache{inner: inmem.New(inmem.Config{})} }

func (c *memCache) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

func (c *memCache) down() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *memCache) Add(ctx context.Context, m message.Message) error {
	if err := c.down(); err != nil {
		return err
	}
	return c.inner.Add(ctx, m)
}

func (c *memCache) Replace(ctx context.Context, m message.Message) error {
	if err := c.down(); err != nil {
		return err
	}
	return c.inner.Replace(ctx, m)
}

func (c *memCache) Remove(ctx context.Context, channelID, id uint64) error {
	if err := c.down(); err != nil {
		return err
	}
	return c.inner.Remove(ctx, channelID, id)
}

func (c *memCache) Latest(ctx context.Context, channelID uint64, limit int) ([]message.Message, bool, error) {
	if err := c.down(); err != nil {
		return nil, false, err
	}
	return c.inner.Latest(ctx, channelID, limit)
}

func (c *memCache) Fill(ctx context.Context, channelID uint64, msgs []message.Message) error {
	if err := c.down(); err != nil {
		return err
	}
	return c.inner.Fill(ctx, channelID, msgs)
}

func (c *memCache) Invalidate(ctx context.Context, channelID uint64) error {
	if err := c.down(); err != nil {
		return err
	}
	return c.inner.Invalidate(ctx, channelID)
}

var _ message.Cache = (*memCache)(nil)
