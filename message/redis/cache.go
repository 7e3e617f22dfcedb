package redis

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/message"
)

// CacheConfig configures a Cache. Zero values mean the documented
// defaults.
type CacheConfig struct {
	// Prefix starts every key the cache writes; default "gh:".
	Prefix string
	// Window is how many of a channel's newest messages are kept; default
	// 100, at most 1,000.
	Window int
	// TTL: a channel's window (IDs and bodies) expires this long after its
	// last write; default 1 hour.
	TTL time.Duration
	// CompleteTTL: the complete mark a Fill sets lasts this long however
	// often the window is written, so a window is rebuilt from the store
	// at least that often; default 10 minutes, at most TTL.
	CompleteTTL time.Duration
	// ChangeTTL is how long a Remove or Replace is remembered so that a
	// Fill read from the store just before it cannot undo it; default 1
	// minute. MaxChanges bounds how many per channel; default 64.
	ChangeTTL  time.Duration
	MaxChanges int
	// FailFast: after a call finds Redis unavailable, calls fail at once
	// with Unavailable for this long instead of waiting on the client's
	// dial retries, so readers fall back to the store without delay.
	// Default 1 second.
	FailFast time.Duration
	// Timeout bounds each call to Redis (within the caller's ctx), so a
	// Redis that accepts connections but does not answer costs a reader or
	// a send at most this long; default 500 ms. It needs a client with
	// ContextTimeoutEnabled, as internal/redisdb.Open makes.
	Timeout time.Duration
}

func (c *CacheConfig) defaults() {
	if c.Prefix == "" {
		c.Prefix = "gh:"
	}
	if c.Window <= 0 {
		c.Window = 100
	}
	c.Window = min(c.Window, 1000)
	if c.TTL <= 0 {
		c.TTL = time.Hour
	}
	if c.CompleteTTL <= 0 {
		c.CompleteTTL = 10 * time.Minute
	}
	c.CompleteTTL = min(c.CompleteTTL, c.TTL)
	if c.ChangeTTL <= 0 {
		c.ChangeTTL = time.Minute
	}
	if c.MaxChanges <= 0 {
		c.MaxChanges = 64
	}
	if c.FailFast <= 0 {
		c.FailFast = time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 500 * time.Millisecond
	}
}

// maxDirty bounds how many channels a Cache remembers as possibly stale.
const maxDirty = 10_000

// Cache is a message.Cache in Redis.
//
// A write that fails (Redis unavailable) leaves the channel's window
// possibly stale: the channel is remembered (up to 10,000 channels) and its
// window invalidated before this Cache next reads it. Other nodes rely on
// the complete mark's CompleteTTL.
type Cache struct {
	rc        redis.UniversalClient
	cfg       CacheConfig
	downUntil atomic.Int64 // unix ns; calls fail fast before it

	mu    sync.Mutex
	dirty map[uint64]struct{}
}

var _ message.Cache = (*Cache)(nil)

// NewCache returns a Cache over rc (see internal/redisdb.Open).
func NewCache(rc redis.UniversalClient, cfg CacheConfig) *Cache {
	cfg.defaults()
	return &Cache{rc: rc, cfg: cfg, dirty: make(map[uint64]struct{})}
}

var errFailFast = errors.New("redis was unavailable moments ago")

// call runs fn unless Redis failed moments ago, and opens the fail-fast
// window when fn finds it unavailable.
func (c *Cache) call(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	if time.Now().UnixNano() < c.downUntil.Load() {
		return fail(op, errFailFast)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	err := fail(op, fn(ctx))
	if guildhall.KindOf(err) == guildhall.Unavailable {
		c.downUntil.Store(time.Now().Add(c.cfg.FailFast).UnixNano())
	}
	return err
}

// write runs a write of a channel; if it fails, the channel is marked
// dirty.
func (c *Cache) write(ctx context.Context, op string, channelID uint64, fn func(ctx context.Context) error) error {
	err := c.call(ctx, op, fn)
	if err != nil {
		c.mu.Lock()
		if len(c.dirty) < maxDirty {
			c.dirty[channelID] = struct{}{}
		}
		c.mu.Unlock()
	}
	return err
}

// clean invalidates a dirty channel before it is read.
func (c *Cache) clean(ctx context.Context, op string, channelID uint64) error {
	c.mu.Lock()
	_, dirty := c.dirty[channelID]
	c.mu.Unlock()
	if !dirty {
		return nil
	}
	k := c.keys(channelID)
	if err := c.call(ctx, op, func(ctx context.Context) error { return c.rc.Del(ctx, k[0], k[1]).Err() }); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.dirty, channelID)
	c.mu.Unlock()
	return nil
}

// keys are a channel's four keys: window, bodies, changes, change times.
func (c *Cache) keys(channelID uint64) []string {
	tag := c.cfg.Prefix + "mc:{" + strconv.FormatUint(channelID, 10) + "}:"
	return []string{tag + "w", tag + "b", tag + "x", tag + "xt"}
}

// fail turns a Redis error into a guildhall error: a server's error reply
// (a script bug, a wrong key type) is Internal, anything else (refused,
// timed out, closed, cancelled) is Unavailable.
func fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var reply redis.Error
	if errors.As(err, &reply) && !errors.Is(err, redis.ErrClosed) {
		return guildhall.Wrap(op, err)
	}
	return &guildhall.Error{Op: op, Kind: guildhall.Unavailable, Msg: "the message cache is unavailable", Err: err}
}

// Add implements message.Cache.
func (c *Cache) Add(ctx context.Context, m message.Message) error {
	const op = "redis.Cache.Add"
	if err := message.CheckCached(op, m); err != nil {
		return err
	}
	body, err := encode(m)
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	return c.write(ctx, op, m.ChannelID, func(ctx context.Context) error {
		return scriptAdd.Run(ctx, c.rc, c.keys(m.ChannelID)[:2], member(m.ID), body, c.cfg.Window, ms(c.cfg.TTL)).Err()
	})
}

// Replace implements message.Cache.
func (c *Cache) Replace(ctx context.Context, m message.Message) error {
	const op = "redis.Cache.Replace"
	if err := message.CheckCached(op, m); err != nil {
		return err
	}
	body, err := encode(m)
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	return c.write(ctx, op, m.ChannelID, func(ctx context.Context) error { return c.change(ctx, m.ChannelID, m.ID, body) })
}

// Remove implements message.Cache.
func (c *Cache) Remove(ctx context.Context, channelID, id uint64) error {
	const op = "redis.Cache.Remove"
	if err := message.CheckChannel(op, channelID); err != nil {
		return err
	}
	return c.write(ctx, op, channelID, func(ctx context.Context) error { return c.change(ctx, channelID, id, nil) })
}

func (c *Cache) change(ctx context.Context, channelID, id uint64, body []byte) error {
	return scriptChange.Run(ctx, c.rc, c.keys(channelID), member(id), body,
		ms(c.cfg.TTL), ms(c.cfg.ChangeTTL), c.cfg.MaxChanges).Err()
}

// Latest implements message.Cache.
func (c *Cache) Latest(ctx context.Context, channelID uint64, limit int) ([]message.Message, bool, error) {
	const op = "redis.Cache.Latest"
	if err := message.CheckLimit(op, limit); err != nil {
		return nil, false, err
	}
	if err := message.CheckChannel(op, channelID); err != nil {
		return nil, false, err
	}
	if err := c.clean(ctx, op, channelID); err != nil {
		return nil, false, err
	}
	var res []any
	err := c.call(ctx, op, func(ctx context.Context) (err error) {
		res, err = scriptLatest.Run(ctx, c.rc, c.keys(channelID)[:2], min(limit, c.cfg.Window)).Slice()
		return err
	})
	if err != nil {
		return nil, false, err
	}
	if len(res) == 0 {
		return nil, false, guildhall.E(op, guildhall.Internal, "empty script reply")
	}
	complete := res[0] == int64(1)
	if len(res) == 1 {
		return nil, complete, nil
	}
	out := make([]message.Message, 0, len(res)-1)
	for _, r := range res[1:] {
		s, ok := r.(string)
		if !ok {
			return nil, false, guildhall.E(op, guildhall.Internal, "a cached body is missing")
		}
		m, err := decode([]byte(s))
		if err != nil {
			return nil, false, guildhall.Wrap(op, err)
		}
		out = append(out, m)
	}
	return out, complete, nil
}

// Fill implements message.Cache.
func (c *Cache) Fill(ctx context.Context, channelID uint64, msgs []message.Message) error {
	const op = "redis.Cache.Fill"
	if err := message.CheckFill(op, channelID, msgs); err != nil {
		return err
	}
	msgs = msgs[:min(len(msgs), c.cfg.Window)]
	args := make([]any, 0, 4+2*len(msgs))
	args = append(args, c.cfg.Window, ms(c.cfg.TTL), ms(c.cfg.CompleteTTL), ms(c.cfg.ChangeTTL))
	for _, m := range msgs {
		body, err := encode(m)
		if err != nil {
			return guildhall.Wrap(op, err)
		}
		args = append(args, member(m.ID), body)
	}
	if err := c.clean(ctx, op, channelID); err != nil {
		return err
	}
	return c.call(ctx, op, func(ctx context.Context) error { return scriptFill.Run(ctx, c.rc, c.keys(channelID), args...).Err() })
}

// Invalidate implements message.Cache. Recent Removes and Replaces stay
// remembered.
func (c *Cache) Invalidate(ctx context.Context, channelID uint64) error {
	const op = "redis.Cache.Invalidate"
	if err := message.CheckChannel(op, channelID); err != nil {
		return err
	}
	k := c.keys(channelID)
	return c.write(ctx, op, channelID, func(ctx context.Context) error { return c.rc.Del(ctx, k[0], k[1]).Err() })
}
