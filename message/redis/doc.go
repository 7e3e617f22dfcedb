// Package redis keeps the message service's shared, distributed state in
// Redis (go-redis/v9, a client from internal/redisdb): the central cache of
// recent history (Cache, files cache*.go) and the unread counters
// (Counters, files counters*.go, whose doc comment lists their keys). Both
// write only under their configured key prefix (default "gh:"), with
// different key names, so they can share one Redis.
//
// # Cache
//
// Per channel, four keys under CacheConfig.Prefix, sharing the hash tag
// {channelID} so they live in one Redis Cluster slot:
//
//	mc:{ch}:w   sorted set of message IDs (16 hex digits, all scores 0, so
//	            ordered by ID; a float64 score cannot hold a snowflake)
//	mc:{ch}:b   hash ID -> body (pb.Message in protobuf), and field "c"
//	            -> the time (ms) until which the window is complete
//	mc:{ch}:x   hash ID -> body of a recent Replace, "" for a Remove
//	mc:{ch}:xt  sorted set ID -> time (ms) of that change
//
// Every method is one Lua script (or one DEL), so each change to a channel
// is atomic and one round trip. Bounds: a window holds at most Window IDs,
// an Add past it drops the oldest (FIFO by ID); w and b expire TTL after
// the last write; the complete mark lasts CompleteTTL after its Fill
// (writes do not extend it), so a window is re-read from the store at
// least that often and a write lost to an outage heals; x and xt expire
// ChangeTTL after the last change and hold at most MaxChanges entries.
// Times are the Redis server's clock (TIME), so every node agrees.
//
// Memory: run Redis with a maxmemory policy (volatile-lru or allkeys-lru);
// every cache key has a TTL. If Redis evicts one of w and b but not the
// other, the next read sees them out of step and drops both (a miss).
//
// Failures: a refused, timed-out or closed connection is a guildhall
// Unavailable error (callers treat it as a miss and read the store);
// an error reply from Redis is Internal. Each call is bounded by
// CacheConfig.Timeout (500 ms); after an Unavailable error calls fail at
// once for FailFast (1 s) rather than each waiting on the client's dial
// retries; a channel whose write failed is invalidated before this Cache
// reads it again.
package redis
