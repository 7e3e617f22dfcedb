package link

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

func benchEvent() *pb.Event {
	ev := messageEvent(42, 1234567890123, strings.Repeat("a typical chat message, ", 8))
	ev.GetMessageCreate().Nonce = "client-nonce-123"
	return ev
}

// benchFrame measures, for one event sent to `batch` sessions, the cost
// per session of codec.frame around the pre-encoded event against
// marshalling the whole pb.Frame for each session, and reports both and
// their ratio. One op is 256 sessions through each (ns/op covers both).
func benchFrame(b *testing.B, c codec) {
	ev := benchEvent()
	enc, err := encodeEvent(ev)
	if err != nil {
		b.Fatal(err)
	}
	const batch = 256
	var frameNs, marshalNs time.Duration
	var seq uint64
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		for range batch {
			seq++
			_ = c.frame(seq, enc)
		}
		mid := time.Now()
		for range batch {
			seq++
			if _, err := c.marshal(&pb.Frame{Seq: seq, Body: &pb.Frame_Event{Event: ev}}); err != nil {
				b.Fatal(err)
			}
		}
		frameNs += mid.Sub(start)
		marshalNs += time.Since(mid)
	}
	n := float64(b.N) * batch
	b.ReportMetric(float64(frameNs)/n, "frame-ns/session")
	b.ReportMetric(float64(marshalNs)/n, "marshal-ns/session")
	b.ReportMetric(float64(marshalNs)/float64(frameNs), "marshal/frame")
}

func BenchmarkFrameProto(b *testing.B) { benchFrame(b, codec{}) }
func BenchmarkFrameJSON(b *testing.B)  { benchFrame(b, codec{json: true}) }

// benchNode is a Node with only what the delivery path uses: no bus, no
// heartbeat loop, no sockets.
func benchNode() *Node {
	n := &Node{
		cfg:     Config{QueueLen: 4},
		dirty:   make(map[uint64]struct{}),
		flushed: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		waiting: make(map[uint64]*chanOrder),
	}
	for i := range n.subs {
		n.subs[i].m = make(map[uint64]map[*session]pb.SubscriptionType)
		n.subs[i].order = make(map[uint64]*chanOrder)
	}
	return n
}

// BenchmarkDelivery fans one event out to 1,000 sessions of one node: the
// bus message is decoded, the event encoded once per encoding, and each
// session gets its own frame in its outbound queue. No network: the
// queues are emptied outside the timer instead of by writers.
func BenchmarkDelivery(b *testing.B) {
	for _, mix := range []struct {
		name    string
		jsonPct int
	}{{"proto", 0}, {"json", 100}, {"mixed", 50}} {
		b.Run(fmt.Sprintf("sessions=1000/%s", mix.name), func(b *testing.B) {
			const sessions, ch = 1000, 42
			n := benchNode()
			all := make([]*session, sessions)
			for i := range all {
				s := &session{n: n, codec: codec{json: i*100/sessions < mix.jsonPct}, out: make(chan outFrame, n.cfg.QueueLen), subs: map[uint64]uint64{ch: 0}}
				n.subscribe(s, ch, pb.SubscriptionType_SUBSCRIPTION_TYPE_MESSAGES)
				all[i] = s
			}
			data, err := proto.Marshal(&pb.Delivery{Events: []*pb.Event{benchEvent()}})
			if err != nil {
				b.Fatal(err)
			}
			msg := &nats.Msg{Subject: "gh.link.bench.deliver", Data: data}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				n.onDelivery(msg)
				b.StopTimer()
				for _, s := range all {
					if f := <-s.out; len(f.data) == 0 {
						b.Fatal("empty frame")
					}
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*sessions), "ns/session")
		})
	}
}
