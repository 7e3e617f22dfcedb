package inmem

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/guildhall/guildhall/message"
)

// Config configures a Cache. Zero values mean the documented defaults.
type Config struct {
	// Window is how many of a channel's newest messages are kept; default
	// 100, at most 10,000.
	Window int
	// TTL: a channel's window is dropped this long after its last write
	// (Add, Replace, Remove, Fill); default 1 hour.
	TTL time.Duration
	// CompleteTTL: the complete mark a Fill sets lasts this long, however
	// often the window is written; then a reader refills it from the store,
	// which repairs anything a lost write left stale. Default 10 minutes.
	CompleteTTL time.Duration
	// MaxBytes bounds the memory of all windows together (estimated with
	// message.CachedSize); past it the least recently used channels are
	// evicted. Default 64 MiB.
	MaxBytes int64
	// ChangeTTL is how long a Remove or Replace is remembered so that a
	// Fill read from the store just before it cannot undo it; default 1
	// minute. MaxChanges bounds how many are remembered per channel
	// (default 64; the oldest is forgotten first).
	ChangeTTL  time.Duration
	MaxChanges int
	// Shards is the number of independently locked shards; default 64.
	Shards int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.Window <= 0 {
		c.Window = 100
	}
	c.Window = min(c.Window, 10_000)
	if c.TTL <= 0 {
		c.TTL = time.Hour
	}
	if c.CompleteTTL <= 0 {
		c.CompleteTTL = 10 * time.Minute
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 64 << 20
	}
	if c.ChangeTTL <= 0 {
		c.ChangeTTL = time.Minute
	}
	if c.MaxChanges <= 0 {
		c.MaxChanges = 64
	}
	if c.Shards <= 0 {
		c.Shards = 64
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Cache is a message.Cache in process memory.
type Cache struct {
	cfg      Config
	seed     maphash.Seed
	shards   []shard
	shardMax int64
}

var _ message.Cache = (*Cache)(nil)

// New returns an empty Cache.
func New(cfg Config) *Cache {
	cfg.defaults()
	c := &Cache{cfg: cfg, seed: maphash.MakeSeed(), shards: make([]shard, cfg.Shards)}
	c.shardMax = max(cfg.MaxBytes/int64(cfg.Shards), 1)
	for i := range c.shards {
		c.shards[i].windows = make(map[uint64]*window)
		c.shards[i].lru.prev, c.shards[i].lru.next = &c.shards[i].lru, &c.shards[i].lru
	}
	return c
}

// shard holds some channels' windows under one lock, with an LRU list
// (lru is its sentinel: lru.next is the most recently used).
type shard struct {
	mu        sync.Mutex
	windows   map[uint64]*window
	lru       window
	bytes     int64
	evictions uint64
}

// window is one channel's cached messages, oldest first.
type window struct {
	channelID  uint64
	msgs       []message.Message
	bytes      int64     // CachedSize of msgs and changes plus overhead
	written    time.Time // last write; the window expires TTL after it
	completeTo time.Time // complete until then; zero if incomplete
	changes    []change  // recent Removes and Replaces, oldest first
	prev, next *window
}

// change is a Remove (deleted) or a Replace (m) that a later Fill must
// not undo.
type change struct {
	at      time.Time
	id      uint64
	deleted bool
	m       message.Message
}

const windowOverhead = 256

func changeSize(ch change) int64 {
	if ch.deleted {
		return 48
	}
	return 48 + int64(message.CachedSize(ch.m))
}

func (c *Cache) shard(channelID uint64) *shard {
	return &c.shards[maphash.Comparable(c.seed, channelID)%uint64(len(c.shards))]
}

// get returns the live window of a channel, dropping an expired one;
// with create, it makes a missing one. It marks the window used.
func (c *Cache) get(s *shard, channelID uint64, now time.Time, create bool) *window {
	w := s.windows[channelID]
	if w != nil && c.expired(w, now) {
		s.drop(w)
		w = nil
	}
	if w == nil {
		if !create {
			return nil
		}
		w = &window{channelID: channelID, bytes: windowOverhead, written: now}
		s.windows[channelID] = w
		s.bytes += w.bytes
	} else {
		w.unlink()
	}
	// Most recently used goes to the front.
	w.prev, w.next = &s.lru, s.lru.next
	s.lru.next.prev = w
	s.lru.next = w
	return w
}

// expired reports whether w is past its TTL, or holds only changes that
// are all past ChangeTTL.
func (c *Cache) expired(w *window, now time.Time) bool {
	if len(w.msgs) == 0 && w.completeTo.IsZero() {
		return !now.Before(w.written.Add(min(c.cfg.TTL, c.cfg.ChangeTTL)))
	}
	return !now.Before(w.written.Add(c.cfg.TTL))
}

func (w *window) unlink() {
	w.prev.next = w.next
	w.next.prev = w.prev
	w.prev, w.next = nil, nil
}

func (s *shard) drop(w *window) {
	w.unlink()
	delete(s.windows, w.channelID)
	s.bytes -= w.bytes
}

// written records a write to w: its new size, its time, then evicts the
// least recently used windows (never w) while the shard is over budget
// and drops expired ones from the cold end.
func (c *Cache) wrote(s *shard, w *window, now time.Time) {
	w.written = now
	var size int64 = windowOverhead
	for _, m := range w.msgs {
		size += int64(message.CachedSize(m))
	}
	for _, ch := range w.changes {
		size += changeSize(ch)
	}
	s.bytes += size - w.bytes
	w.bytes = size
	for cold := s.lru.prev; cold != &s.lru && cold != w; cold = s.lru.prev {
		expired := c.expired(cold, now)
		if !expired && s.bytes <= c.shardMax {
			break
		}
		if !expired {
			s.evictions++
		}
		s.drop(cold)
	}
}

func (c *Cache) complete(w *window, now time.Time) bool {
	return !w.completeTo.IsZero() && now.Before(w.completeTo)
}

// find returns the index of id in w.msgs and whether it is there.
func (w *window) find(id uint64) (int, bool) {
	return slices.BinarySearchFunc(w.msgs, id, func(m message.Message, id uint64) int {
		switch {
		case m.ID < id:
			return -1
		case m.ID > id:
			return 1
		}
		return 0
	})
}

// trim keeps the newest n messages.
func (w *window) trim(n int) {
	if over := len(w.msgs) - n; over > 0 {
		w.msgs = slices.Delete(w.msgs, 0, over)
	}
}

// remember records a change, forgetting expired ones and, past max, the
// oldest.
func (c *Cache) remember(w *window, ch change, now time.Time) {
	w.changes = slices.DeleteFunc(w.changes, func(old change) bool {
		return old.id == ch.id || !now.Before(old.at.Add(c.cfg.ChangeTTL))
	})
	if len(w.changes) >= c.cfg.MaxChanges {
		w.changes = slices.Delete(w.changes, 0, len(w.changes)-c.cfg.MaxChanges+1)
	}
	w.changes = append(w.changes, ch)
}

// clone copies m's slices, so the cache never shares memory with callers.
func clone(m message.Message) message.Message {
	m.Mentions.Users = slices.Clone(m.Mentions.Users)
	m.Mentions.Roles = slices.Clone(m.Mentions.Roles)
	return m
}

// Add implements message.Cache.
func (c *Cache) Add(ctx context.Context, m message.Message) error {
	if err := message.CheckCached("inmem.Cache.Add", m); err != nil {
		return err
	}
	m = clone(m)
	s := c.shard(m.ChannelID)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := c.cfg.Now()
	w := c.get(s, m.ChannelID, now, true)
	if c.complete(w, now) && len(w.msgs) > 0 && m.ID < w.msgs[0].ID {
		return nil // below a complete window: keeping it could leave a gap
	}
	if i, ok := w.find(m.ID); ok {
		w.msgs[i] = m
	} else {
		w.msgs = slices.Insert(w.msgs, i, m)
		w.trim(c.cfg.Window)
	}
	c.wrote(s, w, now)
	return nil
}

// Replace implements message.Cache.
func (c *Cache) Replace(ctx context.Context, m message.Message) error {
	if err := message.CheckCached("inmem.Cache.Replace", m); err != nil {
		return err
	}
	m = clone(m)
	s := c.shard(m.ChannelID)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := c.cfg.Now()
	w := c.get(s, m.ChannelID, now, true)
	c.remember(w, change{at: now, id: m.ID, m: m}, now)
	if i, ok := w.find(m.ID); ok {
		w.msgs[i] = m
	}
	c.wrote(s, w, now)
	return nil
}

// Remove implements message.Cache.
func (c *Cache) Remove(ctx context.Context, channelID, id uint64) error {
	if err := message.CheckChannel("inmem.Cache.Remove", channelID); err != nil {
		return err
	}
	s := c.shard(channelID)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := c.cfg.Now()
	w := c.get(s, channelID, now, true)
	c.remember(w, change{at: now, id: id, deleted: true}, now)
	if i, ok := w.find(id); ok {
		w.msgs = slices.Delete(w.msgs, i, i+1)
	}
	c.wrote(s, w, now)
	return nil
}

// Latest implements message.Cache. The messages' Mentions slices are
// shared between callers: treat them as read-only.
func (c *Cache) Latest(ctx context.Context, channelID uint64, limit int) ([]message.Message, bool, error) {
	if err := message.CheckLimit("inmem.Cache.Latest", limit); err != nil {
		return nil, false, err
	}
	if err := message.CheckChannel("inmem.Cache.Latest", channelID); err != nil {
		return nil, false, err
	}
	s := c.shard(channelID)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := c.cfg.Now()
	w := c.get(s, channelID, now, false)
	if w == nil {
		return nil, false, nil
	}
	n := min(limit, len(w.msgs))
	if n == 0 {
		return nil, c.complete(w, now), nil
	}
	out := make([]message.Message, n)
	for i := range n {
		out[i] = w.msgs[len(w.msgs)-1-i]
	}
	return out, c.complete(w, now), nil
}

// Fill implements message.Cache: the window becomes msgs plus what was
// cached newer than the oldest of msgs, with recent Removes and Replaces
// applied over it, trimmed to the window, and complete.
func (c *Cache) Fill(ctx context.Context, channelID uint64, msgs []message.Message) error {
	if err := message.CheckFill("inmem.Cache.Fill", channelID, msgs); err != nil {
		return err
	}
	msgs = msgs[:min(len(msgs), c.cfg.Window)]
	s := c.shard(channelID)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := c.cfg.Now()
	w := c.get(s, channelID, now, true)

	var oldest uint64
	if len(msgs) > 0 {
		oldest = msgs[len(msgs)-1].ID
	}
	merged := make([]message.Message, 0, len(msgs)+len(w.msgs))
	i, j := len(msgs)-1, 0 // msgs is newest first: walk it backwards
	for j < len(w.msgs) && w.msgs[j].ID <= oldest && oldest != 0 {
		j++
	}
	for i >= 0 || j < len(w.msgs) {
		switch {
		case j == len(w.msgs) || (i >= 0 && msgs[i].ID < w.msgs[j].ID):
			merged = append(merged, clone(msgs[i]))
			i--
		case i < 0 || w.msgs[j].ID < msgs[i].ID:
			merged = append(merged, w.msgs[j])
			j++
		default: // both: the fill's copy wins
			merged = append(merged, clone(msgs[i]))
			i--
			j++
		}
	}
	w.msgs = merged
	for _, ch := range w.changes {
		if !now.Before(ch.at.Add(c.cfg.ChangeTTL)) {
			continue
		}
		k, ok := w.find(ch.id)
		switch {
		case !ok:
		case ch.deleted:
			w.msgs = slices.Delete(w.msgs, k, k+1)
		default: // the last Replace is the newest edit
			w.msgs[k] = ch.m
		}
	}
	w.trim(c.cfg.Window)
	w.completeTo = now.Add(c.cfg.CompleteTTL)
	c.wrote(s, w, now)
	return nil
}

// Invalidate implements message.Cache. Recent Removes and Replaces stay
// remembered.
func (c *Cache) Invalidate(ctx context.Context, channelID uint64) error {
	if err := message.CheckChannel("inmem.Cache.Invalidate", channelID); err != nil {
		return err
	}
	s := c.shard(channelID)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := c.cfg.Now()
	w := c.get(s, channelID, now, false)
	if w == nil {
		return nil
	}
	w.msgs, w.completeTo = nil, time.Time{}
	if len(w.changes) == 0 {
		s.drop(w)
		return nil
	}
	c.wrote(s, w, w.written)
	return nil
}

// Stats is a snapshot of a Cache's size.
type Stats struct {
	Channels  int    // windows held
	Bytes     int64  // their estimated size
	Evictions uint64 // windows evicted to stay under MaxBytes
}

// Stats returns the cache's current size.
func (c *Cache) Stats() Stats {
	var st Stats
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.Channels += len(s.windows)
		st.Bytes += s.bytes
		st.Evictions += s.evictions
		s.mu.Unlock()
	}
	return st
}
