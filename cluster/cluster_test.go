package cluster_test

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/coder/websocket"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/audit"
	auditpebble "github.com/guildhall/guildhall/audit/pebble"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/link"
	"github.com/guildhall/guildhall/member"
	memberpebble "github.com/guildhall/guildhall/member/pebble"
	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/inmem"
	messagejs "github.com/guildhall/guildhall/message/jetstream"
	"github.com/guildhall/guildhall/message/natsrpc"
	messagepebble "github.com/guildhall/guildhall/message/pebble"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
	"github.com/guildhall/guildhall/role"
	rolepebble "github.com/guildhall/guildhall/role/pebble"
	"github.com/guildhall/guildhall/snowflake"
	"github.com/guildhall/guildhall/subscribe"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait bounds every poll and every read; no test relies on it for timing.
const wait = 10 * time.Second

// checkFor calls f until it returns nil, failing the test with f's last
// error after wait. Only for waiting on something that will happen.
func checkFor(tb testing.TB, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %v", wait, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Server placement. Link nodes, message instances and the subscription
// service each sit on their own server, so every bus message between two
// roles crosses at least one cluster route.
const (
	numServers = 5
	onA        = 0 // link node A
	onB        = 1 // link node B
	onC        = 2 // link node C and the first subscription service
	onMsg1     = 3 // message instance 1, the delivery counter
	onMsg2     = 4 // message instance 2, a restarted subscription service
)

// MustCluster starts n embedded NATS servers joined by cluster routes on
// loopback and waits until they form a full mesh. Pooling is off, so each
// server has exactly n-1 routes.
func MustCluster(tb testing.TB, n int) []*server.Server {
	tb.Helper()
	return mustCluster(tb, n, true) // JetStream carries the message log
}

// mustCluster is MustCluster, with JetStream (clustered, file storage in
// temporary directories) if js.
func mustCluster(tb testing.TB, n int, js bool) []*server.Server {
	tb.Helper()
	var servers []*server.Server
	var seed string
	var clusterPorts []int
	if js {
		clusterPorts = freePorts(tb, n)
	}
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("gh-%d", i),
			Host:       "127.0.0.1",
			Port:       -1,
			NoLog:      true,
			NoSigs:     true,
			MaxPayload: 8 << 20,
			JetStream:  js,
			Cluster: server.ClusterOpts{
				Name:     "guildhall-test",
				Host:     "127.0.0.1",
				Port:     -1,
				PoolSize: -1,
			},
		}
		if i > 0 {
			opts.Routes = server.RoutesFromStr(seed)
		}
		if js {
			// Every server starts knowing every route: a JetStream server
			// finishes starting only once its meta group has a quorum.
			opts.Cluster.Port = clusterPorts[i]
			opts.Routes = nil
			for j, p := range clusterPorts {
				if j != i {
					opts.Routes = append(opts.Routes, server.RoutesFromStr(fmt.Sprintf("nats://127.0.0.1:%d", p))...)
				}
			}
			opts.StoreDir = tb.TempDir()
			opts.JetStreamMaxMemory = 64 << 20
			opts.JetStreamMaxStore = 256 << 20
		}
		ns, err := server.NewServer(opts)
		if err != nil {
			tb.Fatal(err)
		}
		go ns.Start()
		tb.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		if js { // ready once the meta group has a quorum: checked below
			servers = append(servers, ns)
			continue
		}
		if !ns.ReadyForConnections(wait) {
			tb.Fatalf("nats server %d not ready", i)
		}
		if i == 0 {
			seed = "nats://" + ns.ClusterAddr().String()
		}
		servers = append(servers, ns)
	}
	for i, ns := range servers {
		if js && !ns.ReadyForConnections(wait) {
			tb.Fatalf("nats server %d not ready", i)
		}
	}
	checkFor(tb, func() error {
		for i, ns := range servers {
			if got := ns.NumRoutes(); got != n-1 {
				return fmt.Errorf("server %d has %d routes, want %d", i, got, n-1)
			}
		}
		return nil
	})
	if js { // wait until JetStream's meta group has a leader
		nc, err := nats.Connect(servers[0].ClientURL())
		if err != nil {
			tb.Fatal(err)
		}
		defer nc.Close()
		jsc, err := jetstream.New(nc)
		if err != nil {
			tb.Fatal(err)
		}
		checkFor(tb, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := jsc.AccountInfo(ctx)
			return err
		})
	}
	return servers
}

// freePorts finds n free TCP ports on loopback.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		defer ln.Close()
	}
	return ports
}

// world is a Guildhall deployment on a NATS cluster: the shared store, a
// guild with channels x, y and z, its members, and whatever roles a test
// starts.
type world struct {
	servers  []*server.Server
	members  *member.Service
	resolver *role.Resolver
	rstore   role.Store
	store    message.Store
	log      *messagejs.Log
	history  *message.Reader
	reads    *message.ReadStates // with in-memory counters; acks notify every link node

	owner    member.User
	users    []member.User // members besides the owner
	tokens   []string      // tokens[i] is users[i]'s
	x, y, z  uint64        // channels
	counter  *counter
	subs     []*subscribe.Service // running subscription services
	views    []*subscribe.View    // of every message instance
	barriers atomic.Int64
	sessions bool // link nodes checkpoint sessions in a JetStream KV bucket
}

// newWorld starts the cluster and the store and creates the guild.
func newWorld(tb testing.TB, users int, sessions bool) *world {
	tb.Helper()
	// JetStream always: it carries the message log.
	w := &world{servers: mustCluster(tb, numServers, true), sessions: sessions}
	db, err := pebbledb.Open(tb.TempDir(), &pebbledb.Options{Logger: quietPebble{tb}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	// As cmd/guildhall/run.go wires the store, with node 0 for the IDs the
	// member and role services make; message instances have their own.
	ids := mustIDs(tb, 0, nil)
	mstore := memberpebble.New(db)
	rstore := rolepebble.New(db)
	auditLog := audit.NewLog(auditpebble.New(db), ids, nil, nil, 0)
	w.rstore = rstore
	w.resolver = role.NewResolver(rstore, member.NewDirectory(mstore))
	roles := role.NewService(rstore, w.resolver, ids, auditLog)
	w.members = member.NewService(mstore, roles, ids, nil, member.Config{
		Audit:    auditLog,
		Password: member.PasswordParams{MemoryKiB: 64, Time: 1}, // cheap: tests register many users
	})
	w.store = messagepebble.New(db)
	// The message log on the cluster's JetStream and one persister into
	// the shared store, as cmd/guildhall/run.go wires them.
	lnc, err := nats.Connect(w.servers[0].ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(lnc.Close)
	if w.log, err = messagejs.New(context.Background(), lnc, testLogConfig(-1)); err != nil {
		tb.Fatal(err)
	}
	persister, err := message.StartPersister(message.PersisterConfig{Source: w.log, Store: w.store, BatchWait: 5 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { shutdown(tb, persister.Shutdown) })
	w.history = message.NewReader(w.store, w.resolver, nil, w.log)
	if w.reads, err = message.NewReadStates(message.ReadStatesConfig{
		Access: w.resolver, Messages: w.history.Recent(), Roles: rstore,
		Counters: inmem.NewCounters(inmem.CountersConfig{}), Store: messagepebble.NewReadStates(db),
		Notifier: link.NewNotifier(lnc, nil),
	}); err != nil {
		tb.Fatal(err)
	}

	ctx := context.Background()
	w.owner, _, err = w.members.Register(ctx, "owner", "correct horse")
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := w.members.CreateServer(ctx, w.owner, "Guild")
	if err != nil {
		tb.Fatal(err)
	}
	for name, ch := range map[string]*uint64{"x": &w.x, "y": &w.y, "z": &w.z} {
		c, err := w.members.CreateChannel(ctx, w.owner, srv.ID, name)
		if err != nil {
			tb.Fatal(err)
		}
		*ch = c.ID
	}
	inv, err := w.members.CreateInvite(ctx, w.owner, srv.ID, 0, 0)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range users {
		u, token, err := w.members.Register(ctx, fmt.Sprintf("user%d", i), "correct horse")
		if err != nil {
			tb.Fatal(err)
		}
		if _, _, err := w.members.Join(ctx, u, inv.Code); err != nil {
			tb.Fatal(err)
		}
		w.users = append(w.users, u)
		w.tokens = append(w.tokens, token)
	}
	return w
}

func mustIDs(tb testing.TB, node int, now func() time.Time) *snowflake.Generator {
	tb.Helper()
	ids, err := snowflake.New(node, now)
	if err != nil {
		tb.Fatal(err)
	}
	return ids
}

// quietPebble drops Pebble's chatter and fails the test on its errors.
type quietPebble struct{ tb testing.TB }

func (quietPebble) Infof(string, ...any)        {}
func (q quietPebble) Errorf(f string, a ...any) { q.tb.Errorf("pebble: "+f, a...) }
func (quietPebble) Fatalf(f string, a ...any)   { panic(fmt.Sprintf("pebble: "+f, a...)) }

// connect opens a new TCP connection to server i, closed when the test ends.
func (w *world) connect(tb testing.TB, i int, name string) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(w.servers[i].ClientURL(), nats.Name(name), nats.NoReconnect())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// propagated waits until every server of the cluster knows the
// subscriptions nc made so far. A server forwards interest over a route in
// the order it was made, so once a probe subscribed last is known
// everywhere, the earlier ones are too.
func (w *world) propagated(tb testing.TB, nc *nats.Conn) {
	tb.Helper()
	probe := nats.NewInbox()
	sub, err := nc.SubscribeSync(probe)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		tb.Fatal(err)
	}
	w.waitInterest(tb, probe, true)
}

// waitInterest waits until every server does (or does not) know a
// subscriber of subject.
func (w *world) waitInterest(tb testing.TB, subject string, want bool) {
	tb.Helper()
	checkFor(tb, func() error {
		for i, ns := range w.servers {
			if got := ns.GlobalAccount().SubscriptionInterest(subject); got != want {
				return fmt.Errorf("server %d: interest in %s is %v, want %v", i, subject, got, want)
			}
		}
		return nil
	})
}

// startSubscribe starts a subscription service on its own connection to
// server i. Shutdown is left to the test or to cleanup.
func (w *world) startSubscribe(tb testing.TB, i int, cfg subscribe.Config) *subscribe.Service {
	tb.Helper()
	nc := w.connect(tb, i, "subscribe")
	svc, err := subscribe.Start(nc, nil, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { shutdown(tb, svc.Shutdown) })
	w.propagated(tb, nc)
	w.subs = append(w.subs, svc)
	return svc
}

func shutdown(tb testing.TB, f func(context.Context) error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := f(ctx); err != nil {
		tb.Errorf("shutdown: %v", err)
	}
}

// msgInstance is one message-service process: its connection, routing
// view, service and bus server.
type msgInstance struct {
	name string
	nc   *nats.Conn
	view *subscribe.View
	svc  *message.Service
	pub  *countingPub
	log  *gatedLog
}

// startMessage runs a message instance on server i with snowflake node
// ids, wired as in cmd/guildhall/run.go. Its publisher and store are thin
// wrappers that count events and let a test hold one step (see gatedStore
// and countingPub); they pass everything through unchanged.
func (w *world) startMessage(tb testing.TB, i int, name string, ids message.IDs) *msgInstance {
	tb.Helper()
	return w.startMessageOn(tb, w.connect(tb, i, name), name, ids, true)
}

// startMessageOn runs a message instance on nc; without serve it answers
// no bus requests (a test calls its service directly).
func (w *world) startMessageOn(tb testing.TB, nc *nats.Conn, name string, ids message.IDs, serve bool) *msgInstance {
	tb.Helper()
	m := &msgInstance{name: name, nc: nc}
	var err error
	if m.view, err = subscribe.StartView(m.nc, nil, subscribe.ViewConfig{}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { shutdown(tb, m.view.Shutdown) })
	m.pub = &countingPub{next: natsrpc.NewFanout(m.nc, m.view, w.rstore), holding: make(chan struct{})}
	mlog, err := messagejs.New(context.Background(), m.nc, testLogConfig(0))
	if err != nil {
		tb.Fatal(err)
	}
	m.log = &gatedLog{Log: mlog, holding: make(chan struct{})}
	m.svc = message.NewService(message.Config{Store: w.store, Access: w.resolver, Log: m.log, Publisher: m.pub, IDs: ids})
	if serve {
		srv, err := natsrpc.Serve(m.nc, m.svc, nil, natsrpc.ServerConfig{})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { shutdown(tb, srv.Shutdown) })
	}
	w.propagated(tb, m.nc)
	w.views = append(w.views, m.view)
	return m
}

// countingPub counts the Created events a message instance fans out and
// can hold them before they are published.
type countingPub struct {
	next    message.Publisher
	created atomic.Int64
	hold    atomic.Pointer[chan struct{}] // if set, Publish waits for it to close
	holding chan struct{}                 // gets a value when a Publish starts waiting
}

func (p *countingPub) Publish(ctx context.Context, ev message.Event) error {
	if ev.Kind == message.Created {
		p.created.Add(1)
	}
	if h := p.hold.Load(); h != nil {
		p.holding <- struct{}{}
		<-*h
	}
	return p.next.Publish(ctx, ev)
}

// testLogConfig is the message log's configuration here: small enough
// for the test servers' JetStream limits.
func testLogConfig(lagRefresh time.Duration) messagejs.Config {
	return messagejs.Config{MaxBytes: 32 << 20, LagRefresh: lagRefresh}
}

// gatedLog is the instance's message log; a test can make the instance
// pause right before it appends a new message, its seq already chosen.
type gatedLog struct {
	message.Log
	hold    atomic.Pointer[chan struct{}]
	holding chan struct{}
}

func (l *gatedLog) Append(ctx context.Context, c message.Change, expect uint64, dedupe string) (uint64, message.Change, bool, error) {
	if h := l.hold.Load(); h != nil && c.Kind == message.ChangeCreate {
		l.holding <- struct{}{}
		<-*h
	}
	return l.Log.Append(ctx, c, expect, dedupe)
}

// linkNode is one link process: its connection, node and HTTP server.
type linkNode struct {
	id   string
	nc   *nats.Conn
	node *link.Node
	http *httptest.Server
	ln   *trackingListener
}

// linkDirectory is what run.go gives a link node: the member service for
// what a user sees, the role resolver for whether they may follow a channel.
type linkDirectory struct {
	*member.Service
	res *role.Resolver
}

func (d linkDirectory) CanView(ctx context.Context, userID, channelID uint64) (uint64, uint64, error) {
	return d.res.CanView(ctx, userID, channelID)
}

// startLink runs link node id on server i behind an httptest server.
func (w *world) startLink(tb testing.TB, i int, id string, cfg link.Config) *linkNode {
	tb.Helper()
	return w.startLinkOn(tb, w.connect(tb, i, id), id, cfg)
}

// startLinkOn runs link node id on nc.
func (w *world) startLinkOn(tb testing.TB, nc *nats.Conn, id string, cfg link.Config) *linkNode {
	tb.Helper()
	l := &linkNode{id: id, nc: nc}
	cfg.NodeID = id
	if cfg.SmallServer == 0 {
		// These tests count deliveries of explicit subscriptions; the test
		// server is small, and would otherwise be followed in full.
		cfg.SmallServer = -1
	}
	cfg.History = w.history
	if w.reads != nil {
		cfg.ReadStates = w.reads
	}
	if w.sessions {
		cfg.Sessions = mustSessions(tb, l.nc)
		cfg.Changes = w.log
	}
	var err error
	l.node, err = link.Start(l.nc, w.members, linkDirectory{w.members, w.resolver}, natsrpc.NewClient(l.nc), nil, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	l.http = httptest.NewUnstartedServer(l.node.Handler())
	l.ln = &trackingListener{Listener: l.http.Listener}
	l.http.Listener = l.ln
	l.http.Start()
	tb.Cleanup(l.http.Close)
	tb.Cleanup(func() { shutdown(tb, l.node.Shutdown) })
	w.propagated(tb, l.nc)
	return l
}

// crash kills the node as a dying process would: its bus connection, its
// listener and every socket go at once, and nothing says goodbye. (The
// Node's goroutines live on in this process until cleanup shuts it down;
// with its connection closed they can reach nobody.)
func (l *linkNode) crash() {
	l.nc.Close() // first: the sockets closing must not send deltas
	l.ln.cut()
}

// trackingListener remembers every connection it accepted, so crash can cut
// them: httptest's CloseClientConnections skips hijacked (WebSocket) ones.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) cut() {
	_ = l.Listener.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
}

// gate is a TCP proxy in front of a NATS server; each direction can be
// held: what crosses it waits in the proxy, as on a slow route, until
// release.
type gate struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cond  *sync.Cond
	up    bool // client → server held
	down  bool // server → client held
	done  bool
	conns []net.Conn
	wg    sync.WaitGroup
}

func (w *world) mustGate(tb testing.TB, i int) *gate {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	g := &gate{ln: ln, target: w.servers[i].Addr().String()}
	g.cond = sync.NewCond(&g.mu)
	g.wg.Go(g.accept)
	tb.Cleanup(func() {
		_ = ln.Close()
		g.mu.Lock()
		g.done = true
		for _, c := range g.conns {
			_ = c.Close()
		}
		g.cond.Broadcast()
		g.mu.Unlock()
		g.wg.Wait()
	})
	return g
}

// connect connects to the server through the gate.
func (g *gate) connect(tb testing.TB, name string) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect("nats://"+g.ln.Addr().String(), nats.Name(name), nats.NoReconnect())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

func (g *gate) accept() {
	for {
		client, err := g.ln.Accept()
		if err != nil {
			return
		}
		srv, err := net.Dial("tcp", g.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		g.mu.Lock()
		if g.done {
			g.mu.Unlock()
			_ = client.Close()
			_ = srv.Close()
			return
		}
		g.conns = append(g.conns, client, srv)
		g.mu.Unlock()
		g.wg.Go(func() { g.pipe(srv, client, &g.up) })
		g.wg.Go(func() { g.pipe(client, srv, &g.down) })
	}
}

func (g *gate) pipe(dst, src net.Conn, held *bool) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		g.mu.Lock()
		for *held && !g.done {
			g.cond.Wait()
		}
		g.mu.Unlock()
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// hold holds the client → server (up) and/or server → client (down)
// direction; release lets both flow again.
func (g *gate) hold(up, down bool) {
	g.mu.Lock()
	g.up, g.down = up, down
	g.cond.Broadcast()
	g.mu.Unlock()
}

func (g *gate) release() { g.hold(false, false) }

// counter counts the bus messages on every link node's delivery subject,
// on one wildcard subscription so they are counted in arrival order. It
// also records link heartbeats.
type counter struct {
	mu         sync.Mutex
	deliveries map[string]int         // node → bus messages
	events     map[string][]*pb.Event // node → events, in arrival order
	barriers   map[string]bool        // barrier tokens seen
	heartbeats map[string][]*pb.LinkHeartbeat
}

func (w *world) startCounter(tb testing.TB, i int, heartbeats bool) *counter {
	tb.Helper()
	c := &counter{
		deliveries: map[string]int{}, events: map[string][]*pb.Event{},
		barriers: map[string]bool{}, heartbeats: map[string][]*pb.LinkHeartbeat{},
	}
	nc := w.connect(tb, i, "counter")
	if _, err := nc.Subscribe(bus.LinkDeliver("*"), func(msg *nats.Msg) {
		node := strings.TrimSuffix(strings.TrimPrefix(msg.Subject, "gh.link."), ".deliver")
		c.mu.Lock()
		defer c.mu.Unlock()
		if strings.HasPrefix(node, "barrier-") {
			c.barriers[node] = true
			return
		}
		var d pb.Delivery
		if err := proto.Unmarshal(msg.Data, &d); err != nil {
			tb.Errorf("delivery to %s does not decode: %v", node, err)
			return
		}
		c.deliveries[node]++
		c.events[node] = append(c.events[node], d.Events...)
	}); err != nil {
		tb.Fatal(err)
	}
	// Optional: a heartbeat subscriber that never answers turns a delta's
	// "no responders" into a 2 s timeout while no service runs.
	if heartbeats {
		if _, err := nc.Subscribe(bus.LinkHeartbeat, func(msg *nats.Msg) {
			var hb pb.LinkHeartbeat
			if err := proto.Unmarshal(msg.Data, &hb); err != nil {
				tb.Errorf("heartbeat does not decode: %v", err)
				return
			}
			c.mu.Lock()
			c.heartbeats[hb.NodeId] = append(c.heartbeats[hb.NodeId], &hb)
			c.mu.Unlock()
		}); err != nil {
			tb.Fatal(err)
		}
	}
	w.propagated(tb, nc)
	w.counter = c
	return c
}

// counts returns the number of deliveries each node got so far.
func (c *counter) counts(nodes ...string) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]int, len(nodes))
	for i, n := range nodes {
		out[i] = c.deliveries[n]
	}
	return out
}

// heartbeatsOf returns how many heartbeats node sent so far.
func (c *counter) heartbeatsOf(node string) []*pb.LinkHeartbeat {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.heartbeats[node])
}

// barrier makes the counter's counts final: every instance publishes a
// marker on its own connection after everything it published before, and
// a connection's messages reach a subscriber in the order they were sent.
// Once the counter has every marker, it has every delivery made before.
func (w *world) barrier(tb testing.TB, insts ...*msgInstance) {
	tb.Helper()
	var tokens []string
	for _, m := range insts {
		token := fmt.Sprintf("barrier-%d", w.barriers.Add(1))
		if err := m.nc.Publish(bus.LinkDeliver(token), nil); err != nil {
			tb.Fatal(err)
		}
		tokens = append(tokens, token)
	}
	checkFor(tb, func() error {
		w.counter.mu.Lock()
		defer w.counter.mu.Unlock()
		for _, t := range tokens {
			if !w.counter.barriers[t] {
				return fmt.Errorf("marker %s has not arrived", t)
			}
		}
		return nil
	})
}

// waitRoutes waits until every running subscription service and every
// message instance's view route ch to exactly nodes. The service answers a
// link's subscribe once it has published the change; the views apply it a
// bus hop later, so a test that wants the next message routed waits here.
func (w *world) waitRoutes(tb testing.TB, ch uint64, nodes ...string) {
	tb.Helper()
	slices.Sort(nodes)
	checkFor(tb, func() error {
		for i, s := range w.subs {
			if got := s.Nodes(ch); !slices.Equal(got, nodes) && !(len(got) == 0 && len(nodes) == 0) {
				return fmt.Errorf("subscription service %d routes %d to %v, want %v", i, ch, got, nodes)
			}
		}
		for i, v := range w.views {
			got := slices.Sorted(slices.Values(v.Nodes(ch)))
			if !slices.Equal(got, nodes) && !(len(got) == 0 && len(nodes) == 0) {
				return fmt.Errorf("view %d routes %d to %v, want %v", i, ch, got, nodes)
			}
		}
		return nil
	})
}

// sender is an edge (REST) that sends through the message service on its
// own connection; NATS hands each request to one instance of the queue group.
type sender struct {
	c     *natsrpc.Client
	actor uint64
}

func (w *world) sender(tb testing.TB, i int) *sender {
	tb.Helper()
	nc := w.connect(tb, i, "edge")
	w.propagated(tb, nc)
	return &sender{c: natsrpc.NewClient(nc), actor: w.owner.ID}
}

func (s *sender) send(tb testing.TB, ch uint64, content string) message.Message {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	m, err := s.c.Send(ctx, s.actor, ch, content, "nonce-"+content)
	if err != nil {
		tb.Fatalf("send %q: %v", content, err)
	}
	return m
}

// gwClient is a gateway client speaking protobuf frames.
type gwClient struct {
	tb      testing.TB
	name    string
	conn    *websocket.Conn
	session string // from ready
	seq     uint64 // the last dispatch seq read
	refs    int
}

// dial connects to l's gateway and identifies with token.
func (l *linkNode) dial(tb testing.TB, name, token string) *gwClient {
	tb.Helper()
	c := l.open(tb, name)
	c.identify(token)
	return c
}

// open connects to l's gateway and reads hello.
func (l *linkNode) open(tb testing.TB, name string) *gwClient {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(l.http.URL, "http")+"/gateway", nil)
	if err != nil {
		tb.Fatalf("%s: dial %s: %v", name, l.id, err)
	}
	conn.SetReadLimit(1 << 20)
	tb.Cleanup(func() { conn.CloseNow() })
	c := &gwClient{tb: tb, name: name + "@" + l.id, conn: conn}
	if f := c.read(); f.GetHello() == nil {
		tb.Fatalf("%s: first frame %v, want hello", c.name, f)
	}
	return c
}

func (c *gwClient) identify(token string) {
	c.tb.Helper()
	c.write(&pb.Frame{Body: &pb.Frame_Identify{Identify: &pb.Identify{Token: token}}})
	f := c.read()
	if f.GetReady() == nil {
		c.tb.Fatalf("%s: got %v, want ready", c.name, f)
	}
	c.session = f.GetReady().SessionId
}

func (c *gwClient) write(f *pb.Frame) {
	c.tb.Helper()
	b, err := proto.Marshal(f)
	if err != nil {
		c.tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageBinary, b); err != nil {
		c.tb.Fatalf("%s: write: %v", c.name, err)
	}
}

// next reads one frame; a read that takes longer than wait fails.
func (c *gwClient) next() (*pb.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	typ, b, err := c.conn.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageBinary {
		return nil, fmt.Errorf("got a %v message, want binary", typ)
	}
	var f pb.Frame
	if err := proto.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

func (c *gwClient) read() *pb.Frame {
	c.tb.Helper()
	f, err := c.next()
	if err != nil {
		c.tb.Fatalf("%s: read: %v", c.name, err)
	}
	return f
}

// subscribe follows channels and waits for ok (no event can come before
// it: the client follows nothing else).
func (c *gwClient) subscribe(chans ...uint64) {
	c.tb.Helper()
	c.refs++
	ref := fmt.Sprint("s", c.refs)
	c.write(&pb.Frame{Ref: ref, Body: &pb.Frame_Subscribe{Subscribe: &pb.Subscribe{ChannelIds: chans}}})
	if f := c.read(); f.Ref != ref || f.GetOk() == nil {
		c.tb.Fatalf("%s: subscribe %v: got %v", c.name, chans, f)
	}
}

// message reads the next frame, which must be a message_create dispatch
// with the session's next dispatch seq.
func (c *gwClient) message() *pb.Message {
	c.tb.Helper()
	f := c.read()
	m := f.GetEvent().GetMessageCreate()
	if m == nil {
		c.tb.Fatalf("%s: got %v, want a message_create", c.name, f)
	}
	if f.Seq != c.seq+1 {
		c.tb.Errorf("%s: dispatch seq %d after %d", c.name, f.Seq, c.seq)
	}
	c.seq = f.Seq
	return m
}

// messages reads n message_create dispatches.
func (c *gwClient) messages(n int) []*pb.Message {
	c.tb.Helper()
	out := make([]*pb.Message, n)
	for i := range out {
		out[i] = c.message()
	}
	return out
}

// wantSeqs fails unless got carries exactly the channel seqs want, in order.
func wantSeqs(tb testing.TB, who string, got []*pb.Message, want []uint64) {
	tb.Helper()
	seqs := make([]uint64, len(got))
	for i, m := range got {
		seqs[i] = m.Seq
	}
	if !slices.Equal(seqs, want) {
		tb.Errorf("%s received seqs %v, want %v", who, seqs, want)
	}
}

// crossInstanceOrder says whether a channel's events reach followers in
// seq order when its sends go through both message instances. Each
// instance publishes in the order its sends finish, and a link node now and
// then gets seq n+1 before seq n; link nodes hold such an event until n
// comes (link.Config.ReorderWait), so followers get seq order.
const crossInstanceOrder = true

// wantArrived fails unless got carries exactly the channel seqs want
// (ascending), and, per crossInstanceOrder, in that order.
func wantArrived(tb testing.TB, who string, got []*pb.Message, want []uint64) {
	tb.Helper()
	seqs := make([]uint64, len(got))
	for i, m := range got {
		seqs[i] = m.Seq
	}
	if sorted := slices.Sorted(slices.Values(seqs)); !slices.Equal(sorted, want) {
		tb.Errorf("%s received seqs %v, want %v", who, seqs, want)
		return
	}
	if !slices.Equal(seqs, want) {
		if crossInstanceOrder {
			tb.Errorf("%s received seqs %v, want %v in this order", who, seqs, want)
		} else {
			tb.Logf("%s received seqs %v out of order (known bug: see crossInstanceOrder)", who, seqs)
		}
	}
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// deployment is the usual cast: three link nodes, two message instances,
// one subscription service, the counter and two edges.
type deployment struct {
	*world
	a, b, c    *linkNode
	m1, m2     *msgInstance
	sub        *subscribe.Service
	edges      [2]*sender
	clock      *clock // the message instances' snowflake clock
	nodesOrder []string
}

// setup configures a deployment.
type setup struct {
	users      int // members besides the owner
	link       link.Config
	subscribe  subscribe.Config
	heartbeats bool // the counter records link heartbeats too
	sessions   bool // JetStream on, link nodes checkpoint sessions (cross-node resume after a death)
}

func deploy(tb testing.TB, cfg setup) *deployment {
	tb.Helper()
	d := &deployment{world: newWorld(tb, cfg.users, cfg.sessions), clock: &clock{}}
	// The subscription service first: a link node's first heartbeats and
	// deltas must find it. Then the views, which must see every change.
	d.sub = d.startSubscribe(tb, onC, cfg.subscribe)
	d.m1 = d.startMessage(tb, onMsg1, "msg-1", mustIDs(tb, 1, d.clock.Now))
	d.m2 = d.startMessage(tb, onMsg2, "msg-2", mustIDs(tb, 2, d.clock.Now))
	d.a = d.startLink(tb, onA, "link-a", cfg.link)
	d.b = d.startLink(tb, onB, "link-b", cfg.link)
	d.c = d.startLink(tb, onC, "link-c", cfg.link)
	d.startCounter(tb, onMsg1, cfg.heartbeats)
	d.edges = [2]*sender{d.sender(tb, onMsg1), d.sender(tb, onMsg2)}
	d.nodesOrder = []string{d.a.id, d.b.id, d.c.id}
	return d
}

// clock is the wall clock, or a frozen instant while a test asks: two
// instances whose generators read one frozen clock make IDs as two sends
// in the same millisecond do.
type clock struct{ frozen atomic.Pointer[time.Time] }

func (c *clock) Now() time.Time {
	if t := c.frozen.Load(); t != nil {
		return *t
	}
	return time.Now()
}

func (c *clock) freeze(t time.Time) { c.frozen.Store(&t) }
func (c *clock) thaw()              { c.frozen.Store(nil) }

// counts is the deliveries of A, B and C.
func (d *deployment) counts() []int { return d.counter.counts(d.nodesOrder...) }

// sendAlternating sends k messages to ch, alternating the two edges.
func (d *deployment) sendAlternating(tb testing.TB, ch uint64, from, k int, tag string) []message.Message {
	tb.Helper()
	var out []message.Message
	for i := range k {
		out = append(out, d.edges[i%2].send(tb, ch, fmt.Sprintf("%s-%d", tag, from+i)))
	}
	return out
}

// TestDeliveriesOnlyToInterestedNodes: a channel followed only on node A
// costs one bus message per message on A's subject and nothing on B's or
// C's, whichever message instance handled the send; A's sessions get every
// message once (in seq order but for the known bug, see
// crossInstanceOrder).
func TestDeliveriesOnlyToInterestedNodes(t *testing.T) {
	d := deploy(t, setup{users: 4})
	a1 := d.a.dial(t, "u0", d.tokens[0])
	a2 := d.a.dial(t, "u1", d.tokens[1])
	b1 := d.b.dial(t, "u2", d.tokens[2])
	c1 := d.c.dial(t, "u3", d.tokens[3])
	a1.subscribe(d.x)
	a2.subscribe(d.x)
	b1.subscribe(d.y)
	c1.subscribe(d.z)
	d.waitRoutes(t, d.x, d.a.id)
	d.waitRoutes(t, d.y, d.b.id)
	d.waitRoutes(t, d.z, d.c.id)

	const k = 40
	sent := d.sendAlternating(t, d.x, 0, k, "x")
	d.barrier(t, d.m1, d.m2)
	if got, want := d.counts(), []int{k, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("deliveries to A, B, C = %v, want %v", got, want)
	}
	// NATS picks a queue member at random (no local preference within a
	// cluster), so both instances serve a share: 2^-39 odds they do not.
	n1, n2 := d.m1.pub.created.Load(), d.m2.pub.created.Load()
	if n1 == 0 || n2 == 0 || n1+n2 != k {
		t.Errorf("instances handled %d and %d sends, want both > 0 and %d in all", n1, n2, k)
	}
	t.Logf("sends handled by instance 1: %d, instance 2: %d", n1, n2)
	for i, m := range sent {
		if m.Seq != uint64(i+1) {
			t.Errorf("send %d got seq %d", i, m.Seq)
		}
	}
	for _, c := range []*gwClient{a1, a2} {
		got := c.messages(k)
		wantArrived(t, c.name, got, seqRange(1, k))
		for _, m := range got {
			if w := sent[m.Seq-1]; m.Id != w.ID || m.Content != w.Content {
				t.Errorf("%s: seq %d is %d %q, want %d %q", c.name, m.Seq, m.Id, m.Content, w.ID, w.Content)
			}
		}
	}
	// Nothing of x reached B's or C's sockets: the first frame they get is
	// the message of their own channel.
	ym := d.edges[0].send(t, d.y, "y-0")
	zm := d.edges[1].send(t, d.z, "z-0")
	if m := b1.message(); m.Id != ym.ID {
		t.Errorf("%s: got %v, want the y message", b1.name, m)
	}
	if m := c1.message(); m.Id != zm.ID {
		t.Errorf("%s: got %v, want the z message", c1.name, m)
	}
	d.barrier(t, d.m1, d.m2)
	if got, want := d.counts(), []int{k, 1, 1}; !slices.Equal(got, want) {
		t.Errorf("deliveries to A, B, C = %v, want %v", got, want)
	}
}

// TestManyNodesOneChannel: a channel followed on A and B costs exactly one
// bus message per node, whatever the number of sessions on each.
func TestManyNodesOneChannel(t *testing.T) {
	d := deploy(t, setup{users: 5})
	var xs []*gwClient
	for i, l := range []*linkNode{d.a, d.a, d.a, d.b, d.b} {
		c := l.dial(t, fmt.Sprint("u", i), d.tokens[i])
		c.subscribe(d.x)
		xs = append(xs, c)
	}
	cz := d.c.dial(t, "u4", d.tokens[4])
	cz.subscribe(d.z)
	d.waitRoutes(t, d.x, d.a.id, d.b.id)
	d.waitRoutes(t, d.z, d.c.id)

	sent := d.edges[0].send(t, d.x, "hello")
	d.barrier(t, d.m1, d.m2)
	if got, want := d.counts(), []int{1, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("deliveries to A, B, C = %v, want %v", got, want)
	}
	for _, c := range xs {
		if m := c.message(); m.Id != sent.ID || m.Seq != 1 {
			t.Errorf("%s: got %v, want %v", c.name, m, sent)
		}
	}
}

// TestLinkNodeDies: a link node that crashes is expired by the
// subscription service after MissedHeartbeats silent snapshot intervals,
// and then nothing is routed to it. Its clients reconnect to another node:
// a resume there is refused with invalid_session (resume works on the node
// that held the session only; cross-node resume is not built), so they
// identify and subscribe again, get live messages from then on, and find
// everything sent while they were away in history: nothing acknowledged
// is lost.
func TestLinkNodeDies(t *testing.T) {
	const (
		snapshotEvery = 200 * time.Millisecond
		missed        = 4 // expiry after 800ms of silence: far above any scheduling hiccup
	)
	d := deploy(t, setup{
		users:      2,
		link:       link.Config{SnapshotEvery: snapshotEvery},
		subscribe:  subscribe.Config{MissedHeartbeats: missed, SweepEvery: 20 * time.Millisecond},
		heartbeats: true,
	})
	clients := []*gwClient{d.a.dial(t, "u0", d.tokens[0]), d.a.dial(t, "u1", d.tokens[1])}
	for _, c := range clients {
		c.subscribe(d.x)
	}
	d.waitRoutes(t, d.x, d.a.id)

	before := d.sendAlternating(t, d.x, 1, 3, "before")
	for _, c := range clients {
		wantArrived(t, c.name, c.messages(3), seqRange(1, 3))
	}
	lastSeen := before[len(before)-1]
	d.barrier(t, d.m1, d.m2)
	aBefore := d.counts()[0]
	hbBefore := len(d.counter.heartbeatsOf(d.a.id))

	d.a.crash()
	for _, c := range clients {
		if f, err := c.next(); err == nil {
			t.Fatalf("%s: got %v after the crash, want the connection gone", c.name, f)
		}
	}
	// Expired by the sweeper, not told: A sends nothing any more.
	d.waitRoutes(t, d.x)
	if hbs := d.counter.heartbeatsOf(d.a.id); len(hbs) > hbBefore+1 { // one may have been in flight
		t.Errorf("A sent %d heartbeats after it crashed", len(hbs)-hbBefore)
	}

	// Sent while the clients are away: routed to nobody, acked, stored.
	away := d.sendAlternating(t, d.x, 4, 5, "away")
	d.barrier(t, d.m1, d.m2)
	if got := d.counts()[0]; got != aBefore {
		t.Errorf("the dead node's subject got %d deliveries after expiry", got-aBefore)
	}

	// Reconnect to B: try to resume, get invalid_session, identify on the
	// same connection and subscribe again.
	var again []*gwClient
	for i, c := range clients {
		n := d.b.open(t, fmt.Sprint("u", i))
		n.write(&pb.Frame{Body: &pb.Frame_Resume{Resume: &pb.Resume{Token: d.tokens[i], SessionId: c.session, LastSeq: c.seq}}})
		if f := n.read(); f.GetInvalidSession() == nil {
			t.Fatalf("%s: resume of %s's session %s: got %v, want invalid_session", n.name, d.a.id, c.session, f)
		}
		n.identify(d.tokens[i])
		n.subscribe(d.x)
		again = append(again, n)
	}
	d.waitRoutes(t, d.x, d.b.id)
	after := d.sendAlternating(t, d.x, 9, 3, "after")
	for _, c := range again {
		wantArrived(t, c.name, c.messages(3), seqRange(9, 11))
	}

	// The incremental pull after the last message seen live has the rest.
	for i := range clients {
		got, err := d.history.History(context.Background(), d.users[i].ID, d.x, message.Query{After: lastSeen.ID, Limit: message.MaxPage})
		if err != nil {
			t.Fatal(err)
		}
		ids := map[uint64]bool{}
		var seqs []uint64
		for _, m := range got {
			ids[m.ID] = true
			seqs = append(seqs, m.Seq)
		}
		slices.Sort(seqs)
		if want := seqRange(4, 11); !slices.Equal(seqs, want) {
			t.Errorf("user %d: history after seq 3 has seqs %v, want %v", i, seqs, want)
		}
		for _, m := range slices.Concat(away, after) {
			if !ids[m.ID] {
				t.Errorf("user %d: acked message seq %d missing from history", i, m.Seq)
			}
		}
	}
}

// TestSubscriptionServiceRestart: the subscription service is shut down
// and a new one starts on another server. Routes the views already knew
// keep working during the outage (a view keeps its table when a resync
// fails); a subscription made during the outage is not routed until the
// new service has caught up, so a delivery to it during the outage may be
// missed. The new service asks every link node for a snapshot at start
// (SnapshotEvery is a minute here, so only that request can bring the
// routes back); from then on every message reaches the right nodes.
func TestSubscriptionServiceRestart(t *testing.T) {
	d := deploy(t, setup{users: 4, link: link.Config{SnapshotEvery: time.Minute}})
	a1 := d.a.dial(t, "u0", d.tokens[0])
	b1 := d.b.dial(t, "u1", d.tokens[1])
	c1 := d.c.dial(t, "u2", d.tokens[2])
	a1.subscribe(d.x)
	b1.subscribe(d.x)
	c1.subscribe(d.y)
	d.waitRoutes(t, d.x, d.a.id, d.b.id)
	d.waitRoutes(t, d.y, d.c.id)
	d.edges[0].send(t, d.x, "x-1")
	d.edges[1].send(t, d.y, "y-1")
	wantSeqs(t, a1.name, a1.messages(1), []uint64{1})
	wantSeqs(t, b1.name, b1.messages(1), []uint64{1})
	wantSeqs(t, c1.name, c1.messages(1), []uint64{1})

	// The outage.
	shutdown(t, d.sub.Shutdown)
	d.subs = nil
	d.waitInterest(t, bus.RouteTableRequest, false) // gone from the whole cluster
	c2 := d.c.dial(t, "u3", d.tokens[3])
	c2.subscribe(d.x) // acknowledged, but no service hears the delta
	d.edges[0].send(t, d.x, "x-2")
	wantSeqs(t, a1.name, a1.messages(1), []uint64{2})
	wantSeqs(t, b1.name, b1.messages(1), []uint64{2})

	// A new instance on another server; it asks the nodes for snapshots.
	d.startSubscribe(t, onMsg2, subscribe.Config{})
	d.waitRoutes(t, d.x, d.a.id, d.b.id, d.c.id)
	d.waitRoutes(t, d.y, d.c.id)
	d.waitRoutes(t, d.z)

	d.barrier(t, d.m1, d.m2)
	base := d.counts()
	const k = 20
	d.sendAlternating(t, d.x, 3, k, "x")
	d.sendAlternating(t, d.y, 2, k, "y")
	d.barrier(t, d.m1, d.m2)
	got := d.counts()
	for i := range got {
		got[i] -= base[i]
	}
	if want := []int{k, k, 2 * k}; !slices.Equal(got, want) {
		t.Errorf("deliveries to A, B, C after catch-up = %v, want %v", got, want)
	}
	wantArrived(t, a1.name, a1.messages(k), seqRange(3, k+2))
	wantArrived(t, b1.name, b1.messages(k), seqRange(3, k+2))
	wantArrived(t, c1.name, c1.messages(k), seqRange(2, k+1))
	// c2 may or may not have x-2, the message sent during the outage.
	first := c2.message()
	if first.Seq == 2 {
		t.Logf("%s got the message sent during the outage", c2.name)
		first = c2.message()
	} else {
		t.Logf("%s missed the message sent during the outage", c2.name)
	}
	wantArrived(t, c2.name, append([]*pb.Message{first}, c2.messages(k-1)...), seqRange(3, k+2))
}

// TestSmallServerFollowsAcrossNodes: in a server with fewer members than
// link.Config.SmallServer, sessions follow every channel they can see
// without subscribing; across nodes that still costs one delivery per
// node that has such a session.
func TestSmallServerFollowsAcrossNodes(t *testing.T) {
	small := link.Config{SmallServer: 2000}
	d := deploy(t, setup{users: 3, link: small})
	clients := []*gwClient{d.a.dial(t, "u0", d.tokens[0]), d.a.dial(t, "u1", d.tokens[1]), d.b.dial(t, "u2", d.tokens[2])}
	for _, ch := range []uint64{d.x, d.y, d.z} {
		d.waitRoutes(t, ch, d.a.id, d.b.id)
	}
	sent := d.edges[0].send(t, d.x, "hello")
	d.barrier(t, d.m1, d.m2)
	if got, want := d.counts(), []int{1, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("deliveries to A, B, C = %v, want %v", got, want)
	}
	for _, c := range clients {
		if m := c.message(); m.Id != sent.ID {
			t.Errorf("%s: got %v, want %v", c.name, m, sent)
		}
	}

	t.Run("ready comes once the routes are known", func(t *testing.T) {
		// Since 3bf4dd0 identify follows the small servers and waits for
		// the subscription service's ack before READY (as subscribe waits
		// before ok); before, READY went out first and a message sent in
		// between was never delivered live. The message instances' views
		// still learn the route one hop later: TestSubscribeOkBeforeViewsKnow.
		dn := d.startLink(t, onC, "link-d", small)
		c := dn.dial(t, "u0", d.tokens[0])
		if got, want := d.sub.Nodes(d.x), []string{d.a.id, d.b.id, dn.id}; !slices.Equal(got, want) {
			t.Errorf("at ready the subscription service routes x to %v, want %v", got, want)
		}
		d.waitRoutes(t, d.x, d.a.id, d.b.id, dn.id)
		sent := d.edges[1].send(t, d.x, "after ready")
		if got := c.message(); got.Id != sent.ID {
			t.Errorf("%s: got seq %d %q, want seq %d %q", c.name, got.Seq, got.Content, sent.Seq, sent.Content)
		}
	})
}

// TestSubscribeOkBeforeViewsKnow: gateway.md promises that messages sent
// after a subscribe's ok are delivered. The link waits for the
// subscription service to publish the route change, but a message
// instance applies it one bus hop later, over its own route; a send it
// handles in between is not routed to the new subscriber.
func TestSubscribeOkBeforeViewsKnow(t *testing.T) {
	t.Skip("known gap: subscribe's ok and ready wait for the subscription service's ack (2 s at most), not for every message-service routing view across the NATS cluster; a message acknowledged in that window is stored but not delivered live (the client sees a seq gap and fetches history). Fix planned with the fan-out issue.")
	d := deploy(t, setup{users: 1})
	ctx := context.Background()
	// A third message instance whose route from the cluster is slow: what
	// the servers send it waits in a proxy. It answers no bus requests; the
	// test hands it a send directly, as a request that came in over a
	// faster route than the change notice would be.
	g := d.mustGate(t, onMsg2)
	m3 := d.startMessageOn(t, g.connect(t, "msg-3"), "msg-3", mustIDs(t, 3, nil), false)
	c := d.c.dial(t, "u0", d.tokens[0])
	g.hold(false, true)
	c.subscribe(d.x)
	if got := d.sub.Nodes(d.x); !slices.Equal(got, []string{d.c.id}) {
		t.Fatalf("after ok the subscription service routes x to %v", got)
	}
	sent, err := m3.svc.Send(ctx, d.owner.ID, d.x, "after ok", "")
	if err != nil {
		t.Fatal(err)
	}
	g.release()
	d.waitRoutes(t, d.x, d.c.id)
	if _, err := m3.svc.Send(ctx, d.owner.ID, d.x, "later", ""); err != nil {
		t.Fatal(err)
	}
	// BUG (link/node.go sendHeartbeat, "a session that subscribed is
	// routed to before its subscribe is acknowledged"): true of the
	// subscription service's table, not of the message instances' views,
	// which route. Across a cluster the send can overtake the notice.
	if got := c.message(); got.Id != sent.ID {
		t.Errorf("%s: first message is seq %d %q; seq %d %q (sent after ok, acknowledged) never came",
			c.name, got.Seq, got.Content, sent.Seq, sent.Content)
	}
}

type result struct {
	m   message.Message
	err error
}

// TestTwoMessageInstancesKeepOrder: concurrent sends to one channel through
// both message instances. Every accepted message must get a unique, gapless
// seq, every send should be accepted, and followers should get the
// messages in seq order.
func TestTwoMessageInstancesKeepOrder(t *testing.T) {
	// The link nodes wait as long as it takes for a missing seq: the last
	// subtest holds one back on purpose.
	d := deploy(t, setup{users: 2, link: link.Config{ReorderWait: time.Minute}})
	a1 := d.a.dial(t, "u0", d.tokens[0])
	b1 := d.b.dial(t, "u1", d.tokens[1])
	a1.subscribe(d.x)
	b1.subscribe(d.x)
	d.waitRoutes(t, d.x, d.a.id, d.b.id)
	// A link node learns where a channel's seqs go on from the first
	// create it sees after the channel is followed there (link/reorder.go):
	// if the concurrent sends below were the first, seq 2 could come
	// first and seq 1 would be delivered late. One message first, seen by
	// both followers, so that every concurrent send is put in order.
	{
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		m, err := d.edges[0].c.Send(ctx, d.edges[0].actor, d.x, "c-first", "n-first")
		cancel()
		if err != nil || m.Seq != 1 {
			t.Fatalf("first send: seq %d, %v", m.Seq, err)
		}
		for _, c := range []*gwClient{a1, b1} {
			wantSeqs(t, c.name, c.messages(1), []uint64{1})
		}
	}

	const (
		workers = 8
		each    = 25
	)
	results := make([]result, workers*each)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			s := d.edges[g%2]
			for i := range each {
				n := g*each + i
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				m, err := s.c.Send(ctx, s.actor, d.x, fmt.Sprint("c-", n), fmt.Sprint("n-", n))
				cancel()
				results[n] = result{m, err}
			}
		})
	}
	wg.Wait()

	var accepted []message.Message
	errs := map[string]int{}
	var example error
	for _, r := range results {
		if r.err != nil {
			errs[guildhall.KindOf(r.err).Code()]++
			example = r.err
			continue
		}
		accepted = append(accepted, r.m)
	}
	slices.SortFunc(accepted, func(a, b message.Message) int { return int(a.Seq) - int(b.Seq) })
	n1, n2 := d.m1.pub.created.Load(), d.m2.pub.created.Load()
	t.Logf("%d sends: %d accepted (instance 1: %d, instance 2: %d), refused: %v", len(results), len(accepted), n1, n2, errs)

	received := map[*gwClient][]*pb.Message{}
	for _, c := range []*gwClient{a1, b1} {
		received[c] = c.messages(len(accepted))
	}

	t.Run("accepted seqs are unique and gapless", func(t *testing.T) {
		for i, m := range accepted { // after the first message
			if m.Seq != uint64(i+2) {
				t.Fatalf("accepted seqs are not 2..%d: position %d has seq %d", len(accepted)+1, i, m.Seq)
			}
		}
	})
	t.Run("every send is accepted", func(t *testing.T) {
		// Two instances each read the last seq under their own in-process
		// lock; the store refuses the second insert of a seq, and since
		// 871f862 the service reads again instead of answering Conflict.
		if len(errs) > 0 {
			t.Errorf("%d of %d sends refused %v, e.g. %v", len(results)-len(accepted), len(results), errs, example)
		}
	})
	t.Run("followers get every accepted message once", func(t *testing.T) {
		for c, got := range received {
			seen := map[uint64]int{}
			for _, m := range got {
				seen[m.Seq]++
			}
			for _, m := range accepted {
				if seen[m.Seq] != 1 {
					t.Errorf("%s got seq %d %d times", c.name, m.Seq, seen[m.Seq])
				}
			}
		}
	})
	t.Run("followers get them in seq order", func(t *testing.T) {
		// Each instance publishes under its own lock, so an instance can
		// publish seq n+1 before the other has published seq n; link nodes
		// put each channel's creates back in seq order (link/reorder.go).
		for c, got := range received {
			var inversions int
			for i := 1; i < len(got); i++ {
				if got[i].Seq < got[i-1].Seq {
					inversions++
				}
			}
			if inversions > 0 {
				seqs := make([]uint64, len(got))
				for i, m := range got {
					seqs[i] = m.Seq
				}
				t.Errorf("%s got %d messages out of seq order: %v", c.name, inversions, seqs)
			}
		}
	})
	t.Run("every accepted message is in history", func(t *testing.T) {
		ids := map[uint64]bool{}
		var before uint64 // 0: the latest page
		for {
			page, err := d.history.History(context.Background(), d.owner.ID, d.x, message.Query{Before: before, Limit: message.MaxPage})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, m := range page {
				ids[m.ID] = true
			}
			before = page[len(page)-1].ID // newest first
		}
		for _, m := range accepted {
			if !ids[m.ID] {
				t.Errorf("accepted seq %d missing from history", m.Seq)
			}
		}
	})
	var idInversions int
	for i := 1; i < len(accepted); i++ {
		if accepted[i].ID < accepted[i-1].ID {
			idInversions++
		}
	}
	t.Logf("accepted messages whose ID is below the one of the seq before: %d", idInversions)

	// The three races of two instances, each forced with one interleaving
	// so that it shows on every run. The services are called directly:
	// which instance a bus request reaches is up to NATS.
	ctx := context.Background()
	followers := []*gwClient{a1, b1}
	t.Run("a send that loses the seq race takes the next seq", func(t *testing.T) {
		// Instance 1 has chosen the channel's next seq when instance 2
		// takes it (its append may simply be slower).
		hold := make(chan struct{})
		d.m1.log.hold.Store(&hold)
		loser := make(chan result, 1)
		go func() {
			m, err := d.m1.svc.Send(ctx, d.owner.ID, d.x, "loser", "")
			loser <- result{m, err}
		}()
		<-d.m1.log.holding
		d.m1.log.hold.Store(nil)
		winner, err := d.m2.svc.Send(ctx, d.owner.ID, d.x, "winner", "")
		close(hold)
		if err != nil {
			t.Fatal(err)
		}
		r := <-loser
		// Before 871f862 the store's seq check turned this into a Conflict
		// the client did nothing to deserve (REST 409, gateway "conflict").
		if r.err != nil {
			for _, c := range followers {
				c.messages(1)
			}
			t.Fatalf("send after %d (seq %d) was refused: %q (code %s), want it accepted as seq %d",
				winner.Seq-1, winner.Seq, r.err, guildhall.KindOf(r.err).Code(), winner.Seq+1)
		}
		if r.m.Seq != winner.Seq+1 || r.m.ID <= winner.ID {
			t.Errorf("the retried send got seq %d ID %d after seq %d ID %d", r.m.Seq, r.m.ID, winner.Seq, winner.ID)
		}
		// Both reach every follower; in which order is the next subtest's
		// business (it was seen reversed here too: the winner's Send had
		// returned before the loser published, but each instance's
		// messages travel their own connection and route).
		for _, c := range followers {
			got := c.messages(2)
			seqs := []uint64{got[0].Seq, got[1].Seq}
			slices.Sort(seqs)
			if !slices.Equal(seqs, []uint64{winner.Seq, winner.Seq + 1}) {
				t.Errorf("%s received seqs %v, want %d and %d", c.name, seqs, winner.Seq, winner.Seq+1)
			}
		}
	})
	t.Run("events of a channel reach followers in seq order", func(t *testing.T) {
		// Instance 1 has stored its message and is publishing it (Fanout
		// reads the server's permission version from the store first) when
		// instance 2 stores and publishes the next one. Each instance
		// publishes under its own lock, so seq n+1 reaches the link nodes
		// first; they hold it until seq n comes (link/reorder.go).
		hold := make(chan struct{})
		d.m1.pub.hold.Store(&hold)
		first := make(chan result, 1)
		go func() {
			m, err := d.m1.svc.Send(ctx, d.owner.ID, d.x, "first", "")
			first <- result{m, err}
		}()
		<-d.m1.pub.holding
		d.m1.pub.hold.Store(nil)
		before := d.counts()
		second, err := d.m2.svc.Send(ctx, d.owner.ID, d.x, "second", "")
		if err != nil {
			close(hold)
			t.Fatal(err)
		}
		checkFor(t, func() error { // the second is on its way to A and B
			if now := d.counts(); now[0] == before[0] || now[1] == before[1] {
				return fmt.Errorf("deliveries %v, before %v", now, before)
			}
			return nil
		})
		close(hold)
		r := <-first
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.m.Seq+1 != second.Seq {
			t.Fatalf("seqs %d then %d", r.m.Seq, second.Seq)
		}
		for _, c := range followers {
			wantSeqs(t, c.name, c.messages(2), []uint64{r.m.Seq, second.Seq})
		}
	})
	t.Run("history after the last message seen has the next one", func(t *testing.T) {
		// Two sends in one millisecond, on instance 2 (snowflake node 2)
		// then instance 1 (node 1); any clock skew between two hosts does
		// the same for longer.
		d.clock.freeze(time.Now())
		defer d.clock.thaw()
		seen, err := d.m2.svc.Send(ctx, d.owner.ID, d.x, "seen live", "")
		if err != nil {
			t.Fatal(err)
		}
		next, err := d.m1.svc.Send(ctx, d.owner.ID, d.x, "missed", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range followers {
			c.messages(2)
		}
		// A client that saw seq n live and then dropped pulls after it.
		page, err := d.history.History(ctx, d.users[0].ID, d.x, message.Query{After: seen.ID, Limit: message.MaxPage})
		if err != nil {
			t.Fatal(err)
		}
		// Before 39f8720 the ID came from each instance's own snowflake
		// generator alone, so with two instances IDs did not grow with seq
		// and history, which pages by ID, skipped an acknowledged message.
		// Now the service takes max(next ID, last ID + 1) and the store
		// refuses an ID not above the previous seq's.
		if next.ID < seen.ID {
			t.Errorf("seq %d has ID %d, below seq %d's %d", next.Seq, next.ID, seen.Seq, seen.ID)
		}
		if !slices.ContainsFunc(page, func(m message.Message) bool { return m.ID == next.ID }) {
			t.Errorf("history after seq %d does not have seq %d (acknowledged); it has %d messages", seen.Seq, next.Seq, len(page))
		}
	})
}
