package inmem

import (
	"context"
	"slices"
	"sync"

	"github.com/guildhall/guildhall/message"
)

// CountersConfig bounds what Counters keeps. Zero values mean the
// documented defaults.
type CountersConfig struct {
	// MentionBound is how many of the newest seqs one mention set keeps
	// (per user, per role and for @everyone, in each channel); older
	// mentions stop counting. Default 1000.
	MentionBound int
	// MaxChannels bounds the channels whose head and mention sets are
	// kept; past it an arbitrary channel is forgotten (its head rebuilds
	// from the store, its mentions are lost). Default 1<<20.
	MaxChannels int
	// MaxMentionSets bounds the user and role mention sets of one channel;
	// past it an arbitrary set of the channel is dropped. Default 10,000.
	MaxMentionSets int
	// MaxMentionEntries bounds the seqs held in all mention sets
	// together (8 bytes each, plus slice overhead); past it the mention
	// sets of arbitrary other channels are dropped. Default 1<<24 (about
	// 128 MiB).
	MaxMentionEntries int
	// MaxUsers bounds the users whose positions are cached; past it an
	// arbitrary user is forgotten (their positions are filled again from
	// the durable store). Default 1<<20.
	MaxUsers int
	// MaxPositions bounds the cached positions of all users together;
	// past it arbitrary other users are forgotten. Default 1<<24.
	MaxPositions int
}

func (c CountersConfig) withDefaults() CountersConfig {
	if c.MentionBound <= 0 {
		c.MentionBound = 1000
	}
	if c.MaxChannels <= 0 {
		c.MaxChannels = 1 << 20
	}
	if c.MaxMentionSets <= 0 {
		c.MaxMentionSets = 10_000
	}
	if c.MaxUsers <= 0 {
		c.MaxUsers = 1 << 20
	}
	if c.MaxMentionEntries <= 0 {
		c.MaxMentionEntries = 1 << 24
	}
	if c.MaxPositions <= 0 {
		c.MaxPositions = 1 << 24
	}
	return c
}

const counterShards = 64

// Counters is message.UnreadCounters in process memory, for embedded mode:
// the same contract as message/redis, lost when the process ends (heads
// rebuild from the message store and positions from the durable read-state
// store; mention sets are lost). State is sharded 64 ways by channel and,
// separately, by user; every method holds at most one shard lock at a
// time, so each is atomic per channel and per user.
type Counters struct {
	cfg   CountersConfig
	chans [counterShards]chanShard
	users [counterShards]userShard
}

var _ message.UnreadCounters = (*Counters)(nil)

type chanShard struct {
	mu      sync.Mutex
	m       map[uint64]*chanState
	entries int // seqs in the mention sets of the shard's channels
}

type chanState struct {
	head     uint64
	hasHead  bool
	everyone []uint64            // seqs, ascending
	sets     map[setKey][]uint64 // user and role mention sets
	entries  int                 // seqs in everyone and sets
}

// dropMentions forgets a channel's mention sets; sh is locked.
func (sh *chanShard) dropMentions(st *chanState) {
	sh.entries -= st.entries
	st.everyone, st.sets, st.entries = nil, make(map[setKey][]uint64), 0
}

type setKey struct {
	role bool
	id   uint64
}

type userShard struct {
	mu        sync.Mutex
	m         map[uint64]*userState
	positions int // positions held by the shard's users
}

type userState struct {
	filled bool
	pos    map[uint64]message.ReadPosition // by channel
}

// NewCounters returns empty counters.
func NewCounters(cfg CountersConfig) *Counters {
	c := &Counters{cfg: cfg.withDefaults()}
	for i := range c.chans {
		c.chans[i].m = make(map[uint64]*chanState)
		c.users[i].m = make(map[uint64]*userState)
	}
	return c
}

// shard mixes an ID (Fibonacci hashing: snowflakes differ in high bits).
func ctrShard(id uint64) uint64 { return (id * 0x9e3779b97f4a7c15) >> 58 }

// channel returns the channel's state, creating it (and evicting another
// channel when the shard is full) if create; sh is locked.
func (c *Counters) channel(sh *chanShard, id uint64, create bool) *chanState {
	st := sh.m[id]
	if st == nil && create {
		if len(sh.m) >= max(1, c.cfg.MaxChannels/counterShards) {
			for k, old := range sh.m {
				sh.entries -= old.entries
				delete(sh.m, k)
				break
			}
		}
		st = &chanState{sets: make(map[setKey][]uint64)}
		sh.m[id] = st
	}
	return st
}

// user is channel for users.
func (c *Counters) user(sh *userShard, id uint64, create bool) *userState {
	st := sh.m[id]
	if st == nil && create {
		if len(sh.m) >= max(1, c.cfg.MaxUsers/counterShards) {
			for k, old := range sh.m {
				sh.positions -= len(old.pos)
				delete(sh.m, k)
				break
			}
		}
		st = &userState{pos: make(map[uint64]message.ReadPosition)}
		sh.m[id] = st
	}
	return st
}

// addSeq inserts seq into the ascending set s, keeping its bound newest.
func addSeq(s []uint64, seq uint64, bound int) []uint64 {
	i, found := slices.BinarySearch(s, seq)
	if found {
		return s
	}
	if len(s) >= bound {
		if i == 0 {
			return s // older than everything kept
		}
		s = slices.Delete(s, 0, 1)
		i--
	}
	return slices.Insert(s, i, seq)
}

// Accepted implements message.Counters.
func (c *Counters) Accepted(_ context.Context, m message.Message) error {
	mentions, err := message.CheckCounted("message/inmem.Accepted", m)
	if err != nil {
		return err
	}
	m.Mentions = mentions
	sh := &c.chans[ctrShard(m.ChannelID)]
	sh.mu.Lock()
	st := c.channel(sh, m.ChannelID, true)
	if !st.hasHead || m.Seq > st.head {
		st.head, st.hasHead = m.Seq, true
	}
	count := func(before, after []uint64) {
		st.entries += len(after) - len(before)
		sh.entries += len(after) - len(before)
	}
	if m.Mentions.Everyone {
		s := addSeq(st.everyone, m.Seq, c.cfg.MentionBound)
		count(st.everyone, s)
		st.everyone = s
	}
	add := func(k setKey) {
		s, ok := st.sets[k]
		if !ok && len(st.sets) >= c.cfg.MaxMentionSets {
			for old, dropped := range st.sets {
				count(dropped, nil)
				delete(st.sets, old)
				break
			}
		}
		n := addSeq(s, m.Seq, c.cfg.MentionBound)
		count(s, n)
		st.sets[k] = n
	}
	for _, u := range m.Mentions.Users {
		add(setKey{id: u})
	}
	for _, r := range m.Mentions.Roles {
		add(setKey{role: true, id: r})
	}
	if budget := max(1, c.cfg.MaxMentionEntries/counterShards); sh.entries > budget {
		for k, other := range sh.m { // other channels first
			if k != m.ChannelID && other.entries > 0 {
				sh.dropMentions(other)
				if sh.entries <= budget {
					break
				}
			}
		}
		if sh.entries > budget {
			sh.dropMentions(st)
		}
	}
	sh.mu.Unlock()
	if m.AuthorID != 0 {
		c.raise(m.AuthorID, message.ReadPosition{ChannelID: m.ChannelID, Seq: m.Seq, ID: m.ID})
	}
	return nil
}

// RaiseHead implements message.UnreadCounters.
func (c *Counters) RaiseHead(_ context.Context, channelID, seq uint64) error {
	sh := &c.chans[ctrShard(channelID)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := c.channel(sh, channelID, true)
	if !st.hasHead || seq > st.head {
		st.head, st.hasHead = seq, true
	}
	return nil
}

// raise raises userID's position to p and returns the position after.
func (c *Counters) raise(userID uint64, p message.ReadPosition) (message.ReadPosition, bool) {
	sh := &c.users[ctrShard(userID)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := c.user(sh, userID, true)
	cur, ok := st.pos[p.ChannelID]
	if ok && cur.Seq >= p.Seq {
		return cur, false
	}
	c.setPos(sh, userID, st, p)
	return p, true
}

// setPos stores a position, forgetting other users of the shard past the
// MaxPositions budget; sh is locked.
func (c *Counters) setPos(sh *userShard, userID uint64, st *userState, p message.ReadPosition) {
	if _, ok := st.pos[p.ChannelID]; !ok {
		sh.positions++
	}
	st.pos[p.ChannelID] = p
	if budget := max(1, c.cfg.MaxPositions/counterShards); sh.positions > budget {
		for k, other := range sh.m {
			if k != userID {
				sh.positions -= len(other.pos)
				delete(sh.m, k)
				if sh.positions <= budget {
					break
				}
			}
		}
	}
}

// Ack implements message.UnreadCounters.
func (c *Counters) Ack(_ context.Context, userID uint64, p message.ReadPosition) (message.ReadPosition, bool, error) {
	if err := message.CheckAck("message/inmem.Ack", p); err != nil {
		return message.ReadPosition{}, false, err
	}
	got, moved := c.raise(userID, p)
	return got, moved, nil
}

// Fill implements message.UnreadCounters.
func (c *Counters) Fill(_ context.Context, userID uint64, ps []message.ReadPosition) error {
	sh := &c.users[ctrShard(userID)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := c.user(sh, userID, true)
	for _, p := range ps {
		if cur, ok := st.pos[p.ChannelID]; !ok || p.Seq > cur.Seq {
			c.setPos(sh, userID, st, p)
		}
	}
	st.filled = true
	return nil
}

// Load implements message.UnreadCounters.
func (c *Counters) Load(_ context.Context, userID uint64, qs []message.CounterQuery) ([]message.CounterState, error) {
	out := make([]message.CounterState, len(qs))
	ush := &c.users[ctrShard(userID)]
	ush.mu.Lock()
	if st := c.user(ush, userID, false); st != nil {
		for i, q := range qs {
			p, ok := st.pos[q.ChannelID]
			switch {
			case ok:
				out[i].Read, out[i].ReadKnown = p, true
			case st.filled:
				out[i].Read, out[i].ReadKnown = message.ReadPosition{ChannelID: q.ChannelID}, true
			}
		}
	}
	ush.mu.Unlock()
	for i, q := range qs {
		sh := &c.chans[ctrShard(q.ChannelID)]
		sh.mu.Lock()
		if st := c.channel(sh, q.ChannelID, false); st != nil {
			out[i].Head, out[i].HeadKnown = st.head, st.hasHead
			out[i].Mentions = st.count(userID, q.Roles, out[i].Read.Seq)
		}
		sh.mu.Unlock()
	}
	return out, nil
}

// count is the number of distinct seqs above after in the user's, the
// roles' and @everyone's sets.
func (st *chanState) count(userID uint64, roles []uint64, after uint64) uint64 {
	tail := func(s []uint64) []uint64 {
		i, found := slices.BinarySearch(s, after)
		if found {
			i++
		}
		return s[i:]
	}
	var tails [][]uint64
	if t := tail(st.everyone); len(t) > 0 {
		tails = append(tails, t)
	}
	if t := tail(st.sets[setKey{id: userID}]); len(t) > 0 {
		tails = append(tails, t)
	}
	for _, r := range roles {
		if t := tail(st.sets[setKey{role: true, id: r}]); len(t) > 0 {
			tails = append(tails, t)
		}
	}
	switch len(tails) {
	case 0:
		return 0
	case 1:
		return uint64(len(tails[0]))
	}
	seen := make(map[uint64]struct{})
	for _, t := range tails {
		for _, s := range t {
			seen[s] = struct{}{}
		}
	}
	return uint64(len(seen))
}
