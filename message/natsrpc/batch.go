package natsrpc

import (
	"context"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/message"
)

// FanoutConfig configures a batching Fanout. Zero values mean the
// defaults.
type FanoutConfig struct {
	// MaxBatch bounds the events of one bus message (default 256).
	MaxBatch int
	// MaxPending bounds the events waiting to be flushed, over all nodes;
	// Publish waits for room past it (default 8,192).
	MaxPending int
}

// outbox is what waits for one link node.
type outbox struct {
	events   [][]byte // encoded pb.Event
	versions []uint64
}

// batcher is the batching half of a Fanout: Publish queues each event for
// every interested node and a flusher goroutine sends, per node, everything
// queued so far as one pb.Delivery (up to MaxBatch events). An idle
// flusher sends an event at once, so batching adds no wait when the bus
// keeps up; under load, events queue while a flush is on the wire and the
// next flush carries them all: one bus message per node per flush.
type batcher struct {
	cfg FanoutConfig
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]*outbox
	order   []string      // nodes with something pending, first come first
	count   int           // events pending, over all nodes
	room    chan struct{} // closed (and replaced) when a flush makes room
	wake    chan struct{}
	hold    chan struct{} // tests: the flusher waits for this to close

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// StartFanout returns a Fanout that batches per link node (see batcher).
// It owns a goroutine: Shutdown flushes what is queued and stops it.
func StartFanout(nc *nats.Conn, router Router, versions Versions, log *slog.Logger, cfg FanoutConfig) *Fanout {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 8192
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := NewFanout(nc, router, versions)
	f.batch = &batcher{
		cfg: cfg, log: log,
		pending: make(map[string]*outbox),
		room:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go f.flushLoop()
	return f
}

// Shutdown flushes the queued events and stops the flusher of a batching
// Fanout (a no-op for one made by NewFanout). Idempotent.
func (f *Fanout) Shutdown(ctx context.Context) error {
	b := f.batch
	if b == nil {
		return nil
	}
	b.once.Do(func() { close(b.stop) })
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueue queues an encoded event for nodes, waiting for room if needed.
func (b *batcher) enqueue(ctx context.Context, nodes []string, ev []byte, version uint64) error {
	const op = "message.Fanout"
	select {
	case <-b.stop:
		return guildhall.E(op, guildhall.Unavailable, "shutting down")
	default:
	}
	b.mu.Lock()
	for b.count >= b.cfg.MaxPending {
		room := b.room
		b.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return guildhall.E(op, guildhall.Unavailable, "the bus is not keeping up")
		case <-b.stop:
			return guildhall.E(op, guildhall.Unavailable, "shutting down")
		}
		b.mu.Lock()
	}
	for _, node := range nodes {
		ob := b.pending[node]
		if ob == nil {
			ob = &outbox{}
			b.pending[node] = ob
			b.order = append(b.order, node)
		}
		ob.events = append(ob.events, ev)
		ob.versions = append(ob.versions, version)
	}
	b.count++
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return nil
}

// take removes and returns everything queued.
func (b *batcher) take() (map[string]*outbox, []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pending, order := b.pending, b.order
	if len(order) > 0 {
		b.pending, b.order, b.count = make(map[string]*outbox, len(pending)), nil, 0
		close(b.room)
		b.room = make(chan struct{})
	}
	return pending, order
}

func (f *Fanout) flushLoop() {
	b := f.batch
	defer close(b.done)
	for {
		select {
		case <-b.wake:
		case <-b.stop:
			f.flush(b.take()) // what was queued before Shutdown
			return
		}
		pending, order := b.take()
		b.mu.Lock()
		h := b.hold
		b.mu.Unlock()
		if h != nil {
			<-h
		}
		f.flush(pending, order)
	}
}

// flush sends each node what was queued for it, MaxBatch events per bus
// message, in the order they were published.
func (f *Fanout) flush(pending map[string]*outbox, order []string) {
	b := f.batch
	for _, node := range order {
		ob := pending[node]
		for len(ob.events) > 0 {
			n := min(len(ob.events), b.cfg.MaxBatch)
			data := encodeDelivery(ob.events[:n], ob.versions[:n], f.versions != nil)
			if err := f.nc.Publish(bus.LinkDeliver(node), data); err != nil {
				b.log.Warn("fanout", "node", node, "err", err)
			}
			ob.events, ob.versions = ob.events[n:], ob.versions[n:]
		}
	}
}

// encodeDelivery builds a pb.Delivery from encoded events without encoding
// them again: byte for byte what proto.Marshal gives.
func encodeDelivery(events [][]byte, versions []uint64, withVersions bool) []byte {
	size := 0
	for _, e := range events {
		size += protowire.SizeTag(1) + protowire.SizeBytes(len(e))
	}
	packed := 0
	if withVersions {
		for _, v := range versions {
			packed += protowire.SizeVarint(v)
		}
		size += protowire.SizeTag(2) + protowire.SizeBytes(packed)
	}
	out := make([]byte, 0, size)
	for _, e := range events {
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, e)
	}
	if withVersions {
		out = protowire.AppendTag(out, 2, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(packed))
		for _, v := range versions {
			out = protowire.AppendVarint(out, v)
		}
	}
	return out
}

// publishBatched queues ev for the nodes of a batching Fanout.
func (f *Fanout) publishBatched(ctx context.Context, nodes []string, ev message.Event) error {
	data, err := proto.Marshal(EventToProto(ev))
	if err != nil {
		return guildhall.Wrap("message.Fanout", err)
	}
	var v uint64
	if f.versions != nil {
		if v, err = f.versions.Version(ctx, ev.Message.ServerID); err != nil {
			return guildhall.Wrap("message.Fanout", err)
		}
	}
	return f.batch.enqueue(ctx, nodes, data, v)
}
