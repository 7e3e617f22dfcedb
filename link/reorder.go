package link

import (
	"slices"
	"time"

	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// Per-channel ordering. Several message-service instances publish a
// channel's events in the order their sends finish, so seq n+1 may reach
// a link node before seq n. The node delivers each channel's message
// creates in seq order: a create ahead of the next expected seq waits
// (with every later event of the channel, in arrival order) until the
// missing one comes, for at most ReorderWait and ReorderMax events. Past
// either bound it gives up on the gap: the held events go out in seq
// order and a missing create that comes later is delivered late rather
// than dropped. The expected seq is learned from the first create after
// the channel is followed on the node (and forgotten when it no longer
// is): seq 1 goes out at once; any later one waits up to ReorderWait for
// earlier creates still on their way, so the first message a node gets
// for a newly followed channel may be up to ReorderWait late.

// chanOrder is one channel's reorder state; orderMu guards its fields.
type chanOrder struct {
	ch      uint64
	next    uint64      // the next create seq expected
	creates []heldOrder // creates waiting for next, sorted by seq
	others  []heldOrder // later non-create events, in arrival order
	since   time.Time   // when the oldest held event came
}

type heldOrder struct {
	ev *pb.Event
	v  uint64
}

// inOrder delivers ev now, or holds it until the channel's missing seq
// comes. orderMu is held.
func (n *Node) inOrder(ev *pb.Event, v uint64) {
	if n.cfg.ReorderWait < 0 {
		n.fanout(ev, v)
		return
	}
	co := n.chanOrder(ev.ChannelId)
	m := ev.GetMessageCreate()
	if co.next == 0 && m != nil && m.Seq > 1 {
		// The first create since the channel was followed here: an
		// earlier one may still be on its way from another message
		// instance, so it waits (at most ReorderWait) like any gap.
		co.next = 1
	}
	held := len(co.creates) > 0
	switch {
	case !held && m == nil:
		n.fanout(ev, v)
	case !held && (co.next == 0 || m.Seq <= co.next):
		// In order, the first seen, or late (given up on, or a duplicate):
		// delivered now.
		n.fanout(ev, v)
		co.next = max(co.next, m.Seq+1)
	case m == nil:
		co.others = append(co.others, heldOrder{ev, v})
	case m.Seq < co.next:
		n.fanout(ev, v) // late: its gap was given up on
	default:
		if !held {
			co.since = time.Now()
			n.waiting[co.ch] = co
			select { // the loop sleeps while nothing waits
			case n.reorderWake <- struct{}{}:
			default:
			}
		}
		i, _ := slices.BinarySearchFunc(co.creates, m.Seq, func(h heldOrder, seq uint64) int {
			return cmpUint(h.ev.GetMessageCreate().GetSeq(), seq)
		})
		co.creates = slices.Insert(co.creates, i, heldOrder{ev, v})
		n.release(co, len(co.creates)+len(co.others) > n.cfg.ReorderMax)
	}
}

// chanOrder returns ev's channel reorder state, created on first use.
func (n *Node) chanOrder(ch uint64) *chanOrder {
	sh := &n.subs[ch%shards]
	sh.RLock()
	co := sh.order[ch]
	sh.RUnlock()
	if co != nil {
		return co
	}
	co = &chanOrder{ch: ch}
	sh.Lock()
	if _, followed := sh.m[ch]; followed { // else nobody here to keep it for
		sh.order[ch] = co
	}
	sh.Unlock()
	return co
}

// release delivers the held creates that are now in order (all of them,
// in seq order, if force), then, once none waits, the other held events.
// orderMu is held.
func (n *Node) release(co *chanOrder, force bool) {
	for len(co.creates) > 0 {
		h := co.creates[0]
		seq := h.ev.GetMessageCreate().GetSeq()
		if seq > co.next && !force {
			break
		}
		co.creates = co.creates[1:]
		n.fanout(h.ev, h.v)
		co.next = max(co.next, seq+1)
	}
	if len(co.creates) > 0 {
		return
	}
	others := co.others
	co.creates, co.others = nil, nil
	delete(n.waiting, co.ch)
	for _, h := range others {
		n.fanout(h.ev, h.v)
	}
}

// reorderLoop gives up on gaps that stayed open for ReorderWait. It ticks
// only while some channel holds events.
func (n *Node) reorderLoop() {
	defer n.wg.Done()
	every := max(n.cfg.ReorderWait/4, time.Millisecond)
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.reorderWake:
		}
		t := time.NewTicker(every)
		for idle := false; !idle; {
			select {
			case <-n.ctx.Done():
				t.Stop()
				return
			case now := <-t.C:
				n.orderMu.Lock()
				for _, co := range n.waiting {
					if now.Sub(co.since) >= n.cfg.ReorderWait {
						n.release(co, true)
					}
				}
				idle = len(n.waiting) == 0
				n.orderMu.Unlock()
			}
		}
		t.Stop()
	}
}
