// Package redistest gives tests a client of the real Redis server that
// deploy/test.sh starts (deploy/testdeps/redis.sh), found through
// REDIS_ADDR, and a key prefix of their own so tests sharing the server
// never see each other's keys. Without REDIS_ADDR a test is skipped,
// except under CI=true, where it fails: CI must run every Redis-backed
// implementation against the real server.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/guildhall/guildhall/internal/redisdb"
)

// Addr returns the address of the test server, skipping (or, under CI,
// failing) the test when there is none.
func Addr(tb testing.TB) string {
	tb.Helper()
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("REDIS_ADDR is not set: CI runs the Redis implementations against a real server (deploy/test.sh starts one)")
		}
		tb.Skip("REDIS_ADDR not set; run deploy/test.sh, or eval \"$(deploy/testdeps/redis.sh start)\"")
	}
	return addr
}

// MustClient connects to the test server and returns the client and a
// fresh key prefix ("t:<random>:"). Keys under the prefix are deleted and
// the client closed when the test ends.
func MustClient(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := redisdb.Open(ctx, redisdb.Config{Addr: Addr(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "t:" + hex.EncodeToString(b) + ":"
	tb.Cleanup(func() {
		ctx := context.Background()
		iter := rc.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rc.Del(ctx, iter.Val())
		}
		_ = rc.Close()
	})
	return rc, prefix
}
