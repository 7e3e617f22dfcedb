package link

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/member"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

const (
	bobID     = 2002
	aliceRole = 555
)

// fakeReads is a read-state service: positions by channel, channel heads
// set by the test, and the notifier called after each ack.
type fakeReads struct {
	mu       sync.Mutex
	read     map[uint64]uint64 // channel → last read seq
	head     map[uint64]uint64 // channel → last seq
	notifier *Notifier
	listed   [][]uint64
}

func newFakeReads() *fakeReads {
	return &fakeReads{read: map[uint64]uint64{}, head: map[uint64]uint64{}}
}

func (f *fakeReads) state(ch uint64) ReadState {
	rs := ReadState{ChannelID: ch, ServerID: serverID, LastReadID: f.read[ch], LastReadSeq: f.read[ch], LastSeq: f.head[ch]}
	if rs.LastSeq > rs.LastReadSeq {
		rs.Unread = rs.LastSeq - rs.LastReadSeq
	}
	return rs
}

func (f *fakeReads) Ack(ctx context.Context, user, ch, msg uint64) (ReadState, error) {
	if ch >= 1000 {
		return ReadState{}, guildhall.E("fake.Ack", guildhall.NotFound, "no such channel")
	}
	f.mu.Lock()
	f.read[ch] = max(f.read[ch], msg) // message IDs are seqs here
	f.head[ch] = max(f.head[ch], msg)
	rs := f.state(ch)
	n := f.notifier
	f.mu.Unlock()
	if n != nil {
		n.Acked(ctx, user, rs)
	}
	return rs, nil
}

func (f *fakeReads) List(_ context.Context, _ uint64, chans []uint64) ([]ReadState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listed = append(f.listed, chans)
	var out []ReadState
	for _, ch := range chans {
		out = append(out, f.state(ch))
	}
	return out, nil
}

type fakeRoles struct{}

func (fakeRoles) MemberRoles(_ context.Context, _, user uint64) ([]uint64, error) {
	if user == aliceID {
		return []uint64{aliceRole}, nil
	}
	return nil, nil
}

var (
	_ ReadStates  = (*fakeReads)(nil)
	_ MemberRoles = fakeRoles{}
)

// bobSays is a message by bob in ch with seq (and ID) seq.
func bobSays(ch, seq uint64, mention func(*pb.Message)) *pb.Event {
	m := &pb.Message{Id: seq, ChannelId: ch, ServerId: serverID, AuthorId: bobID, Content: "hi", Seq: seq,
		CreatedAt: timestamppb.New(time.Date(2030, 1, 1, 0, 0, 0, int(seq), time.UTC))}
	if mention != nil {
		mention(m)
	}
	return &pb.Event{ServerId: serverID, ChannelId: ch, Kind: &pb.Event_MessageCreate{MessageCreate: m}}
}

func (c *client) subscribeAs(typ pb.SubscriptionType, chans []uint64, servers []uint64) *pb.Frame {
	c.tb.Helper()
	return c.request("sub", &pb.Frame{Body: &pb.Frame_Subscribe{Subscribe: &pb.Subscribe{ChannelIds: chans, ServerIds: servers, Type: typ}}})
}

func (c *client) mustSubscribeAs(typ pb.SubscriptionType, chans ...uint64) {
	c.tb.Helper()
	if r := c.subscribeAs(typ, chans, nil); r.GetOk() == nil {
		c.tb.Fatalf("subscribe %v as %v: %v", chans, typ, r)
	}
}

// readUntilEvent reads frames up to the next dispatch and returns the
// unread updates and read-state updates read on the way, and the event.
func (c *client) readUntilEvent() (unread []*pb.UnreadUpdate, reads []*pb.ReadState, ev *pb.Event) {
	c.tb.Helper()
	for {
		f := c.read()
		switch {
		case f.GetUnreadUpdate() != nil:
			unread = append(unread, f.GetUnreadUpdate())
		case f.GetReadStateUpdate() != nil:
			reads = append(reads, f.GetReadStateUpdate().GetReadState())
		case f.GetEvent() != nil:
			return unread, reads, f.GetEvent()
		case f.GetBatch() != nil:
			c.tb.Fatalf("unexpected batch")
		default:
			c.tb.Fatalf("unexpected frame %v", f)
		}
	}
}

const (
	typMessages = pb.SubscriptionType_SUBSCRIPTION_TYPE_MESSAGES
	typCount    = pb.SubscriptionType_SUBSCRIPTION_TYPE_UNREAD_COUNT
	typStatus   = pb.SubscriptionType_SUBSCRIPTION_TYPE_UNREAD_STATUS
)

// TestUnreadCountUntilCap: an UNREAD_COUNT follower gets counter updates
// computed from the READY read state until the count passes the cap, then
// nothing but mentions, which always come in full.
func TestUnreadCountUntilCap(t *testing.T) {
	reads := newFakeReads()
	reads.read[1], reads.head[1] = 10, 12 // 2 unread before we start
	h := mustHarness(t, Config{ReadStates: reads, UnreadCap: 4, SmallServer: -1})
	c := h.dial(t, false)
	ready := c.identify()
	if len(ready.ReadStates) != 2 || ready.ReadStates[0].ChannelId != 1 || ready.ReadStates[0].UnreadCount != 2 {
		t.Fatalf("READY read states %v", ready.ReadStates)
	}
	c.mustSubscribeAs(typCount, 1)
	c.mustSubscribe(2) // the sentinel channel, as MESSAGES

	// One at a time, each update is seen before the next message.
	var last *pb.UnreadUpdate
	for seq := uint64(13); seq <= 15; seq++ {
		h.deliver(t, bobSays(1, seq, nil), messageEvent(2, seq, "sentinel"))
		unread, _, ev := c.readUntilEvent()
		if ev.ChannelId != 2 {
			t.Fatalf("event of channel %d, want the sentinel", ev.ChannelId)
		}
		if len(unread) != 1 {
			t.Fatalf("after seq %d: %d unread updates %v, want 1", seq, len(unread), unread)
		}
		last = unread[0]
		if want := seq - 10; last.UnreadCount != want || last.LastSeq != seq || !last.Unread || last.ChannelId != 1 || last.ServerId != serverID {
			t.Fatalf("after seq %d: %v, want unread_count %d", seq, last, want)
		}
		if last.Capped != (seq-10 > 4) {
			t.Fatalf("after seq %d: capped %v", seq, last.Capped)
		}
	}
	if !last.Capped { // 5 > 4
		t.Fatalf("last update %v is not capped", last)
	}
	h.deliver(t, bobSays(1, 16, nil), messageEvent(2, 16, "sentinel"))
	if unread, _, _ := c.readUntilEvent(); len(unread) != 0 {
		t.Fatalf("update %v past the cap", unread)
	}
	// Past the cap: nothing, except a mention in full (with a counter
	// update carrying the mention count).
	h.deliver(t, bobSays(1, 17, nil), bobSays(1, 18, func(m *pb.Message) { m.MentionUserIds = []uint64{aliceID} }), messageEvent(2, 17, "sentinel"))
	unread, _, ev := c.readUntilEvent()
	if ev.GetMessageCreate().GetId() != 18 {
		t.Fatalf("got event %v, want the mention 18 in full", ev)
	}
	for _, u := range unread {
		t.Errorf("update %v before the mention", u)
	}
	unread, _, ev = c.readUntilEvent()
	if ev.ChannelId != 2 {
		t.Fatalf("got %v, want the sentinel", ev)
	}
	if len(unread) != 1 || unread[0].MentionCount != 1 || unread[0].UnreadCount != 8 || !unread[0].Capped {
		t.Fatalf("updates %v, want one with mention_count 1, unread_count 8, capped", unread)
	}
	// Edits of an unread-type channel are not delivered.
	h.deliver(t, &pb.Event{ServerId: serverID, ChannelId: 1, Kind: &pb.Event_MessageUpdate{MessageUpdate: &pb.Message{Id: 17, ChannelId: 1, Seq: 17}}}, messageEvent(2, 18, "sentinel"))
	if unread, _, ev := c.readUntilEvent(); ev.ChannelId != 2 || len(unread) != 0 {
		t.Fatalf("got %v %v, want only the sentinel", unread, ev)
	}
}

// TestUnreadCoalescedPerFlush: updates that pile up before the writer runs
// go out as one, with the newest state.
func TestUnreadCoalescedPerFlush(t *testing.T) {
	n := benchNode()
	n.cfg.UnreadCap = 99
	n.cfg.QueueLen = 64
	s := &session{n: n, out: make(chan outFrame, 8), wake: make(chan struct{}, 1), subs: map[uint64]uint64{1: 0, 2: 0},
		types: map[uint64]pb.SubscriptionType{1: typCount, 2: typStatus}, user: member.User{ID: aliceID}}
	for seq := uint64(1); seq <= 5; seq++ {
		for _, ch := range []uint64{1, 2} {
			ev := bobSays(ch, seq, nil)
			enc, err := encodeEvent(ev)
			if err != nil {
				t.Fatal(err)
			}
			if !s.dispatchAt(ev, &enc, 0) {
				t.Fatal("dispatch refused")
			}
		}
	}
	if got := len(s.out); got != 1 {
		t.Fatalf("%d frames queued, want one marker", got)
	}
	frames := s.expandUnread([]outFrame{<-s.out})
	if len(frames) != 2 {
		t.Fatalf("%d frames, want 2 updates", len(frames))
	}
	var got []*pb.UnreadUpdate
	for _, f := range frames {
		var fr pb.Frame
		if err := s.codec.unmarshal(s.codec.messageType(), f.data, &fr); err != nil {
			t.Fatal(err)
		}
		got = append(got, fr.GetUnreadUpdate())
	}
	if got[0].ChannelId != 1 || got[0].UnreadCount != 5 || got[0].LastSeq != 5 {
		t.Errorf("count update %v, want unread_count 5", got[0])
	}
	if got[1].ChannelId != 2 || got[1].UnreadCount != 0 || !got[1].Unread {
		t.Errorf("status update %v, want unread with no count", got[1])
	}
	// The status was signalled: more messages send nothing.
	ev := bobSays(2, 6, nil)
	enc, _ := encodeEvent(ev)
	s.dispatchAt(ev, &enc, 0)
	if len(s.out) != 0 || len(s.dirty) != 0 {
		t.Errorf("status channel signalled twice")
	}
}

// TestUnreadStatusOnceThenAck: UNREAD_STATUS signals once; an ack (here,
// by another session of the same user) resets it and reaches the other
// session as a ReadStateUpdate, not the one that acked.
func TestUnreadStatusOnceThenAck(t *testing.T) {
	reads := newFakeReads()
	h := mustHarness(t, Config{ReadStates: reads, SmallServer: -1})
	reads.notifier = NewNotifier(h.nc, nil)
	a := h.dial(t, false)
	a.identify()
	a.mustSubscribeAs(typStatus, 1)
	a.mustSubscribe(2)
	b := h.dial(t, true) // alice's second session, JSON
	b.identify()
	b.mustSubscribe(2)

	h.deliver(t, bobSays(1, 1, nil), bobSays(1, 2, nil), messageEvent(2, 3, "sentinel"))
	unread, _, ev := a.readUntilEvent()
	if ev.ChannelId != 2 || len(unread) != 1 || !unread[0].Unread || unread[0].UnreadCount != 0 {
		t.Fatalf("got %v then %v, want one unread signal then the sentinel", unread, ev)
	}
	if _, _, ev := b.readUntilEvent(); ev.ChannelId != 2 {
		t.Fatalf("b got %v", ev)
	}
	// b reads channel 1 up to 2.
	r := b.request("ack", &pb.Frame{Body: &pb.Frame_Ack{Ack: &pb.Ack{ChannelId: 1, MessageId: 2}}})
	if rs := r.GetAcked().GetReadState(); rs == nil || rs.LastReadSeq != 2 || rs.UnreadCount != 0 {
		t.Fatalf("ack reply %v", r)
	}
	// The notice and the sentinel travel on different subjects: poll.
	var rsu []*pb.ReadState
	checkFor(t, wait, time.Millisecond, func() error {
		h.deliver(t, messageEvent(2, 4, "sentinel"))
		unread, got, _ := a.readUntilEvent()
		if len(unread) != 0 {
			t.Fatalf("a got unread updates %v", unread)
		}
		rsu = append(rsu, got...)
		if len(rsu) == 0 {
			return fmt.Errorf("no ReadStateUpdate yet")
		}
		return nil
	})
	if len(rsu) != 1 || rsu[0].ChannelId != 1 || rsu[0].LastReadSeq != 2 {
		t.Fatalf("a got %v, want one ReadStateUpdate of channel 1", rsu)
	}
	if _, rsu, _ := b.readUntilEvent(); len(rsu) != 0 {
		t.Fatalf("the acking session got its own ReadStateUpdate %v", rsu)
	}
	// Read: the next message signals again.
	h.deliver(t, bobSays(1, 3, nil), messageEvent(2, 5, "sentinel")) // consecutive seqs: nothing waits for a gap
	if unread, _, _ := a.readUntilEvent(); len(unread) != 1 || !unread[0].Unread || unread[0].LastSeq != 3 {
		t.Fatalf("after the read: %v, want one unread signal", unread)
	}
	// Ack errors: missing fields, a channel the user cannot see.
	if r := a.request("bad", &pb.Frame{Body: &pb.Frame_Ack{Ack: &pb.Ack{ChannelId: 1}}}); r.GetError().GetCode() != "invalid_argument" {
		t.Errorf("ack without message: %v", r)
	}
	if r := a.request("hidden", &pb.Frame{Body: &pb.Frame_Ack{Ack: &pb.Ack{ChannelId: 4000, MessageId: 1}}}); r.GetError().GetCode() != "not_found" {
		t.Errorf("ack of a hidden channel: %v", r)
	}
}

// TestAckThroughRESTReachesSessions: a Notifier call (what the REST ack
// does) reaches the user's sessions through NATS; nothing about a channel
// hidden from them.
func TestAckThroughRESTReachesSessions(t *testing.T) {
	reads := newFakeReads()
	h := mustHarness(t, Config{ReadStates: reads, SmallServer: -1})
	c := h.dial(t, false)
	c.identify()
	c.mustSubscribe(2)
	h.dir.mu.Lock()
	h.dir.deny[3] = true
	h.dir.mu.Unlock()
	n := NewNotifier(h.nc, nil)
	n.Acked(context.Background(), aliceID, ReadState{ChannelID: 3, ServerID: serverID, LastReadSeq: 9}) // hidden
	n.Acked(context.Background(), bobID, ReadState{ChannelID: 1, ServerID: serverID, LastReadSeq: 9})   // someone else
	n.Acked(context.Background(), aliceID, ReadState{ChannelID: 1, ServerID: serverID, LastReadSeq: 7, LastSeq: 9, Unread: 2})
	if err := h.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var rsu []*pb.ReadState
	checkFor(t, wait, time.Millisecond, func() error {
		h.deliver(t, messageEvent(2, 1, "sentinel"))
		_, got, _ := c.readUntilEvent()
		rsu = append(rsu, got...)
		if len(rsu) == 0 {
			return fmt.Errorf("no read-state update yet")
		}
		return nil
	})
	if len(rsu) != 1 || rsu[0].ChannelId != 1 || rsu[0].LastReadSeq != 7 || rsu[0].UnreadCount != 2 {
		t.Fatalf("updates %v, want only channel 1's", rsu)
	}
}

// TestServerSubscription follows every visible channel of a server as one
// type, channels created later included; the counts by type reach the
// subscription service; a role mention comes in full.
func TestServerSubscription(t *testing.T) {
	reads := newFakeReads()
	h := mustHarness(t, Config{ReadStates: reads, Roles: fakeRoles{}, SmallServer: -1, SnapshotEvery: 50 * time.Millisecond})
	h.dir.mu.Lock()
	h.dir.deny[2] = true
	h.dir.mu.Unlock()
	c := h.dial(t, false)
	c.identify()
	if r := c.subscribeAs(typCount, nil, []uint64{serverID + 1}); r.GetError().GetCode() != "not_found" {
		t.Fatalf("subscribing a server the user is not in: %v", r)
	}
	if r := c.subscribeAs(pb.SubscriptionType(7), []uint64{1}, nil); r.GetError().GetCode() != "invalid_argument" {
		t.Fatalf("unknown type: %v", r)
	}
	if r := c.subscribeAs(typCount, nil, []uint64{serverID}); r.GetOk() == nil {
		t.Fatal(r)
	}
	checkFor(t, wait, time.Millisecond, func() error {
		if got := h.svc.Counts(1); got.UnreadCount != 1 || got.Messages != 0 {
			return fmt.Errorf("Counts(1) = %+v", got)
		}
		if got := h.svc.Counts(2); got.Total() != 0 {
			return fmt.Errorf("the hidden channel is counted: %+v", got)
		}
		return nil
	})
	// A channel created later is followed within a snapshot period.
	h.dir.mu.Lock()
	h.dir.extra = []member.Channel{{ID: 3, ServerID: serverID, Name: "new"}}
	h.dir.mu.Unlock()
	checkFor(t, wait, time.Millisecond, func() error {
		if got := h.svc.Counts(3); got.UnreadCount != 1 {
			return fmt.Errorf("Counts(3) = %+v", got)
		}
		return nil
	})
	// Re-subscribing a channel with another type changes its type.
	c.mustSubscribeAs(typMessages, 3)
	checkFor(t, wait, time.Millisecond, func() error {
		if got := h.svc.Counts(3); got.UnreadCount != 0 || got.Messages != 1 {
			return fmt.Errorf("Counts(3) = %+v", got)
		}
		return nil
	})
	// The hidden channel's events never reach the session.
	h.deliver(t, bobSays(2, 1, func(m *pb.Message) { m.MentionEveryone = true }), bobSays(1, 1, func(m *pb.Message) { m.MentionRoleIds = []uint64{aliceRole} }))
	unread, _, ev := c.readUntilEvent()
	if ev.ChannelId != 1 || ev.GetMessageCreate().GetId() != 1 || len(unread) != 0 {
		t.Fatalf("got %v %v, want the role mention in channel 1", unread, ev)
	}
	h.deliver(t, messageEvent(3, 2, "in full"))
	unread, _, ev = c.readUntilEvent()
	if ev.ChannelId != 3 || len(unread) != 1 || unread[0].ChannelId != 1 || unread[0].MentionCount != 1 {
		t.Fatalf("got %v %v", unread, ev)
	}
	// Unsubscribing the server drops what it brought, not channel 3 which
	// was named since.
	if r := c.request("unsub", &pb.Frame{Body: &pb.Frame_Unsubscribe{Unsubscribe: &pb.Unsubscribe{ServerIds: []uint64{serverID}}}}); r.GetOk() == nil {
		t.Fatal(r)
	}
	checkFor(t, wait, time.Millisecond, func() error {
		if got := h.svc.Counts(1); got.Total() != 0 {
			return fmt.Errorf("Counts(1) = %+v", got)
		}
		if got := h.svc.Counts(3); got.Messages != 1 {
			return fmt.Errorf("Counts(3) = %+v", got)
		}
		return nil
	})
}

// TestSmallServerChannelAsUnread: an implicitly followed channel gets full
// messages until the client subscribes it with another type.
func TestSmallServerChannelAsUnread(t *testing.T) {
	h := mustHarness(t, Config{ReadStates: newFakeReads()})
	h.dir.members = 10
	c := h.dial(t, false)
	c.identify()
	h.deliver(t, bobSays(1, 1, nil))
	if _, _, ev := c.readUntilEvent(); ev.ChannelId != 1 {
		t.Fatalf("got %v", ev)
	}
	if r := c.request("ack", &pb.Frame{Body: &pb.Frame_Ack{Ack: &pb.Ack{ChannelId: 1, MessageId: 1}}}); r.GetAcked() == nil {
		t.Fatal(r)
	}
	c.mustSubscribeAs(typStatus, 1)
	h.deliver(t, bobSays(1, 2, nil), bobSays(2, 3, nil))
	unread, _, ev := c.readUntilEvent()
	if ev.ChannelId != 2 || len(unread) != 1 || unread[0].ChannelId != 1 || !unread[0].Unread {
		t.Fatalf("got %v %v", unread, ev)
	}
	checkFor(t, wait, time.Millisecond, func() error {
		if got := h.svc.Counts(1); got.UnreadStatus != 1 || got.Messages != 0 {
			return fmt.Errorf("Counts(1) = %+v", got)
		}
		return nil
	})
}

// TestAckWithoutReadStates: a node without a read-state service refuses
// acks clearly.
func TestAckWithoutReadStates(t *testing.T) {
	h := mustHarness(t, Config{SmallServer: -1})
	c := h.dial(t, false)
	c.identify()
	if r := c.request("ack", &pb.Frame{Body: &pb.Frame_Ack{Ack: &pb.Ack{ChannelId: 1, MessageId: 1}}}); r.GetError().GetCode() != "unavailable" {
		t.Fatalf("got %v", r)
	}
}
