package cql_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/cql"
	"github.com/guildhall/guildhall/message/messagetest"
)

// fill inserts n messages into channel ch, with IDs from ids(seq), from
// a few goroutines at once (each seq is claimed once, so they never
// conflict).
func fill(tb testing.TB, s message.Store, ch uint64, n int, ids func(seq uint64) uint64) {
	tb.Helper()
	var next atomic.Uint64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for seq := next.Add(1); seq <= uint64(n); seq = next.Add(1) {
				m := messagetest.Msg(ch, ids(seq), seq)
				m.Nonce = fmt.Sprint("n", seq)
				if err := s.Insert(tb.Context(), m); err != nil {
					tb.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if tb.Failed() {
		tb.FailNow()
	}
}

// BenchmarkListLatest reads the latest 50 messages of a channel of 10,000:
// "dense" has them all in one bucket (one message a millisecond), "sparse"
// one message per bucket, so a page reads 50 buckets.
func BenchmarkListLatest(b *testing.B) {
	s, _ := mustStore(b)
	fill(b, s, 1, 10000, func(seq uint64) uint64 { return seq << 22 })
	fill(b, s, 2, 200, func(seq uint64) uint64 { return cql.BucketStart(int32(seq)) + 1 })
	for _, bc := range []struct {
		name string
		ch   uint64
	}{{"dense", 1}, {"sparse", 2}} {
		b.Run(bc.name, func(b *testing.B) {
			q := message.Query{Limit: 50}
			for b.Loop() {
				page, err := s.List(b.Context(), bc.ch, q)
				if err != nil || len(page) != 50 {
					b.Fatalf("List = %d, %v", len(page), err)
				}
			}
		})
	}
}

// BenchmarkLast is what a send reads before it inserts.
func BenchmarkLast(b *testing.B) {
	s, _ := mustStore(b)
	fill(b, s, 1, 100, func(seq uint64) uint64 { return seq << 22 })
	for b.Loop() {
		if seq, _, err := s.Last(b.Context(), 1); err != nil || seq != 100 {
			b.Fatalf("Last = %d, %v", seq, err)
		}
	}
}

// BenchmarkInsert appends to one channel, one insert at a time: a read of
// the previous seq, the seq claim (Paxos) and the logged batch.
func BenchmarkInsert(b *testing.B) {
	s, _ := mustStore(b)
	var seq uint64
	for b.Loop() {
		seq++
		m := messagetest.Msg(1, seq<<22, seq)
		m.Nonce = fmt.Sprint("n", seq)
		if err := s.Insert(b.Context(), m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInsertParallel appends to a channel per goroutine, 8 goroutines
// per CPU.
func BenchmarkInsertParallel(b *testing.B) {
	s, _ := mustStore(b)
	var channel atomic.Uint64
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		ch := channel.Add(1)
		var seq uint64
		for pb.Next() {
			seq++
			if err := s.Insert(b.Context(), messagetest.Msg(ch, seq<<22, seq)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPersist compares one Insert per message with the persister's
// batches of 500 (see messagetest.BenchPersist).
func BenchmarkPersist(b *testing.B) {
	messagetest.BenchPersist(b, func(b *testing.B) message.Store { s, _ := mustStore(b); return s }, 500)
}
