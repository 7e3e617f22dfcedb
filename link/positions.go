package link

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// Positions: to rebuild what a client missed on another node after its
// node died, a session's checkpoint holds, per channel, the newest message
// the client is known to have. "Known" is what the client confirmed with
// its heartbeat's last_seq (or what left the replay buffer: a resume from
// before that is refused anyway); dispatches after confirmedSeq are in the
// replay buffer, so the current positions are the confirmed ones moved by
// those entries.

// confirmLocked moves the confirmed positions up to dispatch upto: through
// the replay entries after confirmedSeq, and through extra (an entry that
// just left the buffer), in order. Only a confirmation by the client
// (extra == nil) schedules a checkpoint: checkpoints follow heartbeats and
// subscription changes, not traffic.
func (s *session) confirmLocked(upto uint64, extra *replayEntry) {
	if upto <= s.confirmedSeq || upto > s.seq {
		return
	}
	if extra != nil {
		s.applyPosLocked(*extra)
	}
	n := len(s.replay.entries)
	for i := range n {
		e := s.replay.entries[(s.replay.start+i)%n]
		if e.seq > s.confirmedSeq && e.seq <= upto {
			s.applyPosLocked(e)
		}
	}
	s.confirmedSeq = upto
	if extra == nil {
		s.ckptDirty = true
	}
}

func (s *session) applyPosLocked(e replayEntry) {
	if e.ev == nil || e.ev.mid == 0 {
		return
	}
	if s.confirmed == nil {
		s.confirmed = make(map[uint64]uint64)
	}
	s.confirmed[e.ev.ch] = max(s.posLocked(e.ev.ch), e.ev.mid)
}

// posLocked is the confirmed position in ch.
func (s *session) posLocked(ch uint64) uint64 {
	if id, ok := s.confirmed[ch]; ok {
		return id
	}
	return s.baseID
}

// confirm records that the client has every dispatch up to seq (its
// heartbeat says so).
func (s *session) confirm(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.confirmLocked(seq, nil)
}

// positionsLocked returns the current positions: the confirmed ones moved
// by every dispatch in the replay buffer.
func (s *session) positionsLocked() map[uint64]uint64 {
	pos := make(map[uint64]uint64, len(s.subs))
	for ch := range s.subs {
		pos[ch] = s.posLocked(ch)
	}
	n := len(s.replay.entries)
	for i := range n {
		e := s.replay.entries[(s.replay.start+i)%n]
		if e.seq > s.confirmedSeq && e.ev != nil && e.ev.mid != 0 {
			pos[e.ev.ch] = max(pos[e.ev.ch], e.ev.mid)
		}
	}
	return pos
}

// baselineLocked gives a channel followed after identify a position:
// nothing of it before now (a message sent before the subscribe was
// acknowledged is not promised to the session). Channels followed at
// identify (small servers) share baseID and cost no entry.
func (s *session) baselineLocked(ch uint64, now time.Time) {
	if s.confirmed == nil {
		s.confirmed = make(map[uint64]uint64)
	}
	if _, ok := s.confirmed[ch]; !ok {
		s.confirmed[ch] = s.n.cfg.idAt(now)
	}
	s.ckptDirty = true
}

// stateLocked is the session's state for a checkpoint (confirmed
// positions, seq confirmedSeq) or a handover (current positions, seq).
func (s *session) stateLocked(current bool) *pb.SessionState {
	st := &pb.SessionState{SessionId: s.id, UserId: s.user.ID, Seq: s.confirmedSeq, UpdatedMs: time.Now().UnixMilli()}
	var pos map[uint64]uint64
	if current {
		pos, st.Seq = s.positionsLocked(), s.seq
	}
	for ch := range s.subs {
		c := &pb.SessionChannel{ChannelId: ch, Type: s.types[ch], PositionId: s.posLocked(ch)}
		if current {
			c.PositionId = pos[ch]
		}
		if srv, ok := s.auto[ch]; ok {
			c.ServerId, c.Implicit = srv, true
		} else if srv, ok := s.viaServer[ch]; ok {
			c.ServerId, c.Implicit = srv, true
		}
		if r := s.reads[ch]; r != nil {
			c.ReadSeq = r.readSeq
			if c.ServerId == 0 {
				c.ServerId = r.server
			}
		}
		st.Channels = append(st.Channels, c)
	}
	for srv, typ := range s.servers {
		st.Servers = append(st.Servers, &pb.SessionServer{ServerId: srv, Type: typ})
	}
	return st
}

// heldEvent is a dispatch that came while a takeover was rebuilding.
type heldEvent struct {
	pev *pb.Event
	ev  *encodedEvent
	v   uint64
}

// holdLocked keeps a dispatch for after the rebuild; a rebuild that holds
// more than the resume buffer fails (the session is invalidated).
func (s *session) holdLocked(pev *pb.Event, ev *encodedEvent, v uint64) {
	if len(s.held) <= s.n.cfg.ResumeBuffer {
		s.held = append(s.held, heldEvent{pev, ev, v})
	}
}

// checkpointLoop writes the sessions that changed to the SessionStore
// every CheckpointEvery, and deletes those that ended.
func (n *Node) checkpointLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.CheckpointEvery)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			n.checkpoint(n.ctx, false)
		case id := <-n.ckptDeletes:
			ctx, cancel := context.WithTimeout(n.ctx, requestTimeout)
			if err := n.cfg.Sessions.Delete(ctx, id); err != nil {
				n.log.Debug("delete session checkpoint", "err", err)
			}
			cancel()
		}
	}
}

// checkpointAll writes every session with its dispatches after the
// confirmed position (at shutdown).
func (n *Node) checkpointAll(ctx context.Context) { n.checkpoint(ctx, true) }

// checkpoint writes the changed sessions; all writes every one, with its
// dispatches after the confirmed position.
func (n *Node) checkpoint(ctx context.Context, all bool) {
	n.sessMu.Lock()
	list := make([]*session, 0, len(n.sessions)+len(n.detached))
	for s := range n.sessions {
		list = append(list, s)
	}
	for _, s := range n.detached {
		list = append(list, s)
	}
	n.sessMu.Unlock()
	for _, s := range list {
		s.mu.Lock()
		if (!s.ckptDirty && !all) || s.user.ID == 0 || s.movedTo != nil || s.catching || s.handedOver {
			s.mu.Unlock()
			continue
		}
		s.ckptDirty = false
		st := s.stateLocked(false)
		ho := &pb.SessionHandover{Found: true, Complete: true, State: st}
		if all {
			ho.Events = s.eventsAfterLocked(s.confirmedSeq)
		}
		s.mu.Unlock()
		data, err := proto.Marshal(ho)
		if err != nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, requestTimeout)
		err = n.cfg.Sessions.Put(pctx, st.SessionId, data)
		cancel()
		if err != nil {
			n.log.Warn("session checkpoint", "err", err)
			s.mu.Lock()
			s.ckptDirty = true
			s.mu.Unlock()
		}
	}
}

// forgetCheckpoint schedules the deletion of an ended session's
// checkpoint (dropped if the queue is full: the bucket's TTL removes it).
func (n *Node) forgetCheckpoint(id string) {
	if n.cfg.Sessions == nil {
		return
	}
	select {
	case n.ckptDeletes <- id:
	default:
	}
}

// ID is the session's ID (a resume may change it).
func (s *session) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}
