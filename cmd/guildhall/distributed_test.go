package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"go.uber.org/goleak"

	"github.com/guildhall/guildhall/internal/cqldb"
	"github.com/guildhall/guildhall/internal/cqldb/cqltest"
	"github.com/guildhall/guildhall/internal/redisdb/redistest"
	"github.com/guildhall/guildhall/message"
	messagecql "github.com/guildhall/guildhall/message/cql"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

func noEnv(string) string { return "" }

func TestParseFlagsStore(t *testing.T) {
	cql := []string{"--store", "cql", "--cql-hosts", "10.0.0.1,10.0.0.2:9142", "--redis-addr", "r:6379", "--nats-url", "nats://n:4222"}
	m := NewMain()
	if err := m.ParseFlags(append(cql, "--cql-replication", "eu=3,us=2", "--cql-consistency", "quorum"), noEnv); err != nil {
		t.Fatal(err)
	}
	c := m.Config
	if c.Store != StoreCQL || fmt.Sprint(c.CQL.Hosts) != "[10.0.0.1 10.0.0.2:9142]" || c.CQL.Keyspace != "guildhall" ||
		c.CQL.Consistency != gocql.Quorum || c.CQL.DataCenters["eu"] != 3 || c.CQL.DataCenters["us"] != 2 || c.Redis.Addr != "r:6379" {
		t.Fatalf("config %+v", c)
	}
	// The same from the environment, as a container gets it.
	env := map[string]string{
		"GUILDHALL_STORE": "cql", "GUILDHALL_CQL_HOSTS": "scylla", "GUILDHALL_REDIS_ADDR": "redis:6379",
		"GUILDHALL_NATS_LISTEN": "0.0.0.0:4222", "GUILDHALL_MIGRATE": "true", "GUILDHALL_CQL_REPLICATION": "3",
	}
	m = NewMain()
	if err := m.ParseFlags(nil, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c := m.Config; !c.Migrate || c.CQL.ReplicationFactor != 3 || c.CQL.Consistency != gocql.LocalQuorum || c.NATSListen != "0.0.0.0:4222" {
		t.Fatalf("config from env %+v", c)
	}
	// migrate needs only the CQL flags and implies --store=cql.
	m = NewMain()
	if err := m.ParseFlags([]string{"migrate", "--cql-hosts", "h"}, noEnv); err != nil {
		t.Fatal(err)
	}
	if m.Config.Command != CommandMigrate || m.Config.Store != StoreCQL {
		t.Fatalf("migrate config %+v", m.Config)
	}

	without := func(args []string, flag string) []string {
		var out []string
		for i := 0; i < len(args); i += 2 {
			if args[i] != flag {
				out = append(out, args[i], args[i+1])
			}
		}
		return out
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--store", "scylla"}, `--store "scylla"`},
		{[]string{"--cql-hosts", "h"}, "--cql-hosts is for --store=cql"},
		{[]string{"--redis-addr", "h:1"}, "--redis-addr is for --store=cql"},
		{[]string{"--migrate"}, "--migrate is for --store=cql"},
		{[]string{"migrate", "--store", "embedded"}, "migrate applies CQL migrations"},
		{[]string{"migrate"}, "needs --cql-hosts"},
		{without(cql, "--cql-hosts"), "needs --cql-hosts"},
		{without(cql, "--redis-addr"), "needs --redis-addr"},
		{without(cql, "--nats-url"), "--nats-url (an external NATS) or --nats-listen"},
		{append(cql, "--cql-hosts", "h:"), `--cql-hosts: "h:"`},
		{append(cql, "--cql-keyspace", "Bad-Name"), "--cql-keyspace"},
		{append(cql, "--cql-consistency", "serial"), "--cql-consistency"},
		{append(cql, "--cql-consistency", "most"), "--cql-consistency"},
		{append(cql, "--cql-replication", "0"), "--cql-replication"},
		{append(cql, "--cql-replication", "eu=3,eu=2"), "given twice"},
		{append(cql, "--cql-replication", "eu"), "--cql-replication"},
		{append(cql, "--cql-timeout", "0s"), "--cql-timeout"},
		{append(cql, "--cql-password", "x"), "--cql-password needs --cql-username"},
		{append(cql, "--redis-addr", "nohost"), "--redis-addr"},
		{append(cql, "--redis-db", "-1"), "--redis-db"},
		{append(cql, "--redis-prefix", ""), "--redis-prefix"},
		{append(cql, "--jetstream-replicas", "0"), "--jetstream-replicas"},
		{[]string{"--jetstream-replicas", "3"}, "needs a NATS cluster"},
	} {
		err := NewMain().ParseFlags(tc.args, noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFlags(%v) = %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
	err := NewMain().ParseFlags(nil, func(k string) string {
		return map[string]string{"GUILDHALL_CQL_HOSTS": "h"}[k]
	})
	if err == nil || !strings.Contains(err.Error(), "--cql-hosts is for --store=cql") {
		t.Errorf("GUILDHALL_CQL_HOSTS in embedded mode: %v", err)
	}
}

// distributedDeps returns the CQL hosts and Redis address of the real
// servers (skipping, or failing under CI=true, without them), a fresh
// keyspace name, dropped when the test ends, and a fresh Redis key prefix,
// whose keys are deleted then.
func distributedDeps(tb testing.TB) (hosts, redisAddr, keyspace, prefix string) {
	tb.Helper()
	hosts = strings.Join(cqltest.Hosts(tb), ",")
	redisAddr = redistest.Addr(tb)
	_, prefix = redistest.MustClient(tb)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	keyspace = "t_" + hex.EncodeToString(b)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := cqldb.Open(ctx, cqldb.Config{Hosts: strings.Split(hosts, ","), Keyspace: keyspace, MustExist: true, Timeout: 30 * time.Second})
		if err != nil {
			return // never created
		}
		defer s.Close()
		if err := s.ContextQuery(ctx, "DROP KEYSPACE IF EXISTS "+keyspace, nil).ExecRelease(); err != nil {
			tb.Logf("drop keyspace %s: %v", keyspace, err)
		}
	})
	return hosts, redisAddr, keyspace, prefix
}

// runMigrate runs the migrate command in-process and returns its report.
func runMigrate(tb testing.TB, args ...string) (string, error) {
	tb.Helper()
	m := NewMain()
	var out bytes.Buffer
	m.Stdout = &out
	if err := m.ParseFlags(append([]string{"migrate", "--log-level", "warn", "--cql-timeout", "30s"}, args...), noEnv); err != nil {
		tb.Fatal(err)
	}
	err := m.Run(context.Background())
	if cerr := m.Close(context.Background()); cerr != nil {
		tb.Fatal(cerr)
	}
	return out.String(), err
}

// TestMigrateCommand: a serving process refuses an unmigrated keyspace
// and says what to run; guildhall migrate creates the keyspace and applies
// every component's migrations; run again it applies nothing.
func TestMigrateCommand(t *testing.T) {
	hosts, redisAddr, ks, prefix := distributedDeps(t)
	cqlFlags := []string{"--cql-hosts", hosts, "--cql-keyspace", ks}

	// The keyspace does not exist: a serving process says so.
	serve := append([]string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-level", "warn",
		"--store", "cql", "--redis-addr", redisAddr, "--redis-prefix", prefix, "--nats-listen", "127.0.0.1:0", "--cql-timeout", "30s"}, cqlFlags...)
	m := NewMain()
	if err := m.ParseFlags(serve, noEnv); err != nil {
		t.Fatal(err)
	}
	err := m.Run(context.Background())
	_ = m.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), ks) {
		t.Fatalf("serving on a missing keyspace: %v", err)
	}

	// An empty keyspace (created by someone else): every migration is missing.
	ctx := context.Background()
	s, err := cqldb.Open(ctx, cqldb.Config{Hosts: strings.Split(hosts, ","), Keyspace: ks, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	m = NewMain()
	if err := m.ParseFlags(serve, noEnv); err != nil {
		t.Fatal(err)
	}
	err = m.Run(context.Background())
	_ = m.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "lacks migrations member 1") || !strings.Contains(err.Error(), "guildhall migrate") {
		t.Fatalf("serving on an unmigrated keyspace: %v", err)
	}

	out, err := runMigrate(t, cqlFlags...)
	if err != nil {
		t.Fatal(err)
	}
	for _, comp := range cqlComponents {
		for _, mig := range comp.migrations {
			if line := fmt.Sprintf("applied %s %d: %s\n", comp.name, mig.Version, mig.Name); !strings.Contains(out, line) {
				t.Errorf("report lacks %q:\n%s", line, out)
			}
		}
	}
	out, err = runMigrate(t, cqlFlags...)
	if err != nil || strings.Contains(out, "applied ") || !strings.Contains(out, "nothing to apply") {
		t.Fatalf("second migrate: %v\n%s", err, out)
	}

	// Now a serving process starts.
	MustRunMain(t, t.TempDir(), serve[4:]...)
}

// TestDistributed runs two processes' worth of roles in-process on one
// CQL keyspace, one Redis and one NATS (A's embedded server, which B
// joins): A runs subscribe, message and api; B runs api and link.
func TestDistributed(t *testing.T) {
	leaksBefore := goleak.IgnoreCurrent()
	hosts, redisAddr, ks, prefix := distributedDeps(t)
	common := []string{"--store", "cql", "--cql-hosts", hosts, "--cql-keyspace", ks, "--redis-addr", redisAddr, "--redis-prefix", prefix, "--cql-timeout", "30s"}
	a := MustRunMain(t, t.TempDir(), append(common, "--roles", "subscribe,message,api", "--nats-listen", "127.0.0.1:0", "--migrate", "--node-id", "1")...)
	if a.NATSURL() == "" {
		t.Fatal("A's embedded NATS does not listen")
	}
	b := MustRunMain(t, t.TempDir(), append(common, "--roles", "api,link", "--nats-url", a.NATSURL(), "--node-id", "2")...)
	distributedScenario(t, "http://"+a.Addr(), "http://"+b.Addr(), b.Addr())

	// Metrics: alice's ack went through A's read-state service, and A's
	// persister writes the three messages (asynchronously: poll).
	checkFor(t, func() error {
		body := get(t, "http://"+a.Addr()+"/metrics", 200)
		for _, want := range []string{`guildhall_readstate_acks_total{result="moved"} 1`, "guildhall_message_persister_persisted_total 3", "go_goroutines"} {
			if !strings.Contains(body, want) {
				return fmt.Errorf("A's /metrics lacks %s", want)
			}
		}
		return nil
	})

	// Both shut down cleanly and leave no goroutine behind.
	for _, m := range []*Main{b, a} {
		if err := m.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	goleak.VerifyNone(t, leaksBefore)
}

// TestReadyz: /readyz follows the bus (here another process's embedded
// NATS, as in distributed mode); /healthz only says the process runs.
func TestReadyz(t *testing.T) {
	a := MustRunMain(t, t.TempDir(), "--roles", "subscribe", "--nats-listen", "127.0.0.1:0")
	b := MustRunMain(t, t.TempDir(), "--roles", "api,message", "--nats-url", a.NATSURL())
	get(t, "http://"+b.Addr()+"/readyz", 200)
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkFor(t, func() error {
		resp, err := http.Get("http://" + b.Addr() + "/readyz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "NATS") {
			return fmt.Errorf("B's /readyz without NATS: %s %s", resp.Status, body)
		}
		return nil
	})
	get(t, "http://"+b.Addr()+"/healthz", 200)
}

// TestMetricsAddr: --metrics-addr moves /metrics off the public address.
func TestMetricsAddr(t *testing.T) {
	m := MustRunMain(t, t.TempDir())
	if body := get(t, "http://"+m.Addr()+"/metrics", 200); !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics on --addr:\n%.300s", body)
	}
	m = MustRunMain(t, t.TempDir(), "--metrics-addr", "127.0.0.1:0")
	if body := get(t, "http://"+m.MetricsAddr()+"/metrics", 200); !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics on --metrics-addr:\n%.300s", body)
	}
	get(t, "http://"+m.MetricsAddr()+"/readyz", 200)
	get(t, "http://"+m.MetricsAddr()+"/healthz", 200)
	resp, err := http.Get("http://" + m.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "go_goroutines") {
		t.Fatal("metrics still served on --addr")
	}
	if err := NewMain().ParseFlags([]string{"--metrics-addr", "nope"}, noEnv); err == nil {
		t.Fatal("--metrics-addr nope accepted")
	}
}

// distributedScenario: register and create a server through A, log in
// through B; a message sent through B's REST is in history through A and
// reaches a gateway client on B live; one sent through A reaches it too.
func distributedScenario(t *testing.T, baseA, baseB, gatewayB string) {
	t.Helper()
	alice := register(t, baseA, "alice")
	var srv struct{ ID string }
	alice.do("POST", "/servers", map[string]string{"name": "Spread"}, 201, &srv)
	var chans []struct{ ID string }
	alice.do("GET", "/servers/"+srv.ID+"/channels", nil, 200, &chans)
	general := chans[0].ID
	var inv struct{ Code string }
	alice.do("POST", "/servers/"+srv.ID+"/invites", map[string]int{"max_uses": 5}, 201, &inv)
	register(t, baseA, "bob")

	// Bob logs in through B, joins, and follows the channel on B's gateway.
	bob := &client{tb: t, base: baseB}
	var login struct{ Token string }
	bob.do("POST", "/auth/login", map[string]string{"username": "bob", "password": "correct horse"}, 200, &login)
	bob.token = login.Token
	bob.do("POST", "/invites/"+inv.Code, nil, 200, nil)
	g, ready := dialGateway(t, gatewayB, bob.token, false)
	if len(ready.Servers) != 1 || ready.User.GetUsername() != "bob" {
		t.Fatalf("ready on B %v", ready)
	}
	g.subscribe(parseID(t, general))

	// Alice sends through B's REST (B has no message role: over the bus to A).
	aliceB := &client{tb: t, base: baseB, token: alice.token}
	var sent msgJSON
	aliceB.do("POST", "/channels/"+general+"/messages", map[string]string{"content": "from B", "nonce": "b1"}, 201, &sent)
	if sent.Seq != 1 {
		t.Fatalf("sent %+v", sent)
	}
	if f := g.read(); f.GetEvent().GetMessageCreate().GetContent() != "from B" || fmt.Sprint(f.GetEvent().GetMessageCreate().GetId()) != sent.ID {
		t.Fatalf("gateway on B got %v", f)
	}
	var hist []msgJSON
	alice.do("GET", "/channels/"+general+"/messages", nil, 200, &hist)
	if len(hist) != 1 || hist[0].ID != sent.ID || hist[0].Content != "from B" {
		t.Fatalf("history through A %+v", hist)
	}
	// Through A's REST, to the gateway on B, and in history on B.
	alice.do("POST", "/channels/"+general+"/messages", map[string]string{"content": "from A"}, 201, nil)
	if f := g.read(); f.GetEvent().GetMessageCreate().GetContent() != "from A" || f.GetEvent().GetMessageCreate().GetSeq() != 2 {
		t.Fatalf("gateway on B got %v", f)
	}
	bob.do("GET", "/channels/"+general+"/messages", nil, 200, &hist)
	if len(hist) != 2 || hist[0].Content != "from A" || hist[1].Content != "from B" {
		t.Fatalf("history through B %+v", hist)
	}
	// Bob answers over B's gateway.
	g.write(&pb.Frame{Ref: "m1", Body: &pb.Frame_SendMessage{SendMessage: &pb.SendMessage{ChannelId: parseID(t, general), Content: "hi", Nonce: "g1"}}})
	var third uint64
	for third == 0 {
		f := g.read()
		if f.Ref == "m1" {
			if f.GetSent().GetMessage().GetSeq() != 3 {
				t.Fatalf("send over B's gateway: %v", f)
			}
			third = f.GetSent().GetMessage().GetId()
		}
	}
	alice.do("GET", "/channels/"+general+"/messages?limit=1", nil, 200, &hist)
	if len(hist) != 1 || hist[0].Content != "hi" {
		t.Fatalf("history through A %+v", hist)
	}

	// Read states are shared too: alice sent seqs 1 and 2 (so read up to
	// 2), bob's 3 is unread for her, through either process.
	readState := func(c *client) readStateJSON {
		t.Helper()
		var page struct {
			ReadStates []readStateJSON `json:"read_states"`
		}
		c.do("GET", "/users/@me/read-states?server_id="+srv.ID, nil, 200, &page)
		for _, rs := range page.ReadStates {
			if rs.ChannelID == general {
				return rs
			}
		}
		t.Fatalf("no read state for %s: %+v", general, page)
		return readStateJSON{}
	}
	if rs := readState(aliceB); rs.LastSeq != 3 || rs.LastReadSeq != 2 || rs.Unread != 1 {
		t.Fatalf("alice's read state through B %+v", rs)
	}
	alice.do("POST", "/channels/"+general+"/ack", map[string]string{"message_id": fmt.Sprint(third)}, 200, nil)
	if rs := readState(aliceB); rs.LastReadSeq != 3 || rs.Unread != 0 {
		t.Fatalf("alice's read state through B after acking through A %+v", rs)
	}
	if rs := readState(bob); rs.LastSeq != 3 || rs.Unread != 0 {
		t.Fatalf("bob's read state %+v", rs)
	}
}

type readStateJSON struct {
	ChannelID   string `json:"channel_id"`
	LastReadSeq uint64 `json:"last_read_seq"`
	LastSeq     uint64 `json:"last_seq"`
	Unread      uint64 `json:"unread_count"`
}

var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// mustBuild builds the guildhall binary once per test run and returns its
// path; TestMain removes it.
func mustBuild(tb testing.TB) string {
	tb.Helper()
	build.once.Do(func() {
		if build.dir, build.err = os.MkdirTemp("", "guildhall-bin-"); build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "guildhall")
		if out, err := exec.Command("go", "build", "-o", build.bin, ".").CombinedOutput(); err != nil {
			build.err = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		tb.Fatal(build.err)
	}
	return build.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// freePort returns a loopback address nothing listens on right now, for
// a process the test starts. It is below the usual ephemeral range (32768
// and up), so an outgoing connection cannot take it in the meantime.
func freePort(tb testing.TB) string {
	tb.Helper()
	for range 100 {
		var b [2]byte
		_, _ = rand.Read(b[:])
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+int(binary.BigEndian.Uint16(b[:]))%12000)
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	tb.Fatal("no free port in 20000-31999")
	return ""
}

// TestDistributedProcesses runs the real binary as three OS processes:
// guildhall migrate, then A (subscribe, message, api; embedded NATS
// listening) and B (api, link; joining A's NATS), and the same scenario.
// SIGTERM stops both, and both exit 0.
func TestDistributedProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	hosts, redisAddr, ks, prefix := distributedDeps(t)
	dir := t.TempDir()
	bin := mustBuild(t)
	env := append(os.Environ(), "GUILDHALL_STORE=cql", "GUILDHALL_CQL_HOSTS="+hosts, "GUILDHALL_CQL_KEYSPACE="+ks,
		"GUILDHALL_REDIS_ADDR="+redisAddr, "GUILDHALL_REDIS_PREFIX="+prefix, "GUILDHALL_CQL_TIMEOUT=30s", "GUILDHALL_LOG_LEVEL=warn")

	migrate := exec.Command(bin, "migrate")
	migrate.Env = env
	out, err := migrate.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "applied member 1") {
		t.Fatalf("guildhall migrate: %v\n%s", err, out)
	}

	natsAddr, addrA, addrB := freePort(t), freePort(t), freePort(t)
	start := func(name string, args ...string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("%s stderr:\n%s", name, stderr.String())
			}
		})
		return cmd, &stderr
	}
	procA, errA := start("A", "--addr", addrA, "--data-dir", filepath.Join(dir, "a"), "--roles", "subscribe,message,api", "--nats-listen", natsAddr, "--node-id", "1")
	waitHealthy(t, addrA)
	procB, errB := start("B", "--addr", addrB, "--data-dir", filepath.Join(dir, "b"), "--roles", "api,link", "--nats-url", "nats://"+natsAddr, "--node-id", "2")
	waitHealthy(t, addrB)

	distributedScenario(t, "http://"+addrA, "http://"+addrB, addrB)

	for _, p := range []struct {
		cmd    *exec.Cmd
		stderr *bytes.Buffer
	}{{procB, errB}, {procA, errA}} {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("exit: %v\n%s", err, p.stderr.String())
		}
	}
}

// checkForLong is checkFor with a deadline of its own, for what waits on
// a redelivery timer.
func checkForLong(tb testing.TB, limit time.Duration, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(tb testing.TB, url string, want int) string {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		tb.Fatalf("GET %s: %s, want %d: %s", url, resp.Status, want, body)
	}
	return string(body)
}

func waitHealthy(tb testing.TB, addr string) {
	tb.Helper()
	checkFor(tb, func() error {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		return nil
	})
}

// TestLocalClusterScript runs deploy/local-cluster.sh: five guildhall
// processes (hub with the embedded NATS, a second message process, api,
// two links) on a fresh keyspace, the distributed scenario through api and
// the second link, then stop, after which status reports nothing running.
func TestLocalClusterScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary, runs five processes")
	}
	hosts, redisAddr, ks, prefix := distributedDeps(t)
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("deploy/local-cluster.sh needs %s: %v", tool, err)
		}
	}
	script := filepath.Join("..", "..", "deploy", "local-cluster.sh")
	dir := t.TempDir()
	run := func(env []string, arg string) (string, error) {
		cmd := exec.Command("bash", script, arg)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err != nil {
			t.Logf("local-cluster.sh %s: %v\n%s", arg, err, stderr.String())
		}
		return stdout.String(), err
	}
	var env []string
	var out string
	for attempt := 0; ; attempt++ {
		// The script takes five consecutive HTTP ports from the base, and
		// one for NATS: below the usual ephemeral range (32768 and up),
		// where outgoing connections do not take them.
		var b [2]byte
		_, _ = rand.Read(b[:])
		port := 20000 + int(binary.BigEndian.Uint16(b[:]))%12000
		base, natsPort := fmt.Sprint(port), fmt.Sprint(port+10)
		env = append(os.Environ(), "CQL_HOSTS="+hosts, "REDIS_ADDR="+redisAddr, "GUILDHALL_CLUSTER_KEYSPACE="+ks, "GUILDHALL_REDIS_PREFIX="+prefix,
			"GUILDHALL_CLUSTER_BIN="+mustBuild(t), "GUILDHALL_CLUSTER_DIR="+dir, "GUILDHALL_CLUSTER_PORT="+base, "GUILDHALL_CLUSTER_NATS_PORT="+natsPort)
		var err error
		if out, err = run(env, "start"); err == nil {
			break
		}
		if attempt == 8 {
			t.Fatal("local-cluster.sh start failed")
		}
	}
	t.Cleanup(func() { _, _ = run(env, "stop") })
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, "=")
		vars[k] = v
	}
	api := strings.TrimSuffix(vars["API"], "/api/v1")
	gateways := strings.Split(vars["GATEWAYS"], ",")
	if api == "" || len(gateways) != 2 {
		t.Fatalf("start printed %q", out)
	}
	if _, err := run(env, "status"); err != nil {
		t.Fatal("status after start:", err)
	}
	link2 := strings.TrimSuffix(strings.TrimPrefix(gateways[1], "ws://"), "/gateway")
	distributedScenario(t, api, api, link2)

	if _, err := run(env, "stop"); err != nil {
		t.Fatal(err)
	}
	status := exec.Command("bash", script, "status")
	status.Env = env
	if err := status.Run(); err == nil {
		t.Fatal("status after stop says everything runs")
	} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("status after stop: %v, want exit 3", err)
	}
}

// TestDistributedMessageCrash: the message role runs as its own OS
// process and is killed (SIGKILL) right after acking a burst of sends.
// Another message process takes over: every acked message reaches the CQL
// store, in seq order without a gap, and sending goes on after them.
func TestDistributedMessageCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	hosts, redisAddr, ks, prefix := distributedDeps(t)
	common := []string{"--store", "cql", "--cql-hosts", hosts, "--cql-keyspace", ks, "--redis-addr", redisAddr, "--redis-prefix", prefix, "--cql-timeout", "30s"}
	if out, err := runMigrate(t, "--cql-hosts", hosts, "--cql-keyspace", ks); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	hub := MustRunMain(t, t.TempDir(), append(common, "--roles", "subscribe", "--nats-listen", "127.0.0.1:0", "--node-id", "1")...)
	edge := MustRunMain(t, t.TempDir(), append(common, "--roles", "api,link", "--nats-url", hub.NATSURL(), "--node-id", "2")...)
	base := "http://" + edge.Addr()

	startMessage := func(node string) *exec.Cmd {
		addr := freePort(t)
		cmd := exec.Command(mustBuild(t), append(common, "--roles", "message", "--nats-url", hub.NATSURL(), "--node-id", node,
			"--addr", addr, "--data-dir", t.TempDir(), "--log-level", "warn")...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("message process %s:\n%s", node, stderr.String())
			}
		})
		waitHealthy(t, addr)
		return cmd
	}
	first := startMessage("3")

	alice := register(t, base, "alice")
	var srv struct{ ID string }
	alice.do("POST", "/servers", map[string]string{"name": "Crash"}, 201, &srv)
	var chans []struct{ ID string }
	alice.do("GET", "/servers/"+srv.ID+"/channels", nil, 200, &chans)
	channel := chans[0].ID
	const n = 30
	acked := map[uint64]string{}
	for i := 1; i <= n; i++ {
		var m msgJSON
		alice.do("POST", "/channels/"+channel+"/messages", map[string]string{"content": fmt.Sprint("m", i), "nonce": fmt.Sprint("n", i)}, 201, &m)
		acked[m.Seq] = m.ID
	}
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	// History has every acked message at once, persisted or not (the
	// cache and the log hold what the store does not have yet).
	var hist []msgJSON
	alice.do("GET", "/channels/"+channel+"/messages?limit=100", nil, 200, &hist)
	if len(hist) != n || hist[0].Seq != n || hist[n-1].Seq != 1 {
		t.Fatalf("history right after the crash: %d messages, seqs %v", len(hist), seqs(hist))
	}
	startMessage("4")

	// Every acked message reaches the store: a batch the killed persister
	// held is handed out again after the log's AckWait (30 s), so this
	// waits longer than checkFor.
	ctx := context.Background()
	s, err := cqldb.Open(ctx, cqldb.Config{Hosts: strings.Split(hosts, ","), Keyspace: ks, MustExist: true, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	store := messagecql.New(s)
	chID := parseID(t, channel)
	checkForLong(t, 2*time.Minute, func() error {
		list, err := store.List(ctx, chID, message.Query{Limit: 100})
		if err != nil {
			return err
		}
		if len(list) != n {
			var have []uint64
			for _, m := range list {
				have = append(have, m.Seq)
			}
			return fmt.Errorf("%d of %d acked messages in the store: seqs %v", len(list), n, have)
		}
		for _, m := range list {
			if acked[m.Seq] != fmt.Sprint(m.ID) {
				return fmt.Errorf("store has seq %d as %d, acked as %s", m.Seq, m.ID, acked[m.Seq])
			}
		}
		return nil
	})
	// The new message process goes on after them; a retried nonce is
	// still the first message.
	var next, again msgJSON
	alice.do("POST", "/channels/"+channel+"/messages", map[string]string{"content": "after", "nonce": "after"}, 201, &next)
	alice.do("POST", "/channels/"+channel+"/messages", map[string]string{"content": "m30", "nonce": "n30"}, 201, &again)
	if next.Seq != n+1 || again.ID != acked[n] {
		t.Fatalf("after the crash: seq %d (want %d), retry of the last nonce gave %s (want %s)", next.Seq, n+1, again.ID, acked[n])
	}
}
