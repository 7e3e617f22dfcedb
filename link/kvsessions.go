package link

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	guildhall "github.com/guildhall/guildhall"
)

// KVSessions is a SessionStore in a NATS JetStream key-value bucket, shared
// by every link node of the cluster. Entries expire after the bucket's TTL
// (the resume window plus a checkpoint period), so a session nobody resumed
// leaves nothing behind.
type KVSessions struct {
	kv jetstream.KeyValue
}

var _ SessionStore = (*KVSessions)(nil)

// KVSessionsConfig configures the bucket. Zero values mean the defaults.
type KVSessionsConfig struct {
	Bucket   string        // default "gh_link_sessions"
	TTL      time.Duration // default 2m15s: the default resume window plus margin
	Replicas int           // default 1; use 3 on a NATS cluster
	Memory   bool          // keep the bucket in memory instead of on disk
}

// NewKVSessions creates (or opens) the bucket.
func NewKVSessions(ctx context.Context, js jetstream.JetStream, cfg KVSessionsConfig) (*KVSessions, error) {
	const op = "link.NewKVSessions"
	if cfg.Bucket == "" {
		cfg.Bucket = "gh_link_sessions"
	}
	if cfg.TTL == 0 {
		cfg.TTL = 2*time.Minute + 15*time.Second
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	storage := jetstream.FileStorage
	if cfg.Memory {
		storage = jetstream.MemoryStorage
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: cfg.Bucket, TTL: cfg.TTL, Replicas: cfg.Replicas, Storage: storage, History: 1,
		MaxValueSize: 1 << 20,
	})
	if err != nil {
		return nil, guildhall.E(op, guildhall.Unavailable, "session bucket: %v", err)
	}
	return &KVSessions{kv: kv}, nil
}

// key maps a session ID to a valid KV key whatever the node ID holds.
func key(id string) string { return "s" + hex.EncodeToString([]byte(id)) }

// Put implements SessionStore.
func (k *KVSessions) Put(ctx context.Context, id string, state []byte) error {
	_, err := k.kv.Put(ctx, key(id), state)
	return kvErr("link.KVSessions.Put", err)
}

// Get implements SessionStore.
func (k *KVSessions) Get(ctx context.Context, id string) ([]byte, error) {
	e, err := k.kv.Get(ctx, key(id))
	if err != nil {
		return nil, kvErr("link.KVSessions.Get", err)
	}
	return e.Value(), nil
}

// Delete implements SessionStore.
func (k *KVSessions) Delete(ctx context.Context, id string) error {
	err := k.kv.Purge(ctx, key(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return kvErr("link.KVSessions.Delete", err)
}

func kvErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return guildhall.E(op, guildhall.NotFound, "no such session")
	default:
		return guildhall.E(op, guildhall.Unavailable, "%v", err)
	}
}
