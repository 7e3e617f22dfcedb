package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/bus/bustest"
	"github.com/guildhall/guildhall/member"
	"github.com/guildhall/guildhall/message"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
	"github.com/guildhall/guildhall/subscribe"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const wait = 5 * time.Second

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

// Fakes of the consumer interfaces: the real member and message services
// are tested in their own packages.

const (
	goodToken = "token-alice"
	aliceID   = 1001
	serverID  = 77
)

type fakeAuth struct{}

func (fakeAuth) Authenticate(_ context.Context, token string) (member.User, error) {
	switch token {
	case goodToken:
	case "long-reason":
		return member.User{}, guildhall.E("fake.Authenticate", guildhall.Unauthenticated, "%s", strings.Repeat("token expired ", 20))
	default:
		return member.User{}, guildhall.E("fake.Authenticate", guildhall.Unauthenticated, "invalid token")
	}
	return member.User{ID: aliceID, Username: "alice"}, nil
}

// fakeDir lets alice read every channel below 1000 except those in deny.
type fakeDir struct {
	mu      sync.Mutex
	deny    map[uint64]bool
	version uint64           // the permission version CanView answers at
	members int              // MemberCount of every server; 0 means a big one
	extra   []member.Channel // channels besides 1 and 2
}

func (d *fakeDir) MemberCount(context.Context, uint64) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.members == 0 {
		return 1_000_000, nil
	}
	return d.members, nil
}

func (d *fakeDir) Servers(context.Context, member.User) ([]member.Server, error) {
	return []member.Server{{ID: serverID, Name: "guild", OwnerID: aliceID}}, nil
}

func (d *fakeDir) Channels(_ context.Context, _ member.User, srv uint64) ([]member.Channel, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if srv != serverID {
		return nil, guildhall.E("fake.Channels", guildhall.NotFound, "no such server")
	}
	all := append([]member.Channel{{ID: 1, ServerID: srv, Name: "general"}, {ID: 2, ServerID: srv, Name: "random", Position: 1}}, d.extra...)
	var out []member.Channel
	for _, c := range all {
		if !d.deny[c.ID] {
			out = append(out, c)
		}
	}
	return out, nil
}

func (d *fakeDir) CanView(_ context.Context, _ uint64, ch uint64) (uint64, uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ch >= 1000 || d.deny[ch] {
		return 0, 0, guildhall.E("fake.CanView", guildhall.NotFound, "no such channel")
	}
	return serverID, d.version, nil
}

type fakeSender struct{}

func (fakeSender) Send(_ context.Context, actor, ch uint64, content, nonce string) (message.Message, error) {
	if content == "" {
		return message.Message{}, guildhall.E("fake.Send", guildhall.Invalid, "empty message")
	}
	return message.Message{ID: 5000, ChannelID: ch, ServerID: serverID, AuthorID: actor, Content: content, Nonce: nonce, Seq: 1,
		CreatedAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}, nil
}

func (fakeSender) Typing(_ context.Context, actor, ch uint64) error {
	if ch >= 1000 {
		return guildhall.E("fake.Typing", guildhall.NotFound, "unknown channel")
	}
	return nil
}

var (
	_ Auth      = fakeAuth{}
	_ Directory = (*fakeDir)(nil)
	_ Sender    = fakeSender{}
)

// harness is a link node on a real embedded NATS server, with a real
// subscription service, served over a real httptest server.
type harness struct {
	ns   *server.Server
	nc   *nats.Conn // the test's own connection
	svc  *subscribe.Service
	node *Node
	srv  *httptest.Server
	dir  *fakeDir
}

// mustHarness starts everything; it all stops when the test ends.
func mustHarness(tb testing.TB, cfg Config) *harness {
	tb.Helper()
	h := &harness{ns: bustest.MustServer(tb), dir: &fakeDir{deny: map[uint64]bool{}}}
	h.nc = bustest.MustConnect(tb, h.ns)
	var err error
	if h.svc, err = subscribe.Start(bustest.MustConnect(tb, h.ns), nil, subscribe.Config{}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = h.svc.Shutdown(context.Background()) })
	h.startNode(tb, bustest.MustConnect(tb, h.ns), cfg)
	return h
}

func (h *harness) startNode(tb testing.TB, nc *nats.Conn, cfg Config) {
	tb.Helper()
	var err error
	if h.node, err = Start(nc, fakeAuth{}, h.dir, fakeSender{}, nil, testConfig(cfg)); err != nil {
		tb.Fatal(err)
	}
	h.srv = httptest.NewServer(h.node.Handler())
	tb.Cleanup(h.srv.Close)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := h.node.Shutdown(ctx); err != nil {
			tb.Errorf("node shutdown: %v", err)
		}
	})
}

// deliver publishes events to the node as the message service would.
func (h *harness) deliver(tb testing.TB, events ...*pb.Event) {
	tb.Helper()
	if err := bus.Publish(h.nc, bus.LinkDeliver(h.node.ID()), &pb.Delivery{Events: events}); err != nil {
		tb.Fatal(err)
	}
}

func messageEvent(ch, id uint64, content string) *pb.Event {
	return &pb.Event{ServerId: serverID, ChannelId: ch, Kind: &pb.Event_MessageCreate{MessageCreate: &pb.Message{
		Id: id, ChannelId: ch, ServerId: serverID, AuthorId: aliceID, Content: content, Seq: id,
		CreatedAt: timestamppb.New(time.Date(2030, 1, 1, 0, 0, 0, int(id), time.UTC)),
	}}}
}

// client is a gateway client.
type client struct {
	tb   testing.TB
	conn *websocket.Conn
	json bool
}

// dial connects a client; it is closed when the test ends.
func (h *harness) dial(tb testing.TB, json bool) *client {
	tb.Helper()
	url := "ws" + strings.TrimPrefix(h.srv.URL, "http")
	if json {
		url += "?encoding=json"
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	conn.SetReadLimit(1 << 20)
	tb.Cleanup(func() { conn.CloseNow() })
	return &client{tb: tb, conn: conn, json: json}
}

func (c *client) encode(f *pb.Frame) (websocket.MessageType, []byte) {
	c.tb.Helper()
	if c.json {
		b, err := protojson.Marshal(f)
		if err != nil {
			c.tb.Fatal(err)
		}
		return websocket.MessageText, b
	}
	b, err := proto.Marshal(f)
	if err != nil {
		c.tb.Fatal(err)
	}
	return websocket.MessageBinary, b
}

func (c *client) write(f *pb.Frame) {
	c.tb.Helper()
	typ, b := c.encode(f)
	c.writeRaw(typ, b)
}

func (c *client) writeRaw(typ websocket.MessageType, b []byte) {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.conn.Write(ctx, typ, b); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
}

// next reads one frame. A read that takes over 10s fails the test (the
// context closes the connection).
func (c *client) next() (*pb.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := c.conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	want := websocket.MessageBinary
	if c.json {
		want = websocket.MessageText
	}
	if typ != want {
		return nil, fmt.Errorf("got a %v message, want %v", typ, want)
	}
	var f pb.Frame
	if c.json {
		err = protojson.Unmarshal(b, &f)
	} else {
		err = proto.Unmarshal(b, &f)
	}
	if err != nil {
		return nil, fmt.Errorf("frame %q does not decode: %w", b, err)
	}
	return &f, nil
}

func (c *client) read() *pb.Frame {
	c.tb.Helper()
	f, err := c.next()
	if err != nil {
		c.tb.Fatalf("read: %v", err)
	}
	return f
}

// expectClose reads until the connection closes and checks its code.
// Frames read on the way are returned.
func (c *client) expectClose(code websocket.StatusCode) []*pb.Frame {
	c.tb.Helper()
	var frames []*pb.Frame
	for {
		f, err := c.next()
		if err == nil {
			frames = append(frames, f)
			continue
		}
		if got := websocket.CloseStatus(err); got != code {
			c.tb.Fatalf("connection ended with %v (code %v), want code %v", err, got, code)
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) && !utf8.ValidString(ce.Reason) {
			c.tb.Errorf("close reason %q is not UTF-8", ce.Reason)
		}
		return frames
	}
}

// identify sends IDENTIFY and returns READY (HELLO is read first).
func (c *client) identify() *pb.Ready {
	c.tb.Helper()
	if f := c.read(); f.GetHello() == nil {
		c.tb.Fatalf("first frame %v, want hello", f)
	}
	c.write(&pb.Frame{Body: &pb.Frame_Identify{Identify: &pb.Identify{Token: goodToken}}})
	f := c.read()
	if f.GetReady() == nil {
		c.tb.Fatalf("got %v, want ready", f)
	}
	return f.GetReady()
}

// request sends a frame with ref and returns the reply carrying that ref.
func (c *client) request(ref string, f *pb.Frame) *pb.Frame {
	c.tb.Helper()
	f.Ref = ref
	c.write(f)
	for {
		r := c.read()
		if r.Ref == ref {
			return r
		}
		if r.GetEvent() == nil {
			c.tb.Fatalf("waiting for the reply to %q: got %v", ref, r)
		}
	}
}

func (c *client) subscribe(ref string, chans ...uint64) *pb.Frame {
	c.tb.Helper()
	return c.request(ref, &pb.Frame{Body: &pb.Frame_Subscribe{Subscribe: &pb.Subscribe{ChannelIds: chans}}})
}

func (c *client) mustSubscribe(chans ...uint64) {
	c.tb.Helper()
	if r := c.subscribe("sub", chans...); r.GetOk() == nil {
		c.tb.Fatalf("subscribe %v: %v", chans, r)
	}
}

// heartbeats records the link heartbeats seen on the bus. Messages are
// queued by the connection's reader itself, so after a Flush of the
// publisher and of nc every heartbeat sent before is in the queue.
type heartbeats struct {
	tb  testing.TB
	nc  *nats.Conn
	ch  chan *nats.Msg
	mu  sync.Mutex
	all []*pb.LinkHeartbeat
}

func watchHeartbeats(tb testing.TB, nc *nats.Conn) *heartbeats {
	tb.Helper()
	hbs := &heartbeats{tb: tb, nc: nc, ch: make(chan *nats.Msg, 1<<16)}
	sub, err := nc.ChanSubscribe(bus.LinkHeartbeat, hbs.ch)
	if err != nil {
		tb.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = sub.Unsubscribe() })
	return hbs
}

func (h *heartbeats) drain() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		select {
		case m := <-h.ch:
			var hb pb.LinkHeartbeat
			if err := proto.Unmarshal(m.Data, &hb); err != nil {
				h.tb.Errorf("bad heartbeat: %v", err)
				continue
			}
			h.all = append(h.all, &hb)
		default:
			return
		}
	}
}

func (h *heartbeats) of(node string) []*pb.LinkHeartbeat {
	h.drain()
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*pb.LinkHeartbeat
	for _, hb := range h.all {
		if hb.NodeId == node {
			out = append(out, hb)
		}
	}
	return out
}

// lastCount is the last count of ch that node reported, and whether any
// heartbeat mentioned it (a snapshot without ch counts as 0).
func (h *heartbeats) lastCount(node string, ch uint64) (uint32, bool) {
	all := h.of(node)
	for i := len(all) - 1; i >= 0; i-- {
		for _, c := range all[i].Counts {
			if c.ChannelId == ch {
				return c.Messages, true
			}
		}
		if all[i].Full || all[i].Leaving {
			return 0, true
		}
	}
	return 0, false
}

// gate is a TCP proxy in front of a NATS server whose server → client
// direction can be held: a client behind it then receives nothing, as if
// it were stalled, until release.
type gate struct {
	ln     net.Listener
	server string

	mu    sync.Mutex
	cond  *sync.Cond
	held  bool
	done  bool
	conns []net.Conn
	wg    sync.WaitGroup
}

func mustGate(tb testing.TB, ns *server.Server) *gate {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	g := &gate{ln: ln, server: ns.Addr().String()}
	g.cond = sync.NewCond(&g.mu)
	g.wg.Go(g.accept)
	tb.Cleanup(func() {
		ln.Close()
		g.mu.Lock()
		g.done = true
		for _, c := range g.conns {
			c.Close()
		}
		g.cond.Broadcast()
		g.mu.Unlock()
		g.wg.Wait()
	})
	return g
}

// connect connects to the server through the gate.
func (g *gate) connect(tb testing.TB) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect("nats://"+g.ln.Addr().String(), nats.NoReconnect())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

func (g *gate) accept() {
	for {
		client, err := g.ln.Accept()
		if err != nil {
			return
		}
		srv, err := net.Dial("tcp", g.server)
		if err != nil {
			client.Close()
			continue
		}
		g.mu.Lock()
		if g.done {
			g.mu.Unlock()
			client.Close()
			srv.Close()
			return
		}
		g.conns = append(g.conns, client, srv)
		g.mu.Unlock()
		g.wg.Go(func() { _, _ = io.Copy(srv, client); srv.Close() })
		g.wg.Go(func() {
			defer client.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := srv.Read(buf)
				if err != nil {
					return
				}
				g.mu.Lock()
				for g.held && !g.done {
					g.cond.Wait()
				}
				g.mu.Unlock()
				if _, err := client.Write(buf[:n]); err != nil {
					return
				}
			}
		})
	}
}

func (g *gate) hold() {
	g.mu.Lock()
	g.held = true
	g.mu.Unlock()
}

func (g *gate) release() {
	g.mu.Lock()
	g.held = false
	g.cond.Broadcast()
	g.mu.Unlock()
}

// testConfig makes a channel's position at subscribe time 0: the tests'
// message IDs are small numbers, not snowflakes of now.
func testConfig(cfg Config) Config {
	if cfg.idAt == nil {
		cfg.idAt = func(time.Time) uint64 { return 0 }
	}
	return cfg
}
