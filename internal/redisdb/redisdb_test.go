package redisdb_test

import (
	"context"
	"testing"

	"github.com/guildhall/guildhall/internal/redisdb"
	"github.com/guildhall/guildhall/internal/redisdb/redistest"
)

func TestOpenAndPrefix(t *testing.T) {
	rc, prefix := redistest.MustClient(t)
	ctx := context.Background()
	if err := rc.Set(ctx, prefix+"k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := rc.Get(ctx, prefix+"k").Result(); err != nil || got != "v" {
		t.Fatalf("get = %q, %v", got, err)
	}
}

func TestOpenRefusesNoAddress(t *testing.T) {
	if _, err := redisdb.Open(context.Background(), redisdb.Config{}); err == nil {
		t.Fatal("Open with no address succeeded")
	}
}
