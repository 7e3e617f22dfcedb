package link

import (
	"context"
	"time"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/member"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// followSmall makes s follow every channel it can see in the servers with
// fewer than SmallServer members, and stop following, in servers that
// grew past it, the channels it only followed for that reason. counts
// caches member counts across sessions in one pass (nil: no cache).
//
// It returns a channel closed once the subscription service knows of the
// new follows (nil if there were none).
func (n *Node) followSmall(ctx context.Context, s *session, counts map[uint64]int) <-chan struct{} {
	if n.cfg.SmallServer < 0 {
		return nil
	}
	s.mu.Lock()
	servers := make(map[uint64][]uint64, len(s.visible))
	for srv, chans := range s.visible {
		servers[srv] = chans
	}
	s.mu.Unlock()
	var add, drop []uint64
	for srv, chans := range servers {
		count, ok := counts[srv]
		if !ok {
			var err error
			if count, err = n.dir.MemberCount(ctx, srv); err != nil {
				n.log.Debug("member count", "server", srv, "err", err)
				continue
			}
			if counts != nil {
				counts[srv] = count
			}
		}
		small := count < n.cfg.SmallServer
		s.mu.Lock()
		if s.movedTo != nil || s.closed {
			s.mu.Unlock()
			return nil
		}
		for _, ch := range chans {
			_, followed := s.subs[ch]
			_, auto := s.auto[ch]
			switch {
			case small && !followed && !s.optOut[ch] && len(s.subs) < n.cfg.MaxSubscriptions:
				if s.auto == nil {
					s.auto = make(map[uint64]uint64)
				}
				s.subs[ch] = 0 // checked again at the first event carrying a version
				s.auto[ch] = srv
				if counts != nil { // the periodic pass, not identify: the server became small since
					s.baselineLocked(ch, time.Now())
				}
				add = append(add, ch)
			case !small && auto:
				delete(s.subs, ch)
				delete(s.auto, ch)
				drop = append(drop, ch)
			}
		}
		s.mu.Unlock()
	}
	var flushed <-chan struct{}
	for _, ch := range add {
		flushed = n.subscribe(s, ch, pb.SubscriptionType_SUBSCRIPTION_TYPE_MESSAGES)
	}
	for _, ch := range drop {
		n.unsubscribe1(s, ch)
	}
	return flushed
}

// smallServerLoop re-checks, every SnapshotEvery, which servers are small,
// so crossing the threshold changes delivery within one heartbeat period,
// and follows the channels created since in servers subscribed as a whole.
func (n *Node) smallServerLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.SnapshotEvery)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		n.sessMu.Lock()
		list := make([]*session, 0, len(n.sessions))
		for s := range n.sessions {
			list = append(list, s)
		}
		n.sessMu.Unlock()
		counts := make(map[uint64]int)
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.SnapshotEvery)
		for _, s := range list {
			n.followSmall(ctx, s, counts) // no-op before identify: nothing visible yet
			n.refreshServers(ctx, s)
		}
		cancel()
	}
}

// refreshServers follows the channels created (or made visible) since in
// the servers s subscribed to as a whole, and ends the server
// subscriptions of servers the user left.
func (n *Node) refreshServers(ctx context.Context, s *session) {
	s.mu.Lock()
	servers := make(map[uint64]pb.SubscriptionType, len(s.servers))
	for srv, typ := range s.servers {
		servers[srv] = typ
	}
	s.mu.Unlock()
	for srv, typ := range servers {
		chans, err := n.dir.Channels(ctx, s.user, srv)
		if err != nil {
			if k := guildhall.KindOf(err); k == guildhall.NotFound || k == guildhall.Forbidden {
				_ = s.unsubscribe(&pb.Unsubscribe{ServerIds: []uint64{srv}})
			}
			continue
		}
		var ids []uint64
		var follows []follow
		s.mu.Lock()
		if s.movedTo != nil || s.closed {
			s.mu.Unlock()
			return
		}
		for _, c := range chans {
			if c.Type == member.ChannelCategory {
				continue
			}
			ids = append(ids, c.ID)
			if _, ok := s.subs[c.ID]; !ok && !s.optOut[c.ID] && len(s.subs)+len(follows) < n.cfg.MaxSubscriptions {
				follows = append(follows, follow{ch: c.ID, server: srv, via: srv})
			}
		}
		if ids == nil {
			ids = []uint64{}
		}
		s.visible[srv] = ids
		changed := s.followLocked(follows, typ)
		s.mu.Unlock()
		for _, ch := range changed {
			n.subscribe(s, ch, typ)
		}
	}
}
