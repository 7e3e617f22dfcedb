package link

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// resumeFrame sends RESUME on a fresh connection (after HELLO) and
// returns the frames up to and including the reply that ends it (resumed
// or invalid_session).
func (c *client) resume(sessionID string, lastSeq uint64) (replayed []*pb.Frame, end *pb.Frame) {
	c.tb.Helper()
	if f := c.read(); f.GetHello() == nil {
		c.tb.Fatalf("first frame %v, want hello", f)
	}
	c.write(&pb.Frame{Body: &pb.Frame_Resume{Resume: &pb.Resume{Token: goodToken, SessionId: sessionID, LastSeq: lastSeq}}})
	for {
		f := c.read()
		if f.GetResumed() != nil || f.GetInvalidSession() != nil {
			return replayed, f
		}
		replayed = append(replayed, f)
	}
}

func TestResumeReplaysWhatWasMissed(t *testing.T) {
	h := mustHarness(t, Config{})
	for _, enc := range encodings {
		t.Run(enc.name, func(t *testing.T) {
			ch := uint64(40)
			if enc.json {
				ch = 41
			}
			c := h.dial(t, enc.json)
			ready := c.identify()
			c.mustSubscribe(ch)
			e1 := messageEvent(ch, 1, "seen")
			h.deliver(t, e1)
			readEvents(t, c, 1, e1)

			c.conn.CloseNow() // the network drops: no close handshake
			checkFor(t, wait, time.Millisecond, func() error {
				h.node.sessMu.Lock()
				defer h.node.sessMu.Unlock()
				if h.node.detached[ready.SessionId] == nil {
					return fmt.Errorf("session not detached yet")
				}
				return nil
			})
			e2, e3 := messageEvent(ch, 2, "missed"), messageEvent(ch, 3, "missed too")
			h.deliver(t, e2, e3)
			h.waitDetachedSeq(t, ready.SessionId, 3)
			// The route stays while the session waits for its client.
			if got := h.svc.Nodes(ch); len(got) != 1 {
				t.Fatalf("Nodes = %v while detached", got)
			}

			again := h.dial(t, enc.json)
			replayed, end := again.resume(ready.SessionId, 1)
			if end.GetResumed() == nil || end.GetResumed().Replayed != 2 || end.GetResumed().SessionId != ready.SessionId {
				t.Fatalf("resume ended with %v", end)
			}
			if len(replayed) != 2 || replayed[0].Seq != 2 || replayed[1].Seq != 3 ||
				!proto.Equal(replayed[0].GetEvent(), e2) || !proto.Equal(replayed[1].GetEvent(), e3) {
				t.Fatalf("replayed %v", replayed)
			}
			e4 := messageEvent(ch, 4, "live")
			h.deliver(t, e4)
			readEvents(t, again, 4, e4)

			// The resumed session can drop and resume again.
			again.conn.CloseNow()
			checkFor(t, wait, time.Millisecond, func() error {
				h.node.sessMu.Lock()
				defer h.node.sessMu.Unlock()
				if h.node.detached[ready.SessionId] == nil {
					return fmt.Errorf("not detached again")
				}
				return nil
			})
			third := h.dial(t, enc.json)
			if replayed, end := third.resume(ready.SessionId, 4); end.GetResumed() == nil || len(replayed) != 0 {
				t.Fatalf("second resume: %v, %v", replayed, end)
			}
		})
	}
}

func TestResumeRefused(t *testing.T) {
	h := mustHarness(t, Config{ResumeBuffer: 2, ResumeWindow: time.Minute})
	invalid := func(c *client, id string, last uint64) {
		t.Helper()
		if _, end := c.resume(id, last); end.GetInvalidSession() == nil {
			t.Fatalf("resume %s@%d: %v, want invalid_session", id, last, end)
		}
	}
	// Unknown session: told so, and may identify on the same connection.
	c := h.dial(t, false)
	invalid(c, "nope", 0)
	c.write(&pb.Frame{Body: &pb.Frame_Identify{Identify: &pb.Identify{Token: goodToken}}})
	if f := c.read(); f.GetReady() == nil {
		t.Fatalf("identify after invalid_session: %v", f)
	}

	// Missed more than the buffer holds.
	c2 := h.dial(t, false)
	ready := c2.identify()
	c2.mustSubscribe(50)
	c2.conn.CloseNow()
	checkFor(t, wait, time.Millisecond, func() error {
		h.node.sessMu.Lock()
		defer h.node.sessMu.Unlock()
		if h.node.detached[ready.SessionId] == nil {
			return fmt.Errorf("not detached")
		}
		return nil
	})
	h.deliver(t, messageEvent(50, 1, "a"), messageEvent(50, 2, "b"), messageEvent(50, 3, "c"))
	h.waitDetachedSeq(t, ready.SessionId, 3)
	invalid(h.dial(t, false), ready.SessionId, 0) // seq 1 was dropped from a buffer of 2
	// The session is gone now, and with it the route.
	checkFor(t, wait, time.Millisecond, func() error {
		if got := h.svc.Nodes(50); got != nil {
			return fmt.Errorf("Nodes(50) = %v", got)
		}
		return nil
	})

	// A client that logs off with a normal close cannot resume.
	c3 := h.dial(t, false)
	ready3 := c3.identify()
	c3.conn.Close(websocket.StatusNormalClosure, "bye")
	invalid(h.dial(t, false), ready3.SessionId, 0)
}

func TestResumeWindowExpires(t *testing.T) {
	h := mustHarness(t, Config{ResumeWindow: 20 * time.Millisecond})
	c := h.dial(t, false)
	ready := c.identify()
	c.mustSubscribe(60)
	c.conn.CloseNow()
	checkFor(t, wait, time.Millisecond, func() error {
		if got := h.svc.Nodes(60); got != nil {
			return fmt.Errorf("Nodes(60) = %v after the window", got)
		}
		return nil
	})
	if _, end := h.dial(t, false).resume(ready.SessionId, 0); end.GetInvalidSession() == nil {
		t.Fatalf("resume after the window: %v", end)
	}
}

// TestSlowConsumerResumes: a client closed for not keeping up loses
// nothing: it resumes and gets every event.
func TestSlowConsumerResumes(t *testing.T) {
	h := mustHarness(t, Config{QueueLen: 4})
	c := h.dial(t, false)
	ready := c.identify()
	c.mustSubscribe(70)
	// 50 events of 256 KiB: more than the loopback socket buffers hold,
	// so the queue of 4 overflows whatever the scheduling, while the
	// client does not read.
	const n = 50
	big := strings.Repeat("x", 256<<10)
	events := make([]*pb.Event, n)
	for i := range events {
		events[i] = messageEvent(70, uint64(i+1), big)
	}
	for i := 0; i < n; i += 10 {
		h.deliver(t, events[i:i+10]...)
	}
	// Wait until the server closed the session and numbered it all.
	checkFor(t, wait, time.Millisecond, func() error {
		h.node.sessMu.Lock()
		var found *session
		for s := range h.node.sessions {
			if s.id == ready.SessionId {
				found = s
			}
		}
		if found == nil {
			found = h.node.detached[ready.SessionId]
		}
		h.node.sessMu.Unlock()
		if found == nil {
			return fmt.Errorf("session gone")
		}
		found.mu.Lock()
		defer found.mu.Unlock()
		if found.closeCode != CloseSlowConsumer || found.seq != n {
			return fmt.Errorf("close code %d, seq %d", found.closeCode, found.seq)
		}
		return nil
	})
	// Read what arrived before the close, remembering the last seq.
	var last uint64
	for {
		f, err := c.next()
		if err != nil {
			if websocket.CloseStatus(err) != CloseSlowConsumer {
				t.Fatalf("closed with %v, want %d", err, CloseSlowConsumer)
			}
			break
		}
		if f.Seq != 0 {
			last = f.Seq
		}
	}
	h.waitDetachedSeq(t, ready.SessionId, n) // the client's close reply lets the server detach it
	again := h.dial(t, false)
	replayed, end := again.resume(ready.SessionId, last)
	if end.GetResumed() == nil {
		t.Fatalf("resume: %v", end)
	}
	if int(last)+len(replayed) != n {
		t.Fatalf("saw %d, replayed %d, want %d in all", last, len(replayed), n)
	}
	for i, f := range replayed {
		if f.Seq != last+uint64(i)+1 || !proto.Equal(f.GetEvent(), events[last+uint64(i)]) {
			t.Fatalf("replayed[%d] = %v", i, f)
		}
	}
}

// waitDetachedSeq waits until the detached session id has numbered seq
// dispatches.
func (h *harness) waitDetachedSeq(tb testing.TB, id string, seq uint64) {
	tb.Helper()
	checkFor(tb, wait, time.Millisecond, func() error {
		h.node.sessMu.Lock()
		s := h.node.detached[id]
		h.node.sessMu.Unlock()
		if s == nil {
			return fmt.Errorf("session %s not detached", id)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.seq < seq {
			return fmt.Errorf("seq %d, want %d", s.seq, seq)
		}
		return nil
	})
}
