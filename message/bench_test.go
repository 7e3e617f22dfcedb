package message_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guildhall/guildhall/bus/bustest"
	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/inmem"
	messagejs "github.com/guildhall/guildhall/message/jetstream"
	messagepebble "github.com/guildhall/guildhall/message/pebble"
	"github.com/guildhall/guildhall/snowflake"
)

type nopPub struct{}

func (nopPub) Publish(context.Context, message.Event) error { return nil }

// BenchmarkSend is the durable send path as the embedded default runs it:
// embedded NATS with JetStream on file storage (the ack point), a Pebble
// store behind a running persister, the in-process cache and counters;
// access always allowed and fan-out to nobody, so what is measured is the
// send path itself. 64 senders, each on its own channel (sends to one
// channel are serialized by design), report messages/s and the p99 time
// from Send to its ack.
func BenchmarkSend(b *testing.B) {
	ns := bustest.MustServer(b)
	mlog := mustLog(b, ns, messagejs.Config{LagRefresh: 100 * time.Millisecond})
	store := messagepebble.New(mustOpen(b))
	mustPersister(b, message.PersisterConfig{Source: mlog, Store: store})
	ids, err := snowflake.New(5, nil)
	if err != nil {
		b.Fatal(err)
	}
	svc := message.NewService(message.Config{
		Store: store, Access: allowAll{}, Log: mlog, Publisher: nopPub{}, IDs: ids,
		Cache: inmem.New(inmem.Config{}), Counters: inmem.NewCounters(inmem.CountersConfig{}),
	})
	var (
		channel atomic.Uint64
		mu      sync.Mutex
		lat     []time.Duration
	)
	b.SetParallelism(sendersPerCPU)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ch := channel.Add(1)
		var mine []time.Duration
		i := 0
		for pb.Next() {
			i++
			t0 := time.Now()
			if _, err := svc.Send(context.Background(), 1, ch, "hello, bench", fmt.Sprint("n", i)); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	settle(b, mlog)
}

// sendersPerCPU is BenchmarkSend's parallelism.
var sendersPerCPU = 32
