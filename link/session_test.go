package link

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

var encodings = []struct {
	name string
	json bool
}{{"proto", false}, {"json", true}}

func TestHello(t *testing.T) {
	h := mustHarness(t, Config{HeartbeatInterval: 1234 * time.Millisecond})
	for _, enc := range encodings {
		t.Run(enc.name, func(t *testing.T) {
			c := h.dial(t, enc.json)
			f := c.read()
			if f.GetHello().GetHeartbeatIntervalMs() != 1234 {
				t.Fatalf("first frame %v, want hello with heartbeat_interval_ms 1234", f)
			}
			c.write(&pb.Frame{Body: &pb.Frame_Identify{Identify: &pb.Identify{Token: goodToken}}})
			r := c.read().GetReady()
			if r.GetUser().GetId() != aliceID || r.GetSessionId() == "" || len(r.GetServers()) != 1 || len(r.GetChannels()) != 2 {
				t.Fatalf("ready = %v", r)
			}
		})
	}
}

func TestUnknownEncodingRefused(t *testing.T) {
	h := mustHarness(t, Config{})
	resp, err := h.srv.Client().Get(h.srv.URL + "?encoding=xml")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
}

// TestCloseCodes: every protocol violation ends the connection with its
// documented close code.
func TestCloseCodes(t *testing.T) {
	h := mustHarness(t, Config{MaxFrame: 1024})
	identify := &pb.Frame{Body: &pb.Frame_Identify{Identify: &pb.Identify{Token: goodToken}}}
	for _, tc := range []struct {
		name string
		json bool
		run  func(c *client)
		code websocket.StatusCode
	}{
		{"bad token", false, func(c *client) {
			c.write(&pb.Frame{Body: &pb.Frame_Identify{Identify: &pb.Identify{Token: "nope"}}})
		}, CloseAuthFailed},
		{"bad token json", true, func(c *client) {
			c.write(&pb.Frame{Body: &pb.Frame_Identify{Identify: &pb.Identify{Token: "nope"}}})
		}, CloseAuthFailed},
		{"bad token, long reason", false, func(c *client) {
			c.write(&pb.Frame{Body: &pb.Frame_Identify{Identify: &pb.Identify{Token: "long-reason"}}})
		}, CloseAuthFailed},
		{"heartbeat before identify", false, func(c *client) {
			c.write(&pb.Frame{Body: &pb.Frame_Heartbeat{Heartbeat: &pb.Heartbeat{}}})
		}, CloseNotAuthenticated},
		{"subscribe before identify", true, func(c *client) {
			c.write(&pb.Frame{Body: &pb.Frame_Subscribe{Subscribe: &pb.Subscribe{ChannelIds: []uint64{1}}}})
		}, CloseNotAuthenticated},
		{"empty frame before identify", false, func(c *client) {
			c.writeRaw(websocket.MessageBinary, nil)
		}, CloseNotAuthenticated},
		{"identify twice", false, func(c *client) {
			c.identify()
			c.write(identify)
		}, CloseAlreadyIdentified},
		{"identify twice json", true, func(c *client) {
			c.identify()
			c.write(identify)
		}, CloseAlreadyIdentified},
		{"undecodable proto", false, func(c *client) {
			c.writeRaw(websocket.MessageBinary, []byte{0xff, 0xff, 0xff})
		}, CloseDecodeError},
		{"undecodable json", true, func(c *client) {
			c.writeRaw(websocket.MessageText, []byte(`{"identify":`))
		}, CloseDecodeError},
		{"unknown json field", true, func(c *client) {
			c.writeRaw(websocket.MessageText, []byte(`{"bogus":1}`))
		}, CloseDecodeError},
		{"invalid utf-8 in json", true, func(c *client) {
			c.writeRaw(websocket.MessageText, []byte("{\"identify\":{\"token\":\"\xff\xfe\xc3\"}}"))
		}, CloseDecodeError},
		{"unknown non-ASCII json field", true, func(c *client) {
			// The error quotes the name; cut to fit a close reason, it must
			// stay UTF-8 (expectClose checks).
			c.writeRaw(websocket.MessageText, []byte(`{"`+strings.Repeat("ü", 60)+`":1}`))
		}, CloseDecodeError},
		{"unknown non-ASCII json field, odd", true, func(c *client) {
			c.writeRaw(websocket.MessageText, []byte(`{"a`+strings.Repeat("ü", 60)+`":1}`))
		}, CloseDecodeError},
		{"binary frame on json", true, func(c *client) {
			c.writeRaw(websocket.MessageBinary, []byte{0x0a, 0x00})
		}, CloseDecodeError},
		{"text frame on proto", false, func(c *client) {
			c.writeRaw(websocket.MessageText, []byte(`{"identify":{"token":"token-alice"}}`))
		}, CloseDecodeError},
		{"ref too long", false, func(c *client) {
			c.identify()
			c.write(&pb.Frame{Ref: string(bytes.Repeat([]byte("r"), 65)), Body: &pb.Frame_Heartbeat{Heartbeat: &pb.Heartbeat{}}})
		}, CloseDecodeError},
		{"oversized", false, func(c *client) {
			c.writeRaw(websocket.MessageBinary, make([]byte, 1025))
		}, CloseMessageTooBig},
		{"oversized json", true, func(c *client) {
			c.identify()
			c.write(&pb.Frame{Body: &pb.Frame_SendMessage{SendMessage: &pb.SendMessage{ChannelId: 1, Content: string(bytes.Repeat([]byte("x"), 2000))}}})
		}, CloseMessageTooBig},
		{"server frame from client", false, func(c *client) {
			c.identify()
			c.write(&pb.Frame{Body: &pb.Frame_Ready{Ready: &pb.Ready{}}})
		}, CloseUnknownFrame},
		{"no body", true, func(c *client) {
			c.identify()
			c.writeRaw(websocket.MessageText, []byte(`{"ref":"x"}`))
		}, CloseUnknownFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial(t, tc.json)
			tc.run(c)
			c.expectClose(tc.code)
		})
	}
}

func TestIdentifyTimeout(t *testing.T) {
	h := mustHarness(t, Config{IdentifyTimeout: 50 * time.Millisecond, HeartbeatInterval: time.Hour})
	c := h.dial(t, false)
	frames := c.expectClose(CloseSessionTimeout)
	if len(frames) != 1 || frames[0].GetHello() == nil {
		t.Fatalf("frames before the close: %v, want only hello", frames)
	}
	// Frames other than identify do not extend the deadline: they close.
	c = h.dial(t, false)
	c.read()
	c.write(&pb.Frame{Body: &pb.Frame_Heartbeat{Heartbeat: &pb.Heartbeat{}}})
	c.expectClose(CloseNotAuthenticated)
}

func TestIdentifiedSessionOutlivesIdentifyTimeout(t *testing.T) {
	h := mustHarness(t, Config{IdentifyTimeout: 20 * time.Millisecond, HeartbeatInterval: time.Hour, FramesPerSecond: 1e6})
	c := h.dial(t, false)
	c.identify()
	// Keep talking well past the identify timeout: the session stays.
	for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
		c.write(&pb.Frame{Body: &pb.Frame_Heartbeat{Heartbeat: &pb.Heartbeat{}}})
		if r := c.read(); r.GetHeartbeatAck() == nil {
			t.Fatalf("got %v, want heartbeat_ack", r)
		}
	}
}

func TestHeartbeatAck(t *testing.T) {
	h := mustHarness(t, Config{})
	for _, enc := range encodings {
		t.Run(enc.name, func(t *testing.T) {
			c := h.dial(t, enc.json)
			c.identify()
			for i := range 5 {
				c.write(&pb.Frame{Body: &pb.Frame_Heartbeat{Heartbeat: &pb.Heartbeat{LastSeq: uint64(i)}}})
				if f := c.read(); f.GetHeartbeatAck() == nil {
					t.Fatalf("got %v, want heartbeat_ack", f)
				}
			}
		})
	}
}

func TestMissedHeartbeats(t *testing.T) {
	h := mustHarness(t, Config{HeartbeatInterval: 40 * time.Millisecond})
	c := h.dial(t, true)
	c.identify()
	frames := c.expectClose(CloseSessionTimeout)
	if len(frames) != 0 {
		t.Fatalf("unexpected frames %v", frames)
	}
}

func TestRateLimit(t *testing.T) {
	h := mustHarness(t, Config{FramesPerSecond: 1}) // burst 2
	c := h.dial(t, false)
	c.identify() // 1 frame
	for range 20 {
		typ, b := c.encode(&pb.Frame{Body: &pb.Frame_Heartbeat{Heartbeat: &pb.Heartbeat{}}})
		if err := c.conn.Write(t.Context(), typ, b); err != nil {
			break // closed already
		}
	}
	c.expectClose(CloseRateLimited)
}

func TestSubscribeRefused(t *testing.T) {
	h := mustHarness(t, Config{})
	h.dir.deny[5] = true
	c := h.dial(t, false)
	c.identify()
	for _, chans := range [][]uint64{{5}, {1, 5}, {4000}} {
		r := c.subscribe("refused", chans...)
		if r.Ref != "refused" || r.GetError().GetCode() != "not_found" {
			t.Fatalf("subscribe %v: %v, want error not_found with ref", chans, r)
		}
	}
	// All or nothing: channel 1 was not subscribed by the refused {1, 5}.
	for _, ch := range []uint64{1, 5} {
		if got := h.svc.Nodes(ch); got != nil {
			t.Errorf("Nodes(%d) = %v after a refused subscribe", ch, got)
		}
	}
	c.mustSubscribe(2)
	h.deliver(t, messageEvent(5, 1, "secret"), messageEvent(1, 2, "not followed"), messageEvent(2, 3, "hello"))
	f := c.read()
	if f.Seq != 1 || f.GetEvent().GetChannelId() != 2 {
		t.Fatalf("got %v, want only channel 2's event with seq 1", f)
	}
}

func TestSubscribeLimits(t *testing.T) {
	h := mustHarness(t, Config{MaxSubscriptions: 3})
	c := h.dial(t, true)
	c.identify()
	many := make([]uint64, 101)
	for i := range many {
		many[i] = uint64(i + 1)
	}
	for _, chans := range [][]uint64{nil, many, {1, 2, 3, 4}} {
		if r := c.subscribe("lim", chans...); r.GetError().GetCode() != "invalid_argument" {
			t.Fatalf("subscribe %d channels: %v, want invalid_argument", len(chans), r)
		}
	}
	c.mustSubscribe(1, 2)
	c.mustSubscribe(2, 3) // 2 again is no new subscription
	if r := c.subscribe("lim", 4); r.GetError().GetCode() != "invalid_argument" {
		t.Fatalf("4th channel: %v, want invalid_argument", r)
	}
	if r := c.request("u", &pb.Frame{Body: &pb.Frame_Unsubscribe{Unsubscribe: &pb.Unsubscribe{ChannelIds: many}}}); r.GetError().GetCode() != "invalid_argument" {
		t.Fatalf("unsubscribe 101 channels: %v", r)
	}
}

func TestSendMessage(t *testing.T) {
	h := mustHarness(t, Config{})
	for _, enc := range encodings {
		t.Run(enc.name, func(t *testing.T) {
			c := h.dial(t, enc.json)
			c.identify()
			r := c.request("send-1", &pb.Frame{Body: &pb.Frame_SendMessage{SendMessage: &pb.SendMessage{ChannelId: 1, Content: "hi", Nonce: "n1"}}})
			m := r.GetSent().GetMessage()
			if m.GetContent() != "hi" || m.GetNonce() != "n1" || m.GetAuthorId() != aliceID || m.GetChannelId() != 1 || m.GetId() == 0 {
				t.Fatalf("reply %v, want sent with the message", r)
			}
			r = c.request("send-2", &pb.Frame{Body: &pb.Frame_SendMessage{SendMessage: &pb.SendMessage{ChannelId: 1}}})
			if r.GetError().GetCode() != "invalid_argument" || r.GetError().GetMessage() != "empty message" {
				t.Fatalf("reply %v, want invalid_argument", r)
			}
		})
	}
}
