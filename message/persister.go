package message

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	guildhall "github.com/guildhall/guildhall"
)

// PersisterConfig configures a Persister. Source and Store are required.
type PersisterConfig struct {
	Source LogSource
	Store  Store
	// BatchSize is the most changes written at once; default 500 (the
	// source may cap it).
	BatchSize int
	// BatchWait is how long a batch waits to fill up; default 20ms.
	BatchWait time.Duration
	// WriteTimeout bounds one attempt to write a batch; default 10s. Keep
	// it well under the source's redelivery time (message/jetstream
	// AckWait, 30s), so that a batch is never written by two persisters
	// at once.
	WriteTimeout time.Duration
	// MaxBackoff caps the wait between retries of a failing write;
	// default 2s (it starts at 50ms and doubles).
	MaxBackoff time.Duration
	// Registerer gets the persister's metrics; nil for none.
	Registerer prometheus.Registerer
	// Logger; default discards.
	Logger *slog.Logger
}

// Persister copies the message log into the Store, in batches, in log
// order (DESIGN.md §4: persisting happens asynchronously, from the
// stream). A batch is acknowledged to the log only once the store has it,
// so a persister that dies mid-batch leaves the batch to be handed out
// again, and Store.Persist's idempotence makes the replay harmless. A
// write that fails is retried, with backoff, until it lands: the log
// keeps the batch meanwhile, and the service's back-pressure bound stops
// sends before the log could drop anything. The one exception is a record
// the store refuses as Invalid (one this service never writes): it is
// logged, counted as an error and dropped, so it cannot stop the
// persister for good.
//
// Any number of Persisters may run, in any processes, on one shared
// source: the source hands out one batch at a time, so they take turns.
type Persister struct {
	cfg     PersisterConfig
	metrics persisterMetrics

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	ctx      context.Context // cancelled when Shutdown gives up
	cancel   context.CancelFunc
}

type persisterMetrics struct {
	lag       prometheus.Gauge
	batch     prometheus.Histogram
	persisted prometheus.Counter
	errors    prometheus.Counter
}

// StartPersister starts a Persister; stop it with Shutdown.
func StartPersister(cfg PersisterConfig) (*Persister, error) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = 20 * time.Millisecond
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Persister{cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
	p.metrics = persisterMetrics{
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "guildhall", Subsystem: "message_persister", Name: "lag",
			Help: "Message log records not yet persisted, as of the last batch.",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "guildhall", Subsystem: "message_persister", Name: "batch_size",
			Help:    "Records per batch written to the history store.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 7),
		}),
		persisted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "guildhall", Subsystem: "message_persister", Name: "persisted_total",
			Help: "Message log records written to the history store.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "guildhall", Subsystem: "message_persister", Name: "errors_total",
			Help: "Failed attempts to read the log, write the store or acknowledge a batch.",
		}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{p.metrics.lag, p.metrics.batch, p.metrics.persisted, p.metrics.errors} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, guildhall.Wrap("message.StartPersister", err)
			}
		}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	go p.run()
	return p, nil
}

// run takes batches until Shutdown, then drains: it keeps going until a
// fetch comes back empty (everything is persisted) or Shutdown gives up.
func (p *Persister) run() {
	defer close(p.done)
	draining := false
	backoff := time.Duration(0)
	for {
		select {
		case <-p.stop:
			draining = true
		default:
		}
		if p.ctx.Err() != nil {
			return
		}
		b, err := p.cfg.Source.Next(p.ctx, p.cfg.BatchSize, p.cfg.BatchWait)
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			p.metrics.errors.Inc()
			p.cfg.Logger.Warn("message log read failed", "err", err)
			backoff = p.sleep(backoff)
			continue
		}
		if b.Ack == nil { // nothing waiting
			p.metrics.lag.Set(0)
			if draining {
				return
			}
			continue
		}
		p.metrics.lag.Set(float64(b.Pending))
		if !p.write(b) {
			return
		}
		backoff = 0
	}
}

// write stores a batch and acknowledges it, retrying each step until it
// succeeds or the persister is stopped for good; false if stopped.
func (p *Persister) write(b Batch) bool {
	backoff := time.Duration(0)
	for {
		ctx, cancel := context.WithTimeout(p.ctx, p.cfg.WriteTimeout)
		err := p.cfg.Store.Persist(ctx, b.Changes)
		if guildhall.KindOf(err) == guildhall.Invalid {
			// A record the store can never take (not one this service
			// wrote): drop it rather than retry the batch forever.
			b.Changes, err = p.dropInvalid(ctx, b.Changes)
		}
		cancel()
		if err == nil {
			break
		}
		if p.ctx.Err() != nil {
			return false
		}
		p.metrics.errors.Inc()
		p.cfg.Logger.Warn("persisting a message batch failed, retrying", "changes", len(b.Changes), "err", err)
		backoff = p.sleep(backoff)
	}
	p.metrics.batch.Observe(float64(len(b.Changes)))
	p.metrics.persisted.Add(float64(len(b.Changes)))
	for {
		ctx, cancel := context.WithTimeout(p.ctx, p.cfg.WriteTimeout)
		err := b.Ack(ctx)
		cancel()
		if err == nil {
			return true
		}
		if p.ctx.Err() != nil {
			return false
		}
		// The batch will be handed out again and written again, which
		// Persist's idempotence makes harmless.
		p.metrics.errors.Inc()
		p.cfg.Logger.Warn("acknowledging a message batch failed", "err", err)
		if errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		backoff = p.sleep(backoff)
		return true
	}
}

// dropInvalid stores changes one at a time, in order, leaving out (and
// logging) each one the store refuses as Invalid, and returns the rest.
func (p *Persister) dropInvalid(ctx context.Context, changes []Change) ([]Change, error) {
	keep := changes[:0:0]
	for _, c := range changes {
		err := p.cfg.Store.Persist(ctx, []Change{c})
		switch {
		case guildhall.KindOf(err) == guildhall.Invalid:
			p.metrics.errors.Inc()
			p.cfg.Logger.Error("dropping a message log record the store refuses", "kind", c.Kind,
				"channel", c.Message.ChannelID, "message", c.Message.ID, "seq", c.Message.Seq, "err", err)
		case err != nil:
			return changes, err // retry the whole batch
		default:
			keep = append(keep, c)
		}
	}
	return keep, nil
}

// sleep waits before a retry (50ms, doubling up to MaxBackoff) and
// returns the next wait; it returns early when the persister is stopped.
func (p *Persister) sleep(last time.Duration) time.Duration {
	next := min(max(2*last, 50*time.Millisecond), p.cfg.MaxBackoff)
	t := time.NewTimer(next)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.ctx.Done():
	}
	return next
}

// Shutdown stops taking new work once everything in the log is persisted
// and returns; if ctx ends first, the batch in progress is abandoned (not
// acknowledged: another persister, or this one restarted, writes it
// again). It is idempotent.
func (p *Persister) Shutdown(ctx context.Context) error {
	p.stopOnce.Do(func() { close(p.stop) })
	select {
	case <-p.done:
		p.cancel()
		return nil
	case <-ctx.Done():
		p.cancel()
		<-p.done
		return ctx.Err()
	}
}
