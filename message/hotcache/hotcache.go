package hotcache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/message"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// Bus is the part of a NATS connection the hot layer needs; *nats.Conn
// has it.
type Bus interface {
	Publish(subject string, data []byte) error
	Subscribe(subject string, cb nats.MsgHandler) (*nats.Subscription, error)
}

// Config configures a Cache. Zero values mean the documented defaults.
type Config struct {
	// NodeID names this node in the invalidations it sends; default a
	// random ID.
	NodeID string
	// A channel read at least Threshold times within the last Period is
	// hot; defaults 50 and 1 second.
	Threshold int
	Period    time.Duration
	// TTL is how long a local copy is served; default 1 second. It bounds
	// how stale a copy can be if an invalidation is lost.
	TTL time.Duration
	// Depth is how many messages a local copy holds (it is the inner
	// cache's Latest with limit Depth); a Latest with a larger limit goes to
	// the inner cache. Default message.MaxPage.
	Depth int
	// MaxHot bounds the channels held locally; default 1,024. MaxTracked
	// bounds the channels whose reads are counted; default 100,000 (past
	// it, new channels are not counted until the sweeper drops idle ones).
	MaxHot     int
	MaxTracked int
	// Shards is the number of independently locked shards; default 64.
	Shards int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer receives the layer's metrics; nil registers none.
	Registerer prometheus.Registerer
}

func (c *Config) defaults() {
	if c.NodeID == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		c.NodeID = hex.EncodeToString(b)
	}
	if c.Threshold <= 0 {
		c.Threshold = 50
	}
	if c.Period <= 0 {
		c.Period = time.Second
	}
	if c.TTL <= 0 {
		c.TTL = time.Second
	}
	if c.Depth <= 0 {
		c.Depth = message.MaxPage
	}
	if c.MaxHot <= 0 {
		c.MaxHot = 1024
	}
	if c.MaxTracked <= 0 {
		c.MaxTracked = 100_000
	}
	if c.Shards <= 0 {
		c.Shards = 64
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Cache is a message.Cache that serves hot channels' latest messages from
// process memory in front of an inner Cache, and keeps every node's copies
// coherent over the bus.
type Cache struct {
	inner   message.Cache
	bus     Bus
	cfg     Config
	seed    maphash.Seed
	shards  []shard
	hot     atomic.Int64 // local copies held
	tracked atomic.Int64 // entries in all shards
	m       metrics

	sub      *nats.Subscription
	stop     chan struct{}
	done     chan struct{}
	shutOnce sync.Once
}

var _ message.Cache = (*Cache)(nil)

type shard struct {
	mu      sync.Mutex
	entries map[uint64]*entry
}

// entry is one channel's read count and local copy.
type entry struct {
	// Reads: cur counts the bucket that started at start, prev the one
	// before; the rate is prev weighted by how much of it is still inside
	// the sliding period, plus cur.
	start     time.Time
	cur, prev int

	copy     []message.Message // newest first, nil when none
	complete bool
	expires  time.Time
	gen      uint64 // bumped by every invalidation: a load started before one is not kept
	loading  *load
}

// load is a read of the inner cache that concurrent readers of the same
// channel share.
type load struct {
	done     chan struct{}
	msgs     []message.Message
	complete bool
	err      error
}

// New returns a hot layer over inner, subscribed to invalidations on bus.
// Call Shutdown to stop it.
func New(inner message.Cache, b Bus, cfg Config) (*Cache, error) {
	cfg.defaults()
	c := &Cache{
		inner:  inner,
		bus:    b,
		cfg:    cfg,
		seed:   maphash.MakeSeed(),
		shards: make([]shard, cfg.Shards),
		m:      newMetrics(),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	for i := range c.shards {
		c.shards[i].entries = make(map[uint64]*entry)
	}
	if cfg.Registerer != nil {
		if err := c.m.register(cfg.Registerer, c); err != nil {
			return nil, guildhall.Wrap("hotcache.New", err)
		}
	}
	sub, err := b.Subscribe(bus.MessageCacheInvalidate, c.receive)
	if err != nil {
		return nil, &guildhall.Error{Op: "hotcache.New", Kind: guildhall.Unavailable, Msg: "cannot subscribe to cache invalidations", Err: err}
	}
	c.sub = sub
	go c.sweep()
	return c, nil
}

// Shutdown stops the sweeper and unsubscribes; the Cache keeps working as
// a plain pass-through with local copies that are no longer invalidated
// from other nodes, so stop using it. Safe to call more than once.
func (c *Cache) Shutdown(ctx context.Context) error {
	var err error
	c.shutOnce.Do(func() {
		close(c.stop)
		err = c.sub.Unsubscribe()
	})
	select {
	case <-c.done:
	case <-ctx.Done():
		return guildhall.Wrap("hotcache.Shutdown", ctx.Err())
	}
	if err != nil && err != nats.ErrConnectionClosed && err != nats.ErrBadSubscription {
		return guildhall.Wrap("hotcache.Shutdown", err)
	}
	return nil
}

// sweep drops idle entries and expired copies every Period, so memory
// follows the set of channels read lately.
func (c *Cache) sweep() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.Period)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		now := c.cfg.Now()
		for i := range c.shards {
			s := &c.shards[i]
			s.mu.Lock()
			for ch, e := range s.entries {
				if e.copy != nil && !now.Before(e.expires) {
					c.dropCopy(e)
				}
				if e.copy == nil && e.loading == nil && c.rate(e, now) == 0 {
					delete(s.entries, ch)
					c.tracked.Add(-1)
				}
			}
			s.mu.Unlock()
		}
	}
}

func (c *Cache) shard(channelID uint64) *shard {
	return &c.shards[maphash.Comparable(c.seed, channelID)%uint64(len(c.shards))]
}

// rate rolls e's buckets forward to now and returns its reads in the
// last Period.
func (c *Cache) rate(e *entry, now time.Time) float64 {
	p := c.cfg.Period
	switch el := now.Sub(e.start); {
	case el >= 2*p || el < 0:
		e.prev, e.cur, e.start = 0, 0, now
	case el >= p:
		e.prev, e.cur, e.start = e.cur, 0, e.start.Add(p)
	}
	left := 1 - float64(now.Sub(e.start))/float64(p)
	return float64(e.prev)*left + float64(e.cur)
}

func (c *Cache) dropCopy(e *entry) {
	if e.copy != nil {
		e.copy = nil
		c.hot.Add(-1)
	}
}

// slice returns the first limit of msgs in a new slice.
func slice(msgs []message.Message, limit int) []message.Message {
	n := min(limit, len(msgs))
	if n == 0 {
		return nil
	}
	out := make([]message.Message, n)
	copy(out, msgs)
	return out
}

// Latest implements message.Cache: from the local copy when the channel
// is hot, else from the inner cache. The messages' Mentions slices are
// shared: treat them as read-only.
func (c *Cache) Latest(ctx context.Context, channelID uint64, limit int) ([]message.Message, bool, error) {
	const op = "hotcache.Latest"
	if err := message.CheckLimit(op, limit); err != nil {
		return nil, false, err
	}
	if err := message.CheckChannel(op, channelID); err != nil {
		return nil, false, err
	}
	if limit > c.cfg.Depth {
		c.m.hotMiss.Inc()
		return c.innerLatest(ctx, channelID, limit)
	}
	s := c.shard(channelID)
	now := c.cfg.Now()
	s.mu.Lock()
	e := s.entries[channelID]
	if e == nil {
		if c.tracked.Load() >= int64(c.cfg.MaxTracked) {
			s.mu.Unlock()
			c.m.hotMiss.Inc()
			return c.innerLatest(ctx, channelID, limit)
		}
		e = &entry{start: now}
		s.entries[channelID] = e
		c.tracked.Add(1)
	}
	rate := c.rate(e, now) + 1
	e.cur++
	if e.copy != nil && now.Before(e.expires) {
		msgs, complete := slice(e.copy, limit), e.complete
		s.mu.Unlock()
		c.m.hotHit.Inc()
		return msgs, complete, nil
	}
	c.dropCopy(e)
	l := e.loading
	if l == nil {
		if rate < float64(c.cfg.Threshold) || c.hot.Load() >= int64(c.cfg.MaxHot) {
			s.mu.Unlock()
			c.m.hotMiss.Inc()
			return c.innerLatest(ctx, channelID, limit)
		}
		// Hot: load a copy; readers arriving meanwhile wait for it.
		l = &load{done: make(chan struct{})}
		e.loading = l
		gen := e.gen
		s.mu.Unlock()
		c.m.hotMiss.Inc()
		c.load(ctx, s, e, l, channelID, gen)
		return slice(l.msgs, limit), l.complete, l.err
	}
	s.mu.Unlock()
	select {
	case <-l.done:
	case <-ctx.Done():
		return nil, false, &guildhall.Error{Op: op, Kind: guildhall.Unavailable, Msg: "cancelled", Err: ctx.Err()}
	}
	if l.err != nil { // the loader's failure may be its own (its ctx): try ourselves
		c.m.hotMiss.Inc()
		return c.innerLatest(ctx, channelID, limit)
	}
	c.m.hotShared.Inc()
	return slice(l.msgs, limit), l.complete, nil
}

// load reads the inner cache for l and keeps the result as e's copy
// unless an invalidation came meanwhile (e.gen moved). Waiters are
// released even if the inner cache panics.
func (c *Cache) load(ctx context.Context, s *shard, e *entry, l *load, channelID, gen uint64) {
	defer close(l.done)
	l.err = errLoadFailed
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		e.loading = nil
		if l.err != nil || e.gen != gen || s.entries[channelID] != e || c.hot.Load() >= int64(c.cfg.MaxHot) {
			return
		}
		e.copy, e.complete, e.expires = l.msgs, l.complete, c.cfg.Now().Add(c.cfg.TTL)
		if e.copy == nil {
			e.copy = []message.Message{} // an empty window is a copy too
		}
		c.hot.Add(1)
	}()
	l.msgs, l.complete, l.err = c.innerLatest(ctx, channelID, c.cfg.Depth)
}

var errLoadFailed = guildhall.E("hotcache.load", guildhall.Internal, "the load did not finish")

// innerLatest reads the inner cache and counts the outcome.
func (c *Cache) innerLatest(ctx context.Context, channelID uint64, limit int) ([]message.Message, bool, error) {
	msgs, complete, err := c.inner.Latest(ctx, channelID, limit)
	switch {
	case err != nil:
		c.m.innerError.Inc()
	case complete:
		c.m.innerHit.Inc()
	case len(msgs) > 0:
		c.m.innerPartial.Inc()
	default:
		c.m.innerMiss.Inc()
	}
	return msgs, complete, err
}

// invalidate drops the local copy of a channel and makes a load in flight
// not keep its result.
func (c *Cache) invalidate(channelID uint64) {
	s := c.shard(channelID)
	s.mu.Lock()
	if e := s.entries[channelID]; e != nil {
		e.gen++
		c.dropCopy(e)
	}
	s.mu.Unlock()
}

// wrote is called after every write through this layer: the local copy
// goes, and every other node is told to drop its own.
func (c *Cache) wrote(channelID uint64) {
	c.invalidate(channelID)
	data, err := proto.Marshal(&pb.CacheInvalidation{Origin: c.cfg.NodeID, ChannelIds: []uint64{channelID}})
	if err == nil {
		err = c.bus.Publish(bus.MessageCacheInvalidate, data)
	}
	if err != nil {
		c.m.publishErrors.Inc()
		c.cfg.Logger.Warn("hotcache: cannot publish an invalidation; other nodes serve their copy until it expires",
			"channel", channelID, "err", err)
		return
	}
	c.m.sent.Inc()
}

// receive handles an invalidation from the bus.
func (c *Cache) receive(msg *nats.Msg) {
	var inv pb.CacheInvalidation
	if err := proto.Unmarshal(msg.Data, &inv); err != nil {
		c.cfg.Logger.Warn("hotcache: bad invalidation", "err", err)
		return
	}
	if inv.GetOrigin() == c.cfg.NodeID {
		return
	}
	c.m.received.Inc()
	for _, ch := range inv.GetChannelIds() {
		c.invalidate(ch)
	}
}

// Add implements message.Cache: the inner cache, then invalidation.
func (c *Cache) Add(ctx context.Context, m message.Message) error {
	if err := message.CheckCached("hotcache.Add", m); err != nil {
		return err
	}
	err := c.inner.Add(ctx, m)
	c.wrote(m.ChannelID)
	return err
}

// Replace implements message.Cache: the inner cache, then invalidation.
func (c *Cache) Replace(ctx context.Context, m message.Message) error {
	if err := message.CheckCached("hotcache.Replace", m); err != nil {
		return err
	}
	err := c.inner.Replace(ctx, m)
	c.wrote(m.ChannelID)
	return err
}

// Remove implements message.Cache: the inner cache, then invalidation.
func (c *Cache) Remove(ctx context.Context, channelID, id uint64) error {
	if err := message.CheckChannel("hotcache.Remove", channelID); err != nil {
		return err
	}
	err := c.inner.Remove(ctx, channelID, id)
	c.wrote(channelID)
	return err
}

// Fill implements message.Cache: the inner cache, then invalidation.
func (c *Cache) Fill(ctx context.Context, channelID uint64, msgs []message.Message) error {
	if err := message.CheckFill("hotcache.Fill", channelID, msgs); err != nil {
		return err
	}
	err := c.inner.Fill(ctx, channelID, msgs)
	c.wrote(channelID)
	return err
}

// Invalidate implements message.Cache: the inner cache, then invalidation.
func (c *Cache) Invalidate(ctx context.Context, channelID uint64) error {
	if err := message.CheckChannel("hotcache.Invalidate", channelID); err != nil {
		return err
	}
	err := c.inner.Invalidate(ctx, channelID)
	c.wrote(channelID)
	return err
}
