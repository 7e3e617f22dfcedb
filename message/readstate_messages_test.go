package message_test

import (
	"testing"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/inmem"
	messagepebble "github.com/guildhall/guildhall/message/pebble"
)

// TestCachedMessages: a message sent but not yet in the store is found in
// the cache, and the channel's last seq counts it.
func TestCachedMessages(t *testing.T) {
	ctx := t.Context()
	store := messagepebble.New(mustOpen(t))
	cache := inmem.New(inmem.Config{})
	const ch = 77
	stored := message.Message{ID: 1000, ChannelID: ch, ServerID: 1, AuthorID: 2, Content: "a", Seq: 1}
	if err := store.Insert(ctx, stored); err != nil {
		t.Fatal(err)
	}
	pending := message.Message{ID: 2000, ChannelID: ch, ServerID: 1, AuthorID: 2, Content: "b", Seq: 2}
	for _, m := range []message.Message{stored, pending} {
		if err := cache.Add(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	cm := message.CachedMessages{Store: store, Cache: cache}
	for _, want := range []message.Message{stored, pending} {
		if m, err := cm.Get(ctx, ch, want.ID); err != nil || m.Seq != want.Seq {
			t.Errorf("Get(%d) = %+v, %v", want.ID, m, err)
		}
	}
	if _, err := cm.Get(ctx, ch, 3000); guildhall.KindOf(err) != guildhall.NotFound {
		t.Errorf("Get(unknown) = %v, want not_found", err)
	}
	if seq, id, err := cm.Last(ctx, ch); err != nil || seq != 2 || id != 2000 {
		t.Errorf("Last = %d, %d, %v; want 2, 2000", seq, id, err)
	}
	if seq, _, err := (message.CachedMessages{Store: store}).Last(ctx, ch); err != nil || seq != 1 {
		t.Errorf("Last without a cache = %d, %v", seq, err)
	}
}
