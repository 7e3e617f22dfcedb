package natsrpc

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/bus/bustest"
	"github.com/guildhall/guildhall/message"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

type fixedRouter map[uint64][]string

func (r fixedRouter) Nodes(ch uint64) []string { return r[ch] }

type fixedVersions struct{}

func (fixedVersions) Version(_ context.Context, serverID uint64) (uint64, error) {
	return serverID * 10, nil
}

// TestBatchingFanout: events queued while the flusher is busy go out as
// one bus message per node, in publish order, each with its permission
// version; nodes get only their channels' events; Shutdown flushes.
func TestBatchingFanout(t *testing.T) {
	ns := bustest.MustServer(t)
	pub, sub := bustest.MustConnect(t, ns), bustest.MustConnect(t, ns)
	msgs := map[string]chan *nats.Msg{}
	for _, node := range []string{"a", "b"} {
		ch := make(chan *nats.Msg, 100)
		if _, err := sub.ChanSubscribe(bus.LinkDeliver(node), ch); err != nil {
			t.Fatal(err)
		}
		msgs[node] = ch
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	f := StartFanout(pub, fixedRouter{1: {"a", "b"}, 2: {"a"}}, fixedVersions{}, nil, FanoutConfig{MaxBatch: 3})
	hold := make(chan struct{})
	f.holdFlusher(hold) // the first event is taken, the rest queue
	ctx := t.Context()
	var want []uint64
	for i := uint64(1); i <= 5; i++ {
		ch := 1 + i%2
		if err := f.Publish(ctx, message.Event{Kind: message.Created, Message: message.Message{ID: i, ChannelID: ch, ServerID: ch, Seq: i}}); err != nil {
			t.Fatal(err)
		}
		want = append(want, i)
		if i == 1 {
			f.waitTaken(t)
		}
	}
	close(hold)
	if err := f.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Shutdown(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	read := func(node string, n int) (ids, versions []uint64, batches int) {
		for len(ids) < n {
			select {
			case m := <-msgs[node]:
				var d pb.Delivery
				if err := proto.Unmarshal(m.Data, &d); err != nil {
					t.Fatal(err)
				}
				batches++
				for i, ev := range d.Events {
					ids = append(ids, ev.GetMessageCreate().GetId())
					versions = append(versions, d.PermVersions[i])
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: got %v, want %d events", node, ids, n)
			}
		}
		return ids, versions, batches
	}
	ids, versions, batches := read("a", 5)
	if !slices.Equal(ids, want) || batches != 3 { // 1, then 2 to 5 at most 3 a message
		t.Errorf("a got %v in %d messages, want %v in 3", ids, batches, want)
	}
	for i, v := range versions {
		if wantV := (1 + ids[i]%2) * 10; v != wantV {
			t.Errorf("a: event %d has version %d, want %d", ids[i], v, wantV)
		}
	}
	if ids, _, batches := read("b", 2); !slices.Equal(ids, []uint64{2, 4}) || batches != 1 {
		t.Errorf("b got %v in %d messages, want [2 4] in 1", ids, batches)
	}
	if err := f.Publish(ctx, message.Event{Kind: message.Created, Message: message.Message{ID: 9, ChannelID: 1}}); err == nil {
		t.Error("Publish after Shutdown succeeded")
	}
}

// TestBatchingFanoutBackPressure: past MaxPending, Publish waits for the
// flusher, and gives up when its context ends.
func TestBatchingFanoutBackPressure(t *testing.T) {
	ns := bustest.MustServer(t)
	f := StartFanout(bustest.MustConnect(t, ns), fixedRouter{1: {"a"}}, nil, nil, FanoutConfig{MaxPending: 2})
	hold := make(chan struct{})
	f.holdFlusher(hold)
	defer func() { close(hold); _ = f.Shutdown(context.Background()) }()
	ev := message.Event{Kind: message.Created, Message: message.Message{ID: 1, ChannelID: 1}}
	for i := range 3 { // the first is taken by the (held) flusher
		if err := f.Publish(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			f.waitTaken(t)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := f.Publish(ctx, ev); err == nil {
		t.Fatal("Publish past MaxPending did not wait")
	}
}

func TestEncodeDeliveryMatchesProto(t *testing.T) {
	evs := []*pb.Event{{ChannelId: 1, ServerId: 2}, {ChannelId: 3, Kind: &pb.Event_MessageCreate{MessageCreate: &pb.Message{Id: 300, Content: "x"}}}}
	var enc [][]byte
	for _, ev := range evs {
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		enc = append(enc, b)
	}
	for _, withVersions := range []bool{false, true} {
		d := &pb.Delivery{Events: evs}
		if withVersions {
			d.PermVersions = []uint64{7, 1 << 40}
		}
		want, err := proto.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeDelivery(enc, []uint64{7, 1 << 40}, withVersions); !slices.Equal(got, want) {
			t.Errorf("versions=%v: %x, want %x", withVersions, got, want)
		}
	}
}

func (f *Fanout) holdFlusher(h chan struct{}) {
	f.batch.mu.Lock()
	f.batch.hold = h
	f.batch.mu.Unlock()
}

// waitTaken waits until the flusher took everything queued.
func (f *Fanout) waitTaken(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.batch.mu.Lock()
		n := f.batch.count
		f.batch.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still queued", n)
		}
		time.Sleep(time.Millisecond)
	}
}
