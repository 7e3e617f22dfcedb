package link

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// documentedClose are the codes a session may end with (docs/gateway.md).
var documentedClose = map[websocket.StatusCode]bool{
	CloseUnknownError: true, CloseUnknownFrame: true, CloseDecodeError: true, CloseNotAuthenticated: true,
	CloseAuthFailed: true, CloseAlreadyIdentified: true, CloseRateLimited: true, CloseSessionTimeout: true,
	CloseSlowConsumer: true, CloseServiceRestart: true, CloseMessageTooBig: true, CloseSessionMoved: true,
}

// splitFrames cuts the fuzzer's bytes into at most 16 messages: each is a
// length byte (its top bit: send as the other message type) and then that
// many bytes.
func splitFrames(data []byte) (msgs [][]byte, flip []bool) {
	for len(data) > 0 && len(msgs) < 16 {
		n := int(data[0] & 0x7f)
		other := data[0]&0x80 != 0
		data = data[1:]
		n = min(n, len(data))
		msgs, flip = append(msgs, data[:n]), append(flip, other)
		data = data[n:]
	}
	return msgs, flip
}

func joinFrames(frames ...[]byte) []byte {
	var out []byte
	for _, f := range frames {
		out = append(out, byte(len(f)))
		out = append(out, f...)
	}
	return out
}

// FuzzSession writes arbitrary frames to a live session. Whatever they
// are, the session either ends with a documented close code or still
// answers a request afterwards; it never panics, hangs or drops the
// connection without a code.
func FuzzSession(f *testing.F) {
	h := mustHarness(f, Config{MaxFrame: 100, FramesPerSecond: 1000})
	enc := func(json bool, fr *pb.Frame) []byte {
		var b []byte
		if json {
			b, _ = jsonOut.Marshal(fr)
		} else {
			b, _ = proto.Marshal(fr)
		}
		return b
	}
	for _, json := range []bool{false, true} {
		frames := seedFrames()
		var all [][]byte
		for _, fr := range frames {
			all = append(all, enc(json, fr))
		}
		f.Add(json, true, joinFrames(all[1:5]...))  // the requests, identified
		f.Add(json, false, joinFrames(all...))      // identify first, then the rest
		f.Add(json, false, joinFrames(all[1]))      // before identify
		f.Add(json, true, joinFrames(all[0]))       // identify twice
		f.Add(json, true, joinFrames([]byte{0xff})) // garbage
		f.Add(json, true, []byte{0x81, 0x00})       // wrong message type
		f.Add(json, true, joinFrames(enc(json, &pb.Frame{Ref: "r", Body: &pb.Frame_Subscribe{Subscribe: &pb.Subscribe{ChannelIds: []uint64{5000}}}})))
		f.Add(json, true, joinFrames(all[8:11]...)) // ack, server subscribe, server unsubscribe
		f.Add(json, false, joinFrames(all[11]))     // resume of another node's session
	}
	f.Add(true, true, joinFrames([]byte(`{"identify":null}`), []byte(`{"subscribe":{}}`), []byte(`{"send_message":{}}`)))

	var n int
	f.Fuzz(func(t *testing.T, json, identify bool, data []byte) {
		n++
		c := h.dial(t, json)
		defer c.conn.CloseNow()
		if identify {
			c.identify()
		}
		typ := websocket.MessageBinary
		other := websocket.MessageText
		if json {
			typ, other = other, typ
		}
		msgs, flip := splitFrames(data)
		for i, m := range msgs {
			mt := typ
			if flip[i] {
				mt = other
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			err := c.conn.Write(ctx, mt, m)
			cancel()
			if err != nil {
				break // the server closed: the code is read below
			}
		}
		// A probe the session answers if it is still up (unsubscribing from
		// nothing is always ok once identified).
		ref := fmt.Sprintf("probe-%d", n)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		_ = c.conn.Write(ctx, typ, enc(json, &pb.Frame{Ref: ref, Body: &pb.Frame_Unsubscribe{Unsubscribe: &pb.Unsubscribe{}}}))
		cancel()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			fr, err := c.next()
			if err != nil {
				if code := websocket.CloseStatus(err); !documentedClose[code] {
					t.Fatalf("session ended with %v, not a documented close code", err)
				}
				return
			}
			if fr.Ref == ref {
				if fr.GetOk() == nil {
					t.Fatalf("probe answered %v", fr)
				}
				return
			}
		}
		t.Fatal("no answer to the probe and no close")
	})
}
