package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// MustRunMain runs Main in-process on a random port with dataDir.
func MustRunMain(tb testing.TB, dataDir string, args ...string) *Main {
	tb.Helper()
	m := NewMain()
	args = append([]string{"--addr", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn"}, args...)
	if err := m.ParseFlags(args, func(string) string { return "" }); err != nil {
		tb.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close(context.Background())
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// client is a REST client for one user.
type client struct {
	tb    testing.TB
	base  string
	token string
}

func (c *client) do(method, path string, body any, want int, out any) {
	c.tb.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+"/api/v1"+path, rd)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.tb.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			c.tb.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
}

type user struct {
	ID       string `json:"id"`
	Username string `json:"username"`
}

type msgJSON struct {
	ID        string  `json:"id"`
	ChannelID string  `json:"channel_id"`
	AuthorID  string  `json:"author_id"`
	Content   string  `json:"content"`
	Seq       uint64  `json:"seq"`
	CreatedAt string  `json:"created_at"`
	EditedAt  *string `json:"edited_at"`
}

func register(tb testing.TB, base, name string) *client {
	tb.Helper()
	c := &client{tb: tb, base: base}
	var out struct {
		User  user   `json:"user"`
		Token string `json:"token"`
	}
	c.do("POST", "/auth/register", map[string]string{"username": name, "password": "correct horse"}, 201, &out)
	if out.Token == "" || out.User.Username != name {
		tb.Fatalf("register: %+v", out)
	}
	c.token = out.Token
	return c
}

// gw is a gateway client.
type gw struct {
	tb   testing.TB
	conn *websocket.Conn
	json bool
}

func dialGateway(tb testing.TB, addr, token string, json bool) (*gw, *pb.Ready) {
	tb.Helper()
	url := "ws://" + addr + "/gateway"
	if json {
		url += "?encoding=json"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.CloseNow() })
	g := &gw{tb: tb, conn: conn, json: json}
	if hello := g.read(); hello.GetHello().GetHeartbeatIntervalMs() == 0 {
		tb.Fatalf("first frame %v, want hello", hello)
	}
	g.write(&pb.Frame{Body: &pb.Frame_Identify{Identify: &pb.Identify{Token: token}}})
	ready := g.read().GetReady()
	if ready == nil || ready.SessionId == "" {
		tb.Fatalf("no ready")
	}
	return g, ready
}

func (g *gw) write(f *pb.Frame) {
	g.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if g.json {
		b, _ := protojson.Marshal(f)
		err = g.conn.Write(ctx, websocket.MessageText, b)
	} else {
		b, _ := proto.Marshal(f)
		err = g.conn.Write(ctx, websocket.MessageBinary, b)
	}
	if err != nil {
		g.tb.Fatal(err)
	}
}

func (g *gw) read() *pb.Frame {
	g.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, data, err := g.conn.Read(ctx)
	if err != nil {
		g.tb.Fatal(err)
	}
	f := new(pb.Frame)
	if g.json {
		if typ != websocket.MessageText {
			g.tb.Fatalf("json session got a binary frame")
		}
		err = protojson.Unmarshal(data, f)
	} else {
		if typ != websocket.MessageBinary {
			g.tb.Fatalf("protobuf session got a text frame")
		}
		err = proto.Unmarshal(data, f)
	}
	if err != nil {
		g.tb.Fatalf("decode %q: %v", data, err)
	}
	return f
}

// subscribe subscribes and waits for the ok reply.
func (g *gw) subscribe(ch uint64) {
	g.tb.Helper()
	g.write(&pb.Frame{Ref: "s1", Body: &pb.Frame_Subscribe{Subscribe: &pb.Subscribe{ChannelIds: []uint64{ch}}}})
	if f := g.read(); f.Ref != "s1" || f.GetOk() == nil {
		g.tb.Fatalf("subscribe reply %v", f)
	}
}

func parseID(tb testing.TB, s string) uint64 {
	tb.Helper()
	var id uint64
	if _, err := fmt.Sscan(s, &id); err != nil || id == 0 {
		tb.Fatalf("bad id %q", s)
	}
	return id
}

// TestEndToEnd runs the whole product in-process: two users, a server, an
// invite, live delivery over both gateway encodings, nonce retries,
// history paging in every direction and a restart on the same data dir.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	m := MustRunMain(t, dir)
	base := "http://" + m.Addr()

	alice := register(t, base, "alice")
	bob := register(t, base, "Bob")

	var srv struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		OwnerID string `json:"owner_id"`
	}
	alice.do("POST", "/servers", map[string]string{"name": "Guild"}, 201, &srv)
	var me user
	alice.do("GET", "/users/@me", nil, 200, &me)
	if srv.Name != "Guild" || srv.OwnerID != me.ID {
		t.Fatalf("server %+v", srv)
	}
	var chans []struct{ ID, Name string }
	alice.do("GET", "/servers/"+srv.ID+"/channels", nil, 200, &chans)
	if len(chans) != 1 || chans[0].Name != "general" {
		t.Fatalf("channels %+v", chans)
	}
	general := chans[0].ID

	// Bob is not a member yet: the channel does not exist for him.
	bob.do("GET", "/channels/"+general+"/messages", nil, 404, nil)
	bob.do("POST", "/channels/"+general+"/messages", map[string]string{"content": "hi"}, 404, nil)

	var inv struct{ Code string }
	alice.do("POST", "/servers/"+srv.ID+"/invites", map[string]int{"max_uses": 1}, 201, &inv)
	bob.do("POST", "/invites/"+inv.Code, nil, 200, nil)
	carol := register(t, base, "carol")
	carol.do("POST", "/invites/"+inv.Code, nil, 403, nil) // used up

	var members []struct {
		UserID   string `json:"user_id"`
		Username string `json:"username"`
	}
	alice.do("GET", "/servers/"+srv.ID+"/members?limit=1", nil, 200, &members)
	if len(members) != 1 {
		t.Fatalf("members page %+v", members)
	}
	var rest []struct{ Username string }
	alice.do("GET", "/servers/"+srv.ID+"/members?limit=10&after="+members[0].UserID, nil, 200, &rest)
	if len(rest) != 1 {
		t.Fatalf("second members page %+v", rest)
	}
	alice.do("GET", "/servers/"+srv.ID+"/members?q=bo", nil, 200, &rest)
	if len(rest) != 1 || rest[0].Username != "Bob" {
		t.Fatalf("search bo: %+v", rest)
	}

	// Bob follows the channel over the gateway, in protobuf and in JSON.
	chID := parseID(t, general)
	gwProto, ready := dialGateway(t, m.Addr(), bob.token, false)
	if len(ready.Servers) != 1 || len(ready.Channels) != 1 || ready.User.Username != "Bob" {
		t.Fatalf("ready %v", ready)
	}
	gwJSON, _ := dialGateway(t, m.Addr(), bob.token, true)
	gwProto.subscribe(chID)
	gwJSON.subscribe(chID)

	var sent msgJSON
	alice.do("POST", "/channels/"+general+"/messages", map[string]string{"content": "hello bob", "nonce": "n-1"}, 201, &sent)
	if sent.Seq != 1 || sent.AuthorID != me.ID || sent.EditedAt != nil || sent.CreatedAt == "" {
		t.Fatalf("sent %+v", sent)
	}
	for _, g := range []*gw{gwProto, gwJSON} {
		f := g.read()
		got := f.GetEvent().GetMessageCreate()
		if f.Seq != 1 || got.GetContent() != "hello bob" || fmt.Sprint(got.GetId()) != sent.ID {
			t.Fatalf("json=%v: dispatch %v", g.json, f)
		}
	}

	// A retry with the same nonce returns the same message, no duplicate.
	var again msgJSON
	alice.do("POST", "/channels/"+general+"/messages", map[string]string{"content": "hello bob", "nonce": "n-1"}, 201, &again)
	if again.ID != sent.ID || again.Seq != 1 {
		t.Fatalf("retry gave %+v, want %+v", again, sent)
	}

	// Bob answers over the gateway; alice's message was the only one before.
	gwProto.write(&pb.Frame{Ref: "m1", Body: &pb.Frame_SendMessage{SendMessage: &pb.SendMessage{ChannelId: chID, Content: "hi alice", Nonce: "b-1"}}})
	var ackSeen, evSeen bool
	for !(ackSeen && evSeen) {
		f := gwProto.read()
		switch {
		case f.Ref == "m1" && f.GetSent() != nil:
			ackSeen = f.GetSent().Message.Seq == 2
		case f.GetEvent().GetMessageCreate().GetContent() == "hi alice":
			evSeen = f.Seq == 2
		default:
			t.Fatalf("unexpected %v", f)
		}
	}
	if f := gwJSON.read(); f.GetEvent().GetMessageCreate().GetSeq() != 2 {
		t.Fatalf("json session got %v", f)
	}

	// Fill the channel and page through it in every direction.
	for i := 3; i <= 30; i++ {
		alice.do("POST", "/channels/"+general+"/messages", map[string]string{"content": fmt.Sprint("m", i)}, 201, nil)
	}
	var latest, before, after, around []msgJSON
	alice.do("GET", "/channels/"+general+"/messages?limit=10", nil, 200, &latest)
	if len(latest) != 10 || latest[0].Seq != 30 || latest[9].Seq != 21 {
		t.Fatalf("latest %v", seqs(latest))
	}
	bob.do("GET", "/channels/"+general+"/messages?limit=5&before="+latest[9].ID, nil, 200, &before)
	if want := []uint64{20, 19, 18, 17, 16}; fmt.Sprint(seqs(before)) != fmt.Sprint(want) {
		t.Fatalf("before: %v, want %v", seqs(before), want)
	}
	bob.do("GET", "/channels/"+general+"/messages?limit=3&after="+sent.ID, nil, 200, &after)
	if want := []uint64{4, 3, 2}; fmt.Sprint(seqs(after)) != fmt.Sprint(want) {
		t.Fatalf("after: %v, want %v", seqs(after), want)
	}
	bob.do("GET", "/channels/"+general+"/messages?limit=4&around="+before[2].ID, nil, 200, &around)
	if want := []uint64{19, 18, 17, 16}; fmt.Sprint(seqs(around)) != fmt.Sprint(want) {
		t.Fatalf("around 18: %v, want %v", seqs(around), want)
	}

	// Edit and delete reach the gateway too.
	var edited msgJSON
	alice.do("PATCH", "/channels/"+general+"/messages/"+sent.ID, map[string]string{"content": "hello again"}, 200, &edited)
	if edited.EditedAt == nil || edited.Content != "hello again" {
		t.Fatalf("edited %+v", edited)
	}
	bob.do("PATCH", "/channels/"+general+"/messages/"+sent.ID, map[string]string{"content": "not mine"}, 403, nil)
	alice.do("DELETE", "/channels/"+general+"/messages/"+latest[0].ID, nil, 204, nil)
	var kinds []string
	for len(kinds) < 30 {
		f := gwJSON.read()
		switch {
		case f.GetEvent().GetMessageCreate() != nil:
			kinds = append(kinds, "create")
		case f.GetEvent().GetMessageUpdate().GetContent() == "hello again":
			kinds = append(kinds, "update")
		case f.GetEvent().GetMessageDelete().GetSeq() == 30:
			kinds = append(kinds, "delete")
		}
	}
	if kinds[28] != "update" || kinds[29] != "delete" {
		t.Fatalf("events %v", kinds)
	}

	// Typing goes through the message service to every follower.
	gwProto.write(&pb.Frame{Ref: "t1", Body: &pb.Frame_Typing{Typing: &pb.Typing{ChannelId: chID}}})
	for {
		f := gwJSON.read()
		if ts := f.GetEvent().GetTypingStart(); ts != nil {
			if fmt.Sprint(ts.UserId) != fmt.Sprint(ready.User.GetId()) {
				t.Fatalf("typing_start %v", f)
			}
			break
		}
	}

	// Restart on the same data dir: accounts, servers and history are there.
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	m2 := MustRunMain(t, dir)
	base2 := "http://" + m2.Addr()
	alice2 := &client{tb: t, base: base2, token: alice.token}
	var servers []struct{ ID string }
	alice2.do("GET", "/users/@me/servers", nil, 200, &servers)
	if len(servers) != 1 || servers[0].ID != srv.ID {
		t.Fatalf("servers after restart %+v", servers)
	}
	relog := &client{tb: t, base: base2}
	relog.do("POST", "/auth/login", map[string]string{"username": "bob", "password": "correct horse"}, 200, nil)
	var hist []msgJSON
	alice2.do("GET", "/channels/"+general+"/messages?limit=100", nil, 200, &hist)
	if len(hist) != 29 || hist[0].Seq != 29 || hist[len(hist)-1].Content != "hello again" {
		t.Fatalf("history after restart: %d messages, %v", len(hist), seqs(hist))
	}
	// Sequence numbers continue without a gap after the restart.
	var next msgJSON
	alice2.do("POST", "/channels/"+general+"/messages", map[string]string{"content": "after restart"}, 201, &next)
	if next.Seq != 31 {
		t.Fatalf("seq after restart %d, want 31", next.Seq)
	}
	// And a revoked token stays revoked.
	alice2.do("POST", "/auth/logout", nil, 204, nil)
	alice2.do("GET", "/users/@me", nil, 401, nil)
}

func seqs(list []msgJSON) []uint64 {
	out := make([]uint64, len(list))
	for i, m := range list {
		out[i] = m.Seq
	}
	return out
}

func TestParseFlags(t *testing.T) {
	env := map[string]string{"GUILDHALL_ROLES": "link,message", "GUILDHALL_ADDR": "0.0.0.0:9000"}
	m := NewMain()
	if err := m.ParseFlags([]string{"--addr", "127.0.0.1:1"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if m.Config.Addr != "127.0.0.1:1" || strings.Join(m.Config.Roles, ",") != "link,message" {
		t.Fatalf("config %+v: flags must win over env, env over defaults", m.Config)
	}
	for _, bad := range [][]string{
		{"--roles", "link,bogus"},
		{"--addr", "nope"},
		{"--node-id", "5000"},
		{"--heartbeat-interval", "1ms"},
		{"--log-level", "loud"},
		{"stray"},
		{"--no-such-flag"},
	} {
		if err := NewMain().ParseFlags(bad, func(string) string { return "" }); err == nil {
			t.Errorf("ParseFlags(%v) accepted", bad)
		}
	}
	if err := NewMain().ParseFlags(nil, func(k string) string {
		if k == "GUILDHALL_NODE_ID" {
			return "x"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "GUILDHALL_NODE_ID") {
		t.Errorf("bad env value: %v", err)
	}
}

// TestSignalShutdown runs the real binary, sends SIGTERM with a gateway
// client connected, and expects a reconnect frame, close code 1012 and exit 0.
func TestSignalShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := mustBuild(t)
	// Find a free port by letting Main pick one, then release it.
	probe := MustRunMain(t, filepath.Join(dir, "probe"))
	addr := probe.Addr()
	_ = probe.Close(context.Background())

	cmd := exec.Command(bin, "--addr", addr, "--data-dir", filepath.Join(dir, "data"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	base := "http://" + addr
	checkFor(t, func() error {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	c := register(t, base, "dave")
	g, _ := dialGateway(t, addr, c.token, true)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if f := g.read(); f.GetReconnect() == nil {
		t.Fatalf("got %v, want reconnect", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := g.conn.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusServiceRestart {
		t.Fatalf("close: %v, want 1012", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "store")); err != nil {
		t.Fatal(err)
	}
}

// checkFor polls f until it returns nil, failing the test after a long
// while. Only for waiting on something that will happen, never for timing.
func checkFor(tb testing.TB, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
