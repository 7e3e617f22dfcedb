package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// Field numbers of the gateway frames the client reads (proto/gateway.proto,
// proto/types.proto). Incoming frames are scanned with protowire instead of
// proto.Unmarshal: the load generator shares the CPU with the server, so
// every microsecond it spends per delivery is one the server does not get.
const (
	fFrameSeq     = 1
	fFrameRef     = 2
	fFrameHello   = 10
	fFrameReady   = 11
	fFrameHBAck   = 12
	fFrameEvent   = 13
	fFrameOk      = 14
	fFrameError   = 16
	fFrameRecon   = 17
	fFrameBatch   = 18
	fFrameResumed = 19
	fFrameInvalid = 20
	fReadySession = 1
	fResumedCount = 2
	fBatchFrames  = 1
	fHelloHB      = 1
	fEventCreate  = 10
	fMsgContent   = 5
	fMsgSeq       = 6
	fErrorCode    = 1
	subscribeRef  = "s"
	handshakeTime = 30 * time.Second
	writeTimeout  = 10 * time.Second
	readLimit     = 1 << 20 // batches are up to 64 KiB; ready can be large
)

// bufPool holds read buffers: a client holds one only while it reads a
// message, so 10,000 idle clients do not each keep one.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// client is one gateway connection of a worker, subscribed to one channel.
type client struct {
	w       *worker
	token   string
	channel uint64
	sh      *shard

	mu       sync.Mutex
	conn     *websocket.Conn
	hb       *time.Timer
	hbEvery  time.Duration
	quitting bool          // closed on purpose: its end is not an error
	done     chan struct{} // closed when the read loop has returned

	// Owned by the goroutine reading the connection (handshake, then read
	// loop); reset for every connection.
	helloMs  uint32
	ready    bool
	resumed  bool
	invalid  bool
	replayed int
	okRef    string // ref of the last ok
	errRef   string // ref of the last error
	errCode  string
	lastSeq  uint64 // message seq in the channel, for gap detection
	seq      atomic.Uint64

	// Kept across connections: what a resume needs.
	sessionID string
	others    []uint64 // channels of the server to opt out of (small servers are followed whole)

	firstAt atomic.Int64 // first delivery of the current phase on this connection (unix ns)
}

// connect opens a connection and either resumes the client's session
// (resume, when it has one) or identifies, opts out of the other channels
// and subscribes to its own. It returns once the session is live.
func (c *client) connect(ctx context.Context, resume bool) (how connectHow, err error) {
	ctx, cancel := context.WithTimeout(ctx, handshakeTime)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, c.w.url, &websocket.DialOptions{HTTPClient: c.w.hc})
	if err != nil {
		return 0, stepError("dial", err)
	}
	conn.SetReadLimit(readLimit)
	c.helloMs, c.ready, c.resumed, c.invalid, c.replayed = 0, false, false, false, 0
	c.okRef, c.errRef, c.errCode = "", "", ""
	c.firstAt.Store(0)
	fail := func(step string, err error) (connectHow, error) {
		conn.CloseNow()
		return 0, stepError(step, err)
	}
	if err := c.readUntil(ctx, conn, func() bool { return c.helloMs != 0 }); err != nil {
		return fail("hello", err)
	}
	how = identified
	if resume && c.sessionID != "" {
		r := &pb.Resume{Token: c.token, SessionId: c.sessionID, LastSeq: c.seq.Load(), Batch: c.w.batch}
		if err := writeFrame(ctx, conn, &pb.Frame{Body: &pb.Frame_Resume{Resume: r}}); err != nil {
			return fail("resume", err)
		}
		if err := c.readUntil(ctx, conn, func() bool { return c.resumed || c.invalid }); err != nil {
			return fail("resume", err)
		}
		how = resumed
		if c.invalid {
			how = invalidThenIdentified // identify on the same connection, as the docs say
		}
	}
	if !c.resumed {
		c.lastSeq = 0
		c.seq.Store(0)
		if err := writeFrame(ctx, conn, &pb.Frame{Body: &pb.Frame_Identify{Identify: &pb.Identify{Token: c.token, Batch: c.w.batch}}}); err != nil {
			return fail("identify", err)
		}
		if err := c.readUntil(ctx, conn, func() bool { return c.ready }); err != nil {
			return fail("identify", err)
		}
		// In a small server (fewer members than the server's
		// --small-server) a session follows every channel without
		// subscribing: opt out of the others so that each client follows
		// exactly its own channel.
		for i := 0; i < len(c.others); i += 100 {
			ref := "u" + strconv.Itoa(i)
			chans := c.others[i:min(i+100, len(c.others))]
			if err := c.request(ctx, conn, &pb.Frame{Ref: ref, Body: &pb.Frame_Unsubscribe{Unsubscribe: &pb.Unsubscribe{ChannelIds: chans}}}); err != nil {
				return fail("unsubscribe", err)
			}
		}
		sub := &pb.Frame{Ref: subscribeRef, Body: &pb.Frame_Subscribe{Subscribe: &pb.Subscribe{ChannelIds: []uint64{c.channel}}}}
		if err := c.request(ctx, conn, sub); err != nil {
			return fail("subscribe", err)
		}
	}
	done := make(chan struct{})
	c.mu.Lock()
	if c.quitting {
		c.mu.Unlock()
		conn.CloseNow()
		return 0, errors.New("closed while connecting")
	}
	c.conn, c.done = conn, done
	c.hbEvery = time.Duration(c.helloMs) * time.Millisecond
	// Heartbeats start at a random point of the interval so that 10,000
	// clients do not beat together.
	c.hb = time.AfterFunc(rand.N(c.hbEvery), func() { c.heartbeat(conn) })
	c.mu.Unlock()
	c.w.alive.Add(1)
	go c.readLoop(conn, done)
	return how, nil
}

// connectHow says how a connect brought the session up.
type connectHow int

const (
	identified            connectHow = iota + 1 // a new session
	resumed                                     // the old session, resumed
	invalidThenIdentified                       // resume refused (invalid_session), then a new session
)

// request sends a frame with a ref and waits for its ok.
func (c *client) request(ctx context.Context, conn *websocket.Conn, f *pb.Frame) error {
	if err := writeFrame(ctx, conn, f); err != nil {
		return err
	}
	if err := c.readUntil(ctx, conn, func() bool { return c.okRef == f.Ref || c.errRef == f.Ref }); err != nil {
		return err
	}
	if c.errRef == f.Ref {
		return errors.New("error " + c.errCode)
	}
	return nil
}

// readUntil reads frames until cond holds.
func (c *client) readUntil(ctx context.Context, conn *websocket.Conn, cond func() bool) error {
	for !cond() {
		if err := c.readOne(ctx, conn); err != nil {
			return err
		}
	}
	return nil
}

// readOne reads one WebSocket message and handles the frame(s) in it.
func (c *client) readOne(ctx context.Context, conn *websocket.Conn) error {
	typ, r, err := conn.Reader(ctx)
	if err != nil {
		return err
	}
	bp := bufPool.Get().(*[]byte)
	b, err := readAll(r, (*bp)[:0])
	if err == nil {
		if typ != websocket.MessageBinary {
			err = errors.New("text message on a protobuf connection")
		} else {
			c.sh.wsMessages.Add(1)
			err = c.handleFrame(b, time.Now().UnixNano(), false)
		}
	}
	*bp = b[:0]
	bufPool.Put(bp)
	return err
}

func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// readLoop reads until the connection ends; an end we did not ask for is
// counted by close code or error.
func (c *client) readLoop(conn *websocket.Conn, done chan struct{}) {
	defer close(done)
	var err error
	for err == nil {
		err = c.readOne(context.Background(), conn)
	}
	c.mu.Lock()
	quitting := c.quitting
	if c.conn == conn {
		c.conn = nil
		c.hb.Stop()
	}
	c.mu.Unlock()
	conn.CloseNow()
	c.w.alive.Add(-1)
	if !quitting {
		c.w.connectionEnded(err)
	}
}

func (c *client) heartbeat(conn *websocket.Conn) {
	c.mu.Lock()
	if c.conn != conn {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	err := writeFrame(ctx, conn, &pb.Frame{Body: &pb.Frame_Heartbeat{Heartbeat: &pb.Heartbeat{LastSeq: c.seq.Load()}}})
	cancel()
	if err != nil {
		return // the read loop sees the connection end
	}
	c.mu.Lock()
	if c.conn == conn {
		c.hb.Reset(c.hbEvery)
	}
	c.mu.Unlock()
}

// drop closes the connection abruptly (as a network loss or a client
// restart would) and waits for its read loop. It is not counted as an error.
func (c *client) drop() {
	c.mu.Lock()
	c.quitting = true
	conn, done := c.conn, c.done
	if c.hb != nil {
		c.hb.Stop()
	}
	c.mu.Unlock()
	if conn != nil {
		conn.CloseNow()
		<-done
	}
}

// closeNormal closes with 1000, which ends the session on the server (a
// session whose connection is cut is kept for resume), and waits for the
// read loop.
func (c *client) closeNormal() {
	c.mu.Lock()
	c.quitting = true
	conn, done := c.conn, c.done
	if c.hb != nil {
		c.hb.Stop()
	}
	c.mu.Unlock()
	if conn != nil {
		_ = conn.Close(websocket.StatusNormalClosure, "bench done")
		<-done
	}
}

// rearm allows the client to connect again after drop.
func (c *client) rearm() {
	c.mu.Lock()
	c.quitting = false
	c.mu.Unlock()
}

func writeFrame(ctx context.Context, conn *websocket.Conn, f *pb.Frame) error {
	b, err := proto.Marshal(f)
	if err != nil {
		return err
	}
	return conn.Write(ctx, websocket.MessageBinary, b)
}

// handleFrame scans one frame; inBatch is true for the frames of a batch.
func (c *client) handleFrame(b []byte, now int64, inBatch bool) error {
	var ref []byte
	var seq uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errDecode
		}
		b = b[n:]
		if typ != protowire.BytesType {
			var v uint64
			if typ == protowire.VarintType {
				v, n = protowire.ConsumeVarint(b)
			} else {
				n = protowire.ConsumeFieldValue(num, typ, b)
			}
			if n < 0 {
				return errDecode
			}
			b = b[n:]
			if num == fFrameSeq {
				seq = v
			}
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return errDecode
		}
		b = b[n:]
		switch num {
		case fFrameRef:
			ref = v
		case fFrameHello:
			c.helloMs = uint32(varintField(v, fHelloHB))
			if c.helloMs == 0 {
				c.helloMs = 30_000
			}
		case fFrameReady:
			c.ready = true
			c.sessionID = string(bytesField(v, fReadySession))
		case fFrameResumed:
			c.resumed = true
			c.replayed = int(varintField(v, fResumedCount))
		case fFrameInvalid:
			c.invalid = true
		case fFrameHBAck:
			c.sh.acks.Add(1)
		case fFrameEvent:
			if seq != 0 {
				c.seq.Store(seq)
			}
			c.handleEvent(v, now)
		case fFrameOk:
			c.okRef = string(ref)
		case fFrameError:
			c.errRef, c.errCode = string(ref), string(bytesField(v, fErrorCode))
			c.w.countError("error frame " + c.errCode)
		case fFrameRecon:
			c.w.countError("reconnect frame")
		case fFrameBatch:
			if inBatch {
				return errors.New("batch inside a batch")
			}
			c.sh.batches.Add(1)
			for len(v) > 0 {
				num, typ, n := protowire.ConsumeTag(v)
				if n < 0 || num != fBatchFrames || typ != protowire.BytesType {
					return errDecode
				}
				inner, m := protowire.ConsumeBytes(v[n:])
				if m < 0 {
					return errDecode
				}
				v = v[n+m:]
				if err := c.handleFrame(inner, now, true); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

var errDecode = errors.New("frame does not decode")

// handleEvent counts a message_create of the bench and its latency.
func (c *client) handleEvent(ev []byte, now int64) {
	msg := bytesField(ev, fEventCreate)
	if msg == nil {
		return
	}
	seq := varintField(msg, fMsgSeq)
	switch {
	case c.lastSeq == 0:
	case seq > c.lastSeq+1:
		c.sh.gaps.Add(seq - c.lastSeq - 1)
	case seq <= c.lastSeq:
		c.sh.reordered.Add(1)
	}
	c.lastSeq = max(c.lastSeq, seq)
	phase, sentAt, ok := parseContent(bytesField(msg, fMsgContent))
	if !ok {
		return
	}
	if phase != c.w.phase.Load() {
		c.sh.stale.Add(1)
		return
	}
	c.sh.delivered.Add(1)
	c.sh.lastDelivery.Store(now)
	c.sh.latency.record(now - sentAt)
	if c.firstAt.Load() == 0 {
		c.firstAt.Store(now)
	}
}

// bytesField returns the first length-delimited field num of a message.
func bytesField(b []byte, num protowire.Number) []byte {
	for len(b) > 0 {
		n2, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		if n2 == num && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			return v
		}
		if n = protowire.ConsumeFieldValue(n2, typ, b); n < 0 {
			return nil
		}
		b = b[n:]
	}
	return nil
}

// varintField returns the first varint field num of a message.
func varintField(b []byte, num protowire.Number) uint64 {
	for len(b) > 0 {
		n2, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0
		}
		b = b[n:]
		if n2 == num && typ == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(b)
			return v
		}
		if n = protowire.ConsumeFieldValue(n2, typ, b); n < 0 {
			return 0
		}
		b = b[n:]
	}
	return 0
}

// Message content is "bench <phase> <send time, unix ns> <padding>".
const contentPrefix = "bench "

func makeContent(phase uint64, sentAt int64, size int) string {
	b := make([]byte, 0, size)
	b = fmt.Appendf(b, "%s%d %d ", contentPrefix, phase, sentAt)
	for len(b) < size {
		b = append(b, 'x')
	}
	return string(b)
}

func parseContent(b []byte) (phase uint64, sentAt int64, ok bool) {
	if len(b) < len(contentPrefix) || string(b[:len(contentPrefix)]) != contentPrefix {
		return 0, 0, false
	}
	b = b[len(contentPrefix):]
	phase, b, ok = parseUint(b)
	if !ok {
		return 0, 0, false
	}
	ts, _, ok := parseUint(b)
	return phase, int64(ts), ok
}

func parseUint(b []byte) (uint64, []byte, bool) {
	var v uint64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + uint64(b[i]-'0')
	}
	if i == 0 || i > 19 {
		return 0, nil, false
	}
	if i < len(b) {
		i++ // the space
	}
	return v, b[i:], true
}

// stepError names the handshake step and, when the server closed the
// connection, its close code.
func stepError(step string, err error) error {
	if code := websocket.CloseStatus(err); code != -1 {
		return fmt.Errorf("%s: close %d", step, int(code))
	}
	return fmt.Errorf("%s: %w", step, err)
}
