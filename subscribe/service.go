package subscribe

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/guildhall/guildhall/bus"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// Config of a Service. Zero values mean the documented defaults.
type Config struct {
	// MissedHeartbeats is how many snapshot intervals a node may stay
	// silent before it is expired (default 3).
	MissedHeartbeats int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// SweepEvery is how often expiry is checked (default 1s).
	SweepEvery time.Duration
}

// Counts is how many sessions follow a channel, by subscription type.
type Counts struct {
	Messages, UnreadCount, UnreadStatus uint32
}

// Total is the number of sessions of every type.
func (c Counts) Total() uint64 {
	return uint64(c.Messages) + uint64(c.UnreadCount) + uint64(c.UnreadStatus)
}

func (c *Counts) add(o Counts) {
	c.Messages += o.Messages
	c.UnreadCount += o.UnreadCount
	c.UnreadStatus += o.UnreadStatus
}

func countsOf(c *pb.ChannelCount) Counts {
	return Counts{Messages: c.Messages, UnreadCount: c.UnreadCount, UnreadStatus: c.UnreadStatus}
}

type node struct {
	counts   map[uint64]Counts
	interval time.Duration
	lastSeen time.Time
}

// Service aggregates link heartbeats into the routing table.
type Service struct {
	nc  *nats.Conn
	log *slog.Logger
	cfg Config

	// pubMu keeps change notices in the order the table changed: the
	// heartbeat handler and the sweeper both change it and publish.
	pubMu sync.Mutex

	mu     sync.Mutex
	nodes  map[string]*node
	routes map[uint64]map[string]struct{}

	subs []*nats.Subscription
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Start runs a Service on nc until Shutdown.
func Start(nc *nats.Conn, log *slog.Logger, cfg Config) (*Service, error) {
	if cfg.MissedHeartbeats == 0 {
		cfg.MissedHeartbeats = 3
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SweepEvery == 0 {
		cfg.SweepEvery = time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		nc: nc, log: log, cfg: cfg,
		nodes:  make(map[string]*node),
		routes: make(map[uint64]map[string]struct{}),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	hb, err := nc.Subscribe(bus.LinkHeartbeat, s.onHeartbeat)
	if err != nil {
		return nil, err
	}
	tbl, err := nc.QueueSubscribe(bus.RouteTableRequest, bus.SubscribeQueue, s.onTableRequest)
	if err != nil {
		_ = hb.Unsubscribe()
		return nil, err
	}
	s.subs = []*nats.Subscription{hb, tbl}
	if err := nc.Flush(); err != nil {
		s.unsubscribe()
		return nil, err
	}
	// A (re)started service knows nothing: ask every link node for a snapshot.
	if err := nc.Publish(bus.LinkSnapshotRequest, nil); err != nil {
		s.unsubscribe()
		return nil, err
	}
	go s.sweepLoop()
	return s, nil
}

func (s *Service) unsubscribe() {
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
}

// Shutdown stops the service. It is idempotent.
func (s *Service) Shutdown(ctx context.Context) error {
	s.once.Do(func() {
		s.unsubscribe()
		close(s.stop)
	})
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) sweepLoop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep expires nodes that missed too many heartbeats.
func (s *Service) sweep() {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	now := s.cfg.Now()
	s.mu.Lock()
	var gone []string
	for id, n := range s.nodes {
		if now.Sub(n.lastSeen) > time.Duration(s.cfg.MissedHeartbeats)*n.interval {
			gone = append(gone, id)
		}
	}
	for _, id := range gone {
		s.removeNodeLocked(id)
	}
	s.mu.Unlock()
	if len(gone) > 0 {
		s.log.Info("expired link nodes", "nodes", gone)
		s.publish(&pb.RouteTable{RemovedNodes: gone})
	}
}

func (s *Service) removeNodeLocked(id string) {
	n := s.nodes[id]
	if n == nil {
		return
	}
	for ch := range n.counts {
		s.dropRouteLocked(ch, id)
	}
	delete(s.nodes, id)
}

func (s *Service) dropRouteLocked(ch uint64, id string) {
	if set := s.routes[ch]; set != nil {
		delete(set, id)
		if len(set) == 0 {
			delete(s.routes, ch)
		}
	}
}

func (s *Service) onHeartbeat(msg *nats.Msg) {
	var hb pb.LinkHeartbeat
	if err := proto.Unmarshal(msg.Data, &hb); err != nil || hb.NodeId == "" {
		s.log.Warn("bad link heartbeat", "err", err)
		return
	}
	s.pubMu.Lock()
	changes := s.apply(&hb)
	if len(changes.Routes) > 0 || len(changes.RemovedNodes) > 0 {
		s.publish(changes)
	}
	s.pubMu.Unlock()
	if msg.Reply != "" { // a delta waiting to know its routes are out
		_ = msg.Respond(nil)
	}
}

// apply folds a heartbeat into the table and returns what changed.
func (s *Service) apply(hb *pb.LinkHeartbeat) *pb.RouteTable {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := hb.NodeId
	changes := &pb.RouteTable{}
	if hb.Leaving {
		if _, ok := s.nodes[id]; ok {
			s.removeNodeLocked(id)
			changes.RemovedNodes = []string{id}
		}
		return changes
	}
	n := s.nodes[id]
	if n == nil {
		n = &node{counts: make(map[uint64]Counts)}
		s.nodes[id] = n
	}
	n.lastSeen = s.cfg.Now()
	n.interval = time.Duration(hb.IntervalMs) * time.Millisecond
	if n.interval <= 0 {
		n.interval = 5 * time.Second
	}
	touched := make(map[uint64]struct{}, len(hb.Counts))
	if hb.Full { // channels missing from a snapshot are gone
		seen := make(map[uint64]struct{}, len(hb.Counts))
		for _, c := range hb.Counts {
			seen[c.ChannelId] = struct{}{}
		}
		for ch := range n.counts {
			if _, ok := seen[ch]; !ok {
				delete(n.counts, ch)
				s.dropRouteLocked(ch, id)
				touched[ch] = struct{}{}
			}
		}
	}
	for _, c := range hb.Counts {
		_, had := n.counts[c.ChannelId]
		cnt := countsOf(c)
		switch {
		case cnt.Total() == 0 && had:
			delete(n.counts, c.ChannelId)
			s.dropRouteLocked(c.ChannelId, id)
			touched[c.ChannelId] = struct{}{}
		case cnt.Total() > 0: // a node following a channel with any type gets its events
			n.counts[c.ChannelId] = cnt
			if !had {
				set := s.routes[c.ChannelId]
				if set == nil {
					set = make(map[string]struct{})
					s.routes[c.ChannelId] = set
				}
				set[id] = struct{}{}
				touched[c.ChannelId] = struct{}{}
			}
		}
	}
	for ch := range touched {
		changes.Routes = append(changes.Routes, s.routeLocked(ch))
	}
	return changes
}

// Counts sums, over the live link nodes, the sessions that follow ch by
// subscription type.
func (s *Service) Counts(ch uint64) Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum Counts
	for id := range s.routes[ch] {
		sum.add(s.nodes[id].counts[ch])
	}
	return sum
}

func (s *Service) routeLocked(ch uint64) *pb.Route {
	r := &pb.Route{ChannelId: ch}
	for id := range s.routes[ch] {
		r.NodeIds = append(r.NodeIds, id)
	}
	slices.Sort(r.NodeIds)
	return r
}

func (s *Service) onTableRequest(msg *nats.Msg) {
	s.mu.Lock()
	t := &pb.RouteTable{Routes: make([]*pb.Route, 0, len(s.routes))}
	for ch := range s.routes {
		t.Routes = append(t.Routes, s.routeLocked(ch))
	}
	s.mu.Unlock()
	data, err := proto.Marshal(t)
	if err == nil {
		err = msg.Respond(data)
	}
	if err != nil {
		s.log.Warn("route table reply failed", "err", err)
	}
}

func (s *Service) publish(t *pb.RouteTable) {
	if err := bus.Publish(s.nc, bus.RouteChanges, t); err != nil {
		s.log.Warn("route change publish failed", "err", err)
	}
}

// Nodes returns the link nodes that follow channel ch, sorted.
func (s *Service) Nodes(ch uint64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.routeLocked(ch).NodeIds
}
