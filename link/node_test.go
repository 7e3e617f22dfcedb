package link

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/bus/bustest"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
	"github.com/guildhall/guildhall/subscribe"
)

// readEvents reads n dispatches and checks they carry want with seq
// first, first+1, ...
func readEvents(t *testing.T, c *client, first uint64, want ...*pb.Event) {
	t.Helper()
	for i, ev := range want {
		f := c.read()
		if f.Seq != first+uint64(i) {
			t.Fatalf("dispatch %d has seq %d, want %d (%v)", i, f.Seq, first+uint64(i), f)
		}
		if !proto.Equal(f.GetEvent(), ev) {
			t.Fatalf("dispatch %d = %v, want event %v", i, f, ev)
		}
	}
}

func TestDispatchInOrder(t *testing.T) {
	h := mustHarness(t, Config{})
	for i, enc := range encodings {
		t.Run(enc.name, func(t *testing.T) {
			ch := uint64(10 + i)
			c := h.dial(t, enc.json)
			c.identify()
			c.mustSubscribe(ch)
			var want []*pb.Event
			for j := range uint64(60) {
				want = append(want, messageEvent(ch, j+1, fmt.Sprintf("message %d ✓", j)))
			}
			h.deliver(t, want[:20]...) // one delivery with many events ...
			for _, ev := range want[20:] {
				h.deliver(t, ev) // ... and one per event
			}
			readEvents(t, c, 1, want...)
		})
	}
}

// TestDispatchJSONShape: a JSON dispatch is what protojson makes of the
// frame, with the seq as a string as for every 64-bit integer.
func TestDispatchJSONShape(t *testing.T) {
	h := mustHarness(t, Config{})
	c := h.dial(t, true)
	c.identify()
	c.mustSubscribe(3)
	ev := messageEvent(3, 9, `quote " and <html> & ünïcode`)
	h.deliver(t, ev)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	typ, b, err := c.conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("message type %v", typ)
	}
	var f pb.Frame
	if err := jsonIn.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if !proto.Equal(&f, &pb.Frame{Seq: 1, Body: &pb.Frame_Event{Event: ev}}) {
		t.Fatalf("frame %s, want seq 1 and %v", b, ev)
	}
	if !strings.HasPrefix(string(b), `{"seq":"1","event":`) {
		t.Errorf("frame %s does not start with the seq as a string", b)
	}
}

// TestSeqPerSession: each session numbers its own dispatches.
func TestSeqPerSession(t *testing.T) {
	h := mustHarness(t, Config{})
	a, b := h.dial(t, false), h.dial(t, true)
	a.identify()
	b.identify()
	a.mustSubscribe(10, 11)
	b.mustSubscribe(11)
	e1, e2, e3 := messageEvent(10, 1, "one"), messageEvent(11, 2, "two"), messageEvent(11, 3, "three")
	h.deliver(t, e1, e2)
	h.deliver(t, e3)
	readEvents(t, a, 1, e1, e2, e3)
	readEvents(t, b, 1, e2, e3)
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	h := mustHarness(t, Config{})
	c := h.dial(t, false)
	c.identify()
	c.mustSubscribe(1, 2)
	r := c.request("unsub", &pb.Frame{Body: &pb.Frame_Unsubscribe{Unsubscribe: &pb.Unsubscribe{ChannelIds: []uint64{1, 99}}}})
	if r.GetOk() == nil {
		t.Fatalf("unsubscribe: %v", r)
	}
	e1, e2 := messageEvent(1, 1, "gone"), messageEvent(2, 2, "kept")
	h.deliver(t, e1, e2)
	readEvents(t, c, 1, e2)
	checkFor(t, wait, time.Millisecond, func() error {
		if got := h.svc.Nodes(1); got != nil {
			return fmt.Errorf("Nodes(1) = %v after unsubscribe", got)
		}
		return nil
	})
	if got := h.svc.Nodes(2); !slices.Equal(got, []string{h.node.ID()}) {
		t.Errorf("Nodes(2) = %v", got)
	}
}

// TestSubscribeAckMeansRouted: once SUBSCRIBE is acknowledged, the
// subscription service routes the channel to this node, so a message sent
// right after reaches the session. Frequent full snapshots race the deltas.
func TestSubscribeAckMeansRouted(t *testing.T) {
	h := mustHarness(t, Config{SnapshotEvery: time.Millisecond})
	clients := []*client{h.dial(t, false), h.dial(t, true)}
	for _, c := range clients {
		c.identify()
	}
	for i := range uint64(60) {
		c := clients[i%2]
		chans := []uint64{100 + i}
		if i%3 == 0 {
			chans = append(chans, 200+i%7) // followed already, or not
		}
		c.mustSubscribe(chans...)
		for _, ch := range chans {
			if got := h.svc.Nodes(ch); !slices.Equal(got, []string{h.node.ID()}) {
				t.Fatalf("right after the ok of subscribe %v: Nodes(%d) = %v", chans, ch, got)
			}
		}
	}
}

func TestDisconnectRemovesSubscriptions(t *testing.T) {
	h := mustHarness(t, Config{ResumeWindow: -1}) // without resume, a dropped session is gone at once
	hbs := watchHeartbeats(t, h.nc)
	id := h.node.ID()
	a, b := h.dial(t, false), h.dial(t, true)
	a.identify()
	b.identify()
	a.mustSubscribe(7, 8)
	b.mustSubscribe(7)
	checkFor(t, wait, time.Millisecond, func() error {
		if n, _ := hbs.lastCount(id, 7); n != 2 {
			return fmt.Errorf("count of 7 reported: %d, want 2", n)
		}
		return nil
	})

	a.conn.Close(websocket.StatusNormalClosure, "bye")
	checkFor(t, wait, time.Millisecond, func() error {
		n7, _ := hbs.lastCount(id, 7)
		n8, seen8 := hbs.lastCount(id, 8)
		if n7 != 1 || n8 != 0 || !seen8 {
			return fmt.Errorf("reported counts 7: %d, 8: %d (seen %v); want 1 and 0", n7, n8, seen8)
		}
		if got := h.svc.Nodes(8); got != nil {
			return fmt.Errorf("Nodes(8) = %v", got)
		}
		return nil
	})
	if got := h.svc.Nodes(7); !slices.Equal(got, []string{id}) {
		t.Fatalf("Nodes(7) = %v with one session left", got)
	}

	b.conn.CloseNow() // abruptly
	checkFor(t, wait, time.Millisecond, func() error {
		if got := h.svc.Nodes(7); got != nil {
			return fmt.Errorf("Nodes(7) = %v", got)
		}
		if n := h.node.sessionCount(); n != 0 {
			return fmt.Errorf("%d sessions", n)
		}
		return nil
	})
	if n := h.node.count(7).GetMessages() + h.node.count(8).GetMessages(); n != 0 {
		t.Errorf("node still counts %d subscriptions", n)
	}
}

// TestSlowConsumer: a session that does not keep up is closed with 4010;
// the others and the node carry on.
func TestSlowConsumer(t *testing.T) {
	h := mustHarness(t, Config{QueueLen: 2, ResumeWindow: -1})
	good := h.dial(t, true)
	good.identify()
	good.mustSubscribe(21)
	slow := h.dial(t, false)
	slow.identify()
	slow.mustSubscribe(20)

	// A burst the writer cannot drain into a queue of 2, while the client
	// does not read. Should the writer keep up, send another.
	var sent uint64
	burst := func() {
		evs := make([]*pb.Event, 500)
		for i := range evs {
			sent++
			evs[i] = messageEvent(20, sent, "burst")
		}
		h.deliver(t, evs...)
	}
	burst()
	var got uint64
	for {
		f, err := slow.next()
		if err != nil {
			if code := websocket.CloseStatus(err); code != CloseSlowConsumer {
				t.Fatalf("slow session ended with %v, want %v", err, CloseSlowConsumer)
			}
			break
		}
		got++
		if f.Seq != got || f.GetEvent().GetChannelId() != 20 {
			t.Fatalf("dispatch %v, want seq %d", f, got)
		}
		if got == sent {
			if sent > 10_000 {
				t.Fatal("never dropped as a slow consumer")
			}
			burst()
		}
	}
	if got >= sent {
		t.Fatalf("got all %d events", got)
	}
	checkFor(t, wait, time.Millisecond, func() error {
		if ns := h.svc.Nodes(20); ns != nil {
			return fmt.Errorf("Nodes(20) = %v after the slow session was dropped", ns)
		}
		return nil
	})

	ev := messageEvent(21, 1, "still here")
	h.deliver(t, ev)
	readEvents(t, good, 1, ev)
	c := h.dial(t, false)
	c.identify()
	c.mustSubscribe(20)
	ev = messageEvent(20, 1, "new session")
	h.deliver(t, ev)
	readEvents(t, c, 1, ev)
}

// TestShutdown: sessions are told to reconnect and closed with 1012, the
// subscription service hears the node leave (and nothing from it after),
// and no goroutine is left.
func TestShutdown(t *testing.T) {
	h := &harness{ns: bustest.MustServer(t), dir: &fakeDir{}}
	h.nc = bustest.MustConnect(t, h.ns)
	var err error
	if h.svc, err = subscribe.Start(bustest.MustConnect(t, h.ns), nil, subscribe.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.svc.Shutdown(context.Background()) })
	hbs := watchHeartbeats(t, h.nc)
	nodeNC := bustest.MustConnect(t, h.ns)
	// The first request on a connection starts its reply handler; start it
	// now so that it is not counted as the node's.
	sub, err := h.nc.Subscribe("warmup", func(m *nats.Msg) { _ = m.Respond(nil) })
	if err != nil {
		t.Fatal(err)
	}
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := nodeNC.Request("warmup", nil, wait); err != nil {
		t.Fatal(err)
	}
	_ = sub.Unsubscribe()
	before := goleak.IgnoreCurrent()

	h.startNode(t, nodeNC, Config{})
	id := h.node.ID()
	clients := []*client{h.dial(t, false), h.dial(t, true), h.dial(t, false)}
	for i, c := range clients {
		c.identify()
		c.mustSubscribe(5, 6+uint64(i))
	}
	idle := h.dial(t, true) // never identified
	idle.read()
	clients = append(clients, idle)
	h.deliver(t, messageEvent(5, 1, "before"))

	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			frames := c.expectClose(CloseServiceRestart)
			if len(frames) == 0 || frames[len(frames)-1].GetReconnect() == nil {
				t.Errorf("frames before the close: %v, want reconnect last", frames)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.node.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := h.node.Shutdown(ctx); err != nil { // idempotent
		t.Fatal(err)
	}

	// A client arriving now is sent away.
	late := h.dial(t, false)
	late.expectClose(CloseServiceRestart)

	// Everything the node published is now with the watcher: the last word
	// was "leaving".
	if err := nodeNC.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	all := hbs.of(id)
	if len(all) == 0 || !all[len(all)-1].Leaving {
		t.Errorf("heartbeats of the node end with %v, want leaving", all[max(0, len(all)-3):])
	}
	checkFor(t, wait, time.Millisecond, func() error {
		for ch := range uint64(10) {
			if got := h.svc.Nodes(ch); got != nil {
				return fmt.Errorf("Nodes(%d) = %v after the node left", ch, got)
			}
		}
		return nil
	})

	h.srv.Close()
	for _, c := range append(clients, late) {
		c.conn.CloseNow()
	}
	goleak.VerifyNone(t, before)
}

// TestSubscribeAckWaitsForSnapshotRace: a full snapshot sent while a
// subscribe waits for its delta must not release that subscribe: only the
// service's reply to the delta says the route is out. The subscription
// service is cut off from the bus meanwhile, so a premature ok shows.
func TestSubscribeAckWaitsForSnapshotRace(t *testing.T) {
	h := &harness{ns: bustest.MustServer(t), dir: &fakeDir{deny: map[uint64]bool{}}}
	h.nc = bustest.MustConnect(t, h.ns)
	g := mustGate(t, h.ns)
	var err error
	if h.svc, err = subscribe.Start(g.connect(t), nil, subscribe.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.svc.Shutdown(context.Background()) })
	h.startNode(t, bustest.MustConnect(t, h.ns), Config{SnapshotEvery: time.Hour})
	hbs := watchHeartbeats(t, h.nc)
	a, b := h.dial(t, false), h.dial(t, false)
	a.identify()
	b.identify()

	g.hold() // the service hears nothing from here on
	// a's delta waits for the service, and with it the heartbeat loop.
	a.write(&pb.Frame{Ref: "a", Body: &pb.Frame_Subscribe{Subscribe: &pb.Subscribe{ChannelIds: []uint64{1}}}})
	checkFor(t, wait, 100*time.Microsecond, func() error {
		for _, hb := range hbs.of(h.node.ID()) {
			if !hb.Full && len(hb.Counts) == 1 && hb.Counts[0].ChannelId == 1 {
				return nil
			}
		}
		return fmt.Errorf("no delta for channel 1 yet")
	})
	// b's channel is now dirty, its delta not sent: the loop is busy.
	b.write(&pb.Frame{Ref: "b", Body: &pb.Frame_Subscribe{Subscribe: &pb.Subscribe{ChannelIds: []uint64{2}}}})
	checkFor(t, wait, 100*time.Microsecond, func() error {
		h.node.dirtyMu.Lock()
		defer h.node.dirtyMu.Unlock()
		if _, ok := h.node.dirty[2]; !ok {
			return fmt.Errorf("channel 2 not dirty")
		}
		return nil
	})
	// A (re)starting subscription service asks for a snapshot now.
	if err := h.nc.Publish(bus.LinkSnapshotRequest, nil); err != nil {
		t.Fatal(err)
	}
	bReply := make(chan *pb.Frame, 1)
	go func() { bReply <- b.read() }()
	// No ok may come while the service cannot have applied anything. The
	// window is well inside the 2s after which a delta gives up waiting.
	select {
	case r := <-bReply:
		t.Fatalf("subscribe 2 answered %v while the subscription service was cut off", r)
	case <-time.After(300 * time.Millisecond):
	}
	g.release()
	for _, c := range []struct {
		ch    uint64
		reply func() *pb.Frame
	}{{2, func() *pb.Frame { return <-bReply }}, {1, a.read}} {
		if r := c.reply(); r.GetOk() == nil {
			t.Fatalf("subscribe %d: %v", c.ch, r)
		}
		if got := h.svc.Nodes(c.ch); !slices.Equal(got, []string{h.node.ID()}) {
			t.Fatalf("right after the ok of subscribe %d: Nodes = %v", c.ch, got)
		}
	}
}

// TestPermissionChangeStopsDelivery: an event published at a newer
// permission version than a session was checked at makes the node check
// again before delivering; a session that lost access gets nothing more
// and its subscription is gone, also from the routes.
func TestPermissionChangeStopsDelivery(t *testing.T) {
	h := mustHarness(t, Config{})
	a, b := h.dial(t, false), h.dial(t, true)
	a.identify()
	b.identify()
	a.mustSubscribe(1, 2)
	b.mustSubscribe(1)

	// Version 0: delivered to both without a re-check.
	e1 := messageEvent(1, 1, "before")
	h.deliverAt(t, 0, e1)
	readEvents(t, a, 1, e1)
	readEvents(t, b, 1, e1)

	// The channel is hidden (from everyone, as the fake knows no users),
	// and the version moves: nothing of channel 1 reaches anyone.
	h.dir.mu.Lock()
	h.dir.deny[1] = true
	h.dir.version = 1
	h.dir.mu.Unlock()
	hidden, other := messageEvent(1, 2, "hidden"), messageEvent(2, 3, "other channel")
	h.deliverAt(t, 1, hidden, other)
	readEvents(t, a, 2, other) // the next frame is the other channel's, not the hidden one
	checkFor(t, wait, time.Millisecond, func() error {
		if got := h.svc.Nodes(1); got != nil {
			return fmt.Errorf("Nodes(1) = %v after everyone lost access", got)
		}
		return nil
	})
	// Access back and a newer version: b must subscribe again (its
	// subscription was dropped), and then gets events.
	h.dir.mu.Lock()
	h.dir.deny[1] = false
	h.dir.version = 2
	h.dir.mu.Unlock()
	b.mustSubscribe(1)
	again := messageEvent(1, 4, "again")
	h.deliverAt(t, 2, again)
	readEvents(t, b, 2, again)
}

// deliverAt publishes events as the message service would, all at one
// permission version.
func (h *harness) deliverAt(tb testing.TB, version uint64, events ...*pb.Event) {
	tb.Helper()
	d := &pb.Delivery{Events: events}
	for range events {
		d.PermVersions = append(d.PermVersions, version)
	}
	if err := bus.Publish(h.nc, bus.LinkDeliver(h.node.ID()), d); err != nil {
		tb.Fatal(err)
	}
}
