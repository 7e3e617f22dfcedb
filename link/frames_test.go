package link

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// randomEvent makes an event of any kind with random IDs and content.
func randomEvent(r *rand.Rand) *pb.Event {
	ch := r.Uint64()
	ev := &pb.Event{ServerId: r.Uint64N(1 << 62), ChannelId: ch}
	text := func() string {
		runes := []rune("aé€𝄞 \"\\<>&\n\t\x00\u2028")
		var b strings.Builder
		for range r.IntN(300) {
			b.WriteRune(runes[r.IntN(len(runes))])
		}
		return b.String()
	}
	msg := func() *pb.Message {
		m := &pb.Message{
			Id: r.Uint64(), ChannelId: ch, ServerId: ev.ServerId, AuthorId: r.Uint64(), Content: text(), Seq: r.Uint64(),
			CreatedAt: timestamppb.New(time.Unix(r.Int64N(1<<33), r.Int64N(1e9)).UTC()), Nonce: text(),
		}
		if r.IntN(2) == 0 {
			m.EditedAt = timestamppb.New(time.Unix(r.Int64N(1<<33), 0).UTC())
		}
		return m
	}
	switch r.IntN(4) {
	case 0:
		ev.Kind = &pb.Event_MessageCreate{MessageCreate: msg()}
	case 1:
		ev.Kind = &pb.Event_MessageUpdate{MessageUpdate: msg()}
	case 2:
		ev.Kind = &pb.Event_MessageDelete{MessageDelete: &pb.MessageDelete{Id: r.Uint64(), ChannelId: ch, ServerId: ev.ServerId, Seq: r.Uint64()}}
	default: // no kind: only the IDs
	}
	return ev
}

// TestCodecFrame: the dispatch frames built by hand around a pre-encoded
// event are exactly what encoding the whole frame would give.
func TestCodecFrame(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	seqs := []uint64{1, 2, 127, 128, 300, 1 << 32, math.MaxInt64, math.MaxUint64}
	for i := range 2000 {
		seq := r.Uint64() >> r.UintN(64)
		if i < len(seqs) {
			seq = seqs[i]
		}
		if seq == 0 { // seq 0 never goes out: dispatches start at 1
			seq = 1
		}
		ev := randomEvent(r)
		enc, err := encodeEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		want := &pb.Frame{Seq: seq, Body: &pb.Frame_Event{Event: ev}}

		got := codec{}.frame(seq, enc)
		wantBytes, err := proto.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, wantBytes) {
			t.Fatalf("seq %d, event %v:\nframe   %x\nMarshal %x", seq, ev, got, wantBytes)
		}

		js := codec{json: true}.frame(seq, enc)
		var back pb.Frame
		if err := jsonIn.Unmarshal(js, &back); err != nil {
			t.Fatalf("seq %d: %s does not parse: %v", seq, js, err)
		}
		if !proto.Equal(&back, want) {
			t.Fatalf("seq %d: %s parses to %v, want %v", seq, js, &back, want)
		}
		// And the session's generic path agrees.
		var viaMarshal pb.Frame
		m, err := codec{json: true}.marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if err := (codec{json: true}).unmarshal(websocket.MessageText, m, &viaMarshal); err != nil || !proto.Equal(&viaMarshal, &back) {
			t.Fatalf("marshal/unmarshal: %v, %v", err, &viaMarshal)
		}
	}
}

func TestAppendUint(t *testing.T) {
	for _, v := range []uint64{0, 1, 9, 10, 99, 100, 12345678901234567890, math.MaxUint64} {
		if got, want := string(appendUint([]byte("x"), v)), "x"+strconv.FormatUint(v, 10); got != want {
			t.Errorf("appendUint(%d) = %s", v, got)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 80, "short"},
		{"abcdef", 3, "abc"},
		{"aü", 2, "a"},
		{"üü", 3, "ü"},
		{"a\xffb", 80, "a?b"},
		{"𝄞𝄞", 5, "𝄞"},
	} {
		if got := truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// seedFrames are valid client (and a few server) frames.
func seedFrames() []*pb.Frame {
	return []*pb.Frame{
		{Body: &pb.Frame_Identify{Identify: &pb.Identify{Token: goodToken}}},
		{Body: &pb.Frame_Heartbeat{Heartbeat: &pb.Heartbeat{LastSeq: 42}}},
		{Ref: "s1", Body: &pb.Frame_Subscribe{Subscribe: &pb.Subscribe{ChannelIds: []uint64{1, 2, 3}}}},
		{Ref: "u1", Body: &pb.Frame_Unsubscribe{Unsubscribe: &pb.Unsubscribe{ChannelIds: []uint64{2}}}},
		{Ref: "m1", Body: &pb.Frame_SendMessage{SendMessage: &pb.SendMessage{ChannelId: 1, Content: "hello ü", Nonce: "n"}}},
		{Seq: 3, Body: &pb.Frame_Event{Event: randomEvent(rand.New(rand.NewPCG(3, 4)))}},
		{Body: &pb.Frame_Hello{Hello: &pb.Hello{HeartbeatIntervalMs: 30000}}},
		{},
		{Ref: "a1", Body: &pb.Frame_Ack{Ack: &pb.Ack{ChannelId: 1, MessageId: 9}}},
		{Ref: "s2", Body: &pb.Frame_Subscribe{Subscribe: &pb.Subscribe{ServerIds: []uint64{77}, Type: pb.SubscriptionType_SUBSCRIPTION_TYPE_UNREAD_COUNT}}},
		{Ref: "u2", Body: &pb.Frame_Unsubscribe{Unsubscribe: &pb.Unsubscribe{ServerIds: []uint64{77}}}},
		{Body: &pb.Frame_Resume{Resume: &pb.Resume{Token: goodToken, SessionId: "other-node.00", LastSeq: 3, Positions: []*pb.ChannelPosition{{ChannelId: 1, MessageId: 2}}}}},
	}
}

// FuzzFrameDecode: no client bytes make the decoders panic, and what
// decodes survives a round trip.
func FuzzFrameDecode(f *testing.F) {
	for _, fr := range seedFrames() {
		b, _ := proto.Marshal(fr)
		f.Add(b)
		j, _ := jsonOut.Marshal(fr)
		f.Add(j)
	}
	f.Add([]byte(`{"seq":"18446744073709551615","ref":"x","identify":{"token":"\u0000"}}`))
	f.Add([]byte(`{"subscribe":{"channel_ids":["1",2,"0x3",-1,1e3]}}`))
	f.Add([]byte(`{"identify":null,"heartbeat":{}}`))
	f.Add([]byte{0xf2, 0x01, 0x00, 0xfa, 0x01, 0x02, 0x08, 0x01})
	f.Add([]byte{0x82, 0x02, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []codec{{}, {json: true}} {
			var fr pb.Frame
			if err := c.unmarshal(c.messageType(), data, &fr); err != nil {
				continue
			}
			out, err := c.marshal(&fr)
			if err != nil {
				t.Fatalf("json %v: decoded %v but cannot encode it: %v", c.json, &fr, err)
			}
			var again pb.Frame
			if err := c.unmarshal(c.messageType(), out, &again); err != nil || !proto.Equal(&fr, &again) {
				t.Fatalf("json %v: round trip of %v gave %v (%v)", c.json, &fr, &again, err)
			}
		}
		// The wrong message type never decodes.
		var fr pb.Frame
		if (codec{}).unmarshal(websocket.MessageText, data, &fr) == nil || (codec{json: true}).unmarshal(websocket.MessageBinary, data, &fr) == nil {
			t.Fatal("a frame of the wrong message type decoded")
		}
	})
}
