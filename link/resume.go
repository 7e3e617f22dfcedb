package link

import (
	"context"
	"time"

	"github.com/coder/websocket"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/member"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// replayEntry is one dispatch a session may have to send again.
type replayEntry struct {
	seq uint64
	ev  *encodedEvent // shared with every session that got the event
}

// replayBuf keeps a session's last dispatches, oldest first, in a ring of
// fixed capacity. It is allocated on the first dispatch, so idle sessions
// cost nothing.
type replayBuf struct {
	entries []replayEntry
	start   int // index of the oldest entry once the ring is full
	cap     int
}

// push adds an entry and returns the one it pushed out of a full ring.
func (b *replayBuf) push(seq uint64, ev *encodedEvent) (dropped replayEntry, ok bool) {
	if b.cap == 0 {
		return replayEntry{seq, ev}, true
	}
	if len(b.entries) < b.cap {
		b.entries = append(b.entries, replayEntry{seq, ev})
		return replayEntry{}, false
	}
	dropped = b.entries[b.start]
	b.entries[b.start] = replayEntry{seq, ev}
	b.start = (b.start + 1) % b.cap
	return dropped, true
}

// since returns the entries after seq, in order; ok is false when some of
// them were already dropped (or seq is ahead of the last one), so a replay
// would leave a gap.
func (b *replayBuf) since(seq, last uint64) (out []replayEntry, ok bool) {
	if seq > last {
		return nil, false
	}
	if seq == last {
		return nil, true
	}
	n := len(b.entries)
	for i := range n {
		e := b.entries[(b.start+i)%n]
		if e.seq > seq {
			out = append(out, e)
		}
	}
	return out, len(out) > 0 && out[0].seq == seq+1
}

// resumable reports whether a session whose connection just ended may be
// resumed: it had identified, the client did not log off with a normal
// close, and the server did not end it for a protocol violation.
func (s *session) resumable(readErr error) bool {
	if s.user.ID == 0 || s.n.cfg.ResumeWindow < 0 {
		return false
	}
	switch websocket.CloseStatus(readErr) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.closeCode {
	case CloseUnknownFrame, CloseDecodeError, CloseAlreadyIdentified, CloseRateLimited, CloseAuthFailed, CloseNotAuthenticated:
		return false
	}
	return true
}

// detach keeps a session whose connection ended, subscribed and buffering,
// for ResumeWindow. It reports false if the node is closing.
func (n *Node) detach(s *session) bool {
	n.sessMu.Lock()
	defer n.sessMu.Unlock()
	if n.closing {
		return false
	}
	s.mu.Lock()
	s.detached = true
	s.mu.Unlock()
	n.detached[s.id] = s
	s.expiry = time.AfterFunc(n.cfg.ResumeWindow, func() { n.expire(s) })
	return true
}

// expire ends a detached session that was not resumed in time.
func (n *Node) expire(s *session) {
	n.sessMu.Lock()
	if n.detached[s.id] != s {
		n.sessMu.Unlock()
		return // resumed meanwhile
	}
	delete(n.detached, s.id)
	n.sessMu.Unlock()
	n.unsubscribeAll(s)
	n.forgetCheckpoint(s.ID())
}

// takeDetached removes and returns the detached session id of userID.
func (n *Node) takeDetached(id string, userID uint64) *session {
	n.sessMu.Lock()
	defer n.sessMu.Unlock()
	old := n.detached[id]
	if old == nil || old.user.ID != userID {
		return nil
	}
	delete(n.detached, id)
	old.expiry.Stop()
	return old
}

// swap replaces old by s among ch's subscribers.
func (n *Node) swap(ch uint64, old, s *session) {
	sh := &n.subs[ch%shards]
	sh.Lock()
	if set := sh.m[ch]; set != nil {
		if typ, ok := set[old]; ok {
			delete(set, old)
			set[s] = typ
		}
	}
	sh.Unlock()
}

// resume handles a Resume frame on a new connection.
func (s *session) resume(ctx context.Context, r *pb.Resume) error {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	u, err := s.n.auth.Authenticate(rctx, r.Token)
	if err != nil {
		if guildhall.KindOf(err) == guildhall.Unauthenticated {
			s.close(CloseAuthFailed, truncate(guildhall.Message(err), 100))
		} else {
			s.n.log.Error("resume", "err", err)
			s.close(CloseUnknownError, "try again")
		}
		return errClosing
	}
	old := s.n.takeDetached(r.SessionId, u.ID)
	if old == nil {
		if s.resumeElsewhere(ctx, r, u) {
			s.batch.Store(r.Batch)
			return nil
		}
		s.send(&pb.Frame{Body: &pb.Frame_InvalidSession{InvalidSession: &pb.InvalidSession{}}})
		return nil
	}
	replayed, ok := s.adopt(old, u, r.LastSeq)
	if !ok {
		s.n.unsubscribeAll(old)
		s.send(&pb.Frame{Body: &pb.Frame_InvalidSession{InvalidSession: &pb.InvalidSession{}}})
		return nil
	}
	for ch := range s.subsSnapshot() {
		s.n.swap(ch, old, s)
	}
	s.n.swapUser(old, s)
	s.send(&pb.Frame{Body: &pb.Frame_Resumed{Resumed: &pb.Resumed{SessionId: s.ID(), Replayed: uint32(replayed)}}})
	s.mu.Lock()
	s.remarkUnreadLocked() // the counters' state follows resumed
	s.mu.Unlock()
	s.batch.Store(r.Batch)
	return nil
}

// adopt takes over a detached session's state: its id, subscriptions,
// sequence and replay buffer, and queues the dispatches after lastSeq.
// From here on, events dispatched to old are forwarded to s.
func (s *session) adopt(old *session, u member.User, lastSeq uint64) (int, bool) {
	old.mu.Lock()
	defer old.mu.Unlock()
	entries, ok := old.replay.since(lastSeq, old.seq)
	if !ok {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user = u
	s.id = old.id
	s.seq = old.seq
	s.subs, s.auto, s.visible, s.optOut = old.subs, old.auto, old.visible, old.optOut
	s.types, s.servers, s.viaServer, s.reads, s.dirty, s.roles = old.types, old.servers, old.viaServer, old.reads, old.dirty, old.roles
	s.confirmed, s.confirmedSeq, s.floor = old.confirmed, old.confirmedSeq, old.floor
	s.ckptDirty = true
	old.confirmed, old.floor = nil, nil
	old.markerQueued = false
	s.replay = old.replay
	old.subs, old.auto, old.visible, old.optOut, old.replay = nil, nil, nil, nil, replayBuf{}
	old.types, old.servers, old.viaServer, old.reads, old.dirty, old.roles = nil, nil, nil, nil, nil, nil
	for _, e := range entries { // not bounded by the queue: the replay buffer bounds it
		s.replayLocked(outFrame{data: s.codec.frame(e.seq, *e.ev)})
	}
	old.movedTo = s
	return len(entries), true
}

func (s *session) subsSnapshot() map[uint64]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[uint64]uint64, len(s.subs))
	for ch, v := range s.subs {
		m[ch] = v
	}
	return m
}
