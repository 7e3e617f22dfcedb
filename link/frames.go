package link

import (
	"github.com/coder/websocket"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// Close codes of the gateway, documented in docs/gateway.md. Codes below
// 4000 are the standard WebSocket ones.
const (
	CloseUnknownError      websocket.StatusCode = 4000 // something went wrong on our side; reconnect
	CloseUnknownFrame      websocket.StatusCode = 4001 // a frame the server does not accept here
	CloseDecodeError       websocket.StatusCode = 4002 // a frame that does not decode
	CloseNotAuthenticated  websocket.StatusCode = 4003 // a frame other than identify before identify
	CloseAuthFailed        websocket.StatusCode = 4004 // the token is invalid, expired or revoked
	CloseAlreadyIdentified websocket.StatusCode = 4005 // identify sent twice
	CloseRateLimited       websocket.StatusCode = 4008 // too many frames
	CloseSessionTimeout    websocket.StatusCode = 4009 // no heartbeat (or identify) in time
	CloseSlowConsumer      websocket.StatusCode = 4010 // the client did not read its events fast enough
	CloseServiceRestart                         = websocket.StatusServiceRestart
	CloseMessageTooBig                          = websocket.StatusMessageTooBig
)

// codec encodes frames in one of the two gateway encodings.
type codec struct {
	json bool
}

var (
	jsonOut = protojson.MarshalOptions{UseProtoNames: true}
	jsonIn  = protojson.UnmarshalOptions{}
)

func (c codec) messageType() websocket.MessageType {
	if c.json {
		return websocket.MessageText
	}
	return websocket.MessageBinary
}

func (c codec) marshal(f *pb.Frame) ([]byte, error) {
	if c.json {
		return jsonOut.Marshal(f)
	}
	return proto.Marshal(f)
}

func (c codec) unmarshal(typ websocket.MessageType, data []byte, f *pb.Frame) error {
	if typ != c.messageType() {
		return errWrongMessageType
	}
	if c.json {
		return jsonIn.Unmarshal(data, f)
	}
	return proto.Unmarshal(data, f)
}

type wrongTypeError struct{}

func (wrongTypeError) Error() string {
	return "binary frames carry protobuf, text frames JSON (?encoding=json); do not mix them"
}

var errWrongMessageType error = wrongTypeError{}

// encodedEvent is an event encoded once for every session that gets it;
// a session's frame is its own seq followed by these bytes.
type encodedEvent struct {
	proto []byte // the pb.Event, protobuf
	json  []byte // the pb.Event, protojson
	// droppable events (typing) may be left out for a session whose queue
	// is filling up, instead of closing it as a slow consumer.
	droppable bool
	// ch and mid (the ID of a created message, else 0) move the session's
	// position in the channel (see positions).
	ch, mid uint64
}

func encodeEvent(ev *pb.Event) (encodedEvent, error) {
	e := encodedEvent{droppable: ev.GetTypingStart() != nil, ch: ev.ChannelId, mid: ev.GetMessageCreate().GetId()}
	var err error
	if e.proto, err = proto.Marshal(ev); err != nil {
		return e, err
	}
	e.json, err = jsonOut.Marshal(ev)
	return e, err
}

// frame builds a dispatch frame {seq, event} without re-encoding the event.
// The layout is exactly what proto.Marshal / protojson would produce for
// pb.Frame{Seq: seq, Body: &pb.Frame_Event{...}}.
func (c codec) frame(seq uint64, ev encodedEvent) []byte {
	if c.json {
		b := make([]byte, 0, len(ev.json)+32)
		b = append(b, `{"seq":"`...)
		b = appendUint(b, seq)
		b = append(b, `","event":`...)
		b = append(b, ev.json...)
		return append(b, '}')
	}
	b := make([]byte, 0, len(ev.proto)+16)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, seq)
	b = protowire.AppendTag(b, 13, protowire.BytesType)
	return protowire.AppendBytes(b, ev.proto)
}

func appendUint(b []byte, v uint64) []byte {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, buf[i:]...)
}

// maxBatchBytes bounds the frames gathered into one Batch.
const maxBatchBytes = 64 << 10

// batch wraps already-encoded frames into one Batch frame, byte for byte
// what proto.Marshal / protojson would produce for
// pb.Frame{Body: &pb.Frame_Batch{Batch: &pb.Batch{Frames: ...}}}.
func (c codec) batch(frames [][]byte) []byte {
	if c.json {
		n := 24
		for _, f := range frames {
			n += len(f) + 1
		}
		b := make([]byte, 0, n)
		b = append(b, `{"batch":{"frames":[`...)
		for i, f := range frames {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, f...)
		}
		return append(b, "]}}"...)
	}
	inner := 0
	for _, f := range frames {
		inner += protowire.SizeTag(1) + protowire.SizeBytes(len(f))
	}
	b := make([]byte, 0, protowire.SizeTag(18)+protowire.SizeBytes(inner))
	b = protowire.AppendTag(b, 18, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	for _, f := range frames {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, f)
	}
	return b
}
