package link

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// TestCodecBatch: a batch built from encoded frames is exactly the Batch
// frame proto.Marshal would make, and its JSON parses to the same frame.
func TestCodecBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		n := 1 + r.IntN(20)
		want := &pb.Batch{}
		var protoFrames, jsonFrames [][]byte
		for i := range n {
			ev := randomEvent(r)
			enc, err := encodeEvent(ev)
			if err != nil {
				t.Fatal(err)
			}
			seq := uint64(i + 1)
			want.Frames = append(want.Frames, &pb.Frame{Seq: seq, Body: &pb.Frame_Event{Event: ev}})
			protoFrames = append(protoFrames, codec{}.frame(seq, enc))
			jsonFrames = append(jsonFrames, codec{json: true}.frame(seq, enc))
		}
		wantFrame := &pb.Frame{Body: &pb.Frame_Batch{Batch: want}}
		wantBytes, err := proto.Marshal(wantFrame)
		if err != nil {
			t.Fatal(err)
		}
		if got := (codec{}).batch(protoFrames); !bytes.Equal(got, wantBytes) {
			t.Fatalf("batch of %d:\ngot  %x\nwant %x", n, got, wantBytes)
		}
		var back pb.Frame
		js := codec{json: true}.batch(jsonFrames)
		if err := jsonIn.Unmarshal(js, &back); err != nil {
			t.Fatalf("%s does not parse: %v", js, err)
		}
		if !proto.Equal(&back, wantFrame) {
			t.Fatalf("json batch parses to %v, want %v", &back, wantFrame)
		}
	}
}

// TestBatching: a client that accepts batches gets queued frames together,
// in order, and a client that does not never sees a batch.
func TestBatching(t *testing.T) {
	h := mustHarness(t, Config{})
	for _, enc := range encodings {
		t.Run(enc.name, func(t *testing.T) {
			batched, plain := h.dial(t, enc.json), h.dial(t, enc.json)
			for _, c := range []*client{batched, plain} {
				if f := c.read(); f.GetHello() == nil {
					t.Fatalf("first frame %v", f)
				}
			}
			batched.write(&pb.Frame{Body: &pb.Frame_Identify{Identify: &pb.Identify{Token: goodToken, Batch: true}}})
			plain.write(&pb.Frame{Body: &pb.Frame_Identify{Identify: &pb.Identify{Token: goodToken}}})
			for _, c := range []*client{batched, plain} {
				if f := c.read(); f.GetReady() == nil {
					t.Fatalf("got %v, want ready", f)
				}
				c.mustSubscribe(7)
			}
			const n = 200
			events := make([]*pb.Event, n)
			for i := range events {
				events[i] = messageEvent(7, uint64(i+1), "m")
			}
			h.deliver(t, events...) // one bus message: queued faster than written

			read := func(c *client) (frames []*pb.Frame, batches int) {
				for len(frames) < n {
					f := c.read()
					if b := f.GetBatch(); b != nil {
						batches++
						frames = append(frames, b.Frames...)
						continue
					}
					frames = append(frames, f)
				}
				return frames, batches
			}
			for _, c := range []struct {
				c       *client
				batched bool
			}{{batched, true}, {plain, false}} {
				frames, batches := read(c.c)
				if !c.batched && batches > 0 {
					t.Errorf("a client without batch got %d batches", batches)
				}
				for i, f := range frames {
					if f.Seq != uint64(i+1) || !proto.Equal(f.GetEvent(), events[i]) {
						t.Fatalf("batched=%v: frame %d = %v", c.batched, i, f)
					}
				}
			}
		})
	}
}

// TestCompression: with Compression on, a client that offers
// permessage-deflate gets it and the session works as usual; with it off,
// the offer is declined.
func TestCompression(t *testing.T) {
	for _, on := range []bool{true, false} {
		h := mustHarness(t, Config{Compression: on})
		url := "ws" + strings.TrimPrefix(h.srv.URL, "http") + "?encoding=json"
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{CompressionMode: websocket.CompressionNoContextTakeover})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.CloseNow() })
		got := strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
		if got != on {
			t.Fatalf("Compression=%v: extensions %q", on, resp.Header.Get("Sec-WebSocket-Extensions"))
		}
		c := &client{tb: t, conn: conn, json: true}
		c.identify()
		c.mustSubscribe(3)
		ev := messageEvent(3, 1, strings.Repeat("compressible ", 100))
		h.deliver(t, ev)
		readEvents(t, c, 1, ev)
	}
}

// TestTyping: typing frames are acknowledged, passed on at most once per
// typingEvery per channel, and refused for channels the sender refuses;
// typing events are delivered like other events.
func TestTyping(t *testing.T) {
	h := mustHarness(t, Config{})
	c := h.dial(t, false)
	c.identify()
	typing := func(ref string, ch uint64) *pb.Frame {
		return c.request(ref, &pb.Frame{Body: &pb.Frame_Typing{Typing: &pb.Typing{ChannelId: ch}}})
	}
	if r := typing("t1", 5); r.GetOk() == nil {
		t.Fatalf("typing: %v", r)
	}
	if r := typing("t2", 5); r.GetOk() == nil { // throttled, still acknowledged
		t.Fatalf("second typing: %v", r)
	}
	if r := typing("t3", 4242); r.GetError().GetCode() != "not_found" {
		t.Fatalf("typing in a refused channel: %v", r)
	}
	c.mustSubscribe(5)
	ev := &pb.Event{ServerId: serverID, ChannelId: 5, Kind: &pb.Event_TypingStart{TypingStart: &pb.TypingStart{UserId: aliceID}}}
	h.deliver(t, ev)
	readEvents(t, c, 1, ev)
}
