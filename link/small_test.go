package link

import (
	"fmt"
	"testing"
	"time"

	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// TestSmallServerFollowedWithoutSubscribing: in a server below SmallServer
// members, a session gets every visible channel's events without
// subscribing; an unsubscribe opts a channel out; when the server grows
// past the threshold, the automatic follows end within a snapshot period.
func TestSmallServerFollowedWithoutSubscribing(t *testing.T) {
	h := mustHarness(t, Config{SmallServer: 10, SnapshotEvery: 20 * time.Millisecond})
	h.dir.mu.Lock()
	h.dir.members = 3
	h.dir.mu.Unlock()
	c := h.dial(t, false)
	c.identify() // the fake server has channels 1 and 2
	checkFor(t, wait, time.Millisecond, func() error {
		if len(h.svc.Nodes(1)) != 1 || len(h.svc.Nodes(2)) != 1 {
			return fmt.Errorf("routes %v %v", h.svc.Nodes(1), h.svc.Nodes(2))
		}
		return nil
	})
	e1, e2 := messageEvent(1, 1, "one"), messageEvent(2, 2, "two")
	h.deliver(t, e1, e2)
	readEvents(t, c, 1, e1, e2)

	// Opting out of channel 1 sticks, even across re-checks.
	if r := c.request("u", unsubscribeFrame(1)); r.GetOk() == nil {
		t.Fatalf("unsubscribe: %v", r)
	}
	checkFor(t, wait, time.Millisecond, func() error {
		if got := h.svc.Nodes(1); got != nil {
			return fmt.Errorf("Nodes(1) = %v after opting out", got)
		}
		return nil
	})
	e3, e4 := messageEvent(1, 3, "opted out"), messageEvent(2, 4, "still in")
	h.deliver(t, e3, e4)
	readEvents(t, c, 3, e4)

	// The server grows: automatic follows end.
	h.dir.mu.Lock()
	h.dir.members = 11
	h.dir.mu.Unlock()
	checkFor(t, wait, time.Millisecond, func() error {
		if got := h.svc.Nodes(2); got != nil {
			return fmt.Errorf("Nodes(2) = %v after the server grew", got)
		}
		return nil
	})
	// An explicit subscription is not automatic: the big server keeps it.
	c.mustSubscribe(2)
	e5 := messageEvent(2, 5, "explicit")
	h.deliver(t, e5)
	readEvents(t, c, 4, e5)
}

func unsubscribeFrame(chans ...uint64) *pb.Frame {
	return &pb.Frame{Body: &pb.Frame_Unsubscribe{Unsubscribe: &pb.Unsubscribe{ChannelIds: chans}}}
}
