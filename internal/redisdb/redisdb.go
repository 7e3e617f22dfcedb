// Package redisdb opens the Redis client the distributed stores share
// (message cache, unread counters). It holds no state of its own.
package redisdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config says where Redis is. Zero values mean the documented defaults.
type Config struct {
	Addr     string        // host:port; required
	Password string        // optional
	DB       int           // database number, default 0
	Timeout  time.Duration // dial, read and write timeout; default 2s
	PoolSize int           // connections; default go-redis's (10 per CPU)
}

// Open connects to Redis and checks that it answers.
func Open(ctx context.Context, c Config) (*redis.Client, error) {
	if c.Addr == "" {
		return nil, fmt.Errorf("redis: no address")
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	rc := redis.NewClient(&redis.Options{
		Addr:         c.Addr,
		Password:     c.Password,
		DB:           c.DB,
		DialTimeout:  c.Timeout,
		ReadTimeout:  c.Timeout,
		WriteTimeout: c.Timeout,
		PoolSize:     c.PoolSize,
		// Honour the caller's ctx deadline on the socket too (go-redis
		// ignores it by default and waits up to Timeout per attempt), so a
		// cache call can be bounded tighter than Timeout.
		ContextTimeoutEnabled: true,
	})
	if err := rc.Ping(ctx).Err(); err != nil {
		_ = rc.Close()
		return nil, fmt.Errorf("redis at %s: %w", c.Addr, err)
	}
	return rc, nil
}
