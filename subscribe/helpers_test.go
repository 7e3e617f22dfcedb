package subscribe

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/bus/bustest"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// checkFor calls f until it returns nil or timeout passes, then fails the
// test with f's last error.
func checkFor(tb testing.TB, timeout, every time.Duration, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(every)
	}
}

// wantNodes is a checkFor condition: got() must equal want.
func wantNodes(what string, got func() []string, want ...string) func() error {
	return func() error {
		if g := got(); !slices.Equal(g, want) {
			return fmt.Errorf("%s = %v, want %v", what, g, want)
		}
		return nil
	}
}

// clock is an injectable clock that also counts how often it is read.
type clock struct {
	mu    sync.Mutex
	now   time.Time
	reads int
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *clock) Reads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// MustService starts a Service on its own connection to ns and shuts it down
// when the test ends.
func MustService(tb testing.TB, ns *server.Server, cfg Config) *Service {
	tb.Helper()
	s, err := Start(bustest.MustConnect(tb, ns), nil, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { shutdown(tb, s.Shutdown) })
	return s
}

// MustView starts a View on its own connection to ns.
func MustView(tb testing.TB, ns *server.Server, cfg ViewConfig) *View {
	tb.Helper()
	v, err := StartView(bustest.MustConnect(tb, ns), nil, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { shutdown(tb, v.Shutdown) })
	return v
}

func shutdown(tb testing.TB, f func(context.Context) error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f(ctx); err != nil {
		tb.Errorf("shutdown: %v", err)
	}
}

// heartbeat sends hb as a request and waits for the service's reply: once
// it returns, every service instance that answered has applied hb.
func heartbeat(tb testing.TB, nc *nats.Conn, hb *pb.LinkHeartbeat) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := nc.RequestWithContext(ctx, bus.LinkHeartbeat, mustMarshal(tb, hb)); err != nil {
		tb.Fatalf("heartbeat %v: %v", hb, err)
	}
}

func mustMarshal(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func full(node string, intervalMs uint32, counts ...uint64) *pb.LinkHeartbeat {
	return &pb.LinkHeartbeat{NodeId: node, Full: true, IntervalMs: intervalMs, Counts: testCounts(counts...)}
}

func delta(node string, counts ...uint64) *pb.LinkHeartbeat {
	return &pb.LinkHeartbeat{NodeId: node, IntervalMs: 5000, Counts: testCounts(counts...)}
}

// countsOf turns channel, messages, channel, messages, ... into counts.
func testCounts(kv ...uint64) []*pb.ChannelCount {
	var out []*pb.ChannelCount
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, &pb.ChannelCount{ChannelId: kv[i], Messages: uint32(kv[i+1])})
	}
	return out
}

// changes subscribes to route changes on nc; read them with nextChange.
func changes(tb testing.TB, nc *nats.Conn) <-chan *nats.Msg {
	tb.Helper()
	ch := make(chan *nats.Msg, 1024)
	sub, err := nc.ChanSubscribe(bus.RouteChanges, ch)
	if err != nil {
		tb.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

// nextChange returns the next route change, failing after 5s.
func nextChange(tb testing.TB, ch <-chan *nats.Msg) *pb.RouteTable {
	tb.Helper()
	select {
	case m := <-ch:
		var t pb.RouteTable
		if err := proto.Unmarshal(m.Data, &t); err != nil {
			tb.Fatalf("bad route change: %v", err)
		}
		return &t
	case <-time.After(5 * time.Second):
		tb.Fatal("no route change within 5s")
		return nil
	}
}
