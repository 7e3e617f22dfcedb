package link

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/bus/bustest"
	"github.com/guildhall/guildhall/message"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// fakeHistory is the message history: what the test stored per channel.
type fakeHistory struct {
	mu   sync.Mutex
	msgs map[uint64][]message.Message
}

func (f *fakeHistory) add(ch, id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.msgs == nil {
		f.msgs = make(map[uint64][]message.Message)
	}
	f.msgs[ch] = append(f.msgs[ch], message.Message{ID: id, ChannelID: ch, ServerID: serverID, AuthorID: bobID, Content: "stored", Seq: id,
		CreatedAt: time.Date(2030, 1, 1, 0, 0, 0, int(id), time.UTC)})
}

func (f *fakeHistory) History(_ context.Context, _, ch uint64, q message.Query) ([]message.Message, error) {
	if ch >= 1000 {
		return nil, guildhall.E("fake.History", guildhall.NotFound, "no such channel")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []message.Message
	for _, m := range f.msgs[ch] {
		if m.ID > q.After && len(out) < q.Limit {
			out = append(out, m)
		}
	}
	slices.Reverse(out) // newest first, as the store does
	return out, nil
}

// peer is a second link node beside the harness's, on the same bus.
type peer struct {
	node *Node
	srv  *httptest.Server
	nc   *nats.Conn
}

func (h *harness) addNode(tb testing.TB, cfg Config) *peer {
	tb.Helper()
	p := &peer{nc: bustest.MustConnect(tb, h.ns)}
	var err error
	if p.node, err = Start(p.nc, fakeAuth{}, h.dir, fakeSender{}, nil, testConfig(cfg)); err != nil {
		tb.Fatal(err)
	}
	p.srv = httptest.NewServer(p.node.Handler())
	tb.Cleanup(p.srv.Close)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = p.node.Shutdown(ctx)
	})
	return p
}

func (p *peer) dial(tb testing.TB) *client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(p.srv.URL, "http"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	conn.SetReadLimit(1 << 20)
	tb.Cleanup(func() { conn.CloseNow() })
	return &client{tb: tb, conn: conn}
}

func (p *peer) deliver(tb testing.TB, nc *nats.Conn, events ...*pb.Event) {
	tb.Helper()
	if err := bus.Publish(nc, bus.LinkDeliver(p.node.ID()), &pb.Delivery{Events: events}); err != nil {
		tb.Fatal(err)
	}
}

// resumeWith sends a RESUME with positions and returns the replayed
// frames and the frame that ended it.
func (c *client) resumeWith(sessionID string, lastSeq uint64, positions map[uint64]uint64) ([]*pb.Frame, *pb.Frame) {
	c.tb.Helper()
	if f := c.read(); f.GetHello() == nil {
		c.tb.Fatalf("first frame %v, want hello", f)
	}
	r := &pb.Resume{Token: goodToken, SessionId: sessionID, LastSeq: lastSeq}
	for ch, id := range positions {
		r.Positions = append(r.Positions, &pb.ChannelPosition{ChannelId: ch, MessageId: id})
	}
	c.write(&pb.Frame{Body: &pb.Frame_Resume{Resume: r}})
	var replayed []*pb.Frame
	for {
		f := c.read()
		if f.GetResumed() != nil || f.GetInvalidSession() != nil {
			return replayed, f
		}
		replayed = append(replayed, f)
	}
}

// messageIDs lists the created message IDs (and checks the seqs follow
// from first).
func messageIDs(tb testing.TB, frames []*pb.Frame, first uint64) []uint64 {
	tb.Helper()
	var ids []uint64
	for i, f := range frames {
		if f.Seq != first+uint64(i) {
			tb.Fatalf("frame %d has seq %d, want %d (%v)", i, f.Seq, first+uint64(i), frames)
		}
		ids = append(ids, f.GetEvent().GetMessageCreate().GetId())
	}
	return ids
}

func waitDetached(tb testing.TB, n *Node, id string) {
	tb.Helper()
	checkFor(tb, wait, time.Millisecond, func() error {
		n.sessMu.Lock()
		defer n.sessMu.Unlock()
		if n.detached[id] == nil {
			return fmt.Errorf("session %s not detached", id)
		}
		return nil
	})
}

// waitDispatched waits until the connected session id on n has numbered
// dispatch seq.
func waitDispatched(tb testing.TB, n *Node, id string, seq uint64) {
	tb.Helper()
	checkFor(tb, wait, time.Millisecond, func() error {
		s := n.liveSession(id, aliceID)
		if s == nil {
			return fmt.Errorf("session %s not connected", id)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.seq < seq {
			return fmt.Errorf("session %s at seq %d, want %d", id, s.seq, seq)
		}
		return nil
	})
}

// TestResumeOnAnotherNode: a client that drops from node A resumes on B
// while A lives: A hands the session over with the dispatches it missed,
// B fills the gap (a message stored while the session moved) from history
// and delivers live from then on, under a new session ID; A forgets it.
func TestResumeOnAnotherNode(t *testing.T) {
	hist := &fakeHistory{}
	h := mustHarness(t, Config{History: hist, SmallServer: -1})
	b := h.addNode(t, Config{History: hist, SmallServer: -1})
	c := h.dial(t, false)
	ready := c.identify()
	c.mustSubscribe(1, 2)
	for id := uint64(1); id <= 3; id++ {
		hist.add(1, id)
	}
	h.deliver(t, messageEvent(1, 1, "a"), messageEvent(1, 2, "b"), messageEvent(1, 3, "c"))
	readEvents(t, c, 1, messageEvent(1, 1, "a"), messageEvent(1, 2, "b"), messageEvent(1, 3, "c"))
	c.conn.CloseNow()
	waitDetached(t, h.node, ready.SessionId)
	hist.add(1, 4)
	hist.add(2, 5)
	h.deliver(t, messageEvent(1, 4, "missed"), messageEvent(2, 5, "missed"))
	h.waitDetachedSeq(t, ready.SessionId, 5)
	hist.add(1, 6) // stored, but published while the session moved: only history has it

	again := b.dial(t)
	replayed, end := again.resumeWith(ready.SessionId, 2, nil)
	r := end.GetResumed()
	if r == nil || r.Replayed != 4 || !strings.HasPrefix(r.SessionId, b.node.ID()+".") {
		t.Fatalf("resume ended with %v", end)
	}
	if got, want := messageIDs(t, replayed, 3), []uint64{3, 4, 5, 6}; !slices.Equal(got, want) {
		t.Fatalf("replayed messages %v, want %v", got, want)
	}
	// Live on B now; a duplicate of what history gave is not sent twice.
	checkFor(t, wait, time.Millisecond, func() error {
		if got := h.svc.Nodes(1); !slices.Equal(got, []string{b.node.ID()}) {
			return fmt.Errorf("Nodes(1) = %v", got)
		}
		return nil
	})
	b.deliver(t, h.nc, messageEvent(1, 6, "dup"), messageEvent(1, 7, "live"))
	if f := again.read(); f.Seq != 7 || f.GetEvent().GetMessageCreate().GetId() != 7 {
		t.Fatalf("got %v, want message 7 as dispatch 7", f)
	}
	// A forgot it: resuming the old ID fails everywhere.
	h.node.sessMu.Lock()
	left := len(h.node.detached)
	h.node.sessMu.Unlock()
	if left != 0 {
		t.Fatalf("A still holds %d sessions", left)
	}
	third := h.dial(t, false)
	if _, end := third.resume(ready.SessionId, 7); end.GetInvalidSession() == nil {
		t.Fatalf("resuming the old ID: %v", end)
	}
	// And the new one resumes back on A.
	again.conn.CloseNow()
	waitDetached(t, b.node, r.SessionId)
	fourth := h.dial(t, false)
	if replayed, end := fourth.resume(r.SessionId, 7); end.GetResumed() == nil || len(replayed) != 0 {
		t.Fatalf("resuming back on A: %v %v", replayed, end)
	}
}

// TestResumeAfterNodeDeath: node A dies; B rebuilds the session from its
// checkpoint (in a real JetStream KV bucket) and history. With positions
// from the client the replay is exact; without, it repeats what came after
// the confirmed position (never skips).
func TestResumeAfterNodeDeath(t *testing.T) {
	for _, exact := range []bool{true, false} {
		t.Run(fmt.Sprintf("positions=%v", exact), func(t *testing.T) {
			hist := &fakeHistory{}
			h := mustHarness(t, Config{SmallServer: -1})
			store := h.mustSessions(t)
			cfg := Config{History: hist, Sessions: store, SmallServer: -1, CheckpointEvery: 10 * time.Millisecond}
			a := h.addNode(t, cfg)
			b := h.addNode(t, cfg)
			c := a.dial(t)
			ready := c.identify()
			c.mustSubscribe(1)
			for id := uint64(1); id <= 5; id++ {
				hist.add(1, id)
			}
			a.deliver(t, h.nc, messageEvent(1, 1, ""), messageEvent(1, 2, ""), messageEvent(1, 3, ""))
			readEvents(t, c, 1, messageEvent(1, 1, ""), messageEvent(1, 2, ""), messageEvent(1, 3, ""))
			c.write(&pb.Frame{Body: &pb.Frame_Heartbeat{Heartbeat: &pb.Heartbeat{LastSeq: 3}}})
			if f := c.read(); f.GetHeartbeatAck() == nil {
				t.Fatal(f)
			}
			a.deliver(t, h.nc, messageEvent(1, 4, ""), messageEvent(1, 5, ""))
			readEvents(t, c, 4, messageEvent(1, 4, ""), messageEvent(1, 5, ""))
			// The checkpoint has the confirmed position.
			checkFor(t, wait, time.Millisecond, func() error {
				data, err := store.Get(context.Background(), ready.SessionId)
				if err != nil {
					return err
				}
				var ho pb.SessionHandover
				if err := proto.Unmarshal(data, &ho); err != nil {
					return err
				}
				if ho.State.Seq != 3 || len(ho.State.Channels) != 1 || ho.State.Channels[0].PositionId != 3 {
					return fmt.Errorf("checkpoint %v", ho.State)
				}
				return nil
			})
			// A dies: its bus connection and the client's socket go.
			a.nc.Close()
			c.conn.CloseNow()
			hist.add(1, 6) // sent while nobody delivered

			again := b.dial(t)
			var pos map[uint64]uint64
			want := []uint64{4, 5, 6}
			if exact {
				pos, want = map[uint64]uint64{1: 5}, []uint64{6}
			}
			replayed, end := again.resumeWith(ready.SessionId, 5, pos)
			if end.GetResumed() == nil {
				t.Fatalf("resume ended with %v", end)
			}
			if got := messageIDs(t, replayed, 6); !slices.Equal(got, want) {
				t.Fatalf("replayed %v, want %v", got, want)
			}
			checkFor(t, wait, time.Millisecond, func() error {
				if got := h.svc.Nodes(1); !slices.Contains(got, b.node.ID()) {
					return fmt.Errorf("Nodes(1) = %v", got)
				}
				return nil
			})
			b.deliver(t, h.nc, messageEvent(1, 7, "live"))
			if f := again.read(); f.GetEvent().GetMessageCreate().GetId() != 7 || f.Seq != 6+uint64(len(want)) {
				t.Fatalf("got %v", f)
			}
			// A client behind the checkpoint cannot be served exactly.
			if _, end := b.dial(t).resumeWith(ready.SessionId, 2, nil); end.GetInvalidSession() == nil {
				t.Fatalf("resume from behind the checkpoint: %v", end)
			}
		})
	}
}

// TestResumeAfterShutdown: a node shutting down checkpoints its sessions
// with their unconfirmed dispatches, so the clients it sends away resume
// elsewhere exactly, without positions.
func TestResumeAfterShutdown(t *testing.T) {
	hist := &fakeHistory{}
	h := mustHarness(t, Config{SmallServer: -1})
	store := h.mustSessions(t)
	cfg := Config{History: hist, Sessions: store, SmallServer: -1, CheckpointEvery: time.Hour}
	a := h.addNode(t, cfg)
	b := h.addNode(t, cfg)
	c := a.dial(t)
	ready := c.identify()
	c.mustSubscribeAs(typMessages, 1)
	for id := uint64(1); id <= 3; id++ {
		hist.add(1, id)
	}
	a.deliver(t, h.nc, messageEvent(1, 1, ""), messageEvent(1, 2, ""), messageEvent(1, 3, ""))
	readEvents(t, c, 1, messageEvent(1, 1, ""))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.node.Shutdown(ctx) }()
	c.expectClose(CloseServiceRestart) // the reconnect frame and the rest on the way
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	again := b.dial(t)
	replayed, end := again.resumeWith(ready.SessionId, 1, nil)
	if end.GetResumed() == nil {
		t.Fatalf("resume ended with %v", end)
	}
	if got := messageIDs(t, replayed, 2); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("replayed %v, want [2 3]", got)
	}
}

// TestResumeElsewhereWhileConnected: a resume on B of a session whose
// connection to A still looks alive closes that connection (4011) and
// moves the session, its missed dispatches included.
func TestResumeElsewhereWhileConnected(t *testing.T) {
	h := mustHarness(t, Config{SmallServer: -1})
	b := h.addNode(t, Config{SmallServer: -1})
	c := h.dial(t, false)
	ready := c.identify()
	c.mustSubscribe(1)
	h.deliver(t, messageEvent(1, 1, ""), messageEvent(1, 2, ""))
	readEvents(t, c, 1, messageEvent(1, 1, ""))
	// The client has read 1; 2 is dispatched (numbered, kept for a
	// resume) on its way. Reading 1 does not mean the node has handled 2
	// yet: an event still in the bus handler when A hands the session over
	// reaches nobody there, and B (without History here) cannot fill it.
	waitDispatched(t, h.node, ready.SessionId, 2)
	again := b.dial(t)
	replayed, end := again.resumeWith(ready.SessionId, 1, nil)
	if end.GetResumed() == nil {
		t.Fatalf("resume ended with %v", end)
	}
	if got := messageIDs(t, replayed, 2); !slices.Equal(got, []uint64{2}) {
		t.Fatalf("replayed %v, want [2]", got)
	}
	c.expectClose(CloseSessionMoved)
}

// TestResumeElsewhereKeepsTypes: a session following a channel as
// UNREAD_COUNT moves with its type; the new node rebuilds the counter from
// the read states and sends it after resumed, and counts on from there.
func TestResumeElsewhereKeepsTypes(t *testing.T) {
	reads := newFakeReads()
	h := mustHarness(t, Config{SmallServer: -1, ReadStates: reads})
	b := h.addNode(t, Config{SmallServer: -1, ReadStates: reads})
	c := h.dial(t, false)
	ready := c.identify()
	c.mustSubscribeAs(typCount, 1)
	c.conn.CloseNow()
	waitDetached(t, h.node, ready.SessionId)
	reads.mu.Lock()
	reads.head[1] = 3 // three messages came while away
	reads.mu.Unlock()

	again := b.dial(t)
	if _, end := again.resumeWith(ready.SessionId, 0, nil); end.GetResumed() == nil {
		t.Fatalf("resume ended with %v", end)
	}
	f := again.read()
	if u := f.GetUnreadUpdate(); u == nil || u.ChannelId != 1 || u.UnreadCount != 3 {
		t.Fatalf("got %v, want the counter of channel 1 at 3", f)
	}
	checkFor(t, wait, time.Millisecond, func() error {
		if got := h.svc.Counts(1); got.UnreadCount != 1 || !slices.Equal(h.svc.Nodes(1), []string{b.node.ID()}) {
			return fmt.Errorf("Counts(1) = %+v on %v", got, h.svc.Nodes(1))
		}
		return nil
	})
	b.deliver(t, h.nc, bobSays(1, 4, nil))
	if u := again.read().GetUnreadUpdate(); u == nil || u.UnreadCount != 4 {
		t.Fatalf("got %v, want unread_count 4", u)
	}
}

// mustSessions is a session checkpoint store (KVSessions, in memory) on
// the harness's NATS, shared by the nodes a test adds.
func (h *harness) mustSessions(tb testing.TB) *KVSessions {
	tb.Helper()
	js, err := jetstream.New(h.nc)
	if err != nil {
		tb.Fatal(err)
	}
	store, err := NewKVSessions(context.Background(), js, KVSessionsConfig{Memory: true})
	if err != nil {
		tb.Fatal(err)
	}
	return store
}
