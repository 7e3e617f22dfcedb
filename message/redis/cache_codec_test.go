package redis

import (
	"reflect"
	"testing"
	"time"

	"github.com/guildhall/guildhall/message"
)

// FuzzDecode: whatever bytes a cache key holds, decode fails cleanly or
// gives a message that encodes and decodes to itself.
func FuzzDecode(f *testing.F) {
	seed, _ := encode(message.Message{
		ID: 1 << 60, ChannelID: 5, Content: "hi", Nonce: "n", Seq: 3,
		CreatedAt: time.UnixMilli(1_700_000_000_000).UTC(),
		Mentions:  message.Mentions{Users: []uint64{1, 2}, Everyone: true},
	})
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err != nil {
			return
		}
		again, err := encode(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := decode(again)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed %+v to %+v", m, m2)
		}
	})
}
