package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// PassResult is one pass of a scenario: connect the clients, measure,
// disconnect. --compare-batch makes two passes.
type PassResult struct {
	Scenario    string        `json:"scenario"`
	Batch       bool          `json:"batch"`
	Clients     int           `json:"clients"`
	Channels    int           `json:"channels"`
	ChannelSize int           `json:"channel_size"` // largest channel
	Processes   int           `json:"processes"`    // load generator processes holding clients
	ConnectWall time.Duration `json:"connect_wall"` // first dial → last subscribed
	Stats       Stats         `json:"stats"`

	// Server memory, when its pid is known. No GC is forced (the server
	// exposes no trigger): readings are taken after --settle of idleness.
	BaselineRSS     int64   `json:"baseline_rss"`
	HalfRSS         int64   `json:"half_rss"` // with the first half of the clients connected
	HalfConns       int     `json:"half_conns"`
	ConnectedRSS    int64   `json:"connected_rss"`
	RSSPerConn      float64 `json:"rss_per_conn"`      // (connected − baseline) / connections
	MarginalPerConn float64 `json:"marginal_per_conn"` // (connected − half) / second-half connections
	// Live heap + goroutine stacks after the last GC (from the spawned
	// server's gctrace): before connecting, and at the last GC after all
	// clients connected. HeapAfterMB < 0: no GC ran since.
	HeapBeforeMB int     `json:"heap_before_mb"`
	HeapAfterMB  int     `json:"heap_after_mb"`
	HeapPerConn  float64 `json:"heap_per_conn"`

	// Delivery scenarios.
	Rate             float64        `json:"rate"` // requested, 0 = flat out
	Sent             uint64         `json:"sent"`
	SendErrors       map[string]int `json:"send_errors,omitempty"`
	SendWall         time.Duration  `json:"send_wall"`
	Expected         uint64         `json:"expected"`
	DeliverWall      time.Duration  `json:"deliver_wall"` // first send → last delivery
	DeliveriesPerSec float64        `json:"deliveries_per_sec"`
	WindowStalls     int            `json:"window_stalls"`

	// Server and load generator CPU over the measured period.
	ServerCPU   time.Duration `json:"server_cpu"`
	LoadCPU     time.Duration `json:"load_cpu"`
	MachineCPU  time.Duration `json:"machine_cpu"` // every process on the machine
	MeasureWall time.Duration `json:"measure_wall"`

	// Idle.
	IdleCPUPerConnPerSec time.Duration `json:"idle_cpu_per_conn_per_sec"`

	// Reconnect storm.
	Storm *StormResult `json:"storm,omitempty"`
}

// bench drives one run: the world on the server, the workers holding the
// clients and the sender.
type bench struct {
	cfg     Config
	logf    func(string, ...any)
	rest    *restClient
	url     string
	proc    serverProc
	world   *world
	workers []workerConn
	remote  bool
	phase   uint64
	// baselineRSS is the server's RSS before the setup: argon2 (19 MiB a
	// password) leaves garbage that a reading after the setup would count
	// and that connections later reuse.
	baselineRSS int64
	srv         *spawned // nil for a server the tool did not start
	connectedAt time.Time
}

func (b *bench) nextPhase() uint64 { b.phase++; return b.phase }

// callAll sends req to every worker at once.
func (b *bench) callAll(ctx context.Context, req func(i int) Request) ([]Reply, error) {
	replies := make([]Reply, len(b.workers))
	errs := make([]error, len(b.workers))
	var wg sync.WaitGroup
	for i, w := range b.workers {
		wg.Go(func() { replies[i], errs[i] = w.call(ctx, req(i)) })
	}
	wg.Wait()
	return replies, errors.Join(errs...)
}

func (b *bench) same(r Request) func(int) Request { return func(int) Request { return r } }

func (b *bench) stats(ctx context.Context, op string) (Stats, error) {
	replies, err := b.callAll(ctx, b.same(Request{Op: op}))
	var st Stats
	for _, r := range replies {
		if r.Stats != nil {
			st.Merge(*r.Stats)
		}
	}
	return st, err
}

func (b *bench) progress(ctx context.Context) (Progress, error) {
	replies, err := b.callAll(ctx, b.same(Request{Op: "progress"}))
	var p Progress
	for _, r := range replies {
		if r.Progress != nil {
			p.Delivered += r.Progress.Delivered
			p.Alive += r.Progress.Alive
		}
	}
	return p, err
}

func (b *bench) reset(ctx context.Context) (uint64, error) {
	phase := b.nextPhase()
	_, err := b.callAll(ctx, b.same(Request{Op: "reset", Phase: phase}))
	return phase, err
}

// connect opens the clients all (a share of world.clients), split evenly
// over the workers; with add, next to those already open.
func (b *bench) connect(ctx context.Context, batch bool, all []ClientSpec, add bool) (time.Duration, Stats, error) {
	per := (len(all) + len(b.workers) - 1) / len(b.workers)
	start := time.Now()
	replies, err := b.callAll(ctx, func(i int) Request {
		lo, hi := min(i*per, len(all)), min((i+1)*per, len(all))
		return Request{Op: "connect", Connect: &ConnectSpec{
			URL: b.url, Batch: batch, Parallel: b.cfg.DialParallel, Tokens: b.world.tokens, Channels: b.world.channels, Clients: all[lo:hi], Append: add,
		}}
	})
	wall := time.Since(start)
	var st Stats
	for _, r := range replies {
		if r.Stats != nil {
			st.Merge(*r.Stats)
		}
	}
	return wall, st, err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *bench) newSender(phase uint64) *sender {
	return &sender{rest: b.rest, token: b.world.tokens[0], phase: phase, size: b.cfg.MessageSize, w: b.world}
}

// poller polls the workers' delivery counts while messages are in flight.
type poller struct {
	delivered atomic.Uint64
	alive     atomic.Int64
	changed   chan struct{} // a poll saw new deliveries
	stop      func()
	err       atomic.Pointer[error]
}

func (b *bench) startPoller(ctx context.Context) *poller {
	p := &poller{changed: make(chan struct{}, 1)}
	// Stopping the poller must not cancel a call in flight: a remote
	// worker whose call is cancelled is killed (see remoteWorker.call).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	p.stop = func() { close(stop); wg.Wait() }
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			default:
			}
			pr, err := b.progress(ctx)
			if err != nil {
				if ctx.Err() == nil {
					p.err.Store(&err)
				}
				return
			}
			p.alive.Store(pr.Alive)
			if old := p.delivered.Swap(pr.Delivered); old != pr.Delivered {
				select {
				case p.changed <- struct{}{}:
				default:
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	return p
}

// waitDelivered waits until expected() deliveries arrived, or none came
// for quiet, or max passed.
func (p *poller) waitDelivered(ctx context.Context, expected func() uint64, quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	last, lastChange := p.delivered.Load(), time.Now()
	for ctx.Err() == nil && time.Now().Before(deadline) {
		d := p.delivered.Load()
		if d >= expected() {
			return
		}
		if d != last {
			last, lastChange = d, time.Now()
		} else if time.Since(lastChange) > quiet {
			return
		}
		_ = sleepCtx(ctx, 5*time.Millisecond)
	}
}

// warmup sends one message to every channel and waits for it everywhere:
// routes, caches and permission checks are warm before anything is timed.
func (b *bench) warmup(ctx context.Context) error {
	phase, err := b.reset(ctx)
	if err != nil {
		return err
	}
	s := b.newSender(phase)
	tickets, wait := s.pool(ctx, b.cfg.Senders)
	for _, ch := range b.world.channels {
		tickets <- ch
	}
	wait()
	if s.failed.Load() > 0 {
		return fmt.Errorf("warm-up sends failed: %v", s.errors())
	}
	p := b.startPoller(ctx)
	defer p.stop()
	p.waitDelivered(ctx, s.expected.Load, 3*time.Second, 15*time.Second)
	if got, want := p.delivered.Load(), s.expected.Load(); got < want {
		b.logf("warm-up: %d of %d deliveries arrived", got, want)
	}
	return nil
}

// pass runs the scenario once with clients identifying with batch.
func (b *bench) pass(ctx context.Context, batch bool) (PassResult, error) {
	cfg := b.cfg
	res := PassResult{Scenario: cfg.Scenario, Batch: batch, Clients: cfg.Clients, Channels: len(b.world.channels), Rate: cfg.Rate}
	for _, n := range b.world.members {
		res.ChannelSize = max(res.ChannelSize, n)
	}
	res.BaselineRSS = b.baselineRSS
	// With the server's pid known, clients connect in two halves with an
	// RSS reading after each: the second half's growth is the marginal
	// cost of a connection, free of what the heap held before (argon2 in
	// the setup leaves tens of MB of garbage that connections then reuse).
	halves := [][]ClientSpec{b.world.clients}
	if b.proc.known() && len(b.world.clients) >= 2 {
		n := len(b.world.clients) / 2
		halves = [][]ClientSpec{b.world.clients[:n], b.world.clients[n:]}
	}
	b.logf("connecting %d clients (batch=%v) over %d process(es)", cfg.Clients, batch, len(b.workers))
	res.HeapBeforeMB, res.HeapAfterMB = -1, -1
	if b.srv != nil {
		if g, ok := b.srv.lastGC(time.Time{}); ok {
			res.HeapBeforeMB = g.liveMB + g.stacks
		}
	}
	var err error
	for k, part := range halves {
		wall, st, cerr := b.connect(ctx, batch, part, k > 0)
		res.ConnectWall += wall
		res.Processes = st.Processes
		if err = cerr; err != nil {
			return res, err
		}
		if k == 0 && len(halves) == 2 {
			if err := sleepCtx(ctx, cfg.Settle); err != nil {
				return res, err
			}
			res.HalfRSS, res.HalfConns = b.proc.rss(), st.ConnectOK
		}
	}
	b.connectedAt = time.Now()
	st, err := b.stats(ctx, "stats")
	res.Stats = st
	if err != nil {
		return res, err
	}
	b.logf("connected %d/%d in %v", st.ConnectOK, cfg.Clients, res.ConnectWall.Round(time.Millisecond))
	if st.ConnectOK == 0 {
		return res, fmt.Errorf("no client connected: %v", st.Errors)
	}
	if b.proc.known() {
		if err := sleepCtx(ctx, cfg.Settle); err != nil {
			return res, err
		}
		res.ConnectedRSS = b.proc.rss()
		b.rssPerConn(&res, st.ConnectOK)
	}
	switch cfg.Scenario {
	case ScenarioOneChannel, ScenarioSpread:
		err = b.measureDelivery(ctx, &res)
	case ScenarioIdle:
		err = b.measureIdle(ctx, &res)
	case ScenarioStorm:
		err = b.measureStorm(ctx, &res)
	}
	if err != nil {
		return res, err
	}
	st, err = b.stats(ctx, "stats")
	res.Stats = st
	if err != nil {
		return res, err
	}
	b.logf("disconnecting")
	_, err = b.stats(ctx, "close")
	return res, err
}

func (b *bench) rssPerConn(res *PassResult, conns int) {
	if b.srv != nil {
		if g, ok := b.srv.lastGC(b.connectedAt); ok && res.HeapBeforeMB >= 0 {
			res.HeapAfterMB = g.liveMB + g.stacks
			res.HeapPerConn = float64(res.HeapAfterMB-res.HeapBeforeMB) * (1 << 20) / float64(max(conns, 1))
		}
	}
	res.RSSPerConn = float64(res.ConnectedRSS-res.BaselineRSS) / float64(max(conns, 1))
	if res.HalfRSS > 0 && conns > res.HalfConns {
		res.MarginalPerConn = float64(res.ConnectedRSS-res.HalfRSS) / float64(conns-res.HalfConns)
	}
}

func (b *bench) measureDelivery(ctx context.Context, res *PassResult) error {
	cfg := b.cfg
	if err := b.warmup(ctx); err != nil {
		return err
	}
	phase, err := b.reset(ctx)
	if err != nil {
		return err
	}
	s := b.newSender(phase)
	tickets, wait := s.pool(ctx, cfg.Senders)
	p := b.startPoller(ctx)
	defer p.stop()
	mode := fmt.Sprintf("%.0f msgs/s", cfg.Rate)
	if cfg.Rate == 0 {
		mode = fmt.Sprintf("flat out (window %d msgs per subscriber)", cfg.Window)
	}
	b.logf("sending %s for %v", mode, cfg.Duration)
	cpu0, self0, all0, t0 := b.proc.cpu(), processCPU(), machineBusy(), time.Now()
	end := t0.Add(cfg.Duration)
	chans := b.world.channels
	if cfg.Rate > 0 {
		for i := 0; ctx.Err() == nil; {
			now := time.Now()
			if !now.Before(end) {
				break
			}
			due := int(now.Sub(t0).Seconds() * cfg.Rate)
			for ; i <= due && ctx.Err() == nil; i++ {
				select {
				case tickets <- chans[i%len(chans)]:
				case <-ctx.Done():
				}
			}
			next := t0.Add(time.Duration(float64(i) / cfg.Rate * float64(time.Second)))
			_ = sleepCtx(ctx, max(time.Until(next), 100*time.Microsecond))
		}
	} else {
		// Closed loop: keep about Window messages per subscriber in flight,
		// so the server is busy all the time but no session's queue (512
		// frames) overflows because the sender outran the fan-out.
		limit := float64(cfg.Window) * float64(cfg.Clients)
		var issued float64
		lastD, lastChange := uint64(0), time.Now()
		for i := 0; ctx.Err() == nil && time.Now().Before(end); {
			ch := chans[i%len(chans)]
			d := p.delivered.Load()
			alive := float64(p.alive.Load())
			if alive == 0 {
				alive = float64(res.Stats.ConnectOK)
			}
			f := float64(b.world.members[ch]) * alive / float64(cfg.Clients)
			out := issued - float64(d)
			if out <= 0 || out+f <= limit {
				select {
				case tickets <- ch:
					issued += f
					i++
				case <-ctx.Done():
				}
				continue
			}
			if d != lastD {
				lastD, lastChange = d, time.Now()
			} else if time.Since(lastChange) > 2*time.Second {
				// Deliveries stopped (lost sessions, lost messages): forget
				// what is in flight rather than stall for the rest of the run.
				res.WindowStalls++
				issued, lastChange = float64(d), time.Now()
			}
			select {
			case <-p.changed:
			case <-time.After(5 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
	wait()
	res.SendWall = time.Since(t0)
	b.logf("sent %d messages; waiting for deliveries", s.sent.Load())
	p.waitDelivered(ctx, s.expected.Load, time.Second, cfg.Drain)
	res.ServerCPU, res.MachineCPU = b.proc.cpu()-cpu0, machineBusy()-all0
	res.MeasureWall = time.Since(t0)
	self := processCPU() - self0
	if e := p.err.Load(); e != nil {
		return *e
	}
	st, err := b.stats(ctx, "stats")
	if err != nil {
		return err
	}
	res.LoadCPU = self
	if b.remote {
		res.LoadCPU += st.CPU
	}
	res.Sent, res.Expected, res.SendErrors = s.sent.Load(), s.expected.Load(), s.errors()
	if st.LastDelivery > 0 {
		res.DeliverWall = time.Duration(st.LastDelivery - t0.UnixNano())
		res.DeliveriesPerSec = float64(st.Delivered) / res.DeliverWall.Seconds()
	}
	return ctx.Err()
}

func (b *bench) measureIdle(ctx context.Context, res *PassResult) error {
	if _, err := b.reset(ctx); err != nil {
		return err
	}
	b.logf("idle for %v", b.cfg.Duration)
	cpu0, self0, all0, t0 := b.proc.cpu(), processCPU(), machineBusy(), time.Now()
	if err := sleepCtx(ctx, b.cfg.Duration); err != nil {
		return err
	}
	res.ServerCPU, res.MachineCPU = b.proc.cpu()-cpu0, machineBusy()-all0
	res.MeasureWall = time.Since(t0)
	self := processCPU() - self0
	st, err := b.stats(ctx, "stats")
	if err != nil {
		return err
	}
	res.LoadCPU = self
	if b.remote {
		res.LoadCPU += st.CPU
	}
	if st.Alive > 0 {
		res.IdleCPUPerConnPerSec = time.Duration(float64(res.ServerCPU) / float64(st.Alive) / res.MeasureWall.Seconds())
	}
	if b.proc.known() { // after the idle period: the latest, most settled reading
		res.ConnectedRSS = b.proc.rss()
		b.rssPerConn(res, int(st.Alive))
	}
	return nil
}

func (b *bench) measureStorm(ctx context.Context, res *PassResult) error {
	cfg := b.cfg
	if err := b.warmup(ctx); err != nil {
		return err
	}
	phase, err := b.reset(ctx)
	if err != nil {
		return err
	}
	s := b.newSender(phase)
	tickets, wait := s.pool(ctx, cfg.Senders)
	probeCtx, stopProbes := context.WithCancel(ctx)
	var probes sync.WaitGroup
	probes.Go(func() {
		t := time.NewTicker(cfg.ProbeEvery)
		defer t.Stop()
		for {
			for _, ch := range b.world.channels {
				select {
				case tickets <- ch:
				default: // senders busy: skip this probe rather than pile up
				}
			}
			select {
			case <-t.C:
			case <-probeCtx.Done():
				return
			}
		}
	})
	how := "resume"
	if !cfg.StormResume {
		how = "identify + subscribe anew"
	}
	b.logf("reconnect storm: all %d clients drop and reconnect at once (%s)", res.Stats.ConnectOK, how)
	cpu0, self0, all0, t0 := b.proc.cpu(), processCPU(), machineBusy(), time.Now()
	replies, err := b.callAll(ctx, b.same(Request{Op: "storm", Storm: &StormSpec{Parallel: cfg.StormBurst, Resume: cfg.StormResume, Wait: 30 * time.Second}}))
	res.ServerCPU, res.MachineCPU = b.proc.cpu()-cpu0, machineBusy()-all0
	res.MeasureWall = time.Since(t0)
	self := processCPU() - self0
	stopProbes()
	probes.Wait()
	wait()
	if err != nil {
		return err
	}
	var sr StormResult
	for _, r := range replies {
		if r.Storm != nil {
			sr.Merge(*r.Storm)
		}
	}
	res.Storm = &sr
	res.Sent, res.SendErrors = s.sent.Load(), s.errors()
	st, err := b.stats(ctx, "stats")
	if err != nil {
		return err
	}
	res.LoadCPU = self
	if b.remote {
		res.LoadCPU += st.CPU
	}
	return nil
}
