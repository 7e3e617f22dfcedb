package member_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"go.uber.org/goleak"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/audit"
	"github.com/guildhall/guildhall/member"
	memberpebble "github.com/guildhall/guildhall/member/pebble"
	"github.com/guildhall/guildhall/role"
	rolepebble "github.com/guildhall/guildhall/role/pebble"
	"github.com/guildhall/guildhall/snowflake"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fastPassword keeps argon2id cheap in tests; one test runs the defaults.
var fastPassword = member.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}

// clock is a fake clock that moves only when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	svc   *member.Service
	store member.Store
	res   *role.Resolver
	roles *role.Service
	clock *clock
}

// newEnv returns a member.Service over a Pebble store in a temporary
// directory, with a fake clock and a token lifetime of one hour.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvConfig(t, member.Config{TokenTTL: time.Hour, Password: fastPassword})
}

func newEnvConfig(t *testing.T, cfg member.Config) *env {
	t.Helper()
	db := mustOpen(t)
	store := memberpebble.New(db)
	ids, err := snowflake.New(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	rstore := rolepebble.New(db)
	res := role.NewResolver(rstore, member.NewDirectory(store))
	roles := role.NewService(rstore, res, ids, nil)
	return &env{svc: member.NewService(store, roles, ids, clk.Now, cfg), store: store, res: res, roles: roles, clock: clk}
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

func (e *env) mustRegister(t *testing.T, name string) (member.User, string) {
	t.Helper()
	u, token, err := e.svc.Register(t.Context(), name, "password-"+name)
	if err != nil {
		t.Fatalf("Register(%q): %v", name, err)
	}
	return u, token
}

func (e *env) mustServer(t *testing.T, owner member.User, name string) member.Server {
	t.Helper()
	srv, err := e.svc.CreateServer(t.Context(), owner, name)
	if err != nil {
		t.Fatalf("CreateServer(%q): %v", name, err)
	}
	return srv
}

// mustJoin makes u a member of srv through a fresh invite made by inviter.
func (e *env) mustJoin(t *testing.T, inviter, u member.User, serverID uint64) {
	t.Helper()
	inv, err := e.svc.CreateInvite(t.Context(), inviter, serverID, 0, 0)
	if err != nil {
		t.Fatalf("CreateInvite: %v", err)
	}
	if _, _, err := e.svc.Join(t.Context(), u, inv.Code); err != nil {
		t.Fatalf("Join(%s): %v", u.Username, err)
	}
}

func (e *env) mustChannels(t *testing.T, actor member.User, serverID uint64) []member.Channel {
	t.Helper()
	list, err := e.svc.Channels(t.Context(), actor, serverID)
	if err != nil {
		t.Fatalf("Channels: %v", err)
	}
	return list
}

func wantKind(t *testing.T, what string, err error, want guildhall.Kind) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %s", what, want.Code())
		return
	}
	if got := guildhall.KindOf(err); got != want {
		t.Errorf("%s: kind %s (%v), want %s", what, got.Code(), err, want.Code())
	}
}

func TestRegisterUsername(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		ok   bool
	}{
		{"", false},
		{"a", false},
		{"ab", true},
		{strings.Repeat("x", member.MaxUsername), true},
		{strings.Repeat("y", member.MaxUsername+1), false},
		{"Some_user.name-9", true},
		{"with space", false},
		{"héllo", false},
		{"tab\tname", false},
		{"semi;colon", false},
		{"emoji🙂", false},
		{"null\x00byte", false},
	}
	for _, tt := range tests {
		u, token, err := e.svc.Register(t.Context(), tt.name, "long enough password")
		if !tt.ok {
			wantKind(t, fmt.Sprintf("Register(%q)", tt.name), err, guildhall.Invalid)
			if _, _, err := e.store.UserByName(t.Context(), tt.name); guildhall.KindOf(err) != guildhall.NotFound {
				t.Errorf("rejected username %q was stored (UserByName: %v)", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Register(%q): %v", tt.name, err)
			continue
		}
		if u.Username != tt.name || u.ID == 0 || token == "" {
			t.Errorf("Register(%q) = %+v, %q", tt.name, u, token)
		}
		if got, err := e.svc.Authenticate(t.Context(), token); err != nil || got.ID != u.ID {
			t.Errorf("Authenticate(token of %q) = %+v, %v", tt.name, got, err)
		}
	}
}

func TestRegisterDuplicateCaseInsensitive(t *testing.T) {
	e := newEnv(t)
	first, _ := e.mustRegister(t, "Alice")
	for _, name := range []string{"Alice", "alice", "ALICE", "aLiCe"} {
		_, _, err := e.svc.Register(t.Context(), name, "another password")
		wantKind(t, "Register("+name+")", err, guildhall.Conflict)
	}
	// The first account is untouched: its own password still logs in.
	u, _, err := e.svc.Login(t.Context(), "alice", "password-Alice")
	if err != nil || u.ID != first.ID || u.Username != "Alice" {
		t.Errorf("Login after duplicates = %+v, %v; want the first user", u, err)
	}
}

func TestRegisterPasswordLength(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		password string
		ok       bool
	}{
		{"", false},
		{strings.Repeat("p", member.MinPassword-1), false},
		{strings.Repeat("p", member.MinPassword), true},
		{strings.Repeat("p", member.MaxPassword), true},
		{strings.Repeat("p", member.MaxPassword+1), false},
		// Limits are in bytes: 4 two-byte runes are 8 bytes.
		{"éééé", true},
		{"ééé", false},
	}
	for i, tt := range tests {
		name := fmt.Sprintf("user%d", i)
		_, _, err := e.svc.Register(t.Context(), name, tt.password)
		if !tt.ok {
			wantKind(t, fmt.Sprintf("Register(password of %d bytes)", len(tt.password)), err, guildhall.Invalid)
			continue
		}
		if err != nil {
			t.Errorf("Register(password of %d bytes): %v", len(tt.password), err)
			continue
		}
		if _, _, err := e.svc.Login(t.Context(), name, tt.password); err != nil {
			t.Errorf("Login(password of %d bytes): %v", len(tt.password), err)
		}
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	alice, _ := e.mustRegister(t, "Alice")

	u, token, err := e.svc.Login(t.Context(), "alice", "password-Alice")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if u.ID != alice.ID || u.Username != "Alice" {
		t.Errorf("Login = %+v, want %+v", u, alice)
	}
	if got, err := e.svc.Authenticate(t.Context(), token); err != nil || got.ID != alice.ID {
		t.Errorf("Authenticate(login token) = %+v, %v", got, err)
	}

	_, _, wrongPassword := e.svc.Login(t.Context(), "Alice", "password-alice")
	_, _, unknownUser := e.svc.Login(t.Context(), "nobody", "password-Alice")
	_, _, tooLong := e.svc.Login(t.Context(), strings.Repeat("a", 200), "password")
	_, _, empty := e.svc.Login(t.Context(), "", "")
	for what, err := range map[string]error{"wrong password": wrongPassword, "unknown user": unknownUser, "overlong username": tooLong, "empty": empty} {
		wantKind(t, "Login("+what+")", err, guildhall.Unauthenticated)
		// Nothing tells an attacker which one was wrong.
		if got, want := guildhall.Message(err), guildhall.Message(wrongPassword); got != want {
			t.Errorf("Login(%s) message %q, want %q as for a wrong password", what, got, want)
		}
	}
}

func TestDefaultPasswordParams(t *testing.T) {
	e := newEnvConfig(t, member.Config{})
	_, token, err := e.svc.Register(t.Context(), "dflt", "default cost password")
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	_, hash, err := e.store.UserByName(t.Context(), "dflt")
	if err != nil {
		t.Fatalf("UserByName: %v", err)
	}
	if !strings.HasPrefix(string(hash), "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q does not use the documented defaults", hash)
	}
	if _, _, err := e.svc.Login(t.Context(), "dflt", "default cost password"); err != nil {
		t.Errorf("Login: %v", err)
	}
	_, _, err = e.svc.Login(t.Context(), "dflt", "default cost passworD")
	wantKind(t, "Login(wrong)", err, guildhall.Unauthenticated)
	// The default token lifetime is 30 days.
	e.clock.Advance(30*24*time.Hour - time.Second)
	if _, err := e.svc.Authenticate(t.Context(), token); err != nil {
		t.Errorf("Authenticate just before 30 days: %v", err)
	}
	e.clock.Advance(time.Second)
	_, err = e.svc.Authenticate(t.Context(), token)
	wantKind(t, "Authenticate after 30 days", err, guildhall.Unauthenticated)
}

func TestAuthenticate(t *testing.T) {
	e := newEnv(t)
	alice, token := e.mustRegister(t, "alice")

	garbage := []string{
		"",
		"garbage",
		"gh_",
		"gh_notarealtoken",
		"Bearer " + token,
		strings.ToUpper(token),
		token[:len(token)-1],
		token + "x",
		token + strings.Repeat("A", 100),
		token[:len(token)-1] + string(rune(token[len(token)-1])^1),
	}
	for _, tok := range garbage {
		_, err := e.svc.Authenticate(t.Context(), tok)
		wantKind(t, fmt.Sprintf("Authenticate(%.20q)", tok), err, guildhall.Unauthenticated)
	}

	// Expiry follows the injected clock: valid up to, not at, TokenTTL.
	e.clock.Advance(time.Hour - time.Millisecond)
	if u, err := e.svc.Authenticate(t.Context(), token); err != nil || u.ID != alice.ID {
		t.Fatalf("Authenticate before expiry = %+v, %v", u, err)
	}
	e.clock.Advance(time.Millisecond)
	_, err := e.svc.Authenticate(t.Context(), token)
	wantKind(t, "Authenticate(expired)", err, guildhall.Unauthenticated)

	// A new login gets a fresh hour.
	_, fresh, err := e.svc.Login(t.Context(), "alice", "password-alice")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if fresh == token {
		t.Fatal("Login returned the old token")
	}
	if _, err := e.svc.Authenticate(t.Context(), fresh); err != nil {
		t.Fatalf("Authenticate(fresh): %v", err)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	alice, first := e.mustRegister(t, "alice")
	_, second, err := e.svc.Login(t.Context(), "alice", "password-alice")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if err := e.svc.Logout(t.Context(), first); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	_, err = e.svc.Authenticate(t.Context(), first)
	wantKind(t, "Authenticate(revoked)", err, guildhall.Unauthenticated)
	// Only that token is revoked.
	if u, err := e.svc.Authenticate(t.Context(), second); err != nil || u.ID != alice.ID {
		t.Errorf("Authenticate(other token) = %+v, %v", u, err)
	}
	wantKind(t, "Logout(revoked again)", e.svc.Logout(t.Context(), first), guildhall.NotFound)
}

func TestCreateServer(t *testing.T) {
	e := newEnv(t)
	owner, _ := e.mustRegister(t, "owner")

	srv, err := e.svc.CreateServer(t.Context(), owner, "  My Guild \t\n")
	if err != nil {
		t.Fatalf("CreateServer: %v", err)
	}
	if srv.Name != "My Guild" || srv.OwnerID != owner.ID || srv.ID == 0 || !srv.CreatedAt.Equal(e.clock.Now()) {
		t.Errorf("CreateServer = %+v", srv)
	}
	got, err := e.svc.Server(t.Context(), owner, srv.ID)
	if err != nil || got.Name != "My Guild" || got.OwnerID != owner.ID {
		t.Errorf("Server = %+v, %v", got, err)
	}

	channels := e.mustChannels(t, owner, srv.ID)
	if len(channels) != 1 || channels[0].Name != "general" || channels[0].Type != member.ChannelText || channels[0].ServerID != srv.ID || channels[0].Position != 0 {
		t.Fatalf("Channels of a new server = %+v, want one text channel \"general\"", channels)
	}
	if ch, s, err := e.svc.Channel(t.Context(), owner, channels[0].ID); err != nil || ch.Name != "general" || s.ID != srv.ID {
		t.Errorf("Channel(general) = %+v, %+v, %v", ch, s, err)
	}

	members, err := e.svc.Members(t.Context(), owner, srv.ID, member.MemberQuery{})
	if err != nil {
		t.Fatalf("Members: %v", err)
	}
	if len(members) != 1 || members[0].UserID != owner.ID || members[0].Username != "owner" {
		t.Errorf("Members of a new server = %+v, want only the owner", members)
	}
	if n, err := e.store.MemberCount(t.Context(), srv.ID); err != nil || n != 1 {
		t.Errorf("MemberCount = %d, %v; want 1", n, err)
	}
}

func TestCreateServerNames(t *testing.T) {
	e := newEnv(t)
	owner, _ := e.mustRegister(t, "owner")
	tests := []struct {
		in, want string // want "" means Invalid
	}{
		{"", ""},
		{"   ", ""},
		{"\t\n", ""},
		{"x", "x"},
		{"  padded  ", "padded"},
		{strings.Repeat("é", member.MaxName), strings.Repeat("é", member.MaxName)},
		{strings.Repeat("é", member.MaxName+1), ""},
		{" " + strings.Repeat("a", member.MaxName) + " ", strings.Repeat("a", member.MaxName)},
		{"a\x00b", ""},
		{"line\nbreak", ""},
		{"bell\a", ""},
		{"del\x7f", ""},
		{"c1\u0085control", ""},
		{"bad\xffutf8", ""},
		{"Ünïcødé 🎉", "Ünïcødé 🎉"},
	}
	var created []uint64
	for _, tt := range tests {
		srv, err := e.svc.CreateServer(t.Context(), owner, tt.in)
		if tt.want == "" {
			wantKind(t, fmt.Sprintf("CreateServer(%q)", tt.in), err, guildhall.Invalid)
			continue
		}
		if err != nil {
			t.Errorf("CreateServer(%q): %v", tt.in, err)
			continue
		}
		if srv.Name != tt.want {
			t.Errorf("CreateServer(%q).Name = %q, want %q", tt.in, srv.Name, tt.want)
		}
		created = append(created, srv.ID)
	}
	// Rejected names left nothing behind.
	servers, err := e.svc.Servers(t.Context(), owner)
	if err != nil {
		t.Fatalf("Servers: %v", err)
	}
	if got := serverIDs(servers); !slices.Equal(got, created) {
		t.Errorf("Servers = %v, want only the accepted ones %v", got, created)
	}
}

func serverIDs(list []member.Server) []uint64 {
	var ids []uint64
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	return ids
}

func channelNames(list []member.Channel) []string {
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	return names
}

func TestServers(t *testing.T) {
	e := newEnv(t)
	alice, _ := e.mustRegister(t, "alice")
	bob, _ := e.mustRegister(t, "bob")

	if list, err := e.svc.Servers(t.Context(), alice); err != nil || len(list) != 0 {
		t.Errorf("Servers of a new user = %+v, %v; want none", list, err)
	}
	a1 := e.mustServer(t, alice, "a1")
	a2 := e.mustServer(t, alice, "a2")
	b1 := e.mustServer(t, bob, "b1")

	list, err := e.svc.Servers(t.Context(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if got := serverIDs(list); !slices.Equal(got, []uint64{a1.ID, a2.ID}) {
		t.Errorf("Servers(alice) = %v, want %v", got, []uint64{a1.ID, a2.ID})
	}
	e.mustJoin(t, bob, alice, b1.ID)
	list, err = e.svc.Servers(t.Context(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if got := serverIDs(list); !slices.Equal(got, []uint64{a1.ID, a2.ID, b1.ID}) {
		t.Errorf("Servers(alice) after joining = %v", got)
	}
	list, err = e.svc.Servers(t.Context(), bob)
	if err != nil {
		t.Fatal(err)
	}
	if got := serverIDs(list); !slices.Equal(got, []uint64{b1.ID}) {
		t.Errorf("Servers(bob) = %v, want %v", got, []uint64{b1.ID})
	}
}

// TestHiddenExistence: to a non-member, an existing server or channel looks
// exactly like one that does not exist.
func TestHiddenExistence(t *testing.T) {
	e := newEnv(t)
	owner, _ := e.mustRegister(t, "owner")
	outsider, _ := e.mustRegister(t, "outsider")
	srv := e.mustServer(t, owner, "secret")
	general := e.mustChannels(t, owner, srv.ID)[0]
	const unknown = 424242

	_, errHidden := e.svc.Server(t.Context(), outsider, srv.ID)
	_, errMissing := e.svc.Server(t.Context(), outsider, unknown)
	sameNotFound(t, "Server", errHidden, errMissing)

	_, errHidden = e.svc.Channels(t.Context(), outsider, srv.ID)
	_, errMissing = e.svc.Channels(t.Context(), outsider, unknown)
	sameNotFound(t, "Channels", errHidden, errMissing)

	_, _, errHidden = e.svc.Channel(t.Context(), outsider, general.ID)
	_, _, errMissing = e.svc.Channel(t.Context(), outsider, unknown)
	sameNotFound(t, "Channel", errHidden, errMissing)

	_, errHidden = e.svc.Members(t.Context(), outsider, srv.ID, member.MemberQuery{})
	_, errMissing = e.svc.Members(t.Context(), outsider, unknown, member.MemberQuery{})
	sameNotFound(t, "Members", errHidden, errMissing)

	_, errHidden = e.svc.CreateInvite(t.Context(), outsider, srv.ID, 0, 0)
	_, errMissing = e.svc.CreateInvite(t.Context(), outsider, unknown, 0, 0)
	sameNotFound(t, "CreateInvite", errHidden, errMissing)

	_, errHidden = e.res.CanRead(t.Context(), outsider.ID, general.ID)
	_, errMissing = e.res.CanRead(t.Context(), outsider.ID, unknown)
	sameNotFound(t, "CanRead", errHidden, errMissing)
	_, errHidden = e.res.CanSend(t.Context(), outsider.ID, general.ID)
	wantKind(t, "CanSend(outsider)", errHidden, guildhall.NotFound)
	if sid, err := e.res.CanSend(t.Context(), owner.ID, general.ID); err != nil || sid != srv.ID {
		t.Errorf("CanSend(owner) = %d, %v; want %d", sid, err, srv.ID)
	}
}

func sameNotFound(t *testing.T, what string, hidden, missing error) {
	t.Helper()
	wantKind(t, what+"(not a member)", hidden, guildhall.NotFound)
	wantKind(t, what+"(unknown)", missing, guildhall.NotFound)
	if guildhall.Message(hidden) != guildhall.Message(missing) {
		t.Errorf("%s: a non-member gets %q, an unknown ID %q: existence leaks", what, guildhall.Message(hidden), guildhall.Message(missing))
	}
}

func TestChannelManagement(t *testing.T) {
	e := newEnv(t)
	owner, _ := e.mustRegister(t, "owner")
	plain, _ := e.mustRegister(t, "plain")
	outsider, _ := e.mustRegister(t, "outsider")
	srv := e.mustServer(t, owner, "guild")
	e.mustJoin(t, owner, plain, srv.ID)
	general := e.mustChannels(t, owner, srv.ID)[0]
	ctx := t.Context()

	news, err := e.svc.CreateChannel(ctx, owner, srv.ID, "  news ")
	if err != nil {
		t.Fatalf("CreateChannel: %v", err)
	}
	if news.Name != "news" || news.ServerID != srv.ID || news.Position != 1 || news.Type != member.ChannelText {
		t.Errorf("CreateChannel = %+v", news)
	}
	before := e.mustChannels(t, owner, srv.ID)
	if got := channelNames(before); !slices.Equal(got, []string{"general", "news"}) {
		t.Fatalf("Channels = %v", got)
	}
	// A plain member sees the channels...
	if got := channelNames(e.mustChannels(t, plain, srv.ID)); !slices.Equal(got, []string{"general", "news"}) {
		t.Errorf("Channels(plain member) = %v", got)
	}

	// ...but may not manage them; an outsider does not even see them.
	for _, tt := range []struct {
		actor member.User
		kind  guildhall.Kind
	}{{plain, guildhall.Forbidden}, {outsider, guildhall.NotFound}} {
		who := tt.actor.Username
		_, err := e.svc.CreateChannel(ctx, tt.actor, srv.ID, "mine")
		wantKind(t, "CreateChannel("+who+")", err, tt.kind)
		_, err = e.svc.RenameChannel(ctx, tt.actor, news.ID, "renamed")
		wantKind(t, "RenameChannel("+who+")", err, tt.kind)
		_, err = e.svc.DeleteChannel(ctx, tt.actor, news.ID)
		wantKind(t, "DeleteChannel("+who+")", err, tt.kind)
	}
	// Bad names and unknown IDs.
	for _, name := range []string{"", "  ", "a\nb", strings.Repeat("n", member.MaxName+1)} {
		_, err := e.svc.CreateChannel(ctx, owner, srv.ID, name)
		wantKind(t, fmt.Sprintf("CreateChannel(%q)", name), err, guildhall.Invalid)
		_, err = e.svc.RenameChannel(ctx, owner, news.ID, name)
		wantKind(t, fmt.Sprintf("RenameChannel(%q)", name), err, guildhall.Invalid)
	}
	_, err = e.svc.CreateChannel(ctx, owner, 424242, "x")
	wantKind(t, "CreateChannel(unknown server)", err, guildhall.NotFound)
	_, err = e.svc.RenameChannel(ctx, owner, 424242, "x")
	wantKind(t, "RenameChannel(unknown channel)", err, guildhall.NotFound)
	_, err = e.svc.DeleteChannel(ctx, owner, 424242)
	wantKind(t, "DeleteChannel(unknown channel)", err, guildhall.NotFound)

	// Nothing changed on any failure.
	if after := e.mustChannels(t, owner, srv.ID); !slices.EqualFunc(before, after, sameChannel) {
		t.Fatalf("channels changed by failed calls:\n before %+v\n after  %+v", before, after)
	}

	renamed, err := e.svc.RenameChannel(ctx, owner, news.ID, " announcements ")
	if err != nil {
		t.Fatalf("RenameChannel: %v", err)
	}
	if renamed.Name != "announcements" || renamed.ID != news.ID || renamed.Position != news.Position {
		t.Errorf("RenameChannel = %+v", renamed)
	}
	if ch, _, err := e.svc.Channel(ctx, plain, news.ID); err != nil || ch.Name != "announcements" {
		t.Errorf("Channel after rename = %+v, %v", ch, err)
	}

	deleted, err := e.svc.DeleteChannel(ctx, owner, general.ID)
	if err != nil {
		t.Fatalf("DeleteChannel: %v", err)
	}
	if deleted.ID != general.ID || deleted.Name != "general" {
		t.Errorf("DeleteChannel = %+v, want the deleted channel", deleted)
	}
	if got := channelNames(e.mustChannels(t, owner, srv.ID)); !slices.Equal(got, []string{"announcements"}) {
		t.Errorf("Channels after delete = %v", got)
	}
	_, _, err = e.svc.Channel(ctx, owner, general.ID)
	wantKind(t, "Channel(deleted)", err, guildhall.NotFound)
	_, err = e.svc.DeleteChannel(ctx, owner, general.ID)
	wantKind(t, "DeleteChannel(deleted)", err, guildhall.NotFound)
}

func sameChannel(a, b member.Channel) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Position == b.Position && a.Type == b.Type && a.ParentID == b.ParentID
}

func TestMaxChannels(t *testing.T) {
	if testing.Short() {
		t.Skip("creates MaxChannels channels")
	}
	e := newEnv(t)
	owner, _ := e.mustRegister(t, "owner")
	srv := e.mustServer(t, owner, "big")
	for i := 1; i < member.MaxChannels; i++ { // "general" is the first
		if _, err := e.svc.CreateChannel(t.Context(), owner, srv.ID, fmt.Sprintf("c%d", i)); err != nil {
			t.Fatalf("CreateChannel #%d: %v", i+1, err)
		}
	}
	_, err := e.svc.CreateChannel(t.Context(), owner, srv.ID, "one too many")
	wantKind(t, "CreateChannel over MaxChannels", err, guildhall.Forbidden)
	if n := len(e.mustChannels(t, owner, srv.ID)); n != member.MaxChannels {
		t.Errorf("%d channels, want %d", n, member.MaxChannels)
	}
}

func TestCreateInviteLimits(t *testing.T) {
	e := newEnv(t)
	owner, _ := e.mustRegister(t, "owner")
	srv := e.mustServer(t, owner, "guild")
	tests := []struct {
		maxUses int
		maxAge  time.Duration
		ok      bool
	}{
		{0, 0, true},
		{1, time.Second, true},
		{member.MaxInviteUses, member.MaxInviteAge, true},
		{-1, 0, false},
		{member.MaxInviteUses + 1, 0, false},
		{0, -time.Second, false},
		{0, member.MaxInviteAge + time.Second, false},
	}
	for _, tt := range tests {
		inv, err := e.svc.CreateInvite(t.Context(), owner, srv.ID, tt.maxUses, tt.maxAge)
		what := fmt.Sprintf("CreateInvite(%d, %v)", tt.maxUses, tt.maxAge)
		if !tt.ok {
			wantKind(t, what, err, guildhall.Invalid)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		if inv.Code == "" || inv.ServerID != srv.ID || inv.CreatorID != owner.ID || inv.MaxUses != tt.maxUses || inv.Uses != 0 {
			t.Errorf("%s = %+v", what, inv)
		}
		if tt.maxAge == 0 && !inv.ExpiresAt.IsZero() {
			t.Errorf("%s expires at %v, want never", what, inv.ExpiresAt)
		}
		if tt.maxAge > 0 && !inv.ExpiresAt.Equal(e.clock.Now().Add(tt.maxAge)) {
			t.Errorf("%s expires at %v, want %v", what, inv.ExpiresAt, e.clock.Now().Add(tt.maxAge))
		}
	}
}

func TestInviteMaxUses(t *testing.T) {
	e := newEnv(t)
	owner, _ := e.mustRegister(t, "owner")
	srv := e.mustServer(t, owner, "guild")
	inv, err := e.svc.CreateInvite(t.Context(), owner, srv.ID, 2, 0)
	if err != nil {
		t.Fatalf("CreateInvite: %v", err)
	}
	uses := func() int {
		t.Helper()
		got, err := e.store.Invite(t.Context(), inv.Code)
		if err != nil {
			t.Fatalf("Invite: %v", err)
		}
		return got.Uses
	}

	// The owner, already a member, uses nothing.
	if s, m, err := e.svc.Join(t.Context(), owner, inv.Code); err != nil || s.ID != srv.ID || m.UserID != owner.ID {
		t.Fatalf("Join(owner) = %+v, %+v, %v", s, m, err)
	}
	if n := uses(); n != 0 {
		t.Fatalf("uses after the owner joined = %d, want 0", n)
	}

	u1, _ := e.mustRegister(t, "user1")
	s, m, err := e.svc.Join(t.Context(), u1, inv.Code)
	if err != nil {
		t.Fatalf("Join(user1): %v", err)
	}
	if s.ID != srv.ID || s.Name != "guild" || m.UserID != u1.ID || m.ServerID != srv.ID || m.Username != "user1" || !m.JoinedAt.Equal(e.clock.Now()) {
		t.Errorf("Join(user1) = %+v, %+v", s, m)
	}
	joinedAt := m.JoinedAt
	e.clock.Advance(time.Minute)
	// Joining again is no second use and keeps the first membership.
	if _, m, err := e.svc.Join(t.Context(), u1, inv.Code); err != nil || !m.JoinedAt.Equal(joinedAt) {
		t.Errorf("Join(user1 again) = %+v, %v; want the first membership", m, err)
	}
	if n := uses(); n != 1 {
		t.Fatalf("uses = %d, want 1", n)
	}

	u2, _ := e.mustRegister(t, "user2")
	if _, _, err := e.svc.Join(t.Context(), u2, inv.Code); err != nil {
		t.Fatalf("Join(user2): %v", err)
	}
	u3, _ := e.mustRegister(t, "user3")
	_, _, err = e.svc.Join(t.Context(), u3, inv.Code)
	wantKind(t, "Join(used up)", err, guildhall.Forbidden)
	_, err = e.svc.Channels(t.Context(), u3, srv.ID)
	wantKind(t, "Channels(rejected joiner)", err, guildhall.NotFound)
	if n := uses(); n != 2 {
		t.Errorf("uses = %d, want 2", n)
	}
	// Members of a used-up invite still get their membership back.
	if _, _, err := e.svc.Join(t.Context(), u2, inv.Code); err != nil {
		t.Errorf("Join(member, used-up invite): %v", err)
	}
	if n, err := e.store.MemberCount(t.Context(), srv.ID); err != nil || n != 3 {
		t.Errorf("MemberCount = %d, %v; want 3", n, err)
	}
}

func TestInviteExpiry(t *testing.T) {
	e := newEnv(t)
	owner, _ := e.mustRegister(t, "owner")
	srv := e.mustServer(t, owner, "guild")
	inv, err := e.svc.CreateInvite(t.Context(), owner, srv.ID, 0, time.Hour)
	if err != nil {
		t.Fatalf("CreateInvite: %v", err)
	}
	early, _ := e.mustRegister(t, "early")
	late, _ := e.mustRegister(t, "late")

	e.clock.Advance(time.Hour - time.Millisecond)
	if _, _, err := e.svc.Join(t.Context(), early, inv.Code); err != nil {
		t.Fatalf("Join before expiry: %v", err)
	}
	e.clock.Advance(time.Millisecond)
	_, _, err = e.svc.Join(t.Context(), late, inv.Code)
	wantKind(t, "Join(expired invite)", err, guildhall.Forbidden)
	_, err = e.svc.Server(t.Context(), late, srv.ID)
	wantKind(t, "Server(rejected joiner)", err, guildhall.NotFound)
	// A member is not thrown out by the invite expiring.
	if _, _, err := e.svc.Join(t.Context(), early, inv.Code); err != nil {
		t.Errorf("Join(member, expired invite): %v", err)
	}
}

func TestJoinUnknownInvite(t *testing.T) {
	e := newEnv(t)
	u, _ := e.mustRegister(t, "user")
	for _, code := range []string{"", "nope", strings.Repeat("x", 65), "../../etc"} {
		_, _, err := e.svc.Join(t.Context(), u, code)
		wantKind(t, fmt.Sprintf("Join(%q)", code), err, guildhall.NotFound)
	}
	if list, err := e.svc.Servers(t.Context(), u); err != nil || len(list) != 0 {
		t.Errorf("Servers = %+v, %v; want none", list, err)
	}
}

func TestLeave(t *testing.T) {
	e := newEnv(t)
	owner, _ := e.mustRegister(t, "owner")
	plain, _ := e.mustRegister(t, "plain")
	outsider, _ := e.mustRegister(t, "outsider")
	srv := e.mustServer(t, owner, "guild")
	e.mustJoin(t, owner, plain, srv.ID)

	wantKind(t, "Leave(owner)", e.svc.Leave(t.Context(), owner, srv.ID), guildhall.Forbidden)
	if _, err := e.svc.Server(t.Context(), owner, srv.ID); err != nil {
		t.Errorf("owner lost the server after a refused Leave: %v", err)
	}
	wantKind(t, "Leave(outsider)", e.svc.Leave(t.Context(), outsider, srv.ID), guildhall.NotFound)
	wantKind(t, "Leave(unknown server)", e.svc.Leave(t.Context(), plain, 424242), guildhall.NotFound)

	if err := e.svc.Leave(t.Context(), plain, srv.ID); err != nil {
		t.Fatalf("Leave(member): %v", err)
	}
	_, err := e.svc.Channels(t.Context(), plain, srv.ID)
	wantKind(t, "Channels after leaving", err, guildhall.NotFound)
	if list, err := e.svc.Servers(t.Context(), plain); err != nil || len(list) != 0 {
		t.Errorf("Servers after leaving = %+v, %v", list, err)
	}
	wantKind(t, "Leave(again)", e.svc.Leave(t.Context(), plain, srv.ID), guildhall.NotFound)
	members, err := e.svc.Members(t.Context(), owner, srv.ID, member.MemberQuery{})
	if err != nil || len(members) != 1 || members[0].UserID != owner.ID {
		t.Errorf("Members after leaving = %+v, %v; want only the owner", members, err)
	}
}

func TestMembers(t *testing.T) {
	e := newEnv(t)
	owner, _ := e.mustRegister(t, "owner")
	srv := e.mustServer(t, owner, "guild")
	names := []string{"bob", "Alice", "BOBCAT", "carol", "Bobby", "bo"}
	byID := []member.User{owner}
	for _, name := range names {
		u, _ := e.mustRegister(t, name)
		e.mustJoin(t, owner, u, srv.ID)
		byID = append(byID, u)
	}
	ctx := t.Context()

	// Without a prefix, pages are in user ID order.
	var got []string
	var after uint64
	for pages := 0; ; pages++ {
		page, err := e.svc.Members(ctx, owner, srv.ID, member.MemberQuery{After: after, Limit: 3})
		if err != nil {
			t.Fatalf("Members(after %d): %v", after, err)
		}
		if len(page) > 3 || pages > 5 {
			t.Fatalf("page of %d members, or too many pages", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			got = append(got, m.Username)
		}
		after = page[len(page)-1].UserID
	}
	var want []string
	for _, u := range byID {
		want = append(want, u.Username)
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged members = %v, want %v", got, want)
	}

	all, err := e.svc.Members(ctx, owner, srv.ID, member.MemberQuery{})
	if err != nil || len(all) != len(byID) {
		t.Errorf("Members(default limit) = %d members, %v; want %d", len(all), err, len(byID))
	}

	// With a prefix, case-insensitive, in (lower-cased name, ID) order.
	for _, q := range []string{"bob", "BOB", "BoB"} {
		list, err := e.svc.Members(ctx, owner, srv.ID, member.MemberQuery{Prefix: q})
		if err != nil {
			t.Fatalf("Members(q=%q): %v", q, err)
		}
		if got := memberNames(list); !slices.Equal(got, []string{"bob", "Bobby", "BOBCAT"}) {
			t.Errorf("Members(q=%q) = %v", q, got)
		}
	}
	// And paged.
	got = nil
	after = 0
	for range 10 {
		page, err := e.svc.Members(ctx, owner, srv.ID, member.MemberQuery{Prefix: "B", After: after, Limit: 1})
		if err != nil {
			t.Fatalf("Members(q=B, after %d): %v", after, err)
		}
		if len(page) == 0 {
			break
		}
		got = append(got, memberNames(page)...)
		after = page[len(page)-1].UserID
	}
	if want := []string{"bo", "bob", "Bobby", "BOBCAT"}; !slices.Equal(got, want) {
		t.Errorf("paged Members(q=B) = %v, want %v", got, want)
	}
	if list, err := e.svc.Members(ctx, owner, srv.ID, member.MemberQuery{Prefix: "zed"}); err != nil || len(list) != 0 {
		t.Errorf("Members(q=zed) = %v, %v; want none", memberNames(list), err)
	}

	// Limit bounds.
	for _, limit := range []int{-1, member.MaxMemberPage + 1} {
		_, err := e.svc.Members(ctx, owner, srv.ID, member.MemberQuery{Limit: limit})
		wantKind(t, fmt.Sprintf("Members(limit %d)", limit), err, guildhall.Invalid)
	}
	for _, limit := range []int{1, member.MaxMemberPage} {
		if _, err := e.svc.Members(ctx, owner, srv.ID, member.MemberQuery{Limit: limit}); err != nil {
			t.Errorf("Members(limit %d): %v", limit, err)
		}
	}
	_, err = e.svc.Members(ctx, owner, srv.ID, member.MemberQuery{Prefix: strings.Repeat("b", member.MaxUsername+1)})
	wantKind(t, "Members(overlong q)", err, guildhall.Invalid)
}

func memberNames(list []member.Member) []string {
	var names []string
	for _, m := range list {
		names = append(names, m.Username)
	}
	return names
}

func TestMaxServersPerUser(t *testing.T) {
	if testing.Short() {
		t.Skip("creates MaxServersPerUser servers")
	}
	e := newEnv(t)
	busy, _ := e.mustRegister(t, "busy")
	other, _ := e.mustRegister(t, "other")
	elsewhere := e.mustServer(t, other, "elsewhere")
	inv, err := e.svc.CreateInvite(t.Context(), other, elsewhere.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range member.MaxServersPerUser {
		e.mustServer(t, busy, fmt.Sprintf("s%d", i))
	}
	_, err = e.svc.CreateServer(t.Context(), busy, "one too many")
	wantKind(t, "CreateServer over the limit", err, guildhall.Forbidden)
	_, _, err = e.svc.Join(t.Context(), busy, inv.Code)
	wantKind(t, "Join over the limit", err, guildhall.Forbidden)
	if list, err := e.svc.Servers(t.Context(), busy); err != nil || len(list) != member.MaxServersPerUser {
		t.Errorf("Servers = %d, %v; want %d", len(list), err, member.MaxServersPerUser)
	}
	if got, err := e.store.Invite(t.Context(), inv.Code); err != nil || got.Uses != 0 {
		t.Errorf("invite uses = %d, %v; want 0", got.Uses, err)
	}
}

// entries is a Recorder that keeps what it is given.
type entries struct {
	mu   sync.Mutex
	list []audit.Entry
}

func (r *entries) Record(_ context.Context, e audit.Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, e)
}

func (r *entries) all() []audit.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}

func TestRenameServer(t *testing.T) {
	rec := &entries{}
	e := newEnvConfig(t, member.Config{TokenTTL: time.Hour, Password: fastPassword, Audit: rec})
	ctx := t.Context()
	owner, _ := e.mustRegister(t, "owner")
	manager, _ := e.mustRegister(t, "manager")
	plain, _ := e.mustRegister(t, "plain")
	outsider, _ := e.mustRegister(t, "outsider")
	srv := e.mustServer(t, owner, "guild")
	e.mustJoin(t, owner, manager, srv.ID)
	e.mustJoin(t, owner, plain, srv.ID)
	name, perms := "managers", role.ManageServer
	r, err := e.roles.CreateRole(ctx, owner.ID, srv.ID, role.RoleUpdate{Name: &name, Permissions: &perms})
	if err != nil {
		t.Fatalf("CreateRole: %v", err)
	}
	if err := e.roles.SetMemberRole(ctx, owner.ID, srv.ID, manager.ID, r.ID, true); err != nil {
		t.Fatalf("SetMemberRole: %v", err)
	}
	recorded := len(rec.all())

	// Refusals change nothing and record nothing.
	_, err = e.svc.RenameServer(ctx, plain, srv.ID, "mine")
	wantKind(t, "RenameServer(plain member)", err, guildhall.Forbidden)
	if err != nil && !strings.Contains(guildhall.Message(err), "MANAGE_SERVER") {
		t.Errorf("RenameServer(plain member) = %q, want it to name MANAGE_SERVER", guildhall.Message(err))
	}
	_, errHidden := e.svc.RenameServer(ctx, outsider, srv.ID, "mine")
	_, errMissing := e.svc.RenameServer(ctx, outsider, 424242, "mine")
	sameNotFound(t, "RenameServer", errHidden, errMissing)
	_, err = e.svc.RenameServer(ctx, owner, 424242, "mine")
	wantKind(t, "RenameServer(unknown server)", err, guildhall.NotFound)
	for _, bad := range []string{"", "   ", "a\nb", "bad\xffutf8", strings.Repeat("n", member.MaxName+1)} {
		_, err := e.svc.RenameServer(ctx, owner, srv.ID, bad)
		wantKind(t, fmt.Sprintf("RenameServer(%q)", bad), err, guildhall.Invalid)
	}
	if got, err := e.svc.Server(ctx, owner, srv.ID); err != nil || got != srv {
		t.Fatalf("Server after refused renames = %+v, %v; want %+v", got, err, srv)
	}
	if n := len(rec.all()); n != recorded {
		t.Fatalf("refused renames recorded %d entries", n-recorded)
	}

	// The owner and a member with MANAGE_SERVER may rename; names are
	// trimmed like at creation.
	got, err := e.svc.RenameServer(ctx, owner, srv.ID, "  Guild Hall ✨ ")
	if err != nil {
		t.Fatalf("RenameServer(owner): %v", err)
	}
	want := srv
	want.Name = "Guild Hall ✨"
	if got != want {
		t.Errorf("RenameServer(owner) = %+v, want %+v", got, want)
	}
	if got, err := e.svc.Server(ctx, plain, srv.ID); err != nil || got != want {
		t.Errorf("Server after rename = %+v, %v; want %+v", got, err, want)
	}
	if _, err := e.svc.RenameServer(ctx, manager, srv.ID, strings.Repeat("é", member.MaxName)); err != nil {
		t.Errorf("RenameServer(manager, %d characters): %v", member.MaxName, err)
	}
	// The same name again is no change.
	if _, err := e.svc.RenameServer(ctx, manager, srv.ID, strings.Repeat("é", member.MaxName)); err != nil {
		t.Errorf("RenameServer(same name): %v", err)
	}

	log := rec.all()[recorded:]
	wantLog := []audit.Entry{
		{ServerID: srv.ID, ActorID: owner.ID, Action: audit.ServerUpdate, TargetID: srv.ID, Changes: []audit.Change{{Key: "name", Old: "guild", New: "Guild Hall ✨"}}},
		{ServerID: srv.ID, ActorID: manager.ID, Action: audit.ServerUpdate, TargetID: srv.ID, Changes: []audit.Change{{Key: "name", Old: "Guild Hall ✨", New: strings.Repeat("é", member.MaxName)}}},
	}
	if !slices.EqualFunc(log, wantLog, func(a, b audit.Entry) bool {
		return a.ServerID == b.ServerID && a.ActorID == b.ActorID && a.Action == b.Action && a.TargetID == b.TargetID && slices.Equal(a.Changes, b.Changes)
	}) {
		t.Errorf("audit entries = %+v\nwant %+v", log, wantLog)
	}
}
