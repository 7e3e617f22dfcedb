package link

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/member"
	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/natsrpc"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// Cross-node resume (docs/gateway.md "Resuming on another node").
//
// A session ID starts with the ID of the node that holds it. A RESUME on
// another node asks that node for the session (bus.LinkSession): it hands
// over the session's state and its dispatches after the confirmed
// position, and forgets it. If the node does not answer (it died), the new
// node reads the session's last checkpoint from the SessionStore. Either
// way the new node follows the session's channels, holds live dispatches,
// replays the handed-over ones after the client's last_seq, fills the gap
// from each MESSAGES channel's history after the session's position in it,
// then releases what it held (without what history already gave), and
// gives the session a new ID of its own (in Resumed).

// SessionStore keeps session checkpoints where every link node can read
// them (KVSessions). Get fails with guildhall.NotFound for an unknown ID.
type SessionStore interface {
	Put(ctx context.Context, id string, state []byte) error
	Get(ctx context.Context, id string) ([]byte, error)
	Delete(ctx context.Context, id string) error
}

// History reads a channel's messages as a user may (message.Reader).
type History interface {
	History(ctx context.Context, actorID, channelID uint64, q message.Query) ([]message.Message, error)
}

// Changes reads, on a resume after the node that held a session died,
// the edits and deletions made since its checkpoint (the message log).
type Changes interface {
	// ChangesSince returns the edits and deletions (never creates) made
	// in the channels at or after since, in the order they were made, at
	// most max of them.
	ChangesSince(ctx context.Context, channelIDs []uint64, since time.Time, max int) ([]message.Change, error)
}

// changesMargin: changes are read from this long before a checkpoint was
// written, for clocks that disagree; one read twice is harmless.
const changesMargin = 5 * time.Second

// CloseSessionMoved closes a connection whose session was resumed on
// another connection (another node) while this one still looked alive.
const CloseSessionMoved = 4011

// takeoverTimeout bounds the wait for the node that held a session.
const takeoverTimeout = 2 * time.Second

// maxHandovers bounds the takeovers a node serves at once.
const maxHandovers = 64

func (n *Node) startTakeover() (*nats.Subscription, error) {
	return n.nc.Subscribe(bus.LinkSession(n.cfg.NodeID), n.onTakeover)
}

// ownerOf is the node that created session id.
func ownerOf(id string) string {
	i := strings.LastIndexByte(id, '.')
	if i <= 0 {
		return ""
	}
	return id[:i]
}

// onTakeover serves another node's request for a session held here.
func (n *Node) onTakeover(msg *nats.Msg) {
	var req pb.SessionTakeover
	if err := proto.Unmarshal(msg.Data, &req); err != nil || msg.Reply == "" {
		return
	}
	select {
	case n.handovers <- struct{}{}:
	default:
		return // too busy: the asking node reads the checkpoint instead
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer func() { <-n.handovers }()
		ho := n.handover(&req)
		data, err := proto.Marshal(ho)
		if err == nil {
			_ = msg.Respond(data)
		}
	}()
}

// handover gives up a session to another node: its state, and its
// dispatches after the confirmed position.
func (n *Node) handover(req *pb.SessionTakeover) *pb.SessionHandover {
	s := n.takeDetached(req.SessionId, req.UserId)
	stolen := false
	if s == nil {
		// The client may have reached the other node before this one saw
		// its connection drop: take the session from that connection,
		// which is closed with 4011 (without waiting for the handshake).
		s, stolen = n.liveSession(req.SessionId, req.UserId), true
	}
	if s == nil {
		return &pb.SessionHandover{}
	}
	s.mu.Lock()
	ho := &pb.SessionHandover{Found: true, Complete: req.LastSeq >= s.confirmedSeq && req.LastSeq <= s.seq, State: s.stateLocked(false)}
	ho.Events = s.eventsAfterLocked(s.confirmedSeq)
	s.handedOver = true
	if stolen {
		s.closeLocked(CloseSessionMoved, "session resumed elsewhere")
	}
	s.closed = true
	s.mu.Unlock()
	n.unsubscribeAll(s)
	return ho
}

// eventsAfterLocked decodes the replay buffer's dispatches after seq.
func (s *session) eventsAfterLocked(seq uint64) []*pb.SeqEvent {
	var out []*pb.SeqEvent
	n := len(s.replay.entries)
	for i := range n {
		e := s.replay.entries[(s.replay.start+i)%n]
		if e.seq <= seq || e.ev == nil {
			continue
		}
		var ev pb.Event
		if err := proto.Unmarshal(e.ev.proto, &ev); err != nil {
			continue
		}
		out = append(out, &pb.SeqEvent{Seq: e.seq, Event: &ev})
	}
	return out
}

// liveSession finds a connected session by ID (a scan: only for the rare
// takeover that races the old connection's end).
func (n *Node) liveSession(id string, userID uint64) *session {
	n.sessMu.Lock()
	defer n.sessMu.Unlock()
	for s := range n.sessions {
		s.mu.Lock()
		match := s.id == id && s.user.ID == userID && !s.detached
		s.mu.Unlock()
		if match {
			return s
		}
	}
	return nil
}

// fetchSession gets a session held by another node: from that node if it
// answers, else from the last checkpoint. nil means it cannot be resumed.
// fromNode tells which.
func (n *Node) fetchSession(ctx context.Context, r *pb.Resume, userID uint64) (ho *pb.SessionHandover, fromNode bool) {
	owner := ownerOf(r.SessionId)
	if owner == "" || owner == n.cfg.NodeID {
		return nil, false
	}
	rctx, cancel := context.WithTimeout(ctx, takeoverTimeout)
	defer cancel()
	var reply pb.SessionHandover
	err := bus.Request(rctx, n.nc, bus.LinkSession(owner), &pb.SessionTakeover{SessionId: r.SessionId, UserId: userID, LastSeq: r.LastSeq}, &reply)
	if err == nil {
		if !reply.Found || !reply.Complete {
			return nil, true
		}
		return &reply, true
	}
	if n.cfg.Sessions == nil {
		return nil, false
	}
	gctx, cancel2 := context.WithTimeout(ctx, requestTimeout)
	defer cancel2()
	data, err := n.cfg.Sessions.Get(gctx, r.SessionId)
	if err != nil {
		if guildhall.KindOf(err) != guildhall.NotFound {
			n.log.Warn("read session checkpoint", "err", err)
		}
		return nil, false
	}
	var stored pb.SessionHandover
	if err := proto.Unmarshal(data, &stored); err != nil || stored.State == nil {
		return nil, false
	}
	if time.Since(time.UnixMilli(stored.State.UpdatedMs)) > n.cfg.ResumeWindow {
		return nil, false
	}
	return &stored, false
}

// resumeElsewhere resumes on this node a session another node held.
// It reports whether it did; if not, the caller sends InvalidSession.
func (s *session) resumeElsewhere(ctx context.Context, r *pb.Resume, u member.User) bool {
	n := s.n
	ho, fromNode := n.fetchSession(ctx, r, u.ID)
	if ho == nil || ho.State.GetUserId() != u.ID {
		return false
	}
	st := ho.State
	if r.LastSeq < st.Seq {
		return false // the client is behind what the node knew it had
	}
	slices.SortFunc(ho.Events, func(a, b *pb.SeqEvent) int { return cmpUint(a.Seq, b.Seq) })
	last := st.Seq
	if len(ho.Events) > 0 {
		last = ho.Events[len(ho.Events)-1].Seq
	}
	if fromNode && r.LastSeq > last {
		return false // more than the node ever sent
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()

	// What the user may see now: channels hidden since are not restored.
	visible := make(map[uint64][]uint64)
	servers, err := n.dir.Servers(rctx, u)
	if err != nil {
		n.log.Warn("resume: servers", "err", err)
		return false
	}
	for _, srv := range servers {
		chans, err := n.dir.Channels(rctx, u, srv.ID)
		if err != nil {
			continue
		}
		ids := []uint64{}
		for _, c := range chans {
			if c.Type != member.ChannelCategory {
				ids = append(ids, c.ID)
			}
		}
		visible[srv.ID] = ids
	}
	canSee := make(map[uint64]uint64)
	for srv, ids := range visible {
		for _, ch := range ids {
			canSee[ch] = srv
		}
	}

	// Positions as of the client's last_seq: the state's, moved by the
	// handed-over dispatches up to last_seq, and by what the client says
	// it has.
	pos := make(map[uint64]uint64)
	for _, c := range st.Channels {
		pos[c.ChannelId] = c.PositionId
	}
	var replay []*pb.SeqEvent
	for _, e := range ho.Events {
		if e.Seq > r.LastSeq {
			replay = append(replay, e)
			continue
		}
		if m := e.Event.GetMessageCreate(); m != nil {
			pos[e.Event.ChannelId] = max(pos[e.Event.ChannelId], m.Id)
		}
	}
	for _, p := range r.Positions {
		if _, ok := pos[p.ChannelId]; ok {
			pos[p.ChannelId] = max(pos[p.ChannelId], p.MessageId)
		}
	}
	confirmed := make(map[uint64]uint64, len(pos))
	for ch, id := range pos {
		confirmed[ch] = id
	}
	for _, e := range replay { // what the gap fill starts after
		if m := e.Event.GetMessageCreate(); m != nil {
			pos[e.Event.ChannelId] = max(pos[e.Event.ChannelId], m.Id)
		}
	}

	// Restore the subscriptions the user may still have, access checked now.
	serverTypes := make(map[uint64]pb.SubscriptionType, len(st.Servers))
	for _, sv := range st.Servers {
		if _, ok := visible[sv.ServerId]; ok {
			serverTypes[sv.ServerId] = sv.Type
		}
	}
	type restored struct {
		c       *pb.SessionChannel
		version uint64
	}
	var chans []restored
	for _, c := range st.Channels {
		srv, ok := canSee[c.ChannelId]
		if !ok {
			continue
		}
		_, v, err := n.dir.CanView(rctx, u.ID, c.ChannelId)
		if err != nil {
			continue
		}
		c.ServerId = srv
		chans = append(chans, restored{c, v})
	}
	if len(chans) > n.cfg.MaxSubscriptions {
		return false
	}

	s.user = u
	s.mu.Lock()
	s.visible = visible
	s.catching = true
	s.seq = max(r.LastSeq, last)
	s.confirmed, s.confirmedSeq = confirmed, r.LastSeq
	s.servers = serverTypes
	for _, rc := range chans {
		c := rc.c
		s.subs[c.ChannelId] = rc.version
		if c.Type != pb.SubscriptionType_SUBSCRIPTION_TYPE_MESSAGES {
			if s.types == nil {
				s.types = make(map[uint64]pb.SubscriptionType)
			}
			s.types[c.ChannelId] = c.Type
		}
		if c.Implicit {
			if _, ok := serverTypes[c.ServerId]; ok {
				if s.viaServer == nil {
					s.viaServer = make(map[uint64]uint64)
				}
				s.viaServer[c.ChannelId] = c.ServerId
			} else {
				if s.auto == nil {
					s.auto = make(map[uint64]uint64)
				}
				s.auto[c.ChannelId] = c.ServerId
			}
		}
	}
	s.mu.Unlock()
	var counted []uint64
	for _, rc := range chans {
		if rc.c.Type != pb.SubscriptionType_SUBSCRIPTION_TYPE_MESSAGES {
			counted = append(counted, rc.c.ChannelId)
		}
	}
	if err := s.keepReads(rctx, u.ID, counted); err != nil {
		n.log.Warn("resume: read states", "err", err)
	}
	n.rememberUser(s)
	var flushed <-chan struct{}
	for _, rc := range chans {
		flushed = n.subscribe(s, rc.c.ChannelId, rc.c.Type)
	}
	if flushed != nil { // from here on, live dispatches reach s (held)
		select {
		case <-flushed:
		case <-rctx.Done():
		}
	}

	// The gap: each MESSAGES channel's history after the position.
	had := make(map[uint64]uint64) // the client's positions, before the gap
	var gap []message.Message
	for _, rc := range chans {
		c := rc.c
		after := pos[c.ChannelId]
		if c.Type != pb.SubscriptionType_SUBSCRIPTION_TYPE_MESSAGES {
			continue
		}
		had[c.ChannelId] = after
		if n.cfg.History == nil {
			continue
		}
		for {
			page, err := n.cfg.History.History(rctx, u.ID, c.ChannelId, message.Query{After: after, Limit: message.MaxPage})
			if err != nil {
				n.log.Warn("resume: history", "channel", c.ChannelId, "err", err)
				break
			}
			for _, m := range page {
				if m.ID > pos[c.ChannelId] {
					gap = append(gap, m)
					after = max(after, m.ID)
				}
			}
			if len(page) < message.MaxPage || len(gap)+len(replay) > n.cfg.ResumeBuffer {
				break
			}
		}
		pos[c.ChannelId] = after
	}
	if len(gap)+len(replay) > n.cfg.ResumeBuffer {
		s.abandonTakeover()
		return false
	}
	slices.SortFunc(gap, func(a, b message.Message) int { return cmpUint(a.ID, b.ID) })
	// Edits and deletions, since the checkpoint, of messages the client
	// already had (newer ones came from history as they are now).
	var changes []*pb.Event
	if n.cfg.Changes != nil && !fromNode && len(had) > 0 {
		ids := make([]uint64, 0, len(had))
		for ch := range had {
			ids = append(ids, ch)
		}
		slices.Sort(ids)
		room := n.cfg.ResumeBuffer - len(gap) - len(replay)
		since := time.UnixMilli(st.UpdatedMs).Add(-changesMargin)
		cs, err := n.cfg.Changes.ChangesSince(rctx, ids, since, room+1)
		if err != nil {
			n.log.Warn("resume: changes", "err", err)
			s.abandonTakeover()
			return false
		}
		for _, c := range cs {
			p, ok := had[c.Message.ChannelID]
			if !ok || c.Message.ID > p {
				continue
			}
			if c.Message.ServerID == 0 {
				c.Message.ServerID = canSee[c.Message.ChannelID]
			}
			switch c.Kind {
			case message.ChangeEdit:
				changes = append(changes, natsrpc.EventToProto(message.Event{Kind: message.Updated, Message: c.Message}))
			case message.ChangeDelete:
				changes = append(changes, natsrpc.EventToProto(message.Event{Kind: message.Deleted, Message: c.Message}))
			}
		}
		if len(cs) > room {
			s.abandonTakeover()
			return false
		}
	}

	s.mu.Lock()
	for _, e := range replay {
		enc, err := encodeEvent(e.Event)
		if err != nil {
			continue
		}
		s.replay.push(e.Seq, &enc)
		s.replayLocked(outFrame{data: s.codec.frame(e.Seq, enc)})
	}
	for _, m := range gap {
		enc, err := encodeEvent(&pb.Event{ServerId: m.ServerID, ChannelId: m.ChannelID, Kind: &pb.Event_MessageCreate{MessageCreate: natsrpc.ToProto(m)}})
		if err != nil {
			continue
		}
		s.seq++
		s.replay.push(s.seq, &enc)
		s.replayLocked(outFrame{data: s.codec.frame(s.seq, enc)})
	}
	for _, e := range changes {
		enc, err := encodeEvent(e)
		if err != nil {
			continue
		}
		s.seq++
		s.replay.push(s.seq, &enc)
		s.replayLocked(outFrame{data: s.codec.frame(s.seq, enc)})
	}
	s.floor = pos
	s.ckptDirty = true
	s.mu.Unlock()
	if !s.releaseHeld(ctx) {
		s.abandonTakeover()
		return false
	}
	s.send(&pb.Frame{Body: &pb.Frame_Resumed{Resumed: &pb.Resumed{SessionId: s.ID(), Replayed: uint32(len(replay) + len(gap) + len(changes))}}})
	s.mu.Lock()
	s.remarkUnreadLocked() // the counters' state follows resumed
	s.mu.Unlock()
	n.forgetCheckpoint(r.SessionId) // the session lives on under s.id
	return true
}

// releaseHeld delivers, in order, what came while the takeover rebuilt,
// then ends catching up. It reports false if too much came.
func (s *session) releaseHeld(ctx context.Context) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if len(s.held) > s.n.cfg.ResumeBuffer {
			return false
		}
		if len(s.held) == 0 {
			s.catching, s.held = false, nil
			return true
		}
		h := s.held[0]
		if !s.deliverLocked(h.pev, h.ev, h.v) {
			s.mu.Unlock() // new dispatches queue behind h meanwhile
			ok := s.recheck(ctx, h.pev, h.v)
			s.mu.Lock()
			if ok {
				s.deliverLocked(h.pev, h.ev, h.v)
			}
		}
		s.held = s.held[1:]
	}
}

// abandonTakeover drops a takeover that cannot be completed.
func (s *session) abandonTakeover() {
	s.mu.Lock()
	s.catching, s.held = false, nil
	s.backlog, s.replaying = nil, 0
	s.mu.Unlock()
	s.n.unsubscribeAll(s)
	s.mu.Lock()
	s.subs = make(map[uint64]uint64)
	s.types, s.servers, s.viaServer, s.auto, s.reads, s.confirmed, s.floor = nil, nil, nil, nil, nil, nil, nil
	s.seq, s.confirmedSeq, s.replay = 0, 0, replayBuf{cap: s.n.cfg.ResumeBuffer}
	s.mu.Unlock()
	s.user = member.User{}
}
