package cluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/guildhall/guildhall/link"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
	"github.com/guildhall/guildhall/subscribe"
)

// mustSessions opens the session bucket (3 replicas) through nc, retrying
// while the JetStream cluster elects its leaders.
func mustSessions(tb testing.TB, nc *nats.Conn) *link.KVSessions {
	tb.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	var kv *link.KVSessions
	checkFor(tb, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		kv, err = link.NewKVSessions(ctx, js, link.KVSessionsConfig{Replicas: 3})
		return err
	})
	return kv
}

// resume sends RESUME on a fresh connection to l and returns the messages
// replayed and the Resumed frame (failing on InvalidSession).
func (l *linkNode) resume(tb testing.TB, c *gwClient, token string, positions []*pb.ChannelPosition) (*gwClient, []*pb.Message, *pb.Resumed) {
	tb.Helper()
	n := l.open(tb, strings.Split(c.name, "@")[0])
	n.write(&pb.Frame{Body: &pb.Frame_Resume{Resume: &pb.Resume{Token: token, SessionId: c.session, LastSeq: c.seq, Positions: positions}}})
	n.seq = c.seq
	var got []*pb.Message
	for {
		f := n.read()
		if r := f.GetResumed(); r != nil {
			n.session = r.SessionId
			return n, got, r
		}
		if f.GetInvalidSession() != nil {
			tb.Fatalf("%s: resume of %s on %s: invalid_session", n.name, c.session, l.id)
		}
		m := f.GetEvent().GetMessageCreate()
		if m == nil {
			tb.Fatalf("%s: got %v during the replay", n.name, f)
		}
		if f.Seq != n.seq+1 {
			tb.Errorf("%s: replayed dispatch seq %d after %d", n.name, f.Seq, n.seq)
		}
		n.seq = f.Seq
		got = append(got, m)
	}
}

// TestLinkNodeDiesClientsResume: link node A is killed abruptly; its
// clients RESUME on B and C and lose nothing. A client that sends its
// positions gets exactly what it missed; one that does not gets, besides,
// what came after its last confirmed position (at-least-once, documented).
// Then everyone is live on the surviving nodes.
func TestLinkNodeDiesClientsResume(t *testing.T) {
	d := deploy(t, setup{
		users:     2,
		link:      link.Config{SnapshotEvery: 200 * time.Millisecond, CheckpointEvery: 20 * time.Millisecond},
		subscribe: subscribe.Config{MissedHeartbeats: 4, SweepEvery: 20 * time.Millisecond},
		sessions:  true,
	})
	clients := []*gwClient{d.a.dial(t, "u0", d.tokens[0]), d.a.dial(t, "u1", d.tokens[1])}
	for _, c := range clients {
		c.subscribe(d.x)
	}
	d.waitRoutes(t, d.x, d.a.id)
	sent := d.sendAlternating(t, d.x, 1, 3, "confirmed")
	for _, c := range clients {
		wantArrived(t, c.name, c.messages(3), seqRange(1, 3))
		c.write(&pb.Frame{Body: &pb.Frame_Heartbeat{Heartbeat: &pb.Heartbeat{LastSeq: c.seq}}})
		if f := c.read(); f.GetHeartbeatAck() == nil {
			t.Fatalf("%s: got %v, want heartbeat_ack", c.name, f)
		}
	}
	// Wait until A's checkpoints hold the confirmed position.
	probe := mustSessions(t, d.connect(t, onC, "probe"))
	for _, c := range clients {
		checkFor(t, func() error {
			data, err := probe.Get(context.Background(), c.session)
			if err != nil {
				return err
			}
			var ho pb.SessionHandover
			if err := proto.Unmarshal(data, &ho); err != nil {
				return err
			}
			if ho.State.GetSeq() != 3 {
				return fmt.Errorf("%s: checkpoint at seq %d", c.name, ho.State.GetSeq())
			}
			return nil
		})
	}
	sent = append(sent, d.sendAlternating(t, d.x, 4, 2, "unconfirmed")...)
	for _, c := range clients {
		wantArrived(t, c.name, c.messages(2), seqRange(4, 5))
	}

	d.a.crash()
	for _, c := range clients {
		if f, err := c.next(); err == nil {
			t.Fatalf("%s: got %v after the crash", c.name, f)
		}
	}
	// Sent while the clients are away (to the dead node, then to nobody).
	sent = append(sent, d.sendAlternating(t, d.x, 6, 2, "away")...)
	d.waitRoutes(t, d.x)

	// u0 resumes on B with its positions: exactly 6 and 7.
	u0, got0, r0 := d.b.resume(t, clients[0], d.tokens[0], []*pb.ChannelPosition{{ChannelId: d.x, MessageId: sent[4].ID}})
	wantSeqs(t, u0.name, got0, seqRange(6, 7))
	if r0.Replayed != 2 || !strings.HasPrefix(r0.SessionId, d.b.id+".") {
		t.Errorf("u0: resumed %v", r0)
	}
	// u1 resumes on C without: from its confirmed position, 4 to 7.
	u1, got1, _ := d.c.resume(t, clients[1], d.tokens[1], nil)
	wantSeqs(t, u1.name, got1, seqRange(4, 7))

	// Live on B and C, no gap, no duplicate.
	d.waitRoutes(t, d.x, d.b.id, d.c.id)
	d.sendAlternating(t, d.x, 8, 3, "after")
	for _, c := range []*gwClient{u0, u1} {
		wantArrived(t, c.name, c.messages(3), seqRange(8, 10))
	}
}

// TestResumeAcrossLiveNodes: a client whose connection to A drops resumes
// on C while A lives: A hands the session over; messages sent meanwhile
// arrive exactly once, in order.
func TestResumeAcrossLiveNodes(t *testing.T) {
	d := deploy(t, setup{
		users: 1,
		link:  link.Config{SnapshotEvery: 200 * time.Millisecond},
	})
	c := d.a.dial(t, "u0", d.tokens[0])
	c.subscribe(d.x)
	d.waitRoutes(t, d.x, d.a.id)
	d.sendAlternating(t, d.x, 1, 2, "before")
	wantArrived(t, c.name, c.messages(2), seqRange(1, 2))
	c.conn.CloseNow()
	d.sendAlternating(t, d.x, 3, 2, "away")
	n, got, r := d.c.resume(t, c, d.tokens[0], nil)
	wantSeqs(t, n.name, got, seqRange(3, 4))
	if !strings.HasPrefix(r.SessionId, d.c.id+".") {
		t.Errorf("resumed %v", r)
	}
	d.waitRoutes(t, d.x, d.c.id)
	d.sendAlternating(t, d.x, 5, 3, "after")
	wantArrived(t, n.name, n.messages(3), seqRange(5, 7))
}

// TestReadStatesAcrossNodes: one user has a session on A following x as
// UNREAD_COUNT and one on B following it in full. A's counter counts the
// messages; an ack through the read-state service (what REST does, here
// on another server of the cluster) reaches both sessions as a
// ReadStateUpdate; A counts again from the new position.
func TestReadStatesAcrossNodes(t *testing.T) {
	d := deploy(t, setup{users: 1, link: link.Config{SnapshotEvery: 200 * time.Millisecond}})
	a := d.a.dial(t, "u0", d.tokens[0])
	b := d.b.dial(t, "u0", d.tokens[0])
	a.refs++
	a.write(&pb.Frame{Ref: "sa", Body: &pb.Frame_Subscribe{Subscribe: &pb.Subscribe{ChannelIds: []uint64{d.x}, Type: pb.SubscriptionType_SUBSCRIPTION_TYPE_UNREAD_COUNT}}})
	if f := a.read(); f.GetOk() == nil {
		t.Fatalf("subscribe as unread count: %v", f)
	}
	b.subscribe(d.x)
	d.waitRoutes(t, d.x, d.a.id, d.b.id)

	sent := d.sendAlternating(t, d.x, 1, 3, "count")
	b.messages(3)
	// A gets counter updates (coalesced: at most one per write) up to 3.
	var last *pb.UnreadUpdate
	for last == nil || last.UnreadCount < 3 {
		f := a.read()
		if f.GetUnreadUpdate() == nil {
			t.Fatalf("A got %v, want unread updates", f)
		}
		last = f.GetUnreadUpdate()
	}
	if last.ChannelId != d.x || last.UnreadCount != 3 || last.LastSeq != sent[2].Seq || !last.Unread {
		t.Fatalf("A's counter %v", last)
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	rs, err := d.reads.Ack(ctx, d.users[0].ID, d.x, sent[2].ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*gwClient{a, b} {
		f := c.read()
		got := f.GetReadStateUpdate().GetReadState()
		if got == nil || got.ChannelId != d.x || got.LastReadSeq != rs.LastReadSeq || got.UnreadCount != 0 {
			t.Fatalf("%s: got %v, want the read state at seq %d", c.name, f, rs.LastReadSeq)
		}
	}
	d.sendAlternating(t, d.x, 4, 1, "after")
	if u := a.read().GetUnreadUpdate(); u == nil || u.UnreadCount != 1 {
		t.Fatalf("A after the read: %v, want unread_count 1", u)
	}
}

// TestLinkNodeDiesEditsReplayed: an edit and a deletion of messages the
// client had, made while its link node was dead, reach it when it resumes
// on another node (from the message log), after which live events flow.
func TestLinkNodeDiesEditsReplayed(t *testing.T) {
	d := deploy(t, setup{
		users:     1,
		link:      link.Config{SnapshotEvery: 200 * time.Millisecond, CheckpointEvery: 20 * time.Millisecond},
		subscribe: subscribe.Config{MissedHeartbeats: 4, SweepEvery: 20 * time.Millisecond},
		sessions:  true,
	})
	c := d.a.dial(t, "u0", d.tokens[0])
	c.subscribe(d.x)
	d.waitRoutes(t, d.x, d.a.id)
	sent := d.sendAlternating(t, d.x, 1, 3, "before")
	wantArrived(t, c.name, c.messages(3), seqRange(1, 3))
	c.write(&pb.Frame{Body: &pb.Frame_Heartbeat{Heartbeat: &pb.Heartbeat{LastSeq: c.seq}}})
	if f := c.read(); f.GetHeartbeatAck() == nil {
		t.Fatalf("got %v, want heartbeat_ack", f)
	}
	probe := mustSessions(t, d.connect(t, onC, "probe"))
	checkFor(t, func() error {
		data, err := probe.Get(context.Background(), c.session)
		if err != nil {
			return err
		}
		var ho pb.SessionHandover
		if err := proto.Unmarshal(data, &ho); err != nil {
			return err
		}
		if ho.State.GetSeq() != 3 {
			return fmt.Errorf("checkpoint at seq %d", ho.State.GetSeq())
		}
		return nil
	})

	d.a.crash()
	if f, err := c.next(); err == nil {
		t.Fatalf("got %v after the crash", f)
	}
	ctx := context.Background()
	if _, err := d.m1.svc.Edit(ctx, sent[0].AuthorID, d.x, sent[0].ID, "edited while away"); err != nil {
		t.Fatal(err)
	}
	if err := d.m2.svc.Delete(ctx, sent[1].AuthorID, d.x, sent[1].ID); err != nil {
		t.Fatal(err)
	}
	d.waitRoutes(t, d.x)

	n := d.b.open(t, "u0")
	n.write(&pb.Frame{Body: &pb.Frame_Resume{Resume: &pb.Resume{Token: d.tokens[0], SessionId: c.session, LastSeq: c.seq}}})
	var got []*pb.Frame
	for {
		f := n.read()
		if r := f.GetResumed(); r != nil {
			if r.Replayed != 2 {
				t.Errorf("resumed %v", r)
			}
			n.session, n.seq = r.SessionId, c.seq+uint64(r.Replayed)
			break
		}
		if f.GetInvalidSession() != nil {
			t.Fatal("invalid_session")
		}
		got = append(got, f)
	}
	if len(got) != 2 {
		t.Fatalf("replayed %v, want an update and a delete", got)
	}
	if m := got[0].GetEvent().GetMessageUpdate(); m.GetId() != sent[0].ID || m.GetContent() != "edited while away" || got[0].Seq != 4 {
		t.Errorf("first replayed %v, want the update of %d at seq 4", got[0], sent[0].ID)
	}
	if m := got[1].GetEvent().GetMessageDelete(); m.GetId() != sent[1].ID || got[1].Seq != 5 {
		t.Errorf("second replayed %v, want the delete of %d at seq 5", got[1], sent[1].ID)
	}
	d.waitRoutes(t, d.x, d.b.id)
	d.sendAlternating(t, d.x, 4, 1, "after")
	wantArrived(t, n.name, n.messages(1), seqRange(4, 4))
}
