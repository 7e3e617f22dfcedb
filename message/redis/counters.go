package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/message"
)

// CountersConfig configures Counters. Zero values mean the documented
// defaults.
type CountersConfig struct {
	// Prefix starts every key Counters writes; default "gh:".
	Prefix string
	// MentionBound is how many of the newest seqs one mention set keeps
	// (per user, per role and for @everyone, in each channel); older
	// mentions stop counting. Default 1000.
	MentionBound int
	// TTL is how long a key lives after its last write: an idle
	// channel's head (rebuilt from the message store when it is gone), an
	// idle user's cached positions (filled again from the durable store)
	// and a mention set no message added to (those mentions stop
	// counting). Default 30 days.
	TTL time.Duration
	// Timeout bounds each call to Redis (within the caller's ctx), so a
	// Redis that stops answering fails a send's counting or an ack with
	// Unavailable instead of holding it; default 1s. It needs a client
	// with ContextTimeoutEnabled, as internal/redisdb.Open makes.
	Timeout time.Duration
}

// Counters is message.UnreadCounters on Redis. Keys, under Prefix:
//
//	uh:<channel>             string: the channel's head (last seq)
//	ur:<user>                hash: <channel> -> "<seq>:<id>", the user's
//	                         read positions; field "*" marks them filled
//	                         from the durable store
//	um:<channel>:e           sorted set: seqs that mention @everyone
//	um:<channel>:u:<user>    sorted set: seqs that mention the user
//	um:<channel>:r:<role>    sorted set: seqs that mention the role
//
// A sorted set's members are seqs (as decimal strings) scored by seq, and
// it is trimmed to its MentionBound newest entries on every insert; every
// key expires TTL after its last write. Each method is one Lua script (one
// round trip, atomic); Load and Fill split very large calls into several
// scripts of bounded size, each atomic. Accepted costs one script whose
// work is O(mentions in the message) and never depends on the channel's
// member count: @everyone and role mentions are one set insert each.
//
// The scripts touch one channel's keys together with one user's hash, so
// Counters needs a single Redis (with replicas or Sentinel), not Redis
// Cluster. Seqs are compared as Lua numbers, exact below 2^53.
type Counters struct {
	rc  goredis.UniversalClient
	cfg CountersConfig
	ttl string // seconds, for EXPIRE
}

var _ message.UnreadCounters = (*Counters)(nil)

// NewCounters returns Counters on rc. The caller closes rc.
func NewCounters(rc goredis.UniversalClient, cfg CountersConfig) *Counters {
	if cfg.Prefix == "" {
		cfg.Prefix = "gh:"
	}
	if cfg.MentionBound <= 0 {
		cfg.MentionBound = 1000
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * 24 * time.Hour
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	return &Counters{rc: rc, cfg: cfg, ttl: strconv.FormatInt(max(1, int64(cfg.TTL/time.Second)), 10)}
}

func (c *Counters) headKey(ch uint64) string { return c.cfg.Prefix + "uh:" + ctrID(ch) }
func (c *Counters) userKey(u uint64) string  { return c.cfg.Prefix + "ur:" + ctrID(u) }
func (c *Counters) everyoneKey(ch uint64) string {
	return c.cfg.Prefix + "um:" + ctrID(ch) + ":e"
}
func (c *Counters) userSetKey(ch, u uint64) string {
	return c.cfg.Prefix + "um:" + ctrID(ch) + ":u:" + ctrID(u)
}
func (c *Counters) roleSetKey(ch, r uint64) string {
	return c.cfg.Prefix + "um:" + ctrID(ch) + ":r:" + ctrID(r)
}

func ctrID(n uint64) string { return strconv.FormatUint(n, 10) }

// filledField marks a user hash as filled from the durable store.
const filledField = "*"

// luaRaise is a Lua helper: raise hash field f of key k to "seq:id" if seq
// is above what it holds; returns the value held after and 1 if moved.
const luaRaise = `
local function raise(k, f, seq, id)
  local v = redis.call('HGET', k, f)
  if v then
    local s = string.match(v, '^(%d+):')
    if s and tonumber(s) >= tonumber(seq) then return v, 0 end
  end
  local nv = seq .. ':' .. id
  redis.call('HSET', k, f, nv)
  return nv, 1
end
local function raisehead(k, seq, ttl)
  local v = redis.call('GET', k)
  if not v or tonumber(v) < tonumber(seq) then
    redis.call('SET', k, seq, 'EX', ttl)
  else
    redis.call('EXPIRE', k, ttl)
  end
end
`

// acceptedScript: KEYS[1] head, KEYS[2] author's hash, KEYS[3..] mention
// sets; ARGV seq, id, channel field, bound, ttl, has-author.
var acceptedScript = goredis.NewScript(luaRaise + `
local seq, ttl = ARGV[1], ARGV[5]
raisehead(KEYS[1], seq, ttl)
if ARGV[6] == '1' then
  raise(KEYS[2], ARGV[3], seq, ARGV[2])
  redis.call('EXPIRE', KEYS[2], ttl)
end
local keep = tonumber(ARGV[4])
for i = 3, #KEYS do
  redis.call('ZADD', KEYS[i], seq, seq)
  redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -(keep + 1))
  redis.call('EXPIRE', KEYS[i], ttl)
end
return 1
`)

// headScript: KEYS[1] head; ARGV seq, ttl.
var headScript = goredis.NewScript(luaRaise + `
raisehead(KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// ackScript: KEYS[1] user hash; ARGV field, seq, id, ttl.
var ackScript = goredis.NewScript(luaRaise + `
local v, moved = raise(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {v, moved}
`)

// fillScript: KEYS[1] user hash; ARGV ttl, mark (1 to mark filled), then
// field, seq, id triples.
var fillScript = goredis.NewScript(luaRaise + `
for i = 3, #ARGV, 3 do
  raise(KEYS[1], ARGV[i], ARGV[i + 1], ARGV[i + 2])
end
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], '*', '1') end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
`)

// loadScript: KEYS[1] user hash, then per query: head, user set,
// @everyone set, role sets; ARGV per query: channel field, number of role
// sets. Returns per query: head ("" if none), position ("" if unknown,
// "0:0" if none), mention count.
var loadScript = goredis.NewScript(`
local filled = redis.call('HEXISTS', KEYS[1], '*') == 1
local out = {}
local k = 2
for q = 1, #ARGV, 2 do
  local head = redis.call('GET', KEYS[k]) or ''
  local pos = redis.call('HGET', KEYS[1], ARGV[q])
  if not pos then
    if filled then pos = '0:0' else pos = '' end
  end
  local after = '(' .. (string.match(pos, '^(%d+):') or '0')
  local nsets = 2 + tonumber(ARGV[q + 1])
  local hits, total = {}, 0
  for i = k + 1, k + nsets do
    local n = redis.call('ZCOUNT', KEYS[i], after, '+inf')
    if n > 0 then
      hits[#hits + 1] = KEYS[i]
      total = total + n
    end
  end
  if #hits > 1 then
    local seen = {}
    total = 0
    for _, key in ipairs(hits) do
      for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, after, '+inf')) do
        if not seen[m] then
          seen[m] = true
          total = total + 1
        end
      end
    end
  end
  out[#out + 1] = head
  out[#out + 1] = pos
  out[#out + 1] = total
  k = k + 1 + nsets
end
return out
`)

// Batch sizes of Load and Fill: each script stays short, so Redis is never
// blocked long by one user's big request.
const (
	loadBatch = 200
	fillBatch = 1000
)

// Accepted implements message.Counters: one script, whatever the size of
// the channel's server.
func (c *Counters) Accepted(ctx context.Context, m message.Message) error {
	const op = "message/redis.Accepted"
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	mentions, err := message.CheckCounted(op, m)
	if err != nil {
		return err
	}
	m.Mentions = mentions
	keys := make([]string, 2, 3+len(m.Mentions.Users)+len(m.Mentions.Roles))
	keys[0], keys[1] = c.headKey(m.ChannelID), c.userKey(m.AuthorID)
	if m.Mentions.Everyone {
		keys = append(keys, c.everyoneKey(m.ChannelID))
	}
	for _, u := range m.Mentions.Users {
		keys = append(keys, c.userSetKey(m.ChannelID, u))
	}
	for _, r := range m.Mentions.Roles {
		keys = append(keys, c.roleSetKey(m.ChannelID, r))
	}
	author := "0"
	if m.AuthorID != 0 {
		author = "1"
	}
	err = acceptedScript.Run(ctx, c.rc, keys, ctrID(m.Seq), ctrID(m.ID), ctrID(m.ChannelID), c.cfg.MentionBound, c.ttl, author).Err()
	return ctrErr(op, err)
}

// RaiseHead implements message.UnreadCounters.
func (c *Counters) RaiseHead(ctx context.Context, channelID, seq uint64) error {
	const op = "message/redis.RaiseHead"
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	return ctrErr(op, headScript.Run(ctx, c.rc, []string{c.headKey(channelID)}, ctrID(seq), c.ttl).Err())
}

// Ack implements message.UnreadCounters.
func (c *Counters) Ack(ctx context.Context, userID uint64, p message.ReadPosition) (message.ReadPosition, bool, error) {
	const op = "message/redis.Ack"
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := message.CheckAck(op, p); err != nil {
		return message.ReadPosition{}, false, err
	}
	res, err := ackScript.Run(ctx, c.rc, []string{c.userKey(userID)}, ctrID(p.ChannelID), ctrID(p.Seq), ctrID(p.ID), c.ttl).Slice()
	if err != nil {
		return message.ReadPosition{}, false, ctrErr(op, err)
	}
	if len(res) != 2 {
		return message.ReadPosition{}, false, guildhall.E(op, guildhall.Internal, "ack script returned %d values", len(res))
	}
	v, _ := res[0].(string)
	got, ok := parsePosition(p.ChannelID, v)
	if !ok {
		return message.ReadPosition{}, false, guildhall.Wrap(op, fmt.Errorf("bad position %q", v))
	}
	moved, _ := res[1].(int64)
	return got, moved == 1, nil
}

// Fill implements message.UnreadCounters.
func (c *Counters) Fill(ctx context.Context, userID uint64, ps []message.ReadPosition) error {
	const op = "message/redis.Fill"
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	key := []string{c.userKey(userID)}
	for start := 0; ; start += fillBatch {
		end := min(start+fillBatch, len(ps))
		last := end == len(ps)
		args := make([]any, 0, 2+3*(end-start))
		mark := "0"
		if last { // mark filled only once every position is in
			mark = "1"
		}
		args = append(args, c.ttl, mark)
		for _, p := range ps[start:end] {
			args = append(args, ctrID(p.ChannelID), ctrID(p.Seq), ctrID(p.ID))
		}
		if err := fillScript.Run(ctx, c.rc, key, args...).Err(); err != nil {
			return ctrErr(op, err)
		}
		if last {
			return nil
		}
	}
}

// Load implements message.UnreadCounters.
func (c *Counters) Load(ctx context.Context, userID uint64, qs []message.CounterQuery) ([]message.CounterState, error) {
	const op = "message/redis.Load"
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	out := make([]message.CounterState, 0, len(qs))
	for start := 0; start < len(qs); start += loadBatch {
		batch := qs[start:min(start+loadBatch, len(qs))]
		keys := []string{c.userKey(userID)}
		args := make([]any, 0, 2*len(batch))
		for _, q := range batch {
			keys = append(keys, c.headKey(q.ChannelID), c.userSetKey(q.ChannelID, userID), c.everyoneKey(q.ChannelID))
			for _, r := range q.Roles {
				keys = append(keys, c.roleSetKey(q.ChannelID, r))
			}
			args = append(args, ctrID(q.ChannelID), len(q.Roles))
		}
		res, err := loadScript.Run(ctx, c.rc, keys, args...).Slice()
		if err != nil {
			return nil, ctrErr(op, err)
		}
		if len(res) != 3*len(batch) {
			return nil, guildhall.E(op, guildhall.Internal, "load script returned %d values for %d channels", len(res), len(batch))
		}
		for i, q := range batch {
			var st message.CounterState
			if h, _ := res[3*i].(string); h != "" {
				n, err := strconv.ParseUint(h, 10, 64)
				if err != nil {
					return nil, guildhall.Wrap(op, fmt.Errorf("bad head %q of channel %d", h, q.ChannelID))
				}
				st.Head, st.HeadKnown = n, true
			}
			if v, _ := res[3*i+1].(string); v != "" {
				p, ok := parsePosition(q.ChannelID, v)
				if !ok {
					return nil, guildhall.Wrap(op, fmt.Errorf("bad position %q", v))
				}
				st.Read, st.ReadKnown = p, true
			}
			n, _ := res[3*i+2].(int64)
			st.Mentions = uint64(n)
			out = append(out, st)
		}
	}
	return out, nil
}

// parsePosition parses "seq:id"; "0:0" is the zero position.
func parsePosition(ch uint64, v string) (message.ReadPosition, bool) {
	s, id, ok := strings.Cut(v, ":")
	if !ok {
		return message.ReadPosition{}, false
	}
	seq, err1 := strconv.ParseUint(s, 10, 64)
	n, err2 := strconv.ParseUint(id, 10, 64)
	if err1 != nil || err2 != nil {
		return message.ReadPosition{}, false
	}
	if seq == 0 {
		return message.ReadPosition{ChannelID: ch}, true
	}
	return message.ReadPosition{ChannelID: ch, Seq: seq, ID: n}, true
}

// ctrErr turns a Redis error into a guildhall error: an error reply of a
// server that works (a wrong key type, a script bug) is Internal; one of a
// server that cannot serve now (LOADING, BUSY, READONLY, ...) and every
// other failure (refused, timed out, closed, cancelled) is Unavailable:
// the caller may retry.
func ctrErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var reply goredis.Error
	if errors.As(err, &reply) && !errors.Is(err, goredis.ErrClosed) {
		switch code, _, _ := strings.Cut(reply.Error(), " "); code {
		case "LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS":
		default:
			return guildhall.Wrap(op, err)
		}
	}
	return &guildhall.Error{Op: op, Kind: guildhall.Unavailable, Msg: "the counters are unavailable, retry", Err: err}
}
