// Command guildhall-bench load-tests a guildhall over loopback: it sets up
// users, a server and channels over REST, opens many gateway clients
// (protobuf, spread over child processes when there are many), sends
// messages carrying their send time and reports deliveries/s, send →
// receive latency, server CPU per delivery, server RSS per connection,
// connect times, errors and close codes. Every run is bounded in clients
// and time and stops by itself.
//
//	guildhall-bench --spawn-server --scenario one-channel --clients 2000 --duration 20s --compare-batch
//
// Scenarios: one-channel, spread (channels of --channel-size members),
// idle (heartbeats only) and reconnect-storm (every client drops its
// connection and resumes its session at once). See docs/benchmarks.md for
// measured figures and how to read them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func main() {
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "guildhall-bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := m.Run(ctx)
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "guildhall-bench:", err)
		os.Exit(1)
	}
}

// Main is one invocation of the tool. Tests run it in-process: NewMain,
// ParseFlags, Run, then Close.
type Main struct {
	Config Config
	Stdin  io.Reader // --worker: requests
	Stdout io.Writer // the report (--worker: replies)
	Stderr io.Writer // progress lines

	// Passes holds the results once Run returns.
	Passes []PassResult
	// ServerWarnings and ServerErrors count the spawned server's log lines
	// at those levels; ServerLog holds the first distinct ones.
	ServerWarnings, ServerErrors int
	ServerLog                    []string

	start     time.Time
	server    *spawned
	workers   []workerConn
	closeOnce sync.Once
}

// NewMain returns a Main writing to the process's stdout and stderr.
func NewMain() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
}

func (m *Main) logf(format string, args ...any) {
	if m.Config.Quiet {
		return
	}
	fmt.Fprintf(m.Stderr, "[bench %6.1fs] %s\n", time.Since(m.start).Seconds(), fmt.Sprintf(format, args...))
}

// Run runs the whole benchmark and prints its report; it returns when
// done, after at most --timeout.
func (m *Main) Run(ctx context.Context) error {
	m.start = time.Now()
	if m.Config.Worker {
		return runWorker(ctx, m.Stdin, m.Stdout)
	}
	cfg := m.Config
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	nofile, err := raiseNoFile()
	if err != nil {
		return err
	}

	addr := cfg.Addr
	if cfg.SpawnServer {
		if m.server, err = spawnServer(ctx, cfg, m.logf); err != nil {
			return err
		}
		addr = m.server.addr
		cfg.ServerPID = m.server.pid()
	}
	b := &bench{cfg: cfg, logf: m.logf, rest: newRESTClient(addr, cfg.Senders*2), url: "ws://" + addr + "/gateway", proc: serverProc{pid: cfg.ServerPID}}
	defer b.rest.hc.CloseIdleConnections()
	b.baselineRSS, b.srv = b.proc.rss(), m.server
	if b.world, err = setupWorld(ctx, b.rest, cfg, m.logf); err != nil {
		return err
	}

	if cfg.Clients <= cfg.PerWorker {
		if uint64(cfg.Clients)+100 > nofile {
			return fmt.Errorf("%d clients need more than the %d open files this process may have", cfg.Clients, nofile)
		}
		m.workers = []workerConn{localWorker{newWorker()}}
	} else {
		n := (cfg.Clients + cfg.PerWorker - 1) / cfg.PerWorker
		m.logf("starting %d worker processes", n)
		for range n {
			w, err := startWorker()
			if err != nil {
				return err
			}
			m.workers = append(m.workers, w)
		}
		b.remote = true
	}
	b.workers = m.workers

	batches := []bool{cfg.Batch}
	if cfg.CompareBatch && cfg.deliveryScenario() {
		batches = []bool{false, true}
	}
	for _, batch := range batches {
		res, err := b.pass(ctx, batch)
		m.Passes = append(m.Passes, res)
		if err != nil {
			m.printReport(cfg)
			return fmt.Errorf("%s pass (batch=%v): %w", cfg.Scenario, batch, err)
		}
		if m.server != nil && !m.server.alive() {
			m.printReport(cfg)
			return fmt.Errorf("guildhall exited during the run (%v):\n%s", m.server.waitErr, m.server.logTail(20))
		}
	}
	if m.server != nil {
		m.ServerWarnings, m.ServerErrors, m.ServerLog = m.server.logSummary()
	}
	m.printReport(cfg)
	return nil
}

// Close stops the workers and the spawned server. It is idempotent.
func (m *Main) Close() error {
	var errs []error
	m.closeOnce.Do(func() {
		for _, w := range m.workers {
			errs = append(errs, w.close())
		}
		if m.server != nil {
			m.server.stop()
		}
	})
	return errors.Join(errs...)
}
