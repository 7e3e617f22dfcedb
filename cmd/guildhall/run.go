package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/guildhall/guildhall/api"
	"github.com/guildhall/guildhall/audit"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/link"
	"github.com/guildhall/guildhall/member"
	"github.com/guildhall/guildhall/message"
	messagejs "github.com/guildhall/guildhall/message/jetstream"
	"github.com/guildhall/guildhall/message/natsrpc"
	"github.com/guildhall/guildhall/role"
	"github.com/guildhall/guildhall/snowflake"
	"github.com/guildhall/guildhall/subscribe"
	"github.com/guildhall/guildhall/web"
)

// Main is one guildhall process. Tests run it in-process: NewMain,
// ParseFlags, Run, then Close.
type Main struct {
	Config Config
	Log    *slog.Logger

	// Stdout receives the migrate command's report (default os.Stdout).
	Stdout io.Writer

	ns     *server.Server
	nc     *nats.Conn
	stores *stores
	ln     net.Listener
	http   *http.Server

	link   *link.Node
	sub    *subscribe.Service
	view   *subscribe.View
	msgSrv *natsrpc.Server
	// fanout batches the message role's events per link node.
	fanout *natsrpc.Fanout
	// persister copies the message log into the store.
	persister *message.Persister
	serveCh   chan error

	// metrics is what GET /metrics serves; components register on it.
	metrics *prometheus.Registry
	ops     *httpServer // --metrics-addr

	bg       sync.WaitGroup // background loops (audit pruning)
	bgCtx    context.Context
	bgCancel context.CancelFunc
}

// linkDirectory answers a link node's questions: what a user sees (member
// service) and whether they may follow a channel (role resolver).
type linkDirectory struct {
	*member.Service
	res *role.Resolver
}

func (d linkDirectory) CanView(ctx context.Context, userID, channelID uint64) (uint64, uint64, error) {
	return d.res.CanView(ctx, userID, channelID)
}

// linkReads gives a link node the read-state service in its own types.
type linkReads struct{ r *message.ReadStates }

func (l linkReads) Ack(ctx context.Context, userID, channelID, messageID uint64) (link.ReadState, error) {
	rs, err := l.r.Ack(ctx, userID, channelID, messageID)
	return link.ReadState(rs), err
}

func (l linkReads) List(ctx context.Context, userID uint64, channelIDs []uint64) ([]link.ReadState, error) {
	list, err := l.r.List(ctx, userID, channelIDs)
	out := make([]link.ReadState, len(list))
	for i, rs := range list {
		out[i] = link.ReadState(rs)
	}
	return out, err
}

// readNotifier tells every link node (link.Notifier, over NATS) that a
// user's read position moved.
type readNotifier struct{ n *link.Notifier }

func (r readNotifier) Acked(ctx context.Context, userID uint64, rs message.ReadState) {
	r.n.Acked(ctx, userID, link.ReadState(rs))
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{Log: slog.New(slog.NewTextHandler(os.Stderr, nil)), Stdout: os.Stdout}
}

// NATSURL is the client URL of the embedded NATS server when it listens
// (--nats-listen), for other processes' --nats-url; empty otherwise.
func (m *Main) NATSURL() string {
	if m.ns == nil || m.Config.NATSListen == "" {
		return ""
	}
	return m.ns.ClientURL()
}

// Addr is the address HTTP listens on (useful with port 0).
func (m *Main) Addr() string {
	if m.ln == nil {
		return ""
	}
	return m.ln.Addr().String()
}

// natsWhere says which NATS this process uses, for the log.
func (m *Main) natsWhere() string {
	switch {
	case m.Config.NATSURL != "":
		return m.Config.NATSURL
	case m.NATSURL() != "":
		return "embedded, listening on " + m.NATSURL()
	}
	return "embedded, in-process only"
}

// MetricsAddr is the address of the --metrics-addr listener, if any.
func (m *Main) MetricsAddr() string {
	if m.ops == nil {
		return ""
	}
	return m.ops.Addr()
}

// LinkID is the bus ID of this process's link node, if it runs one.
func (m *Main) LinkID() string {
	if m.link == nil {
		return ""
	}
	return m.link.ID()
}

func (m *Main) setupLog() {
	var level slog.Level
	_ = level.UnmarshalText([]byte(m.Config.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if m.Config.LogFormat == "json" {
		m.Log = slog.New(slog.NewJSONHandler(os.Stderr, opts))
	} else {
		m.Log = slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
}

// Run starts every configured role and returns once they serve. On error,
// call Close to release what was started. For the migrate command it
// applies the migrations, reports them on m.Stdout, and returns.
func (m *Main) Run(ctx context.Context) error {
	c := m.Config
	m.setupLog()
	if c.Command == CommandMigrate {
		return m.migrate(ctx, m.Stdout)
	}
	m.bgCtx, m.bgCancel = context.WithCancel(context.Background())
	m.metrics = prometheus.NewRegistry()
	m.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if c.Store == StoreEmbedded || c.NATSURL == "" {
		if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
	}
	if err := m.connectBus(); err != nil {
		return err
	}
	node := c.NodeID
	if node < 0 {
		var b [2]byte
		_, _ = rand.Read(b[:])
		node = int(binary.BigEndian.Uint16(b[:]) % (snowflake.MaxNode + 1))
		if c.Store == StoreCQL {
			m.Log.Warn("no --node-id: picked a random snowflake node number; two processes on one number can mint the same ID, so give each its own", "node_id", node)
		}
	}
	ids, err := snowflake.New(node, nil)
	if err != nil {
		return err
	}

	needStore := c.has(RoleAPI) || c.has(RoleLink) || c.has(RoleMessage)
	var (
		members  *member.Service
		messages message.Store
		resolver *role.Resolver
		rstore   role.Store
		roles    *role.Service
		auditLog *audit.Log
		reads    *message.ReadStates
	)
	// The durable message log (JetStream): the message role appends to it
	// and persists from it; history reads (api, link) look at it.
	var mlog *messagejs.Log
	if needStore {
		if mlog, err = messagejs.New(ctx, m.nc, messagejs.Config{Replicas: c.JetStreamReplicas}); err != nil {
			return fmt.Errorf("message log: %w", err)
		}
	}
	if needStore {
		if c.Store == StoreCQL {
			m.stores, err = m.openDistributed(ctx, m.nc)
		} else {
			m.stores, err = m.openEmbedded()
		}
		if err != nil {
			return err
		}
		st := m.stores
		rstore = st.roles
		auditLog = audit.NewLog(st.audit, ids, nil, m.Log.With("component", "audit"), c.AuditRetention)
		resolver = role.NewResolver(rstore, member.NewDirectory(st.members))
		roles = role.NewService(rstore, resolver, ids, auditLog)
		members = member.NewService(st.members, roles, ids, nil, member.Config{Audit: auditLog})
		messages = st.messages
		reads, err = message.NewReadStates(message.ReadStatesConfig{
			Access:     resolver,
			Messages:   message.NewReader(messages, resolver, st.cache, mlog).Recent(),
			Roles:      rstore,
			Counters:   st.counters,
			Store:      st.readStates,
			Notifier:   readNotifier{link.NewNotifier(m.nc, m.Log.With("component", "readstates"))},
			Log:        m.Log.With("component", "readstates"),
			Registerer: m.metrics,
		})
		if err != nil {
			return fmt.Errorf("read states: %w", err)
		}
		// Retention pruning: in distributed mode only api processes do it
		// (every deployment has one; pruning is idempotent, so several
		// api processes doing it is only redundant).
		if c.Store == StoreEmbedded || c.has(RoleAPI) {
			m.bg.Add(1)
			go func() { defer m.bg.Done(); auditLog.Run(m.bgCtx) }()
		}
	} else if c.Store == StoreCQL && c.Migrate {
		if err := m.migrate(ctx, logWriter{m}); err != nil {
			return err
		}
	}

	if c.has(RoleSubscribe) {
		if m.sub, err = subscribe.Start(m.nc, m.Log.With("role", RoleSubscribe), subscribe.Config{}); err != nil {
			return fmt.Errorf("subscribe role: %w", err)
		}
	}
	if c.has(RoleMessage) {
		if m.view, err = subscribe.StartView(m.nc, m.Log.With("role", RoleMessage), subscribe.ViewConfig{}); err != nil {
			return fmt.Errorf("message role: %w", err)
		}
		m.fanout = natsrpc.StartFanout(m.nc, m.view, rstore, m.Log.With("role", RoleMessage, "component", "fanout"), natsrpc.FanoutConfig{})
		svc := message.NewService(message.Config{
			Store: messages, Access: resolver, Log: mlog, Publisher: m.fanout, IDs: ids,
			Cache: m.stores.cache, Counters: m.stores.counters, Logger: m.Log.With("role", RoleMessage),
		})
		if m.persister, err = message.StartPersister(message.PersisterConfig{
			Source: mlog, Store: messages, Logger: m.Log.With("role", RoleMessage, "component", "persister"),
			Registerer: m.metrics,
		}); err != nil {
			return fmt.Errorf("message role: %w", err)
		}
		if m.msgSrv, err = natsrpc.Serve(m.nc, svc, m.Log.With("role", RoleMessage), natsrpc.ServerConfig{}); err != nil {
			return fmt.Errorf("message role: %w", err)
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", m.ready)
	metrics := promhttp.HandlerFor(m.metrics, promhttp.HandlerOpts{})
	if c.MetricsAddr == "" {
		mux.Handle("GET /metrics", metrics)
	} else {
		ops := http.NewServeMux()
		ops.Handle("GET /metrics", metrics)
		ops.HandleFunc("GET /readyz", m.ready)
		ops.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
		})
		if m.ops, err = startHTTP(c.MetricsAddr, ops, m.Log); err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
	}
	mux.Handle("/", web.Handler()) // the web client (web/); REST and the gateway have their own routes
	client := natsrpc.NewClient(m.nc)
	if c.has(RoleAPI) {
		mux.Handle("/api/v1/", api.New(api.Services{
			Members:    members,
			Messages:   client,
			History:    message.NewReader(messages, resolver, m.stores.cache, mlog),
			Roles:      roles,
			Audit:      auditLog,
			ReadStates: reads,
		}, m.Log.With("role", RoleAPI)).Handler())
	}
	if c.has(RoleLink) {
		m.link, err = link.Start(m.nc, members, linkDirectory{members, resolver}, client, m.Log.With("role", RoleLink), link.Config{
			NodeID:            c.LinkID,
			HeartbeatInterval: c.HeartbeatInterval,
			OriginPatterns:    c.AllowedOrigins,
			Compression:       c.Compression,
			SmallServer:       smallServer(c.SmallServer),
			ReadStates:        linkReads{reads},
			Roles:             rstore,
			History:           message.NewReader(messages, resolver, m.stores.cache, mlog),
			Sessions:          linkSessions(m.nc, m.Log, c.JetStreamReplicas),
			Changes:           mlog,
		})
		if err != nil {
			return fmt.Errorf("link role: %w", err)
		}
		mux.Handle("GET /gateway", m.link.Handler())
	}

	m.ln, err = net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.Addr, err)
	}
	m.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(m.Log.Handler(), slog.LevelDebug),
	}
	m.serveCh = make(chan error, 1)
	go func() { m.serveCh <- m.http.Serve(m.ln) }()
	return nil
}

func (m *Main) connectBus() error {
	c := m.Config
	if c.NATSURL != "" {
		nc, err := nats.Connect(c.NATSURL, nats.Name("guildhall"), nats.MaxReconnects(-1))
		if err != nil {
			return fmt.Errorf("connect to NATS at %s: %w", c.NATSURL, err)
		}
		m.nc = nc
		return nil
	}
	cfg := bus.EmbeddedConfig{StoreDir: filepath.Join(c.DataDir, "nats")}
	if c.NATSListen != "" {
		host, port, _ := net.SplitHostPort(c.NATSListen)
		p, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("--nats-listen port %q: %w", port, err)
		}
		if p == 0 {
			p = -1 // any free port (bus.EmbeddedConfig's 0 means no listener)
		}
		cfg.Host, cfg.Port = host, p
	}
	ns, err := bus.StartEmbedded(cfg)
	if err != nil {
		return err
	}
	m.ns = ns
	nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns), nats.Name("guildhall"))
	if err != nil {
		return fmt.Errorf("connect to embedded NATS: %w", err)
	}
	m.nc = nc
	return nil
}

// Close shuts down gracefully: link sessions are told to reconnect, HTTP
// stops accepting and finishes requests, the message service finishes what
// it queued, the bus is drained and the store flushed. It is idempotent.
func (m *Main) Close(ctx context.Context) error {
	var errs []error
	if m.link != nil {
		errs = append(errs, m.link.Shutdown(ctx))
		m.link = nil
	}
	if m.http != nil {
		errs = append(errs, m.http.Shutdown(ctx))
		if err := <-m.serveCh; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
		m.http = nil
	}
	if m.ops != nil {
		errs = append(errs, m.ops.Shutdown(ctx))
		m.ops = nil
	}
	if m.msgSrv != nil {
		errs = append(errs, m.msgSrv.Shutdown(ctx))
		m.msgSrv = nil
	}
	if m.fanout != nil { // after the service: it flushes what was published
		errs = append(errs, m.fanout.Shutdown(ctx))
		m.fanout = nil
	}
	if m.persister != nil { // after the service: it drains what was accepted
		errs = append(errs, m.persister.Shutdown(ctx))
		m.persister = nil
	}
	if m.view != nil {
		errs = append(errs, m.view.Shutdown(ctx))
		m.view = nil
	}
	if m.sub != nil {
		errs = append(errs, m.sub.Shutdown(ctx))
		m.sub = nil
	}
	if m.bgCancel != nil {
		m.bgCancel()
		m.bg.Wait()
	}
	if m.nc != nil {
		if m.nc.IsConnected() { // a lost bus has nothing to flush to
			_ = m.nc.Flush()
		}
		m.nc.Close()
		m.nc = nil
	}
	if m.stores != nil {
		errs = append(errs, m.stores.Close(ctx))
		m.stores = nil
	}
	if m.ns != nil {
		m.ns.Shutdown()
		m.ns.WaitForShutdown()
		m.ns = nil
	}
	return errors.Join(errs...)
}

// pebbleLog sends pebble's log to ours, its chatter at debug level.
type pebbleLog struct{ log *slog.Logger }

func (p pebbleLog) Infof(f string, a ...any)  { p.log.Debug(fmt.Sprintf(f, a...)) }
func (p pebbleLog) Errorf(f string, a ...any) { p.log.Error(fmt.Sprintf(f, a...)) }
func (p pebbleLog) Fatalf(f string, a ...any) {
	p.log.Error(fmt.Sprintf(f, a...))
	os.Exit(1)
}

// smallServer maps the flag (0 or negative: off) to link.Config's
// convention (0: default, negative: off).
func smallServer(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

// ready answers GET /readyz: 200 when this process can do its work (the
// bus is connected and, in distributed mode, Redis answers), 503 with the
// reason otherwise. /healthz only says the process runs.
func (m *Main) ready(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	var reason string
	switch {
	case m.nc == nil || !m.nc.IsConnected():
		reason = "not connected to NATS"
	case m.stores != nil && m.stores.redis != nil:
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := m.stores.redis.Ping(ctx).Err(); err != nil {
			reason = "Redis does not answer: " + err.Error()
		}
	}
	if reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "unavailable", "reason": reason})
		return
	}
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// linkSessions opens the session checkpoint bucket for cross-node resume
// on NATS JetStream; nil (resume only on the node that held a session) if
// JetStream is not available.
func linkSessions(nc *nats.Conn, log *slog.Logger, replicas int) link.SessionStore {
	js, err := jetstream.New(nc)
	if err != nil {
		log.Warn("link: no JetStream, sessions resume only on their own node", "err", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := link.NewKVSessions(ctx, js, link.KVSessionsConfig{Replicas: replicas})
	if err != nil {
		log.Warn("link: no session bucket, sessions resume only on their own node", "err", err)
		return nil
	}
	return kv
}
