package redis

import "github.com/redis/go-redis/v9"

// The cache's Lua scripts. Each runs atomically on the server, so every
// change to a channel's keys is all or nothing. Keys of one channel share
// a hash tag, so the scripts also run on Redis Cluster.
//
// KEYS[1] w:  sorted set of member(id), all scores 0 (ordered by member)
// KEYS[2] b:  hash member(id) -> body; field "c" -> complete-until (ms)
// KEYS[3] x:  hash member(id) -> body of the last Replace, "" for Remove
// KEYS[4] xt: sorted set member(id) -> time of that change (ms)
//
// w and b are only ever changed together; a Latest that finds them out of
// step (Redis evicted one under maxmemory) drops both.

// luaNow is the server's clock in milliseconds, so that every node agrees.
const luaNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// luaConsistent drops w and b when they are out of step.
const luaConsistent = `
local function consistent()
  local n = redis.call('ZCARD', KEYS[1])
  local h = redis.call('HLEN', KEYS[2])
  if redis.call('HEXISTS', KEYS[2], 'c') == 1 then h = h - 1 end
  if n ~= h then
    redis.call('DEL', KEYS[1], KEYS[2])
    return false
  end
  return true
end
local function complete()
  local c = redis.call('HGET', KEYS[2], 'c')
  return c and tonumber(c) > now
end
local function trim(window)
  local over = redis.call('ZCARD', KEYS[1]) - window
  if over > 0 then
    local old = redis.call('ZRANGE', KEYS[1], 0, over - 1)
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
    redis.call('HDEL', KEYS[2], unpack(old))
  end
end
`

// luaRemember records a change (body "" for a Remove) for Fill.
// ARGV: member, body, changeTTL ms, max changes.
const luaRemember = `
local function remember(m, body, ttl, maxn)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - ttl)
  redis.call('ZADD', KEYS[4], now, m)
  redis.call('HSET', KEYS[3], m, body)
  local over = redis.call('ZCARD', KEYS[4]) - maxn
  if over > 0 then
    local old = redis.call('ZRANGE', KEYS[4], 0, over - 1)
    redis.call('ZREMRANGEBYRANK', KEYS[4], 0, over - 1)
    redis.call('HDEL', KEYS[3], unpack(old))
  end
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('PEXPIRE', KEYS[4], ttl)
end
`

// scriptLatest: ARGV limit. Returns {complete (0/1), body...} newest first.
var scriptLatest = redis.NewScript(luaNow + luaConsistent + `
if not consistent() then return {0} end
local done = complete() and 1 or 0
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'REV')
if #ids == 0 then return {done} end
local bodies = redis.call('HMGET', KEYS[2], unpack(ids))
table.insert(bodies, 1, done)
return bodies
`)

// scriptAdd: ARGV member, body, window, ttl ms. Returns 1 if added.
var scriptAdd = redis.NewScript(luaNow + luaConsistent + `
consistent()
if complete() then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)
  if #oldest > 0 and ARGV[1] < oldest[1] then return 0 end
end
redis.call('ZADD', KEYS[1], 0, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
trim(tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
`)

// scriptReplace: ARGV member, body, ttl ms, changeTTL ms, max changes.
// ARGV[2] "" is a Remove.
var scriptChange = redis.NewScript(luaNow + luaConsistent + luaRemember + `
remember(ARGV[1], ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5]))
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if ARGV[2] == '' then
    redis.call('ZREM', KEYS[1], ARGV[1])
    redis.call('HDEL', KEYS[2], ARGV[1])
  else
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return 1
`)

// scriptFill: ARGV window, ttl ms, completeTTL ms, changeTTL ms, then
// member, body pairs newest first.
var scriptFill = redis.NewScript(luaNow + luaConsistent + `
consistent()
local n = (#ARGV - 4) / 2
if n > 0 then
  local oldest = '[' .. ARGV[4 + 2 * n - 1]
  local old = redis.call('ZRANGEBYLEX', KEYS[1], '-', oldest)
  if #old > 0 then
    redis.call('ZREMRANGEBYLEX', KEYS[1], '-', oldest)
    redis.call('HDEL', KEYS[2], unpack(old))
  end
  for i = 0, n - 1 do
    redis.call('ZADD', KEYS[1], 0, ARGV[5 + 2 * i])
    redis.call('HSET', KEYS[2], ARGV[5 + 2 * i], ARGV[6 + 2 * i])
  end
end
local changed = redis.call('ZRANGEBYSCORE', KEYS[4], now - tonumber(ARGV[4]), '+inf')
for _, m in ipairs(changed) do
  if redis.call('ZSCORE', KEYS[1], m) then
    local body = redis.call('HGET', KEYS[3], m)
    if body == '' then
      redis.call('ZREM', KEYS[1], m)
      redis.call('HDEL', KEYS[2], m)
    elseif body then
      redis.call('HSET', KEYS[2], m, body)
    end
  end
end
trim(tonumber(ARGV[1]))
redis.call('HSET', KEYS[2], 'c', now + tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`)
