package link

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/member"
	"github.com/guildhall/guildhall/message"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
	"github.com/guildhall/guildhall/snowflake"
)

// Auth turns a bearer token into a user.
type Auth interface {
	Authenticate(ctx context.Context, token string) (member.User, error)
}

// Directory answers what a session may see.
type Directory interface {
	Servers(ctx context.Context, actor member.User) ([]member.Server, error)
	Channels(ctx context.Context, actor member.User, serverID uint64) ([]member.Channel, error)
	// MemberCount is how many members a server has.
	MemberCount(ctx context.Context, serverID uint64) (int, error)
	// CanView reports whether userID may follow channelID, and the
	// server's permission version the answer holds for: it stays true
	// until a delivery carries a newer version.
	CanView(ctx context.Context, userID, channelID uint64) (serverID, version uint64, err error)
}

// Sender posts messages (the message service, over the bus).
type Sender interface {
	Send(ctx context.Context, actorID, channelID uint64, content, nonce string) (message.Message, error)
	Typing(ctx context.Context, actorID, channelID uint64) error
}

// Config of a Node. Zero values mean the documented defaults.
type Config struct {
	NodeID            string        // default: random
	HeartbeatInterval time.Duration // client heartbeats, default 30s; silence for 1.5x closes
	IdentifyTimeout   time.Duration // default 10s
	SnapshotEvery     time.Duration // full heartbeat to the subscription service, default 5s
	MaxFrame          int64         // inbound frame limit in bytes, default 16 KiB
	QueueLen          int           // outbound frames per session, default 512
	WriteTimeout      time.Duration // default 10s
	MaxSubscriptions  int           // channels per session, default 1000
	FramesPerSecond   float64       // inbound rate, default 30 (burst 2x)
	OriginPatterns    []string      // extra allowed browser origins
	// SmallServer: a session follows every channel it can see in servers
	// with fewer members than this, without subscribing (default 2,000;
	// negative turns it off). Checked again every SnapshotEvery.
	SmallServer int
	// ResumeWindow is how long a session whose connection dropped can be
	// resumed (default 2 minutes; negative disables resume).
	ResumeWindow time.Duration
	// ResumeBuffer is how many of its last dispatches a session keeps for
	// a resume (default 256).
	ResumeBuffer int
	// UnreadCap: a session following a channel as UNREAD_COUNT gets an
	// update per message until the unread count passes UnreadCap (default
	// 99), then nothing until the user reads.
	UnreadCap int
	// ReadStates serves Ack and READY's read states; nil disables both
	// (positions then start at 0).
	ReadStates ReadStates
	// Roles tells which roles a member holds, for role mentions; nil
	// counts only user and @everyone mentions.
	Roles MemberRoles
	// Sessions keeps session checkpoints for cross-node resume after a
	// node dies (KVSessions); nil: a session resumes only while the node
	// that held it is alive.
	Sessions SessionStore
	// History rebuilds, on a resume elsewhere, the messages a session
	// missed while it moved; nil: only what the old node handed over.
	History History
	// Changes replays, on a resume after the node that held a session
	// died, the edits and deletions made since its last checkpoint of
	// messages the client had (at least once); nil: they are missed.
	Changes Changes
	// CheckpointEvery: how often changed sessions are checkpointed
	// (default 2s).
	CheckpointEvery time.Duration
	// ReorderWait: a channel's message events that arrive ahead of a
	// missing seq (two message instances publish in the order they
	// finish) wait at most this long for it (default 50ms; negative turns
	// reordering off); ReorderMax bounds the events one channel holds
	// (default 256). Past either, the held events go out in seq order
	// and the missing one is delivered when (if) it comes.
	ReorderWait time.Duration
	ReorderMax  int
	// idAt is the message ID of a time: a channel's position when a
	// session starts following it (default snowflake.FromTime).
	idAt func(time.Time) uint64
	// Compression offers permessage-deflate (without context takeover, so
	// an idle connection keeps no compressor state) to clients that ask.
	Compression bool
}

func (c *Config) setDefaults() {
	if c.NodeID == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		c.NodeID = "link-" + hex.EncodeToString(b)
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 30 * time.Second
	}
	if c.IdentifyTimeout == 0 {
		c.IdentifyTimeout = 10 * time.Second
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 5 * time.Second
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = 16 << 10
	}
	if c.QueueLen == 0 {
		c.QueueLen = 512
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxSubscriptions == 0 {
		c.MaxSubscriptions = 1000
	}
	if c.SmallServer == 0 {
		c.SmallServer = 2000
	}
	if c.ResumeWindow == 0 {
		c.ResumeWindow = 2 * time.Minute
	}
	if c.ResumeBuffer == 0 {
		c.ResumeBuffer = 256
	}
	if c.ReorderWait == 0 {
		c.ReorderWait = 50 * time.Millisecond
	}
	if c.ReorderMax == 0 {
		c.ReorderMax = 256
	}
	if c.idAt == nil {
		c.idAt = snowflake.FromTime
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = 2 * time.Second
	}
	if c.UnreadCap == 0 {
		c.UnreadCap = 99
	}
	if c.FramesPerSecond == 0 {
		c.FramesPerSecond = 30
	}
}

const shards = 64

// recheckParallelism bounds the access checks one delivery runs at once
// after a permission change.
const recheckParallelism = 16

// Node is one link node.
type Node struct {
	cfg    Config
	nc     *nats.Conn
	auth   Auth
	dir    Directory
	sender Sender
	log    *slog.Logger

	// subs: channel → its followers on this node, with the type each
	// follows it as (the session's own types map is the truth for what it
	// gets; this copy gives the per-type counts).
	subs [shards]struct {
		sync.RWMutex
		m     map[uint64]map[*session]pb.SubscriptionType
		order map[uint64]*chanOrder // reorder state of the channels followed here
	}
	orderMu     sync.Mutex            // serializes delivery: the bus handler and the reorder flush
	waiting     map[uint64]*chanOrder // channels holding events for a missing seq (orderMu)
	reorderWake chan struct{}         // a channel started holding: wake the reorder loop
	// users: user → their sessions on this node (live and detached), for
	// read-state notices.
	users [shards]struct {
		sync.Mutex
		m map[uint64]map[*session]struct{}
	}

	dirtyMu sync.Mutex
	dirty   map[uint64]struct{} // channels whose count changed since the last heartbeat
	flushed chan struct{}       // closed once the dirty channels reached the subscription service
	wake    chan struct{}
	snapNow chan struct{} // the subscription service asked for a snapshot

	hbCancel context.CancelFunc // stops the heartbeat loop
	hbDone   chan struct{}      // closed when it stopped

	sessMu   sync.Mutex
	sessions map[*session]struct{}
	detached map[string]*session // by session ID, waiting for a resume
	closing  bool

	handovers   chan struct{} // bounds the takeovers served at once
	ckptDeletes chan string   // checkpoints of ended sessions, to delete

	natsSubs []*nats.Subscription
	ctx      context.Context // lives until Shutdown
	cancel   context.CancelFunc
	wg       sync.WaitGroup // owned goroutines: heartbeat loop and sessions
	once     sync.Once
}

// Start runs a link node on nc until Shutdown. Serve its Handler at the
// gateway path.
func Start(nc *nats.Conn, auth Auth, dir Directory, sender Sender, log *slog.Logger, cfg Config) (*Node, error) {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		cfg: cfg, nc: nc, auth: auth, dir: dir, sender: sender, log: log.With("node", cfg.NodeID),
		dirty:    make(map[uint64]struct{}),
		flushed:  make(chan struct{}),
		wake:     make(chan struct{}, 1),
		snapNow:  make(chan struct{}, 1),
		hbDone:   make(chan struct{}),
		sessions: make(map[*session]struct{}),
		detached: make(map[string]*session),
		waiting:  make(map[uint64]*chanOrder),

		reorderWake: make(chan struct{}, 1),

		handovers:   make(chan struct{}, maxHandovers),
		ckptDeletes: make(chan string, 1024),
	}
	for i := range n.subs {
		n.subs[i].m = make(map[uint64]map[*session]pb.SubscriptionType)
		n.subs[i].order = make(map[uint64]*chanOrder)
		n.users[i].m = make(map[uint64]map[*session]struct{})
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	deliver, err := nc.Subscribe(bus.LinkDeliver(cfg.NodeID), n.onDelivery)
	if err != nil {
		return nil, err
	}
	// Only the heartbeat loop sends heartbeats, so they leave in the order
	// they were built.
	snap, err := nc.Subscribe(bus.LinkSnapshotRequest, func(*nats.Msg) {
		select {
		case n.snapNow <- struct{}{}:
		default:
		}
	})
	if err != nil {
		_ = deliver.Unsubscribe()
		return nil, err
	}
	reads, err := nc.Subscribe(bus.UserReadStateAll, n.onReadState)
	if err != nil {
		_ = deliver.Unsubscribe()
		_ = snap.Unsubscribe()
		return nil, err
	}
	n.natsSubs = []*nats.Subscription{deliver, snap, reads}
	if t, err := n.startTakeover(); err != nil {
		n.unsubscribe()
		return nil, err
	} else {
		n.natsSubs = append(n.natsSubs, t)
	}
	if err := nc.Flush(); err != nil {
		n.unsubscribe()
		return nil, err
	}
	var hbCtx context.Context
	hbCtx, n.hbCancel = context.WithCancel(n.ctx)
	n.wg.Add(1)
	go n.heartbeatLoop(hbCtx)
	n.wg.Add(1)
	go n.smallServerLoop()
	if cfg.ReorderWait > 0 {
		n.wg.Add(1)
		go n.reorderLoop()
	}
	if cfg.Sessions != nil {
		n.wg.Add(1)
		go n.checkpointLoop()
	}
	return n, nil
}

// ID is the node's ID on the bus.
func (n *Node) ID() string { return n.cfg.NodeID }

func (n *Node) unsubscribe() {
	for _, s := range n.natsSubs {
		_ = s.Unsubscribe()
	}
}

// Handler serves the gateway WebSocket.
func (n *Node) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c codec
		switch r.URL.Query().Get("encoding") {
		case "", "proto", "protobuf":
		case "json":
			c.json = true
		default:
			http.Error(w, `{"code":"invalid_argument","message":"encoding must be proto or json"}`, http.StatusBadRequest)
			return
		}
		opts := &websocket.AcceptOptions{OriginPatterns: n.cfg.OriginPatterns, CompressionMode: websocket.CompressionDisabled}
		if n.cfg.Compression {
			opts.CompressionMode = websocket.CompressionNoContextTakeover
		}
		conn, err := websocket.Accept(w, r, opts)
		if err != nil {
			return // Accept wrote the HTTP error
		}
		s := n.newSession(conn, c)
		if s == nil {
			conn.Close(CloseServiceRestart, "server is shutting down")
			return
		}
		readErr := s.run(n.ctx)
		n.endSession(s, readErr)
	})
}

func (n *Node) newSession(conn *websocket.Conn, c codec) *session {
	n.sessMu.Lock()
	defer n.sessMu.Unlock()
	if n.closing {
		return nil
	}
	s := newSession(n, conn, c)
	n.sessions[s] = struct{}{}
	n.wg.Add(1)
	return s
}

// endSession runs when a connection ends: a resumable session is kept,
// subscribed and buffering, for ResumeWindow; any other is dropped.
func (n *Node) endSession(s *session, readErr error) {
	n.sessMu.Lock()
	delete(n.sessions, s)
	n.sessMu.Unlock()
	s.mu.Lock()
	handedOver := s.handedOver
	s.mu.Unlock()
	switch {
	case handedOver: // another node has it (and its checkpoint)
		n.unsubscribeAll(s)
	case !s.resumable(readErr):
		n.unsubscribeAll(s)
		n.forgetCheckpoint(s.ID())
	case !n.detach(s): // closing: the last checkpoint lets it resume elsewhere
		n.unsubscribeAll(s)
	}
	n.wg.Done()
}

// subscribe adds s to the channel's subscribers, or changes the type it
// follows the channel as.
func (n *Node) subscribe(s *session, ch uint64, typ pb.SubscriptionType) <-chan struct{} {
	sh := &n.subs[ch%shards]
	sh.Lock()
	set := sh.m[ch]
	if set == nil {
		set = make(map[*session]pb.SubscriptionType)
		sh.m[ch] = set
	}
	set[s] = typ
	sh.Unlock()
	return n.markDirty(ch)
}

func (n *Node) unsubscribe1(s *session, ch uint64) {
	sh := &n.subs[ch%shards]
	sh.Lock()
	if set := sh.m[ch]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(sh.m, ch)
			delete(sh.order, ch) // followed again later: start from the next event
		}
	}
	sh.Unlock()
	n.markDirty(ch)
}

func (n *Node) unsubscribeAll(s *session) {
	for _, ch := range s.channels() {
		n.unsubscribe1(s, ch)
	}
	n.forgetUser(s)
}

// markDirty schedules a delta heartbeat for ch and returns a channel that
// is closed once the subscription service has applied it (or gave up).
func (n *Node) markDirty(ch uint64) <-chan struct{} {
	n.dirtyMu.Lock()
	n.dirty[ch] = struct{}{}
	flushed := n.flushed
	n.dirtyMu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
	return flushed
}

// count is the channel's followers on this node by type.
func (n *Node) count(ch uint64) *pb.ChannelCount {
	sh := &n.subs[ch%shards]
	sh.RLock()
	defer sh.RUnlock()
	return countOf(ch, sh.m[ch])
}

func countOf(ch uint64, set map[*session]pb.SubscriptionType) *pb.ChannelCount {
	c := &pb.ChannelCount{ChannelId: ch}
	for _, typ := range set {
		switch typ {
		case pb.SubscriptionType_SUBSCRIPTION_TYPE_UNREAD_COUNT:
			c.UnreadCount++
		case pb.SubscriptionType_SUBSCRIPTION_TYPE_UNREAD_STATUS:
			c.UnreadStatus++
		default:
			c.Messages++
		}
	}
	return c
}

// heartbeatLoop sends deltas soon after a change and a full snapshot every
// SnapshotEvery (and when asked). Once it stops, nobody waits for a flush.
func (n *Node) heartbeatLoop(ctx context.Context) {
	defer n.wg.Done()
	defer close(n.hbDone)
	defer func() {
		n.dirtyMu.Lock()
		close(n.flushed) // markDirty hands out this closed channel from now on
		n.dirtyMu.Unlock()
	}()
	n.sendHeartbeat(ctx, true)
	t := time.NewTicker(n.cfg.SnapshotEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.sendHeartbeat(ctx, true)
		case <-n.snapNow:
			n.sendHeartbeat(ctx, true)
		case <-n.wake:
			n.sendHeartbeat(ctx, false)
		}
	}
}

// sendHeartbeat sends a full snapshot, or the delta of the dirty channels.
// A delta is a request: the subscription service answers once it has
// published the route change, so a session that subscribed is routed to
// before its subscribe is acknowledged. A snapshot is only published, so it
// leaves the dirty channels to their delta: their subscribers wait for it.
func (n *Node) sendHeartbeat(ctx context.Context, full bool) {
	hb := &pb.LinkHeartbeat{NodeId: n.cfg.NodeID, Full: full, IntervalMs: uint32(n.cfg.SnapshotEvery.Milliseconds())}
	if full {
		for i := range n.subs {
			sh := &n.subs[i]
			sh.RLock()
			for ch, set := range sh.m {
				hb.Counts = append(hb.Counts, countOf(ch, set))
			}
			sh.RUnlock()
		}
		if err := bus.Publish(n.nc, bus.LinkHeartbeat, hb); err != nil {
			n.log.Warn("heartbeat failed", "err", err)
		}
		return
	}
	n.dirtyMu.Lock()
	dirty, flushed := n.dirty, n.flushed
	n.dirty, n.flushed = make(map[uint64]struct{}), make(chan struct{})
	n.dirtyMu.Unlock()
	defer close(flushed)
	if len(dirty) == 0 {
		return
	}
	for ch := range dirty {
		hb.Counts = append(hb.Counts, n.count(ch))
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := bus.Request(ctx, n.nc, bus.LinkHeartbeat, hb, &pb.RouteTable{}); err != nil {
		n.log.Debug("delta heartbeat not acknowledged", "err", err)
	}
}

// onDelivery writes the events routed to this node to the sessions that
// follow their channels. Each event is encoded once.
func (n *Node) onDelivery(msg *nats.Msg) {
	var d pb.Delivery
	if err := proto.Unmarshal(msg.Data, &d); err != nil {
		n.log.Warn("bad delivery", "err", err)
		return
	}
	n.orderMu.Lock()
	defer n.orderMu.Unlock()
	for i, ev := range d.Events {
		var version uint64
		if i < len(d.PermVersions) {
			version = d.PermVersions[i]
		}
		n.inOrder(ev, version)
	}
}

// fanout hands one event to every session here that follows its channel.
// Each event is encoded once.
func (n *Node) fanout(ev *pb.Event, version uint64) {
	encoded, err := encodeEvent(ev)
	if err != nil {
		n.log.Warn("encode event", "err", err)
		return
	}
	enc := &encoded // kept by every session's replay buffer
	sh := &n.subs[ev.ChannelId%shards]
	sh.RLock()
	var stale []*session
	for s := range sh.m[ev.ChannelId] {
		if !s.dispatchAt(ev, enc, version) {
			stale = append(stale, s)
		}
	}
	sh.RUnlock()
	// Sessions checked at an older permission version are checked
	// again before they get the event: a change that hid the channel
	// from them takes effect before anything else is delivered.
	// Checked side by side (each session's own order is kept: this
	// event waits for all of them before the next one is handled).
	var g errgroup.Group
	g.SetLimit(recheckParallelism)
	for _, s := range stale {
		g.Go(func() error {
			if s.recheck(n.ctx, ev, version) {
				s.dispatchAt(ev, enc, version)
			}
			return nil
		})
	}
	_ = g.Wait()
}

// Shutdown tells every session to reconnect elsewhere, closes them, tells
// the subscription service this node is leaving and stops. Idempotent.
func (n *Node) Shutdown(ctx context.Context) error {
	n.once.Do(func() {
		n.unsubscribe()
		// "leaving" must be the node's last heartbeat: sessions that end
		// from here on would otherwise send deltas that bring it back.
		n.hbCancel()
		select {
		case <-n.hbDone:
		case <-ctx.Done():
		}
		n.sessMu.Lock()
		n.closing = true
		list := make([]*session, 0, len(n.sessions))
		for s := range n.sessions {
			list = append(list, s)
		}
		n.sessMu.Unlock()
		// Every session (live or detached) may resume on another node:
		// no event reaches this node any more, so the checkpoint with the
		// dispatches after the confirmed position is exact.
		if n.cfg.Sessions != nil {
			n.checkpointAll(ctx)
		}
		n.sessMu.Lock()
		for id, s := range n.detached { // nothing will resume here any more
			s.expiry.Stop()
			delete(n.detached, id)
		}
		n.sessMu.Unlock()
		for _, s := range list {
			s.reconnect()
		}
		if err := bus.Publish(n.nc, bus.LinkHeartbeat, &pb.LinkHeartbeat{NodeId: n.cfg.NodeID, Leaving: true}); err != nil {
			n.log.Warn("leaving heartbeat failed", "err", err)
		}
		_ = n.nc.Flush()
	})
	// Give sessions until ctx ends to take their reconnect frame, then cut.
	for n.sessionCount() > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Millisecond):
		}
	}
	n.cancel()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) sessionCount() int {
	n.sessMu.Lock()
	defer n.sessMu.Unlock()
	return len(n.sessions)
}
