package subscribe

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/bus/bustest"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

const wait = 5 * time.Second

func TestFullHeartbeatCreatesRoutes(t *testing.T) {
	ns := bustest.MustServer(t)
	svc := MustService(t, ns, Config{})
	nc := bustest.MustConnect(t, ns)

	heartbeat(t, nc, full("n1", 5000, 1, 3, 2, 1))
	heartbeat(t, nc, full("n2", 5000, 2, 7))
	for ch, want := range map[uint64][]string{1: {"n1"}, 2: {"n1", "n2"}, 3: nil} {
		if got := svc.Nodes(ch); !slices.Equal(got, want) {
			t.Errorf("Nodes(%d) = %v, want %v", ch, got, want)
		}
	}
}

func TestDeltaAddsAndRemovesChannels(t *testing.T) {
	ns := bustest.MustServer(t)
	svc := MustService(t, ns, Config{})
	nc := bustest.MustConnect(t, ns)

	heartbeat(t, nc, full("n1", 5000, 1, 1, 2, 1))
	heartbeat(t, nc, delta("n1", 3, 4, 1, 0)) // add 3, remove 1, leave 2 alone
	for ch, want := range map[uint64][]string{1: nil, 2: {"n1"}, 3: {"n1"}} {
		if got := svc.Nodes(ch); !slices.Equal(got, want) {
			t.Errorf("Nodes(%d) = %v, want %v", ch, got, want)
		}
	}
	// A count change of a followed channel is not a route change; removing a
	// channel the node never had is a no-op.
	chg := changes(t, nc)
	heartbeat(t, nc, delta("n1", 3, 9, 42, 0))
	select {
	case m := <-chg:
		t.Errorf("unexpected route change %q", m.Data)
	default:
	}
	if got := svc.Nodes(3); !slices.Equal(got, []string{"n1"}) {
		t.Errorf("Nodes(3) = %v", got)
	}
}

func TestFullSnapshotRemovesOmittedChannels(t *testing.T) {
	ns := bustest.MustServer(t)
	svc := MustService(t, ns, Config{})
	nc := bustest.MustConnect(t, ns)
	chg := changes(t, nc)

	heartbeat(t, nc, full("n1", 5000, 1, 1, 2, 1))
	nextChange(t, chg)
	heartbeat(t, nc, full("n1", 5000, 2, 5))
	if got := svc.Nodes(1); got != nil {
		t.Errorf("Nodes(1) = %v after a snapshot without it", got)
	}
	if got := svc.Nodes(2); !slices.Equal(got, []string{"n1"}) {
		t.Errorf("Nodes(2) = %v", got)
	}
	c := nextChange(t, chg)
	if len(c.Routes) != 1 || c.Routes[0].ChannelId != 1 || len(c.Routes[0].NodeIds) != 0 {
		t.Errorf("change = %v, want channel 1 with no nodes", c)
	}
	// An empty snapshot removes everything but keeps the node known.
	heartbeat(t, nc, full("n1", 5000))
	if got := svc.Nodes(2); got != nil {
		t.Errorf("Nodes(2) = %v after an empty snapshot", got)
	}
}

func TestLeavingRemovesNode(t *testing.T) {
	ns := bustest.MustServer(t)
	svc := MustService(t, ns, Config{})
	nc := bustest.MustConnect(t, ns)
	chg := changes(t, nc)

	heartbeat(t, nc, full("n1", 5000, 1, 1, 2, 1))
	heartbeat(t, nc, full("n2", 5000, 1, 1))
	nextChange(t, chg)
	nextChange(t, chg)
	heartbeat(t, nc, &pb.LinkHeartbeat{NodeId: "n1", Leaving: true})
	if got := svc.Nodes(1); !slices.Equal(got, []string{"n2"}) {
		t.Errorf("Nodes(1) = %v", got)
	}
	if got := svc.Nodes(2); got != nil {
		t.Errorf("Nodes(2) = %v", got)
	}
	if c := nextChange(t, chg); !slices.Equal(c.RemovedNodes, []string{"n1"}) {
		t.Errorf("change = %v, want n1 removed", c)
	}
	// Leaving twice, or a node never seen, changes nothing.
	heartbeat(t, nc, &pb.LinkHeartbeat{NodeId: "n1", Leaving: true})
	heartbeat(t, nc, &pb.LinkHeartbeat{NodeId: "nobody", Leaving: true})
	select {
	case m := <-chg:
		t.Errorf("unexpected change %q", m.Data)
	default:
	}
}

func TestBadHeartbeatIgnored(t *testing.T) {
	ns := bustest.MustServer(t)
	svc := MustService(t, ns, Config{})
	nc := bustest.MustConnect(t, ns)
	if err := nc.Publish(bus.LinkHeartbeat, []byte{0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(nc, bus.LinkHeartbeat, &pb.LinkHeartbeat{Full: true, Counts: testCounts(1, 1)}); err != nil {
		t.Fatal(err)
	}
	heartbeat(t, nc, full("n1", 5000, 2, 1)) // processed after the bad ones
	if got := svc.Nodes(1); got != nil {
		t.Errorf("Nodes(1) = %v from a heartbeat without node", got)
	}
}

// TestDeltaReplyAfterChange: a delta sent as a request is answered only
// after its route change was published, so the requester (and anyone on its
// connection) has the change before the reply.
func TestDeltaReplyAfterChange(t *testing.T) {
	ns := bustest.MustServer(t)
	svc := MustService(t, ns, Config{})
	nc := bustest.MustConnect(t, ns)
	chg := changes(t, nc)

	for i := range uint64(20) {
		heartbeat(t, nc, delta("n1", 100+i, 1))
		select {
		case m := <-chg: // delivered in order before the reply, so already queued
			var got pb.RouteTable
			if err := proto.Unmarshal(m.Data, &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Routes) != 1 || got.Routes[0].ChannelId != 100+i || !slices.Equal(got.Routes[0].NodeIds, []string{"n1"}) {
				t.Fatalf("change = %v", &got)
			}
		default:
			t.Fatalf("delta %d: reply arrived before the route change", i)
		}
		if got := svc.Nodes(100 + i); !slices.Equal(got, []string{"n1"}) {
			t.Fatalf("Nodes(%d) = %v right after the reply", 100+i, got)
		}
	}
}

func TestExpiry(t *testing.T) {
	ns := bustest.MustServer(t)
	clk := newClock()
	svc := MustService(t, ns, Config{Now: clk.Now, SweepEvery: time.Millisecond, MissedHeartbeats: 3})
	nc := bustest.MustConnect(t, ns)
	chg := changes(t, nc)

	heartbeat(t, nc, full("n1", 1000, 1, 1))
	heartbeat(t, nc, full("n2", 1000, 1, 1, 2, 1))
	nextChange(t, chg)
	nextChange(t, chg)

	clk.Advance(2 * time.Second)
	heartbeat(t, nc, full("n2", 1000, 1, 1, 2, 1)) // n2 stays alive
	clk.Advance(time.Second)                       // n1 silent for exactly 3 intervals: not yet expired

	// Two more clock reads mean at least one whole sweep ran at this time.
	reads := clk.Reads()
	checkFor(t, wait, time.Millisecond, func() error {
		if clk.Reads() < reads+2 {
			return fmt.Errorf("no sweep yet")
		}
		return nil
	})
	if got := svc.Nodes(1); !slices.Equal(got, []string{"n1", "n2"}) {
		t.Fatalf("Nodes(1) = %v after 3 intervals, want both nodes still", got)
	}

	clk.Advance(time.Millisecond)
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(1)", func() []string { return svc.Nodes(1) }, "n2"))
	if c := nextChange(t, chg); !slices.Equal(c.RemovedNodes, []string{"n1"}) {
		t.Errorf("change = %v, want n1 removed", c)
	}
	if got := svc.Nodes(2); !slices.Equal(got, []string{"n2"}) {
		t.Errorf("Nodes(2) = %v", got)
	}

	// A node without an interval gets the 5s default.
	heartbeat(t, nc, full("n3", 0, 9, 1))
	clk.Advance(15 * time.Second)
	reads = clk.Reads()
	checkFor(t, wait, time.Millisecond, func() error {
		if clk.Reads() < reads+2 {
			return fmt.Errorf("no sweep yet")
		}
		return nil
	})
	if got := svc.Nodes(9); !slices.Equal(got, []string{"n3"}) {
		t.Fatalf("Nodes(9) = %v after 3 default intervals", got)
	}
	clk.Advance(time.Millisecond)
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(9)", func() []string { return svc.Nodes(9) }))
}

// TestTwoServicesHoldSameTable: every instance consumes every heartbeat.
func TestTwoServicesHoldSameTable(t *testing.T) {
	ns := bustest.MustServer(t)
	a := MustService(t, ns, Config{})
	b := MustService(t, ns, Config{})
	nc := bustest.MustConnect(t, ns)

	for _, hb := range []*pb.LinkHeartbeat{
		full("n1", 5000, 1, 1, 2, 1),
		full("n2", 5000, 2, 1, 3, 1),
		delta("n1", 1, 0, 4, 2),
		{NodeId: "n2", Leaving: true},
		full("n3", 5000, 3, 1),
	} {
		if err := bus.Publish(nc, bus.LinkHeartbeat, hb); err != nil {
			t.Fatal(err)
		}
	}
	want := map[uint64][]string{1: nil, 2: {"n1"}, 3: {"n3"}, 4: {"n1"}}
	for name, svc := range map[string]*Service{"a": a, "b": b} {
		checkFor(t, wait, time.Millisecond, func() error {
			for ch, w := range want {
				if got := svc.Nodes(ch); !slices.Equal(got, w) {
					return fmt.Errorf("%s.Nodes(%d) = %v, want %v", name, ch, got, w)
				}
			}
			return nil
		})
	}
	// Whichever instance answers, the table is the same.
	for range 10 {
		var tbl pb.RouteTable
		if err := bus.Request(context.Background(), nc, bus.RouteTableRequest, &pb.RouteTableRequest{}, &tbl); err != nil {
			t.Fatal(err)
		}
		got := map[uint64][]string{}
		for _, r := range tbl.Routes {
			got[r.ChannelId] = r.NodeIds
		}
		for ch, w := range want {
			if !slices.Equal(got[ch], w) {
				t.Fatalf("table[%d] = %v, want %v", ch, got[ch], w)
			}
		}
		if len(got) != 3 {
			t.Fatalf("table = %v", &tbl)
		}
	}
}

// linkSim is a link node that only answers snapshot requests.
type linkSim struct {
	requests atomic.Int32
}

func startLinkSim(t *testing.T, nc *nats.Conn, hb *pb.LinkHeartbeat) *linkSim {
	t.Helper()
	l := &linkSim{}
	sub, err := nc.Subscribe(bus.LinkSnapshotRequest, func(*nats.Msg) {
		l.requests.Add(1)
		if err := bus.Publish(nc, bus.LinkHeartbeat, hb); err != nil {
			t.Errorf("snapshot: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestRestartRebuildsFromSnapshots: a service that starts asks the link
// nodes for snapshots and has its table back without waiting for the next
// periodic heartbeat.
func TestRestartRebuildsFromSnapshots(t *testing.T) {
	ns := bustest.MustServer(t)
	nc := bustest.MustConnect(t, ns)
	sim := startLinkSim(t, nc, full("n1", 60_000, 10, 2, 11, 1))

	first, err := Start(bustest.MustConnect(t, ns), nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	checkFor(t, wait, time.Millisecond, wantNodes("first.Nodes(10)", func() []string { return first.Nodes(10) }, "n1"))
	shutdown(t, first.Shutdown)
	shutdown(t, first.Shutdown) // idempotent

	before := sim.requests.Load()
	second := MustService(t, ns, Config{})
	checkFor(t, wait, time.Millisecond, wantNodes("second.Nodes(10)", func() []string { return second.Nodes(10) }, "n1"))
	checkFor(t, wait, time.Millisecond, wantNodes("second.Nodes(11)", func() []string { return second.Nodes(11) }, "n1"))
	if sim.requests.Load() <= before {
		t.Errorf("the restarted service did not ask for snapshots")
	}
}

func TestShutdownStopsService(t *testing.T) {
	ns := bustest.MustServer(t)
	nc := bustest.MustConnect(t, ns)
	svc, err := Start(bustest.MustConnect(t, ns), nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	shutdown(t, svc.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err = bus.Request(ctx, nc, bus.RouteTableRequest, &pb.RouteTableRequest{}, &pb.RouteTable{})
	if err == nil {
		t.Fatal("a stopped service still answers table requests")
	}
}

func TestCountsByTypeRouteAndAggregate(t *testing.T) {
	ns := bustest.MustServer(t)
	svc := MustService(t, ns, Config{})
	nc := bustest.MustConnect(t, ns)

	// n1 follows channel 1 only for unread counts, n2 only for status,
	// n3 for messages: every one of them needs the channel's events.
	heartbeat(t, nc, &pb.LinkHeartbeat{NodeId: "n1", Full: true, IntervalMs: 5000, Counts: []*pb.ChannelCount{{ChannelId: 1, UnreadCount: 2}}})
	heartbeat(t, nc, &pb.LinkHeartbeat{NodeId: "n2", Full: true, IntervalMs: 5000, Counts: []*pb.ChannelCount{{ChannelId: 1, UnreadStatus: 3}}})
	heartbeat(t, nc, &pb.LinkHeartbeat{NodeId: "n3", IntervalMs: 5000, Counts: []*pb.ChannelCount{{ChannelId: 1, Messages: 1, UnreadCount: 1}}})
	if got, want := svc.Nodes(1), []string{"n1", "n2", "n3"}; !slices.Equal(got, want) {
		t.Fatalf("Nodes(1) = %v, want %v", got, want)
	}
	if got, want := svc.Counts(1), (Counts{Messages: 1, UnreadCount: 3, UnreadStatus: 3}); got != want {
		t.Fatalf("Counts(1) = %+v, want %+v", got, want)
	}
	// A type change that keeps a session is no route change; dropping the
	// last session of every type is.
	heartbeat(t, nc, &pb.LinkHeartbeat{NodeId: "n1", IntervalMs: 5000, Counts: []*pb.ChannelCount{{ChannelId: 1, UnreadStatus: 2}}})
	if got, want := svc.Counts(1), (Counts{Messages: 1, UnreadCount: 1, UnreadStatus: 5}); got != want {
		t.Fatalf("Counts(1) after type change = %+v, want %+v", got, want)
	}
	heartbeat(t, nc, &pb.LinkHeartbeat{NodeId: "n2", IntervalMs: 5000, Counts: []*pb.ChannelCount{{ChannelId: 1}}})
	if got, want := svc.Nodes(1), []string{"n1", "n3"}; !slices.Equal(got, want) {
		t.Fatalf("Nodes(1) = %v, want %v", got, want)
	}
}
