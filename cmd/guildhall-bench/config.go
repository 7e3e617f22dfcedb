package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Scenarios the tool runs (--scenario).
const (
	ScenarioOneChannel = "one-channel"     // N clients in one channel
	ScenarioSpread     = "spread"          // N clients over channels of --channel-size
	ScenarioIdle       = "idle"            // N clients heartbeating, no traffic
	ScenarioStorm      = "reconnect-storm" // all clients drop and reconnect at once
)

var scenarios = []string{ScenarioOneChannel, ScenarioSpread, ScenarioIdle, ScenarioStorm}

// Bounds that keep one invocation from running away.
const (
	maxClients     = 200_000
	maxDuration    = 10 * time.Minute
	maxPerProcess  = 19_900 // sockets one process may hold (hard fd limit 20,000)
	maxChannels    = 500    // channels a server may have
	maxUsers       = 200
	defaultTimeout = 15 * time.Minute
)

// Config is the whole configuration of one bench run.
type Config struct {
	Addr         string        // host:port of a running guildhall; loopback only
	SpawnServer  bool          // build and start a fresh guildhall instead
	ServerBin    string        // --spawn-server: prebuilt binary, empty: go build
	ServerFlags  []string      // --spawn-server: extra flags for guildhall
	ServerHB     time.Duration // --spawn-server: --heartbeat-interval of the server
	ServerPID    int           // server process for CPU and RSS, 0: not measured (set by --spawn-server)
	Scenario     string
	Clients      int
	ChannelSize  int
	Rate         float64 // messages/s; 0 = flat out (closed loop, see Window)
	Window       int     // flat out: messages in flight per subscriber
	Duration     time.Duration
	Batch        bool
	CompareBatch bool
	Users        int
	Senders      int
	MessageSize  int  // bytes of content per message
	PerWorker    int  // clients per process; above it, clients go to child workers
	DialParallel int  // connects in progress at once per process (0: unlimited)
	StormBurst   int  // reconnect-storm: dials at once per process (0: all at once)
	StormResume  bool // reconnect-storm: resume the sessions instead of identifying anew
	Settle       time.Duration
	Drain        time.Duration // longest wait for in-flight deliveries after sending stops
	ProbeEvery   time.Duration // reconnect-storm: one message per channel this often
	Timeout      time.Duration // the whole run
	Quiet        bool          // no progress lines on stderr
	Worker       bool          // internal: run as a child worker (stdin/stdout JSON)
}

// ParseFlags fills m.Config from args and validates it.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("guildhall-bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := &m.Config
	var serverFlags string
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "host:port of a running guildhall (loopback only); ignored with --spawn-server")
	fs.BoolVar(&c.SpawnServer, "spawn-server", false, "build guildhall (go build) and start it on a free loopback port with a temp data dir; stopped at the end")
	fs.StringVar(&c.ServerBin, "server-bin", "", "with --spawn-server: use this guildhall binary instead of building one")
	fs.StringVar(&serverFlags, "server-flags", "", "with --spawn-server: extra space-separated flags for guildhall")
	fs.DurationVar(&c.ServerHB, "server-heartbeat", 30*time.Second, "with --spawn-server: the server's --heartbeat-interval")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "pid of the guildhall process, for server CPU and RSS from /proc (set by --spawn-server)")
	fs.StringVar(&c.Scenario, "scenario", ScenarioOneChannel, "one of "+strings.Join(scenarios, ", "))
	fs.IntVar(&c.Clients, "clients", 1000, fmt.Sprintf("gateway clients to open (at most %d)", maxClients))
	fs.IntVar(&c.ChannelSize, "channel-size", 1000, "members per channel for spread, idle and reconnect-storm")
	fs.Float64Var(&c.Rate, "rate", 0, "messages/s sent over REST; 0 sends flat out, keeping --window messages per subscriber in flight")
	fs.IntVar(&c.Window, "window", 10, "with --rate 0: messages in flight per subscriber (the server queues 512 frames per session)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to send (idle: how long to measure)")
	fs.BoolVar(&c.Batch, "batch", true, "clients identify with batch=true")
	fs.BoolVar(&c.CompareBatch, "compare-batch", false, "delivery scenarios: run with batch=false, then batch=true, and print the ratio")
	fs.IntVar(&c.Users, "users", 8, "users registered over REST; gateway clients share their tokens")
	fs.IntVar(&c.Senders, "senders", 8, "concurrent REST senders")
	fs.IntVar(&c.MessageSize, "message-size", 100, "bytes of message content (at least 48: it carries the send time)")
	fs.IntVar(&c.PerWorker, "clients-per-worker", 5000, fmt.Sprintf("clients per process; more clients start child worker processes (at most %d per process)", maxPerProcess))
	fs.IntVar(&c.DialParallel, "dial-parallel", 256, "connects in progress at once per process; 0 for no limit")
	fs.IntVar(&c.StormBurst, "storm-parallel", 0, "reconnect-storm: reconnects in progress at once per process; 0 for all at once")
	fs.BoolVar(&c.StormResume, "storm-resume", true, "reconnect-storm: resume the dropped sessions; false identifies and subscribes anew")
	fs.DurationVar(&c.Settle, "settle", 5*time.Second, "idle wait before each server RSS reading (the server has no GC trigger)")
	fs.DurationVar(&c.Drain, "drain", 10*time.Second, "longest wait for in-flight deliveries once sending stops")
	fs.DurationVar(&c.ProbeEvery, "probe-every", 100*time.Millisecond, "reconnect-storm: send one message to every channel this often")
	fs.DurationVar(&c.Timeout, "timeout", defaultTimeout, "hard limit on the whole run")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress lines on stderr")
	fs.BoolVar(&c.Worker, "worker", false, "internal: run as a child worker driven over stdin/stdout")
	usage := func() string {
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		return b.String()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return fmt.Errorf("usage of guildhall-bench:\n%s", usage())
		}
		return fmt.Errorf("%v\nusage of guildhall-bench:\n%s", err, usage())
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (all settings are flags)", fs.Arg(0))
	}
	c.ServerFlags = strings.Fields(serverFlags)
	if c.Worker {
		return nil
	}
	return c.validate()
}

func (c *Config) validate() error {
	if !c.SpawnServer {
		if err := loopbackOnly(c.Addr); err != nil {
			return err
		}
	}
	known := false
	for _, s := range scenarios {
		known = known || s == c.Scenario
	}
	if !known {
		return fmt.Errorf("--scenario %q: want one of %s", c.Scenario, strings.Join(scenarios, ", "))
	}
	switch {
	case c.Clients < 1 || c.Clients > maxClients:
		return fmt.Errorf("--clients %d: want 1 to %d", c.Clients, maxClients)
	case c.ChannelSize < 1:
		return fmt.Errorf("--channel-size must be at least 1")
	case c.Scenario != ScenarioOneChannel && (c.Clients+c.ChannelSize-1)/c.ChannelSize > maxChannels:
		return fmt.Errorf("--clients %d over channels of %d needs more than %d channels (one server's limit)", c.Clients, c.ChannelSize, maxChannels)
	case c.Rate < 0 || c.Rate > 100_000:
		return fmt.Errorf("--rate %v: want 0 (flat out) to 100000 messages/s", c.Rate)
	case c.Window < 1 || c.Window > 256:
		return fmt.Errorf("--window %d: want 1 to 256 (the server closes sessions with 512 frames queued)", c.Window)
	case c.Duration <= 0 || c.Duration > maxDuration:
		return fmt.Errorf("--duration %v: want more than 0, at most %v", c.Duration, maxDuration)
	case c.Users < 1 || c.Users > maxUsers:
		return fmt.Errorf("--users %d: want 1 to %d", c.Users, maxUsers)
	case c.Senders < 1 || c.Senders > 256:
		return fmt.Errorf("--senders %d: want 1 to 256", c.Senders)
	case c.MessageSize < 48 || c.MessageSize > 4000:
		return fmt.Errorf("--message-size %d: want 48 to 4000", c.MessageSize)
	case c.PerWorker < 1 || c.PerWorker > maxPerProcess:
		return fmt.Errorf("--clients-per-worker %d: want 1 to %d", c.PerWorker, maxPerProcess)
	case c.DialParallel < 0 || c.StormBurst < 0:
		return fmt.Errorf("--dial-parallel and --storm-parallel must not be negative")
	case c.Settle < 0 || c.Drain < 0:
		return fmt.Errorf("--settle and --drain must not be negative")
	case c.ProbeEvery < 10*time.Millisecond:
		return fmt.Errorf("--probe-every %v: want at least 10ms", c.ProbeEvery)
	case c.Timeout <= 0:
		return fmt.Errorf("--timeout must be positive")
	case c.ServerPID < 0:
		return fmt.Errorf("--server-pid must not be negative")
	case c.SpawnServer && (c.ServerHB < time.Second || c.ServerHB > 5*time.Minute):
		return fmt.Errorf("--server-heartbeat %v: want 1s to 5m", c.ServerHB)
	}
	if (c.Clients+c.PerWorker-1)/c.PerWorker > 64 {
		return fmt.Errorf("--clients %d at --clients-per-worker %d needs more than 64 worker processes", c.Clients, c.PerWorker)
	}
	return nil
}

// loopbackOnly refuses any address that is not this machine's loopback:
// the tool opens thousands of connections and must never aim them at
// someone else's server.
func loopbackOnly(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: want host:port (%v)", addr, err)
	}
	if port == "" {
		return fmt.Errorf("--addr %q: missing port", addr)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--addr %q: only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed", addr)
	}
	return nil
}

// deliveryScenario reports whether the scenario measures message delivery.
func (c *Config) deliveryScenario() bool {
	return c.Scenario == ScenarioOneChannel || c.Scenario == ScenarioSpread
}
