package link

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/member"
	"github.com/guildhall/guildhall/message/natsrpc"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// Per-frame limits of client requests.
const (
	maxChannelsPerFrame = 100
	maxRef              = 64
	requestTimeout      = 10 * time.Second
)

type outFrame struct {
	data       []byte
	unread     bool                 // a marker: write the session's pending unread updates here
	closeAfter websocket.StatusCode // if set, close the connection after writing
	reason     string
}

// session is one gateway connection.
type session struct {
	n     *Node
	conn  *websocket.Conn
	codec codec
	id    string
	out   chan outFrame
	wake  chan struct{} // tells the writer the backlog has frames

	user  member.User // set once by identify, read only by the reader after
	batch atomic.Bool // the client accepts Batch frames

	lastTyping map[uint64]time.Time // reader only: when typing was last passed on, per channel

	mu           sync.Mutex // guards everything below and sends to out
	seq          uint64
	subs         map[uint64]uint64 // channel → permission version access was checked at
	replay       replayBuf         // the last dispatches, for resume
	detached     bool              // the connection ended; dispatches only go to replay
	movedTo      *session          // resumed on another connection: forward to it
	expiry       *time.Timer       // ends a detached session
	closeCode    websocket.StatusCode
	backlog      []outFrame                     // frames past the channel's capacity (and a resume's replay), newer than the channel's
	replaying    int                            // how many of backlog are replay, not counted against QueueLen
	visible      map[uint64][]uint64            // server → its channels this session saw in READY
	auto         map[uint64]uint64              // channel → server: followed because the server is small
	optOut       map[uint64]bool                // channels the client unsubscribed from: not followed automatically
	types        map[uint64]pb.SubscriptionType // channels followed as other than MESSAGES
	servers      map[uint64]pb.SubscriptionType // server-wide subscriptions
	viaServer    map[uint64]uint64              // channel → server: followed through a server subscription
	reads        map[uint64]*unread             // channel → read position and unread bookkeeping
	dirty        map[uint64]struct{}            // channels with an unread update to send at the next flush
	roles        map[uint64]roleSet             // server → roles the user holds, for role mentions
	markerQueued bool                           // an unread marker waits in the queue
	// Positions (positions.go): per channel, the newest message (ID) the
	// client is known to have as of dispatch confirmedSeq; newer ones are
	// in the replay buffer.
	confirmed    map[uint64]uint64 // channels without an entry: baseID
	baseID       uint64            // the message ID of the time the session identified
	confirmedSeq uint64
	floor        map[uint64]uint64 // after a takeover: message IDs at or below were sent already
	ckptDirty    bool              // changed since the last checkpoint
	catching     bool              // a takeover is rebuilding what the client missed: hold dispatches
	handedOver   bool              // another node took the session: nothing to keep here
	held         []heldEvent       // dispatches held while catching
	closed       bool
	closing      bool // a close handshake was started; closeDone is closed when it ends
	ended        bool // run is done with the connection: start no handshake any more
	closeDone    chan struct{}
}

func newSession(n *Node, conn *websocket.Conn, c codec) *session {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	conn.SetReadLimit(n.cfg.MaxFrame)
	return &session{
		n: n, conn: conn, codec: c, id: n.cfg.NodeID + "." + hex.EncodeToString(b),
		out:       make(chan outFrame, min(fastQueue, n.cfg.QueueLen)),
		wake:      make(chan struct{}, 1),
		subs:      make(map[uint64]uint64),
		replay:    replayBuf{cap: n.cfg.ResumeBuffer},
		closeDone: make(chan struct{}),

		lastTyping: make(map[uint64]time.Time),
	}
}

// run serves the connection until it ends and returns why the reader
// stopped. The reader owns the connection and runs the writer beside it.
func (s *session) run(ctx context.Context) (readErr error) {
	defer func() {
		// A close handshake in progress must get its code out before the
		// connection is cut.
		s.mu.Lock()
		s.ended = true
		closing := s.closing
		s.mu.Unlock()
		if closing {
			<-s.closeDone
		}
		s.conn.CloseNow()
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.writeLoop(gctx) })
	g.Go(func() error { readErr = s.readLoop(gctx); return readErr })
	_ = g.Wait()
	return readErr
}

// close closes the connection with a code, once. It does not block.
func (s *session) close(code websocket.StatusCode, reason string) {
	s.mu.Lock()
	s.closeLocked(code, reason)
	s.mu.Unlock()
}

// closeLocked starts the close handshake, once, in a goroutine that run
// waits for. s.mu is held.
func (s *session) closeLocked(code websocket.StatusCode, reason string) {
	s.closed = true
	if s.closeCode == 0 {
		s.closeCode = code
	}
	if s.closing || s.ended {
		return
	}
	s.closing = true
	go func() {
		defer close(s.closeDone)
		_ = s.conn.Close(code, reason)
	}()
}

// fastQueue is the capacity of a session's outbound channel. Frames past
// it wait in the session's overflow slice, up to QueueLen in all, so an
// idle session holds a small channel, not a QueueLen one.
const fastQueue = 8

// enqueueLocked queues a frame; a full queue means the client is not
// reading and is closed. Frames in the channel are always older than those
// in the overflow: while the overflow holds any, new frames go there too.
func (s *session) enqueueLocked(f outFrame) {
	if s.closed {
		return
	}
	if len(s.backlog) == 0 {
		select {
		case s.out <- f:
			return
		default:
		}
	}
	if s.queuedLocked() >= s.n.cfg.QueueLen {
		s.closeLocked(CloseSlowConsumer, "slow consumer: events were not read in time")
		return
	}
	s.overflowLocked(f)
}

// replayLocked queues a resume's replay: past the queue bound (the replay
// buffer bounds it), and not counted against it.
func (s *session) replayLocked(f outFrame) {
	s.replaying++
	s.overflowLocked(f)
}

// overflowLocked appends to the overflow, past any bound (a resume's
// replay is bounded by the replay buffer instead), and wakes the writer.
func (s *session) overflowLocked(f outFrame) {
	s.backlog = append(s.backlog, f)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// queuedLocked is how many frames wait for the writer, replay left out.
func (s *session) queuedLocked() int { return len(s.out) + len(s.backlog) - s.replaying }

func (s *session) send(f *pb.Frame) {
	data, err := s.codec.marshal(f)
	if err != nil {
		s.n.log.Error("encode frame", "err", err)
		s.close(CloseUnknownError, "internal error")
		return
	}
	s.mu.Lock()
	s.enqueueLocked(outFrame{data: data})
	s.mu.Unlock()
}

// dispatchAt hands an event to the session, published at permission
// version v of its server: in full for a channel followed as MESSAGES (or
// one that mentions the user), as an unread update otherwise. It reports
// false when the session must be checked again first (see recheck), or
// must learn its roles in the server first. A session that was resumed
// elsewhere forwards to its successor.
func (s *session) dispatchAt(pev *pb.Event, ev *encodedEvent, v uint64) bool {
	ch := pev.ChannelId
	s.mu.Lock()
	if next := s.movedTo; next != nil {
		s.mu.Unlock()
		return next.dispatchAt(pev, ev, v)
	}
	defer s.mu.Unlock()
	if s.catching {
		if _, ok := s.subs[ch]; ok {
			s.holdLocked(pev, ev, v)
		}
		return true
	}
	return s.deliverLocked(pev, ev, v)
}

// deliverLocked is dispatchAt with s.mu held.
func (s *session) deliverLocked(pev *pb.Event, ev *encodedEvent, v uint64) bool {
	ch := pev.ChannelId
	checked, ok := s.subs[ch]
	if !ok {
		return true // unsubscribed meanwhile: nothing to deliver
	}
	if checked < v {
		return false
	}
	if typ := s.types[ch]; typ != pb.SubscriptionType_SUBSCRIPTION_TYPE_MESSAGES {
		full, known := s.countLocked(pev, typ, v)
		if !known {
			return false
		}
		if full {
			s.dispatchLocked(ev)
		}
		s.kickUnreadLocked() // after the message: its update says it was counted
		return true
	} else if m := pev.GetMessageCreate(); m != nil {
		if m.Id <= s.floor[ch] {
			return true // rebuilt from history already
		}
		s.seenLocked(ch, pev.ServerId, m)
	}
	s.dispatchLocked(ev)
	return true
}

// dispatchLocked numbers and queues an event.
func (s *session) dispatchLocked(ev *encodedEvent) {
	live := !s.detached && !s.closed
	if ev.droppable && (!live || s.queuedLocked() >= s.n.cfg.QueueLen/2) {
		return // behind already: a typing indicator is not worth a disconnect
	}
	// Numbered and kept for a resume even when the connection is going:
	// a client closed for falling behind resumes and misses nothing.
	s.seq++
	if e, ok := s.replay.push(s.seq, ev); ok && e.seq > s.confirmedSeq {
		// Out of the buffer: a resume from before it is refused anyway.
		s.confirmLocked(e.seq, &e)
	}
	if live {
		s.enqueueLocked(outFrame{data: s.codec.frame(s.seq, *ev)})
	}
}

// current follows resumes to the session that holds the state now.
func (s *session) current() *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.movedTo != nil {
		return s.movedTo.current()
	}
	return s
}

// recheck asks again whether the session may follow ch, now that its
// server's permissions moved to version v. It drops the subscription if
// not, and reports whether the session may still get ch's events.
func (s *session) recheck(ctx context.Context, ev *pb.Event, v uint64) bool {
	s = s.current()
	ch := ev.ChannelId
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if !s.loadRoles(rctx, ev, v) {
		return false
	}
	_, version, err := s.n.dir.CanView(rctx, s.user.ID, ch)
	if err != nil {
		if k := guildhall.KindOf(err); k != guildhall.NotFound && k != guildhall.Forbidden {
			s.n.log.Warn("re-checking a subscription failed; dropping it", "channel", ch, "err", err)
		}
		if s.drop(ch) {
			s.n.unsubscribe1(s, ch)
		}
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[ch]; !ok {
		return false
	}
	s.subs[ch] = max(version, v)
	return true
}

// drop removes ch from the session's subscriptions and reports whether it
// was there.
func (s *session) drop(ch uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.subs[ch]
	delete(s.subs, ch)
	delete(s.auto, ch)
	delete(s.types, ch)
	delete(s.viaServer, ch)
	delete(s.dirty, ch)
	delete(s.confirmed, ch)
	s.ckptDirty = true
	return ok
}

// reconnect tells the client to connect again and closes with 1012.
func (s *session) reconnect() {
	data, _ := s.codec.marshal(&pb.Frame{Body: &pb.Frame_Reconnect{Reconnect: &pb.Reconnect{}}})
	s.mu.Lock()
	if !s.closed {
		if s.queuedLocked() < s.n.cfg.QueueLen {
			s.overflowLocked(outFrame{data: data, closeAfter: CloseServiceRestart, reason: "server restarting, reconnect"})
		} else {
			s.closeLocked(CloseServiceRestart, "server restarting, reconnect")
		}
	}
	s.mu.Unlock()
}

func (s *session) channels() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]uint64, 0, len(s.subs))
	for ch := range s.subs {
		list = append(list, ch)
	}
	return list
}

func (s *session) writeLoop(ctx context.Context) error {
	var pending []outFrame
	for {
		pending = pending[:0]
		select {
		case f := <-s.out: // older than anything in the overflow
			pending = append(pending, f)
		default:
			pending = s.takeBacklog(pending)
		}
		if len(pending) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-s.wake:
				continue
			case f := <-s.out:
				pending = append(pending, f)
			}
		}
		if s.batch.Load() {
			pending = s.gather(pending)
		}
		if done, err := s.write(ctx, pending); done || err != nil {
			return err
		}
	}
}

// takeBacklog appends the overflow to pending — only when the channel is
// empty (checked under the lock pushers hold), since the channel's frames
// are older.
func (s *session) takeBacklog(pending []outFrame) []outFrame {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.out) > 0 {
		return pending
	}
	pending = append(pending, s.backlog...)
	clear(s.backlog)
	s.backlog, s.replaying = s.backlog[:0], 0
	if cap(s.backlog) > fastQueue*4 {
		s.backlog = nil // a burst is over: give the memory back
	}
	return pending
}

// write sends frames, batched when there are several (the caller only
// gathers several for a client that accepts batches) — except a resume's
// backlog for a client that does not, which goes out frame by frame. It
// reports done when a frame closed the connection.
func (s *session) write(ctx context.Context, pending []outFrame) (done bool, err error) {
	pending = s.expandUnread(pending)
	if len(pending) == 0 {
		return false, nil
	}
	typ := s.codec.messageType()
	var groups [][]outFrame
	if s.batch.Load() {
		groups = [][]outFrame{pending}
	} else {
		for i := range pending {
			groups = append(groups, pending[i:i+1])
		}
	}
	for _, g := range groups {
		data := g[0].data
		if len(g) > 1 {
			frames := make([][]byte, len(g))
			for i, p := range g {
				frames[i] = p.data
			}
			data = s.codec.batch(frames)
		}
		// Not canceled with ctx: coder/websocket cuts the connection when
		// a write's context ends, and the reader ending the session must
		// not cut the close frame it just asked for. Node shutdown still
		// ends a write: the reader's context closes the connection.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.n.cfg.WriteTimeout)
		err := s.conn.Write(wctx, typ, data)
		cancel()
		if err != nil {
			return true, err
		}
		if last := g[len(g)-1]; last.closeAfter != 0 {
			s.close(last.closeAfter, last.reason)
			return true, nil
		}
	}
	return false, nil
}

// gather adds to pending the frames already queued, without waiting, up to
// maxBatchBytes, in order (channel first, then the overflow); a frame that
// closes the connection ends the batch.
func (s *session) gather(pending []outFrame) []outFrame {
	size := 0
	for _, f := range pending {
		size += len(f.data)
	}
	for pending[len(pending)-1].closeAfter == 0 && size < maxBatchBytes {
		select {
		case f := <-s.out:
			pending = append(pending, f)
			size += len(f.data)
			continue
		default:
		}
		n := len(pending)
		if pending = s.takeBacklog(pending); len(pending) == n && len(s.out) == 0 {
			return pending // nothing more queued
		}
	}
	return pending
}

var errClosing = errors.New("link: closing")

func (s *session) readLoop(ctx context.Context) error {
	s.send(&pb.Frame{Body: &pb.Frame_Hello{Hello: &pb.Hello{HeartbeatIntervalMs: uint32(s.n.cfg.HeartbeatInterval.Milliseconds())}}})
	timer := time.AfterFunc(s.n.cfg.IdentifyTimeout, func() { s.close(CloseSessionTimeout, "no identify in time") })
	defer timer.Stop()
	limiter := rate.NewLimiter(rate.Limit(s.n.cfg.FramesPerSecond), int(2*s.n.cfg.FramesPerSecond))
	for {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			return err
		}
		if s.user.ID != 0 {
			timer.Reset(s.n.cfg.HeartbeatInterval * 3 / 2)
		}
		if !limiter.Allow() {
			s.close(CloseRateLimited, "too many frames")
			return errClosing
		}
		var f pb.Frame
		if err := s.codec.unmarshal(typ, data, &f); err != nil {
			s.close(CloseDecodeError, "frame does not decode: "+truncate(err.Error(), 80))
			return errClosing
		}
		if len(f.Ref) > maxRef {
			s.close(CloseDecodeError, "ref is longer than 64 bytes")
			return errClosing
		}
		if err := s.handle(ctx, &f); err != nil {
			return err
		}
		if s.user.ID != 0 {
			timer.Reset(s.n.cfg.HeartbeatInterval * 3 / 2)
		}
	}
}

func (s *session) handle(ctx context.Context, f *pb.Frame) error {
	if r, ok := f.Body.(*pb.Frame_Resume); ok {
		if s.user.ID != 0 {
			s.close(CloseAlreadyIdentified, "already identified")
			return errClosing
		}
		return s.resume(ctx, r.Resume)
	}
	if id, ok := f.Body.(*pb.Frame_Identify); ok {
		if s.user.ID != 0 {
			s.close(CloseAlreadyIdentified, "already identified")
			return errClosing
		}
		return s.identify(ctx, id.Identify)
	}
	if s.user.ID == 0 {
		s.close(CloseNotAuthenticated, "identify first")
		return errClosing
	}
	switch b := f.Body.(type) {
	case *pb.Frame_Heartbeat:
		s.confirm(b.Heartbeat.LastSeq)
		s.send(&pb.Frame{Body: &pb.Frame_HeartbeatAck{HeartbeatAck: &pb.HeartbeatAck{}}})
	case *pb.Frame_Subscribe:
		s.reply(f.Ref, s.subscribe(ctx, b.Subscribe))
	case *pb.Frame_Unsubscribe:
		s.reply(f.Ref, s.unsubscribe(b.Unsubscribe))
	case *pb.Frame_Ack:
		rs, err := s.ack(ctx, b.Ack)
		if err != nil {
			s.reply(f.Ref, err)
		} else {
			s.send(&pb.Frame{Ref: f.Ref, Body: &pb.Frame_Acked{Acked: &pb.Acked{ReadState: rs}}})
		}
	case *pb.Frame_SendMessage:
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		m, err := s.n.sender.Send(rctx, s.user.ID, b.SendMessage.ChannelId, b.SendMessage.Content, b.SendMessage.Nonce)
		cancel()
		if err != nil {
			s.reply(f.Ref, err)
		} else {
			s.send(&pb.Frame{Ref: f.Ref, Body: &pb.Frame_Sent{Sent: &pb.Sent{Message: natsrpc.ToProto(m)}}})
		}
	case *pb.Frame_Typing:
		s.reply(f.Ref, s.typing(ctx, b.Typing.ChannelId))
	default:
		s.close(CloseUnknownFrame, "this frame is not accepted from clients")
		return errClosing
	}
	return nil
}

// typingEvery is how often a session's typing in one channel is passed on;
// more frequent typing frames are acknowledged and dropped.
const typingEvery = 5 * time.Second

// typing passes a typing indicator on to the message service, at most
// once per typingEvery per channel. Only the reader calls it.
func (s *session) typing(ctx context.Context, ch uint64) error {
	now := time.Now()
	if last, ok := s.lastTyping[ch]; ok && now.Sub(last) < typingEvery {
		return nil
	}
	if len(s.lastTyping) >= 64 { // bounded: forget old entries
		clear(s.lastTyping)
	}
	s.lastTyping[ch] = now
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return s.n.sender.Typing(rctx, s.user.ID, ch)
}

// reply answers a request with ok or error.
func (s *session) reply(ref string, err error) {
	if err != nil {
		s.send(&pb.Frame{Ref: ref, Body: &pb.Frame_Error{Error: bus.ErrorProto(err)}})
		return
	}
	s.send(&pb.Frame{Ref: ref, Body: &pb.Frame_Ok{Ok: &pb.Ok{}}})
}

func (s *session) identify(ctx context.Context, id *pb.Identify) error {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	u, err := s.n.auth.Authenticate(rctx, id.Token)
	if err != nil {
		if guildhall.KindOf(err) == guildhall.Unauthenticated {
			s.close(CloseAuthFailed, truncate(guildhall.Message(err), 100))
		} else {
			s.n.log.Error("identify", "err", err)
			s.close(CloseUnknownError, "try again")
		}
		return errClosing
	}
	ready := &pb.Ready{SessionId: s.id, User: &pb.User{Id: u.ID, Username: u.Username}}
	servers, err := s.n.dir.Servers(rctx, u)
	if err != nil {
		s.n.log.Error("ready", "err", err)
		s.close(CloseUnknownError, "try again")
		return errClosing
	}
	visible := make(map[uint64][]uint64, len(servers))
	for _, srv := range servers {
		ready.Servers = append(ready.Servers, &pb.Server{Id: srv.ID, Name: srv.Name, OwnerId: srv.OwnerID})
		chans, err := s.n.dir.Channels(rctx, u, srv.ID)
		if err != nil {
			continue // left the server meanwhile
		}
		for _, c := range chans {
			if c.Type != member.ChannelCategory {
				visible[srv.ID] = append(visible[srv.ID], c.ID)
			}
			ready.Channels = append(ready.Channels, &pb.Channel{
				Id: c.ID, ServerId: c.ServerID, Name: c.Name, Type: pb.ChannelType(c.Type), Position: int32(c.Position), ParentId: c.ParentID,
			})
		}
	}
	if ready.ReadStates, err = s.loadReadStates(rctx, u.ID, visible); err != nil {
		s.n.log.Error("ready: read states", "err", err)
		s.close(CloseUnknownError, "try again")
		return errClosing
	}
	s.user = u
	s.mu.Lock()
	s.visible = visible
	s.baseID = s.n.cfg.idAt(time.Now())
	s.mu.Unlock()
	s.n.rememberUser(s)
	// Follow small servers before READY, and once the routes know: a
	// message sent after READY must reach the session.
	if flushed := s.n.followSmall(rctx, s, nil); flushed != nil {
		select {
		case <-flushed:
		case <-rctx.Done():
		}
	}
	s.send(&pb.Frame{Body: &pb.Frame_Ready{Ready: ready}})
	s.batch.Store(id.Batch) // frames queued from now on may go out batched
	return nil
}

// maxServersPerFrame bounds the server_ids of one Subscribe; a session
// holds at most maxServerSubs server-wide subscriptions.
const (
	maxServersPerFrame = 10
	maxServerSubs      = 200
)

type follow struct {
	ch, server, version uint64
	via                 uint64 // the server subscription it comes from, 0 if named
}

func (s *session) subscribe(ctx context.Context, sub *pb.Subscribe) error {
	const op = "link.Subscribe"
	ids, srvs, typ := sub.ChannelIds, sub.ServerIds, sub.Type
	if len(ids)+len(srvs) == 0 || len(ids) > maxChannelsPerFrame || len(srvs) > maxServersPerFrame {
		return guildhall.E(op, guildhall.Invalid, "subscribe to 1 to %d channels and at most %d servers per frame", maxChannelsPerFrame, maxServersPerFrame)
	}
	if _, ok := pb.SubscriptionType_name[int32(typ)]; !ok {
		return guildhall.E(op, guildhall.Invalid, "unknown subscription type %d", typ)
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	follows := make([]follow, 0, len(ids))
	for _, ch := range ids { // all or nothing
		srv, v, err := s.n.dir.CanView(rctx, s.user.ID, ch)
		if err != nil {
			return guildhall.Wrap(op, err)
		}
		follows = append(follows, follow{ch: ch, server: srv, version: v})
	}
	visible := make(map[uint64][]uint64, len(srvs))
	for _, srv := range srvs {
		chans, err := s.n.dir.Channels(rctx, s.user, srv)
		if err != nil {
			return guildhall.Wrap(op, err)
		}
		for _, c := range chans {
			if c.Type == member.ChannelCategory {
				continue
			}
			visible[srv] = append(visible[srv], c.ID)
			// Version 0: checked again at the first event carrying one.
			follows = append(follows, follow{ch: c.ID, server: srv, via: srv})
		}
		if visible[srv] == nil {
			visible[srv] = []uint64{}
		}
	}
	s.mu.Lock()
	fresh := make(map[uint64]bool)
	for _, f := range follows {
		if _, ok := s.subs[f.ch]; !ok {
			fresh[f.ch] = true
		}
	}
	newServers := 0
	for _, srv := range srvs {
		if _, ok := s.servers[srv]; !ok {
			newServers++
		}
	}
	if len(s.subs)+len(fresh) > s.n.cfg.MaxSubscriptions || len(s.servers)+newServers > maxServerSubs {
		s.mu.Unlock()
		return guildhall.E(op, guildhall.Invalid, "a session may follow at most %d channels and %d servers", s.n.cfg.MaxSubscriptions, maxServerSubs)
	}
	for srv, chans := range visible {
		if s.visible == nil {
			s.visible = make(map[uint64][]uint64)
		}
		s.visible[srv] = chans
		if s.servers == nil {
			s.servers = make(map[uint64]pb.SubscriptionType)
		}
		s.servers[srv] = typ
	}
	changed := s.followLocked(follows, typ)
	s.mu.Unlock()
	var flushed <-chan struct{}
	for _, ch := range changed {
		flushed = s.n.subscribe(s, ch, typ)
	}
	if flushed != nil { // acknowledge once the routes know about us
		select {
		case <-flushed:
		case <-rctx.Done():
		}
	}
	return nil
}

// followLocked follows the channels as typ and returns those that are new
// or changed type. s.mu is held.
func (s *session) followLocked(follows []follow, typ pb.SubscriptionType) []uint64 {
	var changed []uint64
	for _, f := range follows {
		old, had := s.subs[f.ch]
		if !had {
			s.baselineLocked(f.ch, time.Now())
		}
		oldTyp := s.types[f.ch]
		_, wasAuto := s.auto[f.ch]
		_, wasVia := s.viaServer[f.ch]
		s.subs[f.ch] = max(old, f.version)
		delete(s.auto, f.ch) // followed on purpose now
		delete(s.optOut, f.ch)
		switch {
		case f.via == 0:
			delete(s.viaServer, f.ch)
		case !had || wasAuto || wasVia:
			if s.viaServer == nil {
				s.viaServer = make(map[uint64]uint64)
			}
			s.viaServer[f.ch] = f.via
		}
		if typ == pb.SubscriptionType_SUBSCRIPTION_TYPE_MESSAGES {
			delete(s.types, f.ch)
		} else {
			if s.types == nil {
				s.types = make(map[uint64]pb.SubscriptionType)
			}
			s.types[f.ch] = typ
			r := s.readLocked(f.ch, f.server)
			if oldTyp != typ { // what the client knows now: READY's read state
				r.capped = r.count() > uint64(s.n.cfg.UnreadCap)
				r.notified = r.count() > 0
			}
		}
		if !had || oldTyp != typ {
			changed = append(changed, f.ch)
		}
	}
	return changed
}

func (s *session) unsubscribe(u *pb.Unsubscribe) error {
	if len(u.ChannelIds) > maxChannelsPerFrame || len(u.ServerIds) > maxServersPerFrame {
		return guildhall.E("link.Unsubscribe", guildhall.Invalid, "unsubscribe from at most %d channels and %d servers per frame", maxChannelsPerFrame, maxServersPerFrame)
	}
	for _, ch := range u.ChannelIds {
		s.mu.Lock()
		if s.optOut == nil {
			s.optOut = make(map[uint64]bool)
		}
		if len(s.optOut) < s.n.cfg.MaxSubscriptions {
			s.optOut[ch] = true
		}
		s.mu.Unlock()
		if s.drop(ch) {
			s.n.unsubscribe1(s, ch)
		}
	}
	for _, srv := range u.ServerIds {
		s.mu.Lock()
		delete(s.servers, srv)
		var chans []uint64
		for ch, via := range s.viaServer {
			if via == srv {
				chans = append(chans, ch)
			}
		}
		s.mu.Unlock()
		for _, ch := range chans {
			if s.drop(ch) {
				s.n.unsubscribe1(s, ch)
			}
		}
	}
	return nil
}

// truncate cuts s to at most n bytes of valid UTF-8: a close reason must
// be UTF-8 (browsers fail the connection otherwise) and fit in 123 bytes.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
