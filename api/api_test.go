package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"

	"github.com/guildhall/guildhall/api"
	"github.com/guildhall/guildhall/audit"
	auditpebble "github.com/guildhall/guildhall/audit/pebble"
	"github.com/guildhall/guildhall/bus/bustest"
	"github.com/guildhall/guildhall/member"
	memberpebble "github.com/guildhall/guildhall/member/pebble"
	"github.com/guildhall/guildhall/message"
	messagejs "github.com/guildhall/guildhall/message/jetstream"
	"github.com/guildhall/guildhall/message/natsrpc"
	messagepebble "github.com/guildhall/guildhall/message/pebble"
	"github.com/guildhall/guildhall/role"
	rolepebble "github.com/guildhall/guildhall/role/pebble"
	"github.com/guildhall/guildhall/snowflake"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is the REST API over httptest, wired as one process wires it: the
// member service and the history reader on a Pebble store in-process, the
// message service behind natsrpc on an embedded NATS server.
type env struct {
	url      string
	hc       *http.Client
	messages message.Store
}

// noNodes routes every channel to no link node: fan-out is a no-op.
type noNodes struct{}

func (noNodes) Nodes(uint64) []string { return nil }

// stack is one process's services on a fresh Pebble database and an
// embedded NATS: the member and role services, the message store and its
// durable log with a running persister.
type stack struct {
	ns      *server.Server
	db      *pebbledb.DB
	ids     *snowflake.Generator
	rstore  *rolepebble.Store
	res     *role.Resolver
	roles   *role.Service
	members *member.Service
	store   *messagepebble.Store
	mlog    *messagejs.Log
}

func newStack(t *testing.T) stack {
	t.Helper()
	st := stack{ns: bustest.MustServer(t), db: mustOpen(t)}
	var err error
	if st.ids, err = snowflake.New(1, nil); err != nil {
		t.Fatal(err)
	}
	mstore := memberpebble.New(st.db)
	st.rstore = rolepebble.New(st.db)
	st.res = role.NewResolver(st.rstore, member.NewDirectory(mstore))
	st.roles = role.NewService(st.rstore, st.res, st.ids, nil)
	st.members = member.NewService(mstore, st.roles, st.ids, nil, member.Config{
		Password: member.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1},
	})
	st.store = messagepebble.New(st.db)
	if st.mlog, err = messagejs.New(t.Context(), bustest.MustConnect(t, st.ns), messagejs.Config{LagRefresh: -1}); err != nil {
		t.Fatal(err)
	}
	persister, err := message.StartPersister(message.PersisterConfig{Source: st.mlog, Store: st.store, BatchWait: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = persister.Shutdown(context.Background()) })
	return st
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st := newStack(t)
	ns, db, ids, res, roles, members, store, mlog := st.ns, st.db, st.ids, st.res, st.roles, st.members, st.store, st.mlog
	svc := message.NewService(message.Config{
		Store: store, Access: res, Log: mlog, Publisher: natsrpc.NewFanout(bustest.MustConnect(t, ns), noNodes{}, nil), IDs: ids,
	})
	rpc, err := natsrpc.Serve(bustest.MustConnect(t, ns), svc, nil, natsrpc.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rpc.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	a := api.New(api.Services{
		Members:  members,
		Messages: natsrpc.NewClient(bustest.MustConnect(t, ns)),
		History:  message.NewReader(store, res, nil, mlog),
		Roles:    roles,
		Audit:    audit.NewLog(auditpebble.New(db), ids, nil, nil, 0),
	}, nil)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", a.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &env{url: hs.URL + "/api/v1", hc: hs.Client(), messages: store}
}

// mustOpen opens a Pebble database in a temporary directory, closed when
// the test ends.
func mustOpen(tb testing.TB) *pebbledb.DB {
	tb.Helper()
	db, err := pebbledb.Open(tb.TempDir(), &pebbledb.Options{Logger: quietLogger{}})
	if err != nil {
		tb.Fatalf("open pebble: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close pebble: %v", err)
		}
	})
	return db
}

// quietLogger drops Pebble's informational messages.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)              {}
func (quietLogger) Errorf(format string, args ...any) { pebbledb.DefaultLogger.Errorf(format, args...) }
func (quietLogger) Fatalf(format string, args ...any) { pebbledb.DefaultLogger.Fatalf(format, args...) }

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body)) }

// raw is a request body sent as is.
type raw string

// do sends a request. body nil sends none, raw is sent as is, anything
// else as JSON; token "" sends no Authorization header.
func (e *env) do(t *testing.T, method, path, token string, body any) response {
	t.Helper()
	return e.doAuth(t, method, path, bearer(token), body)
}

func bearer(token string) string {
	if token == "" {
		return ""
	}
	return "Bearer " + token
}

func (e *env) doAuth(t *testing.T, method, path, authorization string, body any) response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case raw:
		r = strings.NewReader(string(b))
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// want checks the status of a successful call and decodes its JSON body
// into a T.
func want[T any](t *testing.T, what string, r response, status int) T {
	t.Helper()
	var v T
	if r.status != status {
		t.Fatalf("%s: %v, want status %d", what, r, status)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("%s: body %s does not decode into %T: %v", what, r.body, v, err)
	}
	return v
}

// wantError checks an error response: its status and a body of exactly
// {code, message}.
func wantError(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: %v, want status %d %s", what, r, status, code)
		return
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Errorf("%s: error body %q is not a JSON object: %v", what, r.body, err)
		return
	}
	wantKeys(t, what+" error body", body, "code", "message")
	if body["code"] != code {
		t.Errorf("%s: code %v, want %q", what, body["code"], code)
	}
	if msg, _ := body["message"].(string); msg == "" || msg == "internal error" && code != "internal" {
		t.Errorf("%s: message %q", what, body["message"])
	}
}

func wantStatus(t *testing.T, what string, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: %v, want status %d", what, r, status)
	}
}

func wantKeys(t *testing.T, what string, obj map[string]any, keys ...string) {
	t.Helper()
	var got []string
	for k := range obj {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(keys)
	if !slices.Equal(got, keys) {
		t.Errorf("%s has keys %v, want %v", what, got, keys)
	}
}

// wantStringIDs checks that each named field of obj is a JSON string
// holding a decimal ID.
func wantStringIDs(t *testing.T, what string, obj map[string]any, fields ...string) {
	t.Helper()
	for _, f := range fields {
		s, ok := obj[f].(string)
		if !ok {
			t.Errorf("%s: %s is %T (%v), want a string", what, f, obj[f], obj[f])
			continue
		}
		if _, err := strconv.ParseUint(s, 10, 64); err != nil {
			t.Errorf("%s: %s = %q is not a decimal ID", what, f, s)
		}
	}
}

type userJSON struct {
	ID       string `json:"id"`
	Username string `json:"username"`
}

type authJSON struct {
	User  userJSON `json:"user"`
	Token string   `json:"token"`
}

type serverJSON struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	OwnerID string `json:"owner_id"`
}

type channelJSON struct {
	ID       string  `json:"id"`
	ServerID string  `json:"server_id"`
	Name     string  `json:"name"`
	Type     string  `json:"type"`
	Position int     `json:"position"`
	ParentID *string `json:"parent_id"`
}

type inviteJSON struct {
	Code      string     `json:"code"`
	ServerID  string     `json:"server_id"`
	MaxUses   int        `json:"max_uses"`
	Uses      int        `json:"uses"`
	ExpiresAt *time.Time `json:"expires_at"`
}

type memberJSON struct {
	UserID   string    `json:"user_id"`
	Username string    `json:"username"`
	JoinedAt time.Time `json:"joined_at"`
}

type messageJSON struct {
	ID        string     `json:"id"`
	ChannelID string     `json:"channel_id"`
	ServerID  string     `json:"server_id"`
	AuthorID  string     `json:"author_id"`
	Content   string     `json:"content"`
	Seq       uint64     `json:"seq"`
	Nonce     string     `json:"nonce"`
	CreatedAt time.Time  `json:"created_at"`
	EditedAt  *time.Time `json:"edited_at"`
}

type user struct {
	ID, Name, Token string
}

func (e *env) register(t *testing.T, name string) user {
	t.Helper()
	r := e.do(t, "POST", "/auth/register", "", map[string]string{"username": name, "password": "password-" + name})
	a := want[authJSON](t, "register "+name, r, http.StatusCreated)
	return user{ID: a.User.ID, Name: a.User.Username, Token: a.Token}
}

func (e *env) createServer(t *testing.T, owner user, name string) serverJSON {
	t.Helper()
	return want[serverJSON](t, "create server", e.do(t, "POST", "/servers", owner.Token, map[string]string{"name": name}), http.StatusCreated)
}

func (e *env) channels(t *testing.T, u user, serverID string) []channelJSON {
	t.Helper()
	return want[[]channelJSON](t, "list channels", e.do(t, "GET", "/servers/"+serverID+"/channels", u.Token, nil), http.StatusOK)
}

func (e *env) join(t *testing.T, inviter, u user, serverID string) {
	t.Helper()
	inv := want[inviteJSON](t, "create invite", e.do(t, "POST", "/servers/"+serverID+"/invites", inviter.Token, nil), http.StatusCreated)
	want[serverJSON](t, "join", e.do(t, "POST", "/invites/"+inv.Code, u.Token, nil), http.StatusOK)
}

// world is a server with a channel, its owner, a plain member and an
// outsider.
type world struct {
	owner, plain, outsider user
	server                 serverJSON
	channel                string // "general"
}

func (e *env) world(t *testing.T) world {
	t.Helper()
	w := world{owner: e.register(t, "owner"), plain: e.register(t, "plain"), outsider: e.register(t, "outsider")}
	w.server = e.createServer(t, w.owner, "guild")
	w.channel = e.channels(t, w.owner, w.server.ID)[0].ID
	e.join(t, w.owner, w.plain, w.server.ID)
	return w
}

func (e *env) send(t *testing.T, u user, channel, content string) messageJSON {
	t.Helper()
	r := e.do(t, "POST", "/channels/"+channel+"/messages", u.Token, map[string]string{"content": content})
	return want[messageJSON](t, "send", r, http.StatusCreated)
}

func (e *env) history(t *testing.T, u user, channel, query string) []messageJSON {
	t.Helper()
	r := e.do(t, "GET", "/channels/"+channel+"/messages"+query, u.Token, nil)
	return want[[]messageJSON](t, "history"+query, r, http.StatusOK)
}

func contents(list []messageJSON) []string {
	out := make([]string, 0, len(list))
	for _, m := range list {
		out = append(out, m.Content)
	}
	return out
}

func TestRegisterLoginLogout(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/auth/register", "", map[string]string{"username": "Alice", "password": "correct horse"})
	body := want[map[string]any](t, "register", r, http.StatusCreated)
	wantKeys(t, "register", body, "user", "token")
	u, _ := body["user"].(map[string]any)
	wantKeys(t, "register user", u, "id", "username")
	wantStringIDs(t, "register user", u, "id")
	if u["username"] != "Alice" {
		t.Errorf("username %v", u["username"])
	}
	token, _ := body["token"].(string)

	me := want[map[string]any](t, "me", e.do(t, "GET", "/users/@me", token, nil), http.StatusOK)
	wantKeys(t, "me", me, "id", "username")
	if me["id"] != u["id"] || me["username"] != "Alice" {
		t.Errorf("me = %v, want %v", me, u)
	}

	wantError(t, "register taken name", e.do(t, "POST", "/auth/register", "", map[string]string{"username": "ALICE", "password": "other password"}), 409, "conflict")
	wantError(t, "register bad name", e.do(t, "POST", "/auth/register", "", map[string]string{"username": "no spaces", "password": "long enough"}), 400, "invalid_argument")
	wantError(t, "register short password", e.do(t, "POST", "/auth/register", "", map[string]string{"username": "bob", "password": "short"}), 400, "invalid_argument")
	wantError(t, "register without fields", e.do(t, "POST", "/auth/register", "", raw(`{}`)), 400, "invalid_argument")

	r = e.do(t, "POST", "/auth/login", "", map[string]string{"username": "alice", "password": "correct horse"})
	login := want[authJSON](t, "login", r, http.StatusOK)
	if login.User.ID != u["id"] || login.Token == "" || login.Token == token {
		t.Errorf("login = %+v", login)
	}
	wrong := e.do(t, "POST", "/auth/login", "", map[string]string{"username": "alice", "password": "wrong horse"})
	unknown := e.do(t, "POST", "/auth/login", "", map[string]string{"username": "nobody", "password": "correct horse"})
	wantError(t, "login wrong password", wrong, 401, "unauthenticated")
	wantError(t, "login unknown user", unknown, 401, "unauthenticated")
	if !bytes.Equal(wrong.body, unknown.body) {
		t.Errorf("wrong password %s and unknown user %s answer differently", wrong.body, unknown.body)
	}

	wantError(t, "logout without token", e.do(t, "POST", "/auth/logout", "", nil), 401, "unauthenticated")
	r = e.do(t, "POST", "/auth/logout", token, nil)
	wantStatus(t, "logout", r, http.StatusNoContent)
	if len(r.body) != 0 {
		t.Errorf("logout body %q, want none", r.body)
	}
	wantError(t, "me after logout", e.do(t, "GET", "/users/@me", token, nil), 401, "unauthenticated")
	wantError(t, "logout again", e.do(t, "POST", "/auth/logout", token, nil), 401, "unauthenticated")
	want[userJSON](t, "me with the login token", e.do(t, "GET", "/users/@me", login.Token, nil), http.StatusOK)
}

func TestBearer(t *testing.T) {
	e := newEnv(t)
	alice := e.register(t, "alice")
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer garbage", "Bearer gh_garbage", "Basic " + alice.Token, alice.Token, "Bearer " + alice.Token + "x"} {
		for _, path := range []string{"/users/@me", "/users/@me/servers"} {
			wantError(t, fmt.Sprintf("GET %s with Authorization %.20q", path, auth), e.doAuth(t, "GET", path, auth, nil), 401, "unauthenticated")
		}
	}
	for _, auth := range []string{"Bearer " + alice.Token, "bearer " + alice.Token, "BEARER  " + alice.Token + " "} {
		if u := want[userJSON](t, "Authorization "+auth[:8], e.doAuth(t, "GET", "/users/@me", auth, nil), http.StatusOK); u.ID != alice.ID {
			t.Errorf("me = %+v", u)
		}
	}
	// Every authenticated route checks the token before anything else.
	for _, route := range []struct{ method, path string }{
		{"GET", "/users/@me/servers"},
		{"POST", "/servers"},
		{"GET", "/servers/1"},
		{"GET", "/servers/1/channels"},
		{"POST", "/servers/1/channels"},
		{"GET", "/channels/1"},
		{"PATCH", "/channels/1"},
		{"DELETE", "/channels/1"},
		{"POST", "/servers/1/invites"},
		{"POST", "/invites/abc"},
		{"GET", "/servers/1/members"},
		{"DELETE", "/servers/1/members/@me"},
		{"POST", "/channels/1/messages"},
		{"GET", "/channels/1/messages"},
		{"PATCH", "/channels/1/messages/2"},
		{"DELETE", "/channels/1/messages/2"},
		{"POST", "/auth/logout"},
	} {
		wantError(t, route.method+" "+route.path+" without token", e.do(t, route.method, route.path, "", raw(`{"name":"x","content":"x"}`)), 401, "unauthenticated")
		wantError(t, route.method+" "+route.path+" with a bad token", e.do(t, route.method, route.path, "gh_bad", raw(`{"name":"x","content":"x"}`)), 401, "unauthenticated")
	}
}

func TestBodies(t *testing.T) {
	e := newEnv(t)
	alice := e.register(t, "alice")
	srv := e.createServer(t, alice, "guild")
	channel := e.channels(t, alice, srv.ID)[0].ID

	// Padding with whitespace keeps the JSON valid at any size, so only the
	// size limit can refuse it.
	pad := func(body string, size int) raw { return raw(strings.Repeat(" ", size-len(body)) + body) }
	postMsg := func(body raw) response { return e.do(t, "POST", "/channels/"+channel+"/messages", alice.Token, body) }

	wantError(t, "message body over MaxBody", postMsg(pad(`{"content":"big"}`, api.MaxBody+1)), 413, "too_large")
	wantError(t, "message body far over MaxBody", postMsg(pad(`{"content":"big"}`, 4*api.MaxBody)), 413, "too_large")
	wantError(t, "trailing space over MaxBody", postMsg(raw(`{"content":"big"}`+strings.Repeat(" ", api.MaxBody))), 413, "too_large")
	wantError(t, "register body over MaxBody", e.do(t, "POST", "/auth/register", "", pad(`{"username":"bob","password":"long enough"}`, api.MaxBody+1)), 413, "too_large")
	wantError(t, "server body over MaxBody", e.do(t, "POST", "/servers", alice.Token, pad(`{"name":"big"}`, api.MaxBody+1)), 413, "too_large")
	want[messageJSON](t, "message body of exactly MaxBody", postMsg(pad(`{"content":"fits"}`, api.MaxBody)), http.StatusCreated)

	for _, body := range []raw{
		``,
		`   `,
		`{`,
		`{"content":`,
		`{"content":"x",}`,
		`{"content":"x"} {"content":"y"}`,
		`{"content":"x"}}`,
		`{"content":"x"}]`,
		`{"content":"x"} garbage`,
		`{"content":"x"}{`,
		`[]`,
		`"content"`,
		`{"content":42}`,
		`{"content":"x","nonce":7}`,
	} {
		wantError(t, fmt.Sprintf("message body %q", body), postMsg(body), 400, "invalid_argument")
	}
	for _, body := range []raw{``, `{"name":"x"}}`, `{"name":"x"} {}`, `{"name":1}`, `nul`} {
		wantError(t, fmt.Sprintf("server body %q", body), e.do(t, "POST", "/servers", alice.Token, body), 400, "invalid_argument")
	}
	for _, body := range []raw{`{"username":"bob","password":"long enough"}}`, `{"username":"bob","password":"long enough"} x`} {
		wantError(t, fmt.Sprintf("register body %q", body), e.do(t, "POST", "/auth/register", "", body), 400, "invalid_argument")
	}
	wantError(t, "login with trailing data", e.do(t, "POST", "/auth/login", "", raw(`{"username":"alice","password":"password-alice"} []`)), 400, "invalid_argument")

	// Only the two accepted messages were stored; the refused bob does
	// not exist and the refused servers were not made.
	if h := e.history(t, alice, channel, ""); len(h) != 1 || h[0].Content != "fits" {
		t.Errorf("history = %v", contents(h))
	}
	wantError(t, "login as refused bob", e.do(t, "POST", "/auth/login", "", map[string]string{"username": "bob", "password": "long enough"}), 401, "unauthenticated")
	if list := want[[]serverJSON](t, "my servers", e.do(t, "GET", "/users/@me/servers", alice.Token, nil), 200); len(list) != 1 {
		t.Errorf("servers = %+v, want only the first", list)
	}
	// Trailing whitespace is fine.
	want[serverJSON](t, "server body with trailing newline", e.do(t, "POST", "/servers", alice.Token, raw("{\"name\":\"ok\"}\n\t ")), http.StatusCreated)
}

func TestServers(t *testing.T) {
	e := newEnv(t)
	alice := e.register(t, "alice")
	bob := e.register(t, "bob")

	r := e.do(t, "GET", "/users/@me/servers", alice.Token, nil)
	if want[[]serverJSON](t, "my servers", r, 200); string(bytes.TrimSpace(r.body)) != "[]" {
		t.Errorf("no servers = %s, want []", r.body)
	}

	r = e.do(t, "POST", "/servers", alice.Token, map[string]string{"name": "  Alice's place "})
	obj := want[map[string]any](t, "create server", r, http.StatusCreated)
	wantKeys(t, "server", obj, "id", "name", "owner_id")
	wantStringIDs(t, "server", obj, "id", "owner_id")
	if obj["name"] != "Alice's place" || obj["owner_id"] != alice.ID {
		t.Errorf("server = %v", obj)
	}
	id := obj["id"].(string)

	for _, body := range []any{raw(`{}`), raw(`{"name":null}`), map[string]string{"name": ""}, map[string]string{"name": "   "}, map[string]string{"name": strings.Repeat("x", member.MaxName+1)}, map[string]string{"name": "a\u0000b"}} {
		wantError(t, fmt.Sprintf("create server %v", body), e.do(t, "POST", "/servers", alice.Token, body), 400, "invalid_argument")
	}

	got := want[serverJSON](t, "get server", e.do(t, "GET", "/servers/"+id, alice.Token, nil), 200)
	if got.ID != id || got.Name != "Alice's place" || got.OwnerID != alice.ID {
		t.Errorf("get server = %+v", got)
	}
	list := want[[]serverJSON](t, "my servers", e.do(t, "GET", "/users/@me/servers", alice.Token, nil), 200)
	if len(list) != 1 || list[0] != got {
		t.Errorf("my servers = %+v", list)
	}

	// Non-members and unknown IDs look the same; malformed IDs are 400.
	notMember := e.do(t, "GET", "/servers/"+id, bob.Token, nil)
	wantError(t, "get server as non-member", notMember, 404, "not_found")
	unknown := e.do(t, "GET", "/servers/123456789", bob.Token, nil)
	wantError(t, "get unknown server", unknown, 404, "not_found")
	if !bytes.Equal(notMember.body, unknown.body) {
		t.Errorf("non-member gets %s, unknown ID %s", notMember.body, unknown.body)
	}
	for _, bad := range []string{"abc", "0", "-1", "1.5", "0x10", "99999999999999999999", "%20"} {
		wantError(t, "get server "+bad, e.do(t, "GET", "/servers/"+bad, alice.Token, nil), 400, "invalid_argument")
	}
	if list := want[[]serverJSON](t, "bob's servers", e.do(t, "GET", "/users/@me/servers", bob.Token, nil), 200); len(list) != 0 {
		t.Errorf("bob's servers = %+v", list)
	}
}

func TestRenameServer(t *testing.T) {
	e := newEnv(t)
	w := e.world(t)
	path := "/servers/" + w.server.ID
	get := func() serverJSON {
		t.Helper()
		return want[serverJSON](t, "get server", e.do(t, "GET", path, w.owner.Token, nil), 200)
	}

	// Bad input is 400 and changes nothing.
	for body, message := range map[string]string{
		``:                    "request body must be a JSON object",
		`{}`:                  "name is required",
		`{"name":null}`:       "name is required",
		`{"name":5}`:          "field name must be a string, not number",
		`{"name":""}`:         fmt.Sprintf("server name must be 1 to %d characters", member.MaxName),
		`{"name":"   "}`:      fmt.Sprintf("server name must be 1 to %d characters", member.MaxName),
		`{"name":"a\u0000b"}`: "server name may not hold control characters",
		`{"name":"` + strings.Repeat("x", member.MaxName+1) + `"}`: fmt.Sprintf("server name must be 1 to %d characters", member.MaxName),
		`{"name":"x"} {}`: "invalid JSON: data after the object",
	} {
		r := e.do(t, "PATCH", path, w.owner.Token, raw(body))
		wantError(t, "rename "+body, r, 400, "invalid_argument")
		var got map[string]any
		if json.Unmarshal(r.body, &got) == nil && got["message"] != message {
			t.Errorf("rename %s: message %q, want %q", body, got["message"], message)
		}
	}
	for _, bad := range []string{"abc", "0", "-1"} {
		wantError(t, "rename server "+bad, e.do(t, "PATCH", "/servers/"+bad, w.owner.Token, map[string]string{"name": "x"}), 400, "invalid_argument")
	}
	wantError(t, "rename without a token", e.do(t, "PATCH", path, "", map[string]string{"name": "x"}), 401, "unauthenticated")

	// A member without MANAGE_SERVER is refused and told why; to an
	// outsider the server does not exist.
	r := e.do(t, "PATCH", path, w.plain.Token, map[string]string{"name": "plain's"})
	wantError(t, "rename as plain member", r, 403, "forbidden")
	if !bytes.Contains(r.body, []byte("MANAGE_SERVER")) {
		t.Errorf("rename as plain member: %s, want it to name MANAGE_SERVER", r.body)
	}
	notMember := e.do(t, "PATCH", path, w.outsider.Token, map[string]string{"name": "outsider's"})
	wantError(t, "rename as outsider", notMember, 404, "not_found")
	unknown := e.do(t, "PATCH", "/servers/123456789", w.outsider.Token, map[string]string{"name": "outsider's"})
	if !bytes.Equal(notMember.body, unknown.body) {
		t.Errorf("rename: non-member gets %s, unknown ID %s", notMember.body, unknown.body)
	}
	if got := get(); got != w.server {
		t.Fatalf("server after refused renames = %+v, want %+v", got, w.server)
	}

	// The owner renames; the name is trimmed like at creation and every
	// member sees it.
	r = e.do(t, "PATCH", path, w.owner.Token, map[string]string{"name": "  Guild Hall ✨ "})
	obj := want[map[string]any](t, "rename", r, 200)
	wantKeys(t, "renamed server", obj, "id", "name", "owner_id")
	if obj["id"] != w.server.ID || obj["name"] != "Guild Hall ✨" || obj["owner_id"] != w.owner.ID {
		t.Errorf("rename = %v", obj)
	}
	if got := want[serverJSON](t, "get as plain", e.do(t, "GET", path, w.plain.Token, nil), 200); got.Name != "Guild Hall ✨" {
		t.Errorf("plain sees the server as %+v", got)
	}
	list := want[[]serverJSON](t, "plain's servers", e.do(t, "GET", "/users/@me/servers", w.plain.Token, nil), 200)
	if len(list) != 1 || list[0].Name != "Guild Hall ✨" {
		t.Errorf("plain's servers = %+v", list)
	}

	// A role with MANAGE_SERVER lets plain rename too.
	ro := want[struct {
		ID string `json:"id"`
	}](t, "create role", e.do(t, "POST", path+"/roles", w.owner.Token, map[string]any{"name": "managers", "permissions": strconv.FormatUint(uint64(role.ManageServer), 10)}), 201)
	wantStatus(t, "give role", e.do(t, "PUT", path+"/members/"+w.plain.ID+"/roles/"+ro.ID, w.owner.Token, nil), 204)
	full := strings.Repeat("é", member.MaxName)
	if got := want[serverJSON](t, "rename as manager", e.do(t, "PATCH", path, w.plain.Token, map[string]string{"name": full}), 200); got.Name != full {
		t.Errorf("rename as manager = %+v", got)
	}
}

func TestChannels(t *testing.T) {
	e := newEnv(t)
	w := e.world(t)
	base := "/servers/" + w.server.ID + "/channels"

	r := e.do(t, "GET", base, w.plain.Token, nil)
	list := want[[]map[string]any](t, "list channels", r, 200)
	if len(list) != 1 {
		t.Fatalf("channels = %v", list)
	}
	wantKeys(t, "channel", list[0], "id", "server_id", "name", "type", "position", "parent_id", "synced")
	wantStringIDs(t, "channel", list[0], "id", "server_id")
	if list[0]["name"] != "general" || list[0]["type"] != "text" || list[0]["position"] != 0.0 || list[0]["parent_id"] != nil || list[0]["server_id"] != w.server.ID {
		t.Errorf("general = %v", list[0])
	}

	news := want[channelJSON](t, "create channel", e.do(t, "POST", base, w.owner.Token, map[string]string{"name": " news "}), http.StatusCreated)
	if news.Name != "news" || news.ServerID != w.server.ID || news.Type != "text" || news.Position != 1 || news.ParentID != nil {
		t.Errorf("created channel = %+v", news)
	}
	if got := want[channelJSON](t, "get channel", e.do(t, "GET", "/channels/"+news.ID, w.plain.Token, nil), 200); got != news {
		t.Errorf("get channel = %+v, want %+v", got, news)
	}
	before := e.channels(t, w.owner, w.server.ID)

	// Outsiders see nothing; plain members may not manage channels.
	wantError(t, "list channels as outsider", e.do(t, "GET", base, w.outsider.Token, nil), 404, "not_found")
	wantError(t, "get channel as outsider", e.do(t, "GET", "/channels/"+news.ID, w.outsider.Token, nil), 404, "not_found")
	wantError(t, "create channel as outsider", e.do(t, "POST", base, w.outsider.Token, map[string]string{"name": "spam"}), 404, "not_found")
	wantError(t, "create channel as plain member", e.do(t, "POST", base, w.plain.Token, map[string]string{"name": "mine"}), 403, "forbidden")
	wantError(t, "rename channel as plain member", e.do(t, "PATCH", "/channels/"+news.ID, w.plain.Token, map[string]string{"name": "mine"}), 403, "forbidden")
	wantError(t, "rename channel as outsider", e.do(t, "PATCH", "/channels/"+news.ID, w.outsider.Token, map[string]string{"name": "mine"}), 404, "not_found")
	wantError(t, "delete channel as plain member", e.do(t, "DELETE", "/channels/"+news.ID, w.plain.Token, nil), 403, "forbidden")
	wantError(t, "delete channel as outsider", e.do(t, "DELETE", "/channels/"+news.ID, w.outsider.Token, nil), 404, "not_found")
	// Bad input.
	wantError(t, "create channel without name", e.do(t, "POST", base, w.owner.Token, raw(`{}`)), 400, "invalid_argument")
	wantError(t, "create channel with blank name", e.do(t, "POST", base, w.owner.Token, map[string]string{"name": " "}), 400, "invalid_argument")
	wantError(t, "create channel in unknown server", e.do(t, "POST", "/servers/123456789/channels", w.owner.Token, map[string]string{"name": "x"}), 404, "not_found")
	wantError(t, "create channel in server abc", e.do(t, "POST", "/servers/abc/channels", w.owner.Token, map[string]string{"name": "x"}), 400, "invalid_argument")
	wantError(t, "list channels of unknown server", e.do(t, "GET", "/servers/123456789/channels", w.owner.Token, nil), 404, "not_found")
	wantError(t, "list channels of server abc", e.do(t, "GET", "/servers/abc/channels", w.owner.Token, nil), 400, "invalid_argument")
	wantError(t, "rename without name", e.do(t, "PATCH", "/channels/"+news.ID, w.owner.Token, raw(`{"nom":"x"}`)), 400, "invalid_argument")
	wantError(t, "rename unknown channel", e.do(t, "PATCH", "/channels/123456789", w.owner.Token, map[string]string{"name": "x"}), 404, "not_found")
	wantError(t, "rename channel abc", e.do(t, "PATCH", "/channels/abc", w.owner.Token, map[string]string{"name": "x"}), 400, "invalid_argument")
	wantError(t, "get unknown channel", e.do(t, "GET", "/channels/123456789", w.owner.Token, nil), 404, "not_found")
	wantError(t, "get channel abc", e.do(t, "GET", "/channels/abc", w.owner.Token, nil), 400, "invalid_argument")
	wantError(t, "delete unknown channel", e.do(t, "DELETE", "/channels/123456789", w.owner.Token, nil), 404, "not_found")
	wantError(t, "delete channel abc", e.do(t, "DELETE", "/channels/abc", w.owner.Token, nil), 400, "invalid_argument")
	if after := e.channels(t, w.owner, w.server.ID); !slices.Equal(before, after) {
		t.Fatalf("failed calls changed the channels:\n before %+v\n after  %+v", before, after)
	}

	renamed := want[channelJSON](t, "rename channel", e.do(t, "PATCH", "/channels/"+news.ID, w.owner.Token, map[string]string{"name": "announcements"}), 200)
	if renamed.ID != news.ID || renamed.Name != "announcements" {
		t.Errorf("renamed = %+v", renamed)
	}
	deleted := want[channelJSON](t, "delete channel", e.do(t, "DELETE", "/channels/"+news.ID, w.owner.Token, nil), 200)
	if deleted.ID != news.ID || deleted.Name != "announcements" {
		t.Errorf("deleted = %+v", deleted)
	}
	wantError(t, "get deleted channel", e.do(t, "GET", "/channels/"+news.ID, w.owner.Token, nil), 404, "not_found")
	if got := e.channels(t, w.owner, w.server.ID); len(got) != 1 || got[0].Name != "general" {
		t.Errorf("channels after delete = %+v", got)
	}
}

func TestInvites(t *testing.T) {
	e := newEnv(t)
	owner := e.register(t, "owner")
	srv := e.createServer(t, owner, "guild")
	invites := "/servers/" + srv.ID + "/invites"

	r := e.do(t, "POST", invites, owner.Token, nil)
	obj := want[map[string]any](t, "create invite (no body)", r, http.StatusCreated)
	wantKeys(t, "invite", obj, "code", "server_id", "max_uses", "uses", "expires_at")
	wantStringIDs(t, "invite", obj, "server_id")
	if obj["max_uses"] != 0.0 || obj["uses"] != 0.0 || obj["expires_at"] != nil || obj["code"] == "" || obj["server_id"] != srv.ID {
		t.Errorf("invite = %v", obj)
	}

	start := time.Now()
	limited := want[inviteJSON](t, "create limited invite", e.do(t, "POST", invites, owner.Token, map[string]int{"max_uses": 1, "max_age": 3600}), http.StatusCreated)
	if limited.MaxUses != 1 || limited.ExpiresAt == nil || limited.ExpiresAt.Before(start.Add(time.Hour-time.Second)) || limited.ExpiresAt.After(time.Now().Add(time.Hour)) {
		t.Errorf("limited invite = %+v", limited)
	}
	want[inviteJSON](t, "create invite (empty object)", e.do(t, "POST", invites, owner.Token, raw(`{}`)), http.StatusCreated)

	maxAge := int(member.MaxInviteAge.Seconds())
	for _, body := range []any{
		map[string]int{"max_age": -1},
		map[string]int{"max_age": maxAge + 1},
		map[string]int{"max_uses": -1},
		map[string]int{"max_uses": member.MaxInviteUses + 1},
		raw(`{"max_age":1e30}`),
		raw(`{"max_uses":"1"}`),
		raw(`{"max_uses":1}}`),
		raw(`nope`),
	} {
		wantError(t, fmt.Sprintf("create invite %v", body), e.do(t, "POST", invites, owner.Token, body), 400, "invalid_argument")
	}
	outsider := e.register(t, "outsider")
	wantError(t, "create invite as outsider", e.do(t, "POST", invites, outsider.Token, nil), 404, "not_found")
	wantError(t, "create invite to unknown server", e.do(t, "POST", "/servers/123456789/invites", owner.Token, nil), 404, "not_found")
	wantError(t, "create invite to server abc", e.do(t, "POST", "/servers/abc/invites", owner.Token, nil), 400, "invalid_argument")

	joiner := e.register(t, "joiner")
	joined := want[serverJSON](t, "join", e.do(t, "POST", "/invites/"+limited.Code, joiner.Token, nil), http.StatusOK)
	if joined != srv {
		t.Errorf("join = %+v, want %+v", joined, srv)
	}
	want[serverJSON](t, "join again", e.do(t, "POST", "/invites/"+limited.Code, joiner.Token, nil), http.StatusOK)
	wantError(t, "join with a used-up invite", e.do(t, "POST", "/invites/"+limited.Code, outsider.Token, nil), 403, "forbidden")
	wantError(t, "join with an unknown invite", e.do(t, "POST", "/invites/nosuchcode", outsider.Token, nil), 404, "not_found")
	wantError(t, "join with an overlong code", e.do(t, "POST", "/invites/"+strings.Repeat("x", 100), outsider.Token, nil), 404, "not_found")
	wantError(t, "outsider lists channels", e.do(t, "GET", "/servers/"+srv.ID+"/channels", outsider.Token, nil), 404, "not_found")
	e.channels(t, joiner, srv.ID)
}

func TestMembersAndLeave(t *testing.T) {
	e := newEnv(t)
	w := e.world(t)
	path := "/servers/" + w.server.ID + "/members"
	var all []user
	all = append(all, w.owner, w.plain)
	for _, name := range []string{"Bob", "bobby", "carol"} {
		u := e.register(t, name)
		e.join(t, w.owner, u, w.server.ID)
		all = append(all, u)
	}

	r := e.do(t, "GET", path, w.plain.Token, nil)
	objs := want[[]map[string]any](t, "members", r, 200)
	if len(objs) != len(all) {
		t.Fatalf("%d members, want %d", len(objs), len(all))
	}
	wantKeys(t, "member", objs[0], "user_id", "username", "nick", "joined_at")
	wantStringIDs(t, "member", objs[0], "user_id")

	// Paged in user ID order.
	var got []string
	after := ""
	for range 10 {
		q := "?limit=2"
		if after != "" {
			q += "&after=" + after
		}
		page := want[[]memberJSON](t, "members"+q, e.do(t, "GET", path+q, w.owner.Token, nil), 200)
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			got = append(got, m.Username)
			if m.JoinedAt.IsZero() {
				t.Errorf("%s has no joined_at", m.Username)
			}
		}
		after = page[len(page)-1].UserID
	}
	var names []string
	for _, u := range all {
		names = append(names, u.Name)
	}
	if !slices.Equal(got, names) {
		t.Errorf("paged members = %v, want %v", got, names)
	}

	byPrefix := want[[]memberJSON](t, "members q=BOB", e.do(t, "GET", path+"?q=BOB", w.owner.Token, nil), 200)
	if len(byPrefix) != 2 || byPrefix[0].Username != "Bob" || byPrefix[1].Username != "bobby" {
		t.Errorf("members q=BOB = %+v", byPrefix)
	}
	for _, q := range []string{"?limit=0", "?limit=-1", "?limit=1001", "?limit=abc", "?limit=", "?after=abc", "?after=0", "?after=-5", "?q=" + strings.Repeat("b", 33)} {
		wantError(t, "members"+q, e.do(t, "GET", path+q, w.owner.Token, nil), 400, "invalid_argument")
	}
	want[[]memberJSON](t, "members limit=1000", e.do(t, "GET", path+"?limit=1000", w.owner.Token, nil), 200)
	wantError(t, "members as outsider", e.do(t, "GET", path, w.outsider.Token, nil), 404, "not_found")
	wantError(t, "members of unknown server", e.do(t, "GET", "/servers/123456789/members", w.owner.Token, nil), 404, "not_found")

	leave := path + "/@me"
	wantError(t, "owner leaves", e.do(t, "DELETE", leave, w.owner.Token, nil), 403, "forbidden")
	wantError(t, "outsider leaves", e.do(t, "DELETE", leave, w.outsider.Token, nil), 404, "not_found")
	wantError(t, "leave server abc", e.do(t, "DELETE", "/servers/abc/members/@me", w.plain.Token, nil), 400, "invalid_argument")
	r = e.do(t, "DELETE", leave, w.plain.Token, nil)
	wantStatus(t, "plain member leaves", r, http.StatusNoContent)
	wantError(t, "channels after leaving", e.do(t, "GET", "/servers/"+w.server.ID+"/channels", w.plain.Token, nil), 404, "not_found")
	wantError(t, "messages after leaving", e.do(t, "GET", "/channels/"+w.channel+"/messages", w.plain.Token, nil), 404, "not_found")
	wantError(t, "leave again", e.do(t, "DELETE", leave, w.plain.Token, nil), 404, "not_found")
	if list := want[[]memberJSON](t, "members after leave", e.do(t, "GET", path, w.owner.Token, nil), 200); len(list) != len(all)-1 {
		t.Errorf("%d members after leave, want %d", len(list), len(all)-1)
	}
}

func TestMessages(t *testing.T) {
	e := newEnv(t)
	w := e.world(t)
	path := "/channels/" + w.channel + "/messages"

	r := e.do(t, "POST", path, w.plain.Token, map[string]string{"content": "hello", "nonce": "n-1"})
	obj := want[map[string]any](t, "send", r, http.StatusCreated)
	for _, k := range []string{"id", "channel_id", "author_id", "content", "seq", "created_at", "edited_at"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("message has no %q: %v", k, obj)
		}
	}
	for k := range obj {
		if !slices.Contains([]string{"id", "channel_id", "server_id", "author_id", "content", "seq", "nonce", "created_at", "edited_at", "mention_user_ids", "mention_role_ids", "mention_everyone"}, k) {
			t.Errorf("message has unexpected key %q", k)
		}
	}
	wantStringIDs(t, "message", obj, "id", "channel_id", "author_id", "server_id")
	if ids, ok := obj["mention_user_ids"].([]any); !ok || len(ids) != 0 {
		t.Errorf("mention_user_ids = %v, want []", obj["mention_user_ids"])
	}
	if obj["channel_id"] != w.channel || obj["author_id"] != w.plain.ID || obj["server_id"] != w.server.ID || obj["content"] != "hello" || obj["seq"] != 1.0 || obj["edited_at"] != nil {
		t.Errorf("message = %v", obj)
	}
	created, _ := obj["created_at"].(string)
	if ts, err := time.Parse(time.RFC3339Nano, created); err != nil || !strings.HasSuffix(created, "Z") || time.Since(ts) > time.Minute {
		t.Errorf("created_at = %q (%v), want a recent RFC 3339 time in UTC", created, err)
	}
	first := want[messageJSON](t, "send", r, http.StatusCreated)

	// A retry with the nonce is the same message.
	retry := want[messageJSON](t, "retry", e.do(t, "POST", path, w.plain.Token, map[string]string{"content": "hello", "nonce": "n-1"}), http.StatusCreated)
	if retry.ID != first.ID || retry.Seq != 1 {
		t.Errorf("retry = %+v, want %+v", retry, first)
	}

	// Refused sends write nothing.
	wantError(t, "send as outsider", e.do(t, "POST", path, w.outsider.Token, map[string]string{"content": "let me in"}), 404, "not_found")
	wantError(t, "send without content", e.do(t, "POST", path, w.plain.Token, raw(`{"nonce":"x"}`)), 400, "invalid_argument")
	wantError(t, "send empty content", e.do(t, "POST", path, w.plain.Token, map[string]string{"content": ""}), 400, "invalid_argument")
	wantError(t, "send blank content", e.do(t, "POST", path, w.plain.Token, map[string]string{"content": " \n "}), 400, "invalid_argument")
	wantError(t, "send too long", e.do(t, "POST", path, w.plain.Token, map[string]string{"content": strings.Repeat("é", message.MaxContent+1)}), 413, "too_large")
	wantError(t, "send long nonce", e.do(t, "POST", path, w.plain.Token, map[string]string{"content": "x", "nonce": strings.Repeat("n", 65)}), 400, "invalid_argument")
	wantError(t, "send to unknown channel", e.do(t, "POST", "/channels/123456789/messages", w.plain.Token, map[string]string{"content": "x"}), 404, "not_found")
	wantError(t, "send to channel abc", e.do(t, "POST", "/channels/abc/messages", w.plain.Token, map[string]string{"content": "x"}), 400, "invalid_argument")
	if h := e.history(t, w.owner, w.channel, ""); len(h) != 1 || h[0].ID != first.ID {
		t.Fatalf("history after refused sends = %v", contents(h))
	}
	if last, err := e.messages.LastSeq(t.Context(), mustID(t, w.channel)); err != nil || last != 1 {
		t.Errorf("LastSeq = %d, %v; want 1", last, err)
	}
	// Invalid UTF-8 in JSON becomes U+FFFD: accepted, not a 500.
	if m := want[messageJSON](t, "send invalid UTF-8", e.do(t, "POST", path, w.plain.Token, raw("{\"content\":\"a\xffb\"}")), http.StatusCreated); m.Content != "a\uFFFDb" {
		t.Errorf("content = %q", m.Content)
	}

	// Edit: only the author.
	mpath := path + "/" + first.ID
	wantError(t, "edit as other member", e.do(t, "PATCH", mpath, w.owner.Token, map[string]string{"content": "owner's"}), 403, "forbidden")
	wantError(t, "edit as outsider", e.do(t, "PATCH", mpath, w.outsider.Token, map[string]string{"content": "outsider's"}), 404, "not_found")
	wantError(t, "edit without content", e.do(t, "PATCH", mpath, w.plain.Token, raw(`{}`)), 400, "invalid_argument")
	wantError(t, "edit message abc", e.do(t, "PATCH", path+"/abc", w.plain.Token, map[string]string{"content": "x"}), 400, "invalid_argument")
	wantError(t, "edit in channel abc", e.do(t, "PATCH", "/channels/abc/messages/"+first.ID, w.plain.Token, map[string]string{"content": "x"}), 400, "invalid_argument")
	wantError(t, "edit unknown message", e.do(t, "PATCH", path+"/123456789", w.plain.Token, map[string]string{"content": "x"}), 404, "not_found")
	edited := want[messageJSON](t, "edit", e.do(t, "PATCH", mpath, w.plain.Token, map[string]string{"content": "hello, edited"}), http.StatusOK)
	if edited.ID != first.ID || edited.Content != "hello, edited" || edited.EditedAt == nil || edited.EditedAt.Before(first.CreatedAt) || !edited.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("edited = %+v", edited)
	}
	if h := e.history(t, w.owner, w.channel, "?limit=100"); h[len(h)-1].Content != "hello, edited" || h[len(h)-1].EditedAt == nil {
		t.Errorf("history after edit = %+v", h)
	}

	// Delete: the author, or a member with MANAGE_MESSAGES.
	ownerMsg := want[map[string]any](t, "owner sends", e.do(t, "POST", path, w.owner.Token, map[string]string{"content": "owner's"}), 201)
	wantError(t, "delete as other member", e.do(t, "DELETE", path+"/"+ownerMsg["id"].(string), w.plain.Token, nil), 403, "forbidden")
	wantError(t, "delete as outsider", e.do(t, "DELETE", mpath, w.outsider.Token, nil), 404, "not_found")
	wantError(t, "delete message abc", e.do(t, "DELETE", path+"/abc", w.plain.Token, nil), 400, "invalid_argument")
	wantError(t, "delete message 0", e.do(t, "DELETE", path+"/0", w.plain.Token, nil), 400, "invalid_argument")
	r = e.do(t, "DELETE", mpath, w.plain.Token, nil)
	wantStatus(t, "delete", r, http.StatusNoContent)
	wantError(t, "delete again", e.do(t, "DELETE", mpath, w.plain.Token, nil), 404, "not_found")
	wantError(t, "edit deleted", e.do(t, "PATCH", mpath, w.plain.Token, map[string]string{"content": "x"}), 404, "not_found")
	for _, m := range e.history(t, w.owner, w.channel, "") {
		if m.ID == first.ID {
			t.Error("deleted message still in history")
		}
	}
}

func TestHistory(t *testing.T) {
	e := newEnv(t)
	w := e.world(t)
	var sent []messageJSON // sent[i] is "m<i+1>"
	for i := range 10 {
		sent = append(sent, e.send(t, w.plain, w.channel, fmt.Sprintf("m%d", i+1)))
	}
	for i, m := range sent {
		if m.Seq != uint64(i+1) {
			t.Fatalf("m%d has seq %d", i+1, m.Seq)
		}
	}
	id := func(n int) string { return sent[n-1].ID }
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"m10", "m9", "m8", "m7", "m6", "m5", "m4", "m3", "m2", "m1"}},
		{"?limit=3", []string{"m10", "m9", "m8"}},
		{"?before=" + id(5) + "&limit=3", []string{"m4", "m3", "m2"}},
		{"?before=" + id(1), []string{}},
		{"?after=" + id(5) + "&limit=3", []string{"m8", "m7", "m6"}},
		{"?after=" + id(8), []string{"m10", "m9"}},
		{"?after=" + id(10), []string{}},
		{"?around=" + id(5) + "&limit=4", []string{"m6", "m5", "m4", "m3"}},
		{"?around=" + id(1) + "&limit=4", []string{"m2", "m1"}},
		{"?limit=100", []string{"m10", "m9", "m8", "m7", "m6", "m5", "m4", "m3", "m2", "m1"}},
	}
	for _, tt := range tests {
		got := e.history(t, w.owner, w.channel, tt.query)
		if !slices.Equal(contents(got), tt.want) {
			t.Errorf("history%s = %v, want %v", tt.query, contents(got), tt.want)
		}
	}
	// Messages in the list have the same shape as the one sent.
	list := want[[]map[string]any](t, "history", e.do(t, "GET", "/channels/"+w.channel+"/messages?limit=1", w.plain.Token, nil), 200)
	if len(list) != 1 {
		t.Fatalf("history?limit=1 = %v", list)
	}
	wantStringIDs(t, "listed message", list[0], "id", "channel_id", "author_id")
	if list[0]["id"] != id(10) || list[0]["seq"] != 10.0 || list[0]["edited_at"] != nil {
		t.Errorf("listed message = %v", list[0])
	}

	path := "/channels/" + w.channel + "/messages"
	for _, q := range []string{
		"?limit=0", "?limit=-1", "?limit=101", "?limit=abc", "?limit=",
		"?before=abc", "?after=-1", "?around=1.5", "?before=0",
		"?before=" + id(5) + "&after=" + id(2),
		"?before=" + id(5) + "&around=" + id(2),
		"?after=" + id(5) + "&around=" + id(2),
	} {
		wantError(t, "history"+q, e.do(t, "GET", path+q, w.owner.Token, nil), 400, "invalid_argument")
	}
	notMember := e.do(t, "GET", path, w.outsider.Token, nil)
	wantError(t, "history as outsider", notMember, 404, "not_found")
	unknown := e.do(t, "GET", "/channels/123456789/messages", w.outsider.Token, nil)
	wantError(t, "history of unknown channel", unknown, 404, "not_found")
	if !bytes.Equal(notMember.body, unknown.body) {
		t.Errorf("outsider gets %s, unknown channel %s", notMember.body, unknown.body)
	}
	wantError(t, "history of channel abc", e.do(t, "GET", "/channels/abc/messages", w.owner.Token, nil), 400, "invalid_argument")
}

func TestUnknownEndpoint(t *testing.T) {
	e := newEnv(t)
	alice := e.register(t, "alice")
	for _, route := range []struct{ method, path string }{
		{"GET", "/"},
		{"GET", "/nope"},
		{"POST", "/auth/whoami"},
		{"GET", "/channels/1/messages/2/reactions"},
	} {
		wantError(t, route.method+" "+route.path, e.do(t, route.method, route.path, alice.Token, nil), 404, "not_found")
	}
	// A known path with the wrong method is 405 and says what is allowed.
	for _, route := range []struct{ method, path, allow string }{
		{"GET", "/servers", "POST"},
		{"PUT", "/channels/1", "GET, PATCH, DELETE"},
	} {
		resp := e.do(t, route.method, route.path, alice.Token, nil)
		wantError(t, route.method+" "+route.path, resp, 405, "method_not_allowed")
		if got := resp.header.Get("Allow"); got != route.allow {
			t.Errorf("%s %s: Allow %q, want %q", route.method, route.path, got, route.allow)
		}
	}
}

func mustID(t *testing.T, s string) uint64 {
	t.Helper()
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestJSONProblemWords(t *testing.T) {
	e := newEnv(t)
	w := e.world(t)
	for body, message := range map[string]string{
		`{"permissions":1024}`:                   "field permissions must be a string, not number",
		`{"permissions":"99999999999999999999"}`: `permissions "99999999999999999999": not a decimal integer below 2^64`,
		`{"name":5}`:                             "field name must be a string, not number",
	} {
		r := e.do(t, "POST", "/servers/"+w.server.ID+"/roles", w.owner.Token, raw(body))
		got := want[map[string]any](t, body, r, 400)
		if got["message"] != message {
			t.Errorf("%s: message %q, want %q", body, got["message"], message)
		}
	}
}

// TestMessageMentions: mentions are parsed at send and shown as string IDs;
// @everyone counts only for an author with MENTION_EVERYONE.
func TestMessageMentions(t *testing.T) {
	e := newEnv(t)
	w := e.world(t)
	path := "/channels/" + w.channel + "/messages"
	r := e.do(t, "POST", path, w.plain.Token, map[string]string{"content": "hi <@" + w.plain.ID + "> <@&7> @everyone"})
	m := want[map[string]any](t, "send with mentions", r, http.StatusCreated)
	if ids, ok := m["mention_user_ids"].([]any); !ok || len(ids) != 1 || ids[0] != w.plain.ID {
		t.Errorf("mention_user_ids = %v, want [%q]", m["mention_user_ids"], w.plain.ID)
	}
	if ids, ok := m["mention_role_ids"].([]any); !ok || len(ids) != 1 || ids[0] != "7" {
		t.Errorf("mention_role_ids = %v, want [\"7\"]", m["mention_role_ids"])
	}
	r = e.do(t, "POST", path, w.owner.Token, map[string]string{"content": "@everyone hello"})
	if m := want[map[string]any](t, "send @everyone as owner", r, http.StatusCreated); m["mention_everyone"] != true {
		t.Errorf("owner's @everyone: mention_everyone = %v, want true", m["mention_everyone"])
	}
}

// TestAuditReasonTooLong: a reason over audit.MaxReason bytes (after
// percent-decoding) is refused before anything is done.
func TestAuditReasonTooLong(t *testing.T) {
	e := newEnv(t)
	w := e.world(t)
	req, err := http.NewRequestWithContext(t.Context(), "POST", e.url+"/servers/"+w.server.ID+"/channels", strings.NewReader(`{"name":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+w.owner.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Audit-Log-Reason", strings.Repeat("%41", 513))
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "at most 512 bytes") {
		t.Fatalf("513-byte reason: %d %s", resp.StatusCode, body)
	}
	if chans := e.channels(t, w.owner, w.server.ID); len(chans) != 1 {
		t.Errorf("channels after the refused request = %d, want 1", len(chans))
	}
}
