package link

import (
	"context"
	"time"

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
// so crossing the threshold changes delivery within one heartbeat period.
func (n *Node) smallServerLoop() {
	defer n.wg.Done()
	if n.cfg.SmallServer < 0 {
		return
	}
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
		}
		cancel()
	}
}
