package pebble_test

import (
	"testing"

	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/pebble"
	"github.com/guildhall/guildhall/message/unreadtest"
)

func TestReadStateStore(t *testing.T) {
	unreadtest.RunStore(t, func(t *testing.T) message.ReadStateStore {
		return pebble.NewReadStates(mustOpen(t, t.TempDir()))
	})
}

// TestReadStatesReopen: positions survive closing and reopening the
// database.
func TestReadStatesReopen(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	p := message.ReadPosition{ChannelID: 4, Seq: 9, ID: 90}
	if err := pebble.NewReadStates(db).PutReadPosition(t.Context(), 3, p); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := pebble.NewReadStates(mustOpen(t, dir)).ReadPositions(t.Context(), 3)
	if err != nil || len(got) != 1 || got[0] != p {
		t.Fatalf("after reopen: %+v, %v; want [%+v]", got, err, p)
	}
}
