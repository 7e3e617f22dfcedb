package link

import (
	"testing"
	"time"

	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// TestReorderBySeq: creates that come ahead of a missing seq wait for it,
// with the channel's later events; a gap that stays open is given up on
// after ReorderWait, and the missing message is delivered late, not lost.
func TestReorderBySeq(t *testing.T) {
	h := mustHarness(t, Config{SmallServer: -1, ReorderWait: 200 * time.Millisecond})
	c := h.dial(t, false)
	c.identify()
	c.mustSubscribe(1, 2)
	edit := &pb.Event{ServerId: serverID, ChannelId: 1, Kind: &pb.Event_MessageUpdate{MessageUpdate: &pb.Message{Id: 3, ChannelId: 1, Seq: 3}}}
	h.deliver(t, messageEvent(1, 1, ""), messageEvent(1, 3, ""))
	h.deliver(t, edit, messageEvent(2, 1, "other channel")) // channel 2 is not held up
	h.deliver(t, messageEvent(1, 2, ""), messageEvent(1, 4, ""))
	readEvents(t, c, 1, messageEvent(1, 1, ""), messageEvent(2, 1, "other channel"),
		messageEvent(1, 2, ""), messageEvent(1, 3, ""), edit, messageEvent(1, 4, ""))

	// 6 never comes in time: 7 and 8 go out in order after the wait.
	h.deliver(t, messageEvent(1, 5, ""), messageEvent(1, 8, ""), messageEvent(1, 7, ""))
	readEvents(t, c, 7, messageEvent(1, 5, ""), messageEvent(1, 7, ""), messageEvent(1, 8, ""))
	h.deliver(t, messageEvent(1, 6, "late"), messageEvent(1, 9, ""))
	readEvents(t, c, 10, messageEvent(1, 6, "late"), messageEvent(1, 9, ""))
}

// TestReorderBound: a channel holding more than ReorderMax events gives up
// on its gap at once.
func TestReorderBound(t *testing.T) {
	h := mustHarness(t, Config{SmallServer: -1, ReorderWait: time.Hour, ReorderMax: 2})
	c := h.dial(t, false)
	c.identify()
	c.mustSubscribe(1)
	h.deliver(t, messageEvent(1, 1, ""), messageEvent(1, 3, ""), messageEvent(1, 4, ""), messageEvent(1, 5, ""))
	readEvents(t, c, 1, messageEvent(1, 1, ""), messageEvent(1, 3, ""), messageEvent(1, 4, ""), messageEvent(1, 5, ""))
}
