package messagetest

import (
	"fmt"
	"testing"

	"github.com/guildhall/guildhall/message"
)

// BenchPersist measures how fast s stores new messages, one channel,
// two ways: "insert", one Insert per message (what the synchronous send
// path did), and "persist<batch>", Store.Persist of batch creates at a
// time (what the Persister does). Both report msgs/s; their ratio is the
// gain of batching. newStore returns an empty store.
func BenchPersist(b *testing.B, newStore func(b *testing.B) message.Store, batch int) {
	b.Run("insert", func(b *testing.B) {
		s := newStore(b)
		var seq uint64
		for b.Loop() {
			seq++
			m := Msg(1, seq<<22, seq)
			m.Nonce = fmt.Sprint("n", seq)
			if err := s.Insert(b.Context(), m); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run(fmt.Sprintf("persist%d", batch), func(b *testing.B) {
		s := newStore(b)
		var seq uint64
		changes := make([]message.Change, batch)
		for b.Loop() {
			for i := range changes {
				seq++
				m := Msg(1, seq<<22, seq)
				m.Nonce = fmt.Sprint("n", seq)
				changes[i] = message.Change{Kind: message.ChangeCreate, Message: m}
			}
			if err := s.Persist(b.Context(), changes); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
	})
}
