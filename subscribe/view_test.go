package subscribe

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/bus/bustest"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

func TestViewFollowsChanges(t *testing.T) {
	ns := bustest.MustServer(t)
	MustService(t, ns, Config{})
	nc := bustest.MustConnect(t, ns)
	heartbeat(t, nc, full("n0", 5000, 63, 1)) // already there when the view starts

	v := MustView(t, ns, ViewConfig{ResyncEvery: time.Hour})
	nodes := func(ch uint64) func() []string { return func() []string { return v.Nodes(ch) } }
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(63)", nodes(63), "n0")) // the first fetch

	heartbeat(t, nc, full("n1", 5000, 1, 1, 2, 1))
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(1)", nodes(1), "n1"))
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(2)", nodes(2), "n1"))
	heartbeat(t, nc, delta("n2", 1, 1))
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(1)", nodes(1), "n1", "n2"))
	heartbeat(t, nc, delta("n1", 1, 0))
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(1)", nodes(1), "n2"))
	heartbeat(t, nc, &pb.LinkHeartbeat{NodeId: "n2", Leaving: true})
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(1)", nodes(1)))
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(2)", nodes(2), "n1"))
	heartbeat(t, nc, full("n1", 5000)) // the snapshot drops channel 2
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(2)", nodes(2)))
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(63)", nodes(63), "n0"))
}

// TestViewExpiry: nodes the service expires leave the view too.
func TestViewExpiry(t *testing.T) {
	ns := bustest.MustServer(t)
	clk := newClock()
	MustService(t, ns, Config{Now: clk.Now, SweepEvery: time.Millisecond})
	v := MustView(t, ns, ViewConfig{ResyncEvery: time.Hour})
	nc := bustest.MustConnect(t, ns)
	heartbeat(t, nc, full("n1", 1000, 5, 1, 6, 1))
	heartbeat(t, nc, full("n2", 1000, 6, 1))
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(6)", func() []string { return v.Nodes(6) }, "n1", "n2"))
	clk.Advance(2 * time.Second)
	heartbeat(t, nc, full("n2", 1000, 6, 1))
	clk.Advance(2 * time.Second)
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(6)", func() []string { return v.Nodes(6) }, "n2"))
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(5)", func() []string { return v.Nodes(5) }))
}

func TestViewResyncReplacesTable(t *testing.T) {
	ns := bustest.MustServer(t)
	svc := MustService(t, ns, Config{})
	nc := bustest.MustConnect(t, ns)
	heartbeat(t, nc, full("n1", 5000, 1, 1, 2, 1))
	v := MustView(t, ns, ViewConfig{ResyncEvery: time.Hour})
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(1)", func() []string { return v.Nodes(1) }, "n1"))

	// Something the view believes but the service does not (a lost notice).
	v.applyChanges(&pb.RouteTable{Routes: []*pb.Route{{ChannelId: 99, NodeIds: []string{"ghost"}}, {ChannelId: 2, NodeIds: []string{"ghost"}}}})
	if err := v.Resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for ch := range uint64(100) {
		if got, want := v.Nodes(ch), svc.Nodes(ch); !slices.Equal(got, want) {
			t.Errorf("after Resync: view.Nodes(%d) = %v, service has %v", ch, got, want)
		}
	}
}

// tableServer answers table requests in place of a Service, and can run a
// hook while a request is in flight.
type tableServer struct {
	nc *nats.Conn

	mu     sync.Mutex
	table  *pb.RouteTable
	during func() // runs before the reply; nil for none
}

func startTableServer(t *testing.T, nc *nats.Conn) *tableServer {
	t.Helper()
	ts := &tableServer{nc: nc, table: &pb.RouteTable{}}
	sub, err := nc.Subscribe(bus.RouteTableRequest, func(m *nats.Msg) {
		ts.mu.Lock()
		table, during := ts.table, ts.during
		ts.during = nil
		ts.mu.Unlock()
		if during != nil {
			during()
		}
		b, _ := proto.Marshal(table)
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return ts
}

func (ts *tableServer) set(table *pb.RouteTable, during func()) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.table, ts.during = table, during
}

func routes(kv map[uint64][]string) *pb.RouteTable {
	t := &pb.RouteTable{}
	for ch, nodes := range kv {
		t.Routes = append(t.Routes, &pb.Route{ChannelId: ch, NodeIds: nodes})
	}
	return t
}

// TestViewResyncKeepsChangesDuringFetch: a table fetched while change
// notices arrive is older than those notices; Resync must not undo them.
func TestViewResyncKeepsChangesDuringFetch(t *testing.T) {
	ns := bustest.MustServer(t)
	nc := bustest.MustConnect(t, ns)
	ts := startTableServer(t, nc)
	ts.set(routes(map[uint64][]string{1: {"a"}, 7: {"z"}}), nil)

	v := MustView(t, ns, ViewConfig{ResyncEvery: time.Hour})
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(7)", func() []string { return v.Nodes(7) }, "z"))

	// The table as it was when the service read it ...
	stale := routes(map[uint64][]string{1: {"a"}, 2: {"a", "b"}, 3: {"b"}, 6: {"e"}})
	// ... and what changed before the reply reached the view.
	during := func() {
		notice := &pb.RouteTable{
			Routes:       []*pb.Route{{ChannelId: 1, NodeIds: []string{"c"}}, {ChannelId: 3}},
			RemovedNodes: []string{"a"},
		}
		if err := bus.Publish(nc, bus.RouteChanges, notice); err != nil {
			t.Error(err)
			return
		}
		// Reply only once the view applied the notice: it is then certainly
		// "during the fetch".
		deadline := time.Now().Add(wait)
		for !slices.Equal(v.Nodes(1), []string{"c"}) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	ts.set(stale, during)
	if err := v.Resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[uint64][]string{1: {"c"}, 2: {"b"}, 3: nil, 6: {"e"}, 7: nil}
	for ch, w := range want {
		if got := v.Nodes(ch); !slices.Equal(got, w) {
			t.Errorf("Nodes(%d) = %v, want %v", ch, got, w)
		}
	}

	// The next resync without changes in flight takes the table as is.
	ts.set(routes(map[uint64][]string{1: {"a"}}), nil)
	if err := v.Resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for ch, w := range map[uint64][]string{1: {"a"}, 2: nil, 6: nil} {
		if got := v.Nodes(ch); !slices.Equal(got, w) {
			t.Errorf("Nodes(%d) = %v, want %v", ch, got, w)
		}
	}
}

// TestViewConcurrentResync: Resync calls racing each other and a stream of
// changes still leave the view equal to the service.
func TestViewConcurrentResync(t *testing.T) {
	ns := bustest.MustServer(t)
	svc := MustService(t, ns, Config{})
	v := MustView(t, ns, ViewConfig{ResyncEvery: time.Hour})
	nc := bustest.MustConnect(t, ns)

	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				_ = v.Resync(ctx)
			}
		})
	}
	for i := range uint64(200) {
		node := fmt.Sprintf("n%d", i%5)
		ch := i % 17
		if i%3 == 0 {
			heartbeat(t, nc, delta(node, ch, 0))
		} else {
			heartbeat(t, nc, delta(node, ch, 1))
		}
	}
	cancel()
	wg.Wait()
	// Only notices are left to arrive; the view must converge without
	// another resync.
	for ch := range uint64(17) {
		checkFor(t, wait, time.Millisecond, wantNodes(fmt.Sprintf("view.Nodes(%d)", ch),
			func() []string { return v.Nodes(ch) }, svc.Nodes(ch)...))
	}
}

func TestViewShutdownIdempotent(t *testing.T) {
	ns := bustest.MustServer(t)
	v, err := StartView(bustest.MustConnect(t, ns), nil, ViewConfig{}) // no service: fetches fail and retry
	if err != nil {
		t.Fatal(err)
	}
	shutdown(t, v.Shutdown)
	shutdown(t, v.Shutdown)
}

// TestViewExpiryRacingHeartbeat: a node that heartbeats again just as the
// sweeper expires it must end up in the views exactly as in the service:
// the service publishes its change notices in the order it changed the
// table.
func TestViewExpiryRacingHeartbeat(t *testing.T) {
	ns := bustest.MustServer(t)
	clk := newClock()
	svc := MustService(t, ns, Config{Now: clk.Now, SweepEvery: 50 * time.Microsecond})
	nc := bustest.MustConnect(t, ns)
	heartbeat(t, nc, full("n0", 3_600_000, 63, 1))
	v := MustView(t, ns, ViewConfig{ResyncEvery: time.Hour})
	// Wait for the first fetch (shard 63 is installed last) so that only
	// notices feed the view from here on.
	checkFor(t, wait, time.Millisecond, wantNodes("Nodes(63)", func() []string { return v.Nodes(63) }, "n0"))
	for i := range 300 {
		heartbeat(t, nc, full("n1", 1000, 1, 1))
		clk.Advance(4 * time.Second)             // n1 is now due to expire ...
		heartbeat(t, nc, full("n1", 1000, 1, 1)) // ... and heartbeats again
		checkFor(t, wait, time.Millisecond, func() error {
			if got, want := v.Nodes(1), svc.Nodes(1); !slices.Equal(got, want) {
				return fmt.Errorf("round %d: view.Nodes(1) = %v, service has %v", i, got, want)
			}
			return nil
		})
	}
}
