package message_test

import (
	"fmt"
	"testing"

	"github.com/guildhall/guildhall/member"
	"github.com/guildhall/guildhall/message/inmem"
)

// BenchmarkReadStatesList: one READY's worth of read states for a member
// of a server with 500 channels (the limit), each with a message and a
// position, on the embedded stack (Pebble, the role resolver and its
// caches, in-process counters). A VIEW_CHANNEL check per channel is
// included.
func BenchmarkReadStatesList(b *testing.B) {
	e := newRSEnv(b, inmem.NewCounters(inmem.CountersConfig{}))
	ctx := b.Context()
	ids := []uint64{e.general, e.secret} // secret is hidden from plain
	for i := len(ids); i < member.MaxChannels; i++ {
		c, err := e.members.CreateChannel(ctx, e.owner, e.srv.ID, fmt.Sprint("c", i))
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	for _, ch := range ids {
		m, err := e.svc.Send(ctx, e.owner.ID, ch, "x", "")
		if err != nil {
			b.Fatal(err)
		}
		if ch != e.secret {
			if _, err := e.rs.Ack(ctx, e.plain.ID, ch, m.ID); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for range b.N {
		list, err := e.rs.List(ctx, e.plain.ID, ids)
		if err != nil {
			b.Fatal(err)
		}
		if len(list) != len(ids)-1 {
			b.Fatalf("%d states for %d visible channels", len(list), len(ids)-1)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/channel")
}
