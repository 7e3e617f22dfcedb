package subscribe

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/guildhall/guildhall/bus"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

const viewShards = 64

// ViewConfig configures a View. Zero values mean the documented defaults.
type ViewConfig struct {
	// ResyncEvery is how often the whole table is fetched again (default 30s).
	ResyncEvery time.Duration
}

// View is an in-memory replica of the routing table. Nodes is safe for
// concurrent use and does not allocate.
type View struct {
	nc  *nats.Conn
	log *slog.Logger
	cfg ViewConfig

	shards [viewShards]struct {
		sync.RWMutex
		m map[uint64][]string
	}

	fetchMu  sync.Mutex // one Resync at a time: each needs its own touched set
	resyncMu sync.Mutex
	touched  map[uint64]struct{} // channels changed since the fetch in flight began; nil if none is
	removed  []string            // nodes removed since then

	sub    *nats.Subscription
	ctx    context.Context // lives until Shutdown
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// StartView subscribes to route changes and fetches the table in the
// background until Shutdown.
func StartView(nc *nats.Conn, log *slog.Logger, cfg ViewConfig) (*View, error) {
	if cfg.ResyncEvery == 0 {
		cfg.ResyncEvery = 30 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &View{nc: nc, log: log, cfg: cfg, done: make(chan struct{})}
	v.ctx, v.cancel = context.WithCancel(context.Background())
	for i := range v.shards {
		v.shards[i].m = make(map[uint64][]string)
	}
	sub, err := nc.Subscribe(bus.RouteChanges, func(msg *nats.Msg) {
		var t pb.RouteTable
		if err := proto.Unmarshal(msg.Data, &t); err != nil {
			v.log.Warn("bad route change", "err", err)
			return
		}
		v.applyChanges(&t)
	})
	if err != nil {
		return nil, err
	}
	v.sub = sub
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, err
	}
	go v.resyncLoop()
	return v, nil
}

// Nodes returns the link nodes that follow ch. The slice must not be
// modified.
func (v *View) Nodes(ch uint64) []string {
	sh := &v.shards[ch%viewShards]
	sh.RLock()
	nodes := sh.m[ch]
	sh.RUnlock()
	return nodes
}

// applyChanges folds change notices into the view.
func (v *View) applyChanges(t *pb.RouteTable) {
	// Held while applying too, so a change cannot land between Resync
	// taking the touched set and installing its (older) table.
	v.resyncMu.Lock()
	defer v.resyncMu.Unlock()
	if v.touched != nil { // a table fetch is in flight: it must not undo these
		for _, r := range t.Routes {
			v.touched[r.ChannelId] = struct{}{}
		}
		v.removed = append(v.removed, t.RemovedNodes...)
	}
	for _, r := range t.Routes {
		sh := &v.shards[r.ChannelId%viewShards]
		sh.Lock()
		if len(r.NodeIds) == 0 {
			delete(sh.m, r.ChannelId)
		} else {
			sh.m[r.ChannelId] = r.NodeIds // a fresh slice per change: readers keep theirs
		}
		sh.Unlock()
	}
	v.removeNodes(t.RemovedNodes)
}

func (v *View) removeNodes(ids []string) {
	if len(ids) == 0 {
		return
	}
	gone := make(map[string]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
	}
	for i := range v.shards {
		sh := &v.shards[i]
		sh.Lock()
		for ch, nodes := range sh.m {
			kept := make([]string, 0, len(nodes))
			for _, id := range nodes {
				if !gone[id] {
					kept = append(kept, id)
				}
			}
			if len(kept) == 0 {
				delete(sh.m, ch)
			} else if len(kept) != len(nodes) {
				sh.m[ch] = kept
			}
		}
		sh.Unlock()
	}
}

func (v *View) resyncLoop() {
	defer close(v.done)
	wait := time.Duration(0) // first fetch at once
	for {
		select {
		case <-v.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = v.cfg.ResyncEvery
		if err := v.Resync(v.ctx); err != nil {
			v.log.Debug("route table fetch failed", "err", err)
			wait = time.Second
		}
	}
}

// Resync fetches the service's whole table and replaces the view with it,
// except for channels that changed while the fetch was in flight: their
// change notices are newer than the table.
func (v *View) Resync(ctx context.Context) error {
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	v.resyncMu.Lock()
	v.touched = make(map[uint64]struct{})
	v.removed = nil
	v.resyncMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var t pb.RouteTable
	err := bus.Request(ctx, v.nc, bus.RouteTableRequest, &pb.RouteTableRequest{}, &t)

	v.resyncMu.Lock()
	defer v.resyncMu.Unlock() // until installed: see applyChanges
	touched, removed := v.touched, v.removed
	v.touched, v.removed = nil, nil
	if err != nil {
		return err
	}
	var fresh [viewShards]map[uint64][]string
	for i := range fresh {
		fresh[i] = make(map[uint64][]string)
	}
	for _, r := range t.Routes {
		if len(r.NodeIds) > 0 {
			fresh[r.ChannelId%viewShards][r.ChannelId] = r.NodeIds
		}
	}
	for i := range v.shards {
		sh := &v.shards[i]
		sh.Lock()
		for ch := range touched {
			if ch%viewShards != uint64(i) {
				continue
			}
			if nodes, ok := sh.m[ch]; ok {
				fresh[i][ch] = nodes
			} else {
				delete(fresh[i], ch)
			}
		}
		sh.m = fresh[i]
		sh.Unlock()
	}
	v.removeNodes(removed)
	return nil
}

// Shutdown stops the view. It is idempotent.
func (v *View) Shutdown(ctx context.Context) error {
	v.once.Do(func() {
		_ = v.sub.Unsubscribe()
		v.cancel()
	})
	select {
	case <-v.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
