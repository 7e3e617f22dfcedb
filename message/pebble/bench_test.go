package pebble_test

import (
	"testing"

	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/messagetest"
	"github.com/guildhall/guildhall/message/pebble"
)

// BenchmarkPersist compares one synced Insert per message with the
// persister's batches of 500, one sync each (see messagetest.BenchPersist).
func BenchmarkPersist(b *testing.B) {
	messagetest.BenchPersist(b, func(b *testing.B) message.Store { return pebble.New(mustOpen(b, b.TempDir())) }, 500)
}
