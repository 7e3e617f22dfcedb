package message_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus/bustest"
	"github.com/guildhall/guildhall/internal/redisdb/redistest"
	"github.com/guildhall/guildhall/member"
	memberpebble "github.com/guildhall/guildhall/member/pebble"
	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/inmem"
	messagejs "github.com/guildhall/guildhall/message/jetstream"
	messagepebble "github.com/guildhall/guildhall/message/pebble"
	msgredis "github.com/guildhall/guildhall/message/redis"
	"github.com/guildhall/guildhall/role"
	rolepebble "github.com/guildhall/guildhall/role/pebble"
	"github.com/guildhall/guildhall/snowflake"
)

// notes is a message.ReadNotifier that keeps what it hears.
type notes struct {
	mu   sync.Mutex
	list []message.ReadState
}

func (n *notes) Acked(_ context.Context, _ uint64, rs message.ReadState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.list = append(n.list, rs)
}

func (n *notes) len() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.list)
}

// rsEnv is the read-state service over the real stack of one process: a
// Pebble database holding members, roles, messages and read positions,
// the role resolver deciding access, and counters from newCounters.
type rsEnv struct {
	rs       *message.ReadStates
	svc      *message.Service
	counters message.UnreadCounters
	durable  message.ReadStateStore
	store    message.Store
	roles    *role.Service
	members  *member.Service
	notes    *notes
	cfg      message.ReadStatesConfig
	reg      *prometheus.Registry

	owner, plain, outsider member.User
	srv                    member.Server
	general, secret        uint64 // secret is hidden from @everyone
}

// backends are the counters the service tests run on.
var backends = []struct {
	name string
	new  func(t *testing.T) message.UnreadCounters
}{
	{"inmem", func(t *testing.T) message.UnreadCounters { return inmem.NewCounters(inmem.CountersConfig{}) }},
	{"redis", func(t *testing.T) message.UnreadCounters {
		rc, prefix := redistest.MustClient(t)
		return msgredis.NewCounters(rc, msgredis.CountersConfig{Prefix: prefix})
	}},
}

// eachBackend runs fn once per counters backend.
func eachBackend(t *testing.T, fn func(t *testing.T, e *rsEnv)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, newRSEnv(t, b.new(t))) })
	}
}

func newRSEnv(t testing.TB, counters message.UnreadCounters) *rsEnv {
	t.Helper()
	ctx := t.Context()
	db := mustOpen(t)
	ids, err := snowflake.New(2, nil)
	if err != nil {
		t.Fatal(err)
	}
	mstore := memberpebble.New(db)
	rstore := rolepebble.New(db)
	res := role.NewResolver(rstore, member.NewDirectory(mstore))
	roles := role.NewService(rstore, res, ids, nil)
	members := member.NewService(mstore, roles, ids, nil, member.Config{
		Password: member.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1},
	})
	store := messagepebble.New(db)
	mlog := mustLog(t, bustest.MustServer(t), messagejs.Config{})
	mustPersister(t, message.PersisterConfig{Source: mlog, Store: store})
	e := &rsEnv{
		svc:      message.NewService(message.Config{Store: store, Access: res, Log: mlog, Publisher: &recorder{}, IDs: ids, Counters: counters}),
		counters: counters,
		durable:  messagepebble.NewReadStates(db), store: store, roles: roles, members: members, notes: &notes{},
	}
	e.cfg = message.ReadStatesConfig{Access: res, Messages: message.NewReader(store, res, nil, mlog).Recent(), Roles: rstore, Counters: counters, Store: e.durable, Notifier: e.notes}
	e.reg = prometheus.NewRegistry()
	e.cfg.Registerer = e.reg
	if e.rs, err = message.NewReadStates(e.cfg); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		dst  *member.User
		name string
	}{{&e.owner, "owner"}, {&e.plain, "plain"}, {&e.outsider, "outsider"}} {
		if *u.dst, _, err = members.Register(ctx, u.name, "password-"+u.name); err != nil {
			t.Fatal(err)
		}
	}
	if e.srv, err = members.CreateServer(ctx, e.owner, "guild"); err != nil {
		t.Fatal(err)
	}
	chans, err := members.Channels(ctx, e.owner, e.srv.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.general = chans[0].ID
	secret, err := members.CreateChannel(ctx, e.owner, e.srv.ID, "secret")
	if err != nil {
		t.Fatal(err)
	}
	e.secret = secret.ID
	if err := roles.PutOverwrite(ctx, e.owner.ID, e.secret, role.Overwrite{ID: e.srv.ID, Type: role.OverwriteRole, Deny: role.ViewChannel}); err != nil {
		t.Fatal(err)
	}
	inv, err := members.CreateInvite(ctx, e.owner, e.srv.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := members.Join(ctx, e.plain, inv.Code); err != nil {
		t.Fatal(err)
	}
	return e
}

// send sends content to ch as author through the message service, which
// parses its mentions and records it in the counters once it is durable.
func (e *rsEnv) send(t *testing.T, author member.User, ch uint64, content string) message.Message {
	t.Helper()
	m, err := e.svc.Send(t.Context(), author.ID, ch, content, "")
	if err != nil {
		t.Fatalf("Send(%q): %v", content, err)
	}
	return m
}

func (e *rsEnv) get(t *testing.T, u member.User, ch uint64) message.ReadState {
	t.Helper()
	rs, err := e.rs.Get(t.Context(), u.ID, ch)
	if err != nil {
		t.Fatalf("Get(%s, %d): %v", u.Username, ch, err)
	}
	return rs
}

func (e *rsEnv) ack(t *testing.T, u member.User, m message.Message) message.ReadState {
	t.Helper()
	rs, err := e.rs.Ack(t.Context(), u.ID, m.ChannelID, m.ID)
	if err != nil {
		t.Fatalf("Ack(%s, seq %d): %v", u.Username, m.Seq, err)
	}
	return rs
}

func wantState(t *testing.T, what string, got, want message.ReadState) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func TestReadStatesAck(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *rsEnv) {
		st := message.ReadState{ChannelID: e.general, ServerID: e.srv.ID}
		wantState(t, "before any message", e.get(t, e.plain, e.general), st)
		var ms []message.Message
		for i := range 5 {
			ms = append(ms, e.send(t, e.owner, e.general, fmt.Sprintf("m%d", i+1)))
		}
		st.LastSeq, st.Unread = 5, 5
		wantState(t, "five unread", e.get(t, e.plain, e.general), st)

		st.LastReadID, st.LastReadSeq, st.Unread = ms[2].ID, 3, 2
		wantState(t, "ack seq 3", e.ack(t, e.plain, ms[2]), st)
		wantState(t, "ack seq 1 (backwards)", e.ack(t, e.plain, ms[0]), st)
		wantState(t, "ack seq 3 again", e.ack(t, e.plain, ms[2]), st)
		wantState(t, "get after acks", e.get(t, e.plain, e.general), st)
		if n := e.notes.len(); n != 1 {
			t.Errorf("notifier heard %d acks, want 1 (only moves count)", n)
		}
		st.LastReadID, st.LastReadSeq, st.Unread = ms[4].ID, 5, 0
		wantState(t, "ack seq 5", e.ack(t, e.plain, ms[4]), st)
		if n := e.notes.len(); n != 2 {
			t.Errorf("notifier heard %d acks, want 2", n)
		}
		if m, u := metric(t, e.reg, "guildhall_readstate_acks_total", "moved"), metric(t, e.reg, "guildhall_readstate_acks_total", "unchanged"); m != 2 || u != 2 {
			t.Errorf("acks metric: %v moved, %v unchanged; want 2, 2", m, u)
		}
		ps, err := e.durable.ReadPositions(t.Context(), e.plain.ID)
		if err != nil || len(ps) != 1 || ps[0] != (message.ReadPosition{ChannelID: e.general, Seq: 5, ID: ms[4].ID}) {
			t.Errorf("durable positions: %+v, %v", ps, err)
		}
		// The author has read what they sent.
		own := e.get(t, e.owner, e.general)
		if own.Unread != 0 || own.LastReadSeq != 5 {
			t.Errorf("author's own state: %+v", own)
		}
	})
}

func TestReadStatesPermissions(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *rsEnv) {
		ctx := t.Context()
		m := e.send(t, e.owner, e.general, "hello")
		hidden := e.send(t, e.owner, e.secret, "psst @everyone")
		check := func(what string, err error, want guildhall.Kind) {
			t.Helper()
			if guildhall.KindOf(err) != want {
				t.Errorf("%s: %v, want %s", what, err, want.Code())
			}
		}
		_, err := e.rs.Ack(ctx, e.outsider.ID, e.general, m.ID)
		check("outsider acks", err, guildhall.NotFound)
		_, err = e.rs.Get(ctx, e.outsider.ID, e.general)
		check("outsider gets", err, guildhall.NotFound)
		_, err = e.rs.Ack(ctx, e.plain.ID, e.secret, hidden.ID)
		check("member acks in a hidden channel", err, guildhall.NotFound)
		_, err = e.rs.Get(ctx, e.plain.ID, e.secret)
		check("member gets a hidden channel", err, guildhall.NotFound)
		_, err = e.rs.Ack(ctx, e.plain.ID, e.general, hidden.ID)
		check("ack a message of another channel", err, guildhall.NotFound)
		_, err = e.rs.Ack(ctx, e.plain.ID, e.general, m.ID+1_000_000)
		check("ack an unknown message", err, guildhall.NotFound)
		_, err = e.rs.Ack(ctx, e.plain.ID, e.general, 0)
		check("ack message 0", err, guildhall.Invalid)
		_, err = e.rs.Ack(ctx, e.plain.ID, 12345, m.ID)
		check("ack in an unknown channel", err, guildhall.NotFound)
		if err := e.svc.Delete(ctx, e.owner.ID, e.general, m.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.rs.Ack(ctx, e.plain.ID, e.general, m.ID)
		check("ack a deleted message", err, guildhall.NotFound)

		// Nothing changed for anyone.
		for _, u := range []member.User{e.plain, e.outsider} {
			if ps, err := e.durable.ReadPositions(ctx, u.ID); err != nil || len(ps) != 0 {
				t.Errorf("%s has durable positions %+v, %v", u.Username, ps, err)
			}
		}
		if e.notes.len() != 0 {
			t.Errorf("notifier heard %d acks", e.notes.len())
		}
		got, err := e.rs.List(ctx, e.plain.ID, []uint64{e.secret, e.general, 999})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ChannelID != e.general || got[0].LastReadSeq != 0 || got[0].Unread != 1 {
			t.Errorf("plain's list with a hidden and an unknown channel: %+v", got)
		}
		if got, err := e.rs.List(ctx, e.outsider.ID, []uint64{e.general, e.secret}); err != nil || len(got) != 0 {
			t.Errorf("outsider's list: %+v, %v", got, err)
		}
		// The owner sees the secret channel.
		if st := e.get(t, e.owner, e.secret); st.LastSeq != 1 || st.Unread != 0 {
			t.Errorf("owner in secret: %+v", st)
		}
	})
}

func TestReadStatesMentions(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *rsEnv) {
		ctx := t.Context()
		r, err := e.roles.CreateRole(ctx, e.owner.ID, e.srv.ID, role.RoleUpdate{Name: refOf("mods"), Mentionable: refOf(true)})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.roles.SetMemberRole(ctx, e.owner.ID, e.srv.ID, e.plain.ID, r.ID, true); err != nil {
			t.Fatal(err)
		}
		user := fmt.Sprintf("<@%d>", e.plain.ID)
		roleMention := fmt.Sprintf("<@&%d>", r.ID)
		ms := []message.Message{
			e.send(t, e.owner, e.general, "hi "+user),
			e.send(t, e.owner, e.general, "no mention"),
			e.send(t, e.owner, e.general, "hey "+roleMention),
			e.send(t, e.owner, e.general, "all: @everyone "+user+" "+roleMention), // counts once
			e.send(t, e.owner, e.general, fmt.Sprintf("<@&%d> is @everyone too", e.srv.ID)),
			e.send(t, e.owner, e.general, fmt.Sprintf("<@%d> only", e.outsider.ID)),
		}
		st := e.get(t, e.plain, e.general)
		if st.Mentions != 4 || st.Unread != 6 {
			t.Fatalf("plain: %+v; want 4 mentions, 6 unread", st)
		}
		if st := e.get(t, e.owner, e.general); st.Mentions != 0 {
			t.Errorf("owner (author) has %d mentions", st.Mentions)
		}
		st = e.ack(t, e.plain, ms[2])
		if st.Mentions != 2 || st.Unread != 3 {
			t.Errorf("after reading seq 3: %+v; want 2 mentions, 3 unread", st)
		}
		// Losing the role stops its mentions counting.
		if err := e.roles.SetMemberRole(ctx, e.owner.ID, e.srv.ID, e.plain.ID, r.ID, false); err != nil {
			t.Fatal(err)
		}
		if n := e.send(t, e.owner, e.general, roleMention); n.Seq != 7 {
			t.Fatalf("seq %d", n.Seq)
		}
		if st := e.get(t, e.plain, e.general); st.Mentions != 2 {
			t.Errorf("a mention of a role no longer held counted: %+v", st)
		}
		e.ack(t, e.plain, ms[5])
		if st := e.get(t, e.plain, e.general); st.Mentions != 0 || st.Unread != 1 {
			t.Errorf("after reading seq 6: %+v", st)
		}
	})
}

func refOf[T any](v T) *T { return &v }

// TestReadStatesRebuild: counters that lost everything (a Redis restart,
// a new process) are rebuilt: heads from the message store, positions
// from the durable store. Only mentions are lost.
func TestReadStatesRebuild(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *rsEnv) {
		var ms []message.Message
		for i := range 4 {
			ms = append(ms, e.send(t, e.owner, e.general, fmt.Sprintf("m%d", i)))
		}
		before := e.ack(t, e.plain, ms[1])
		var fresh message.UnreadCounters
		for _, b := range backends {
			if t.Name() == "TestReadStatesRebuild/"+b.name {
				fresh = b.new(t)
			}
		}
		cfg := e.cfg
		cfg.Counters = fresh
		reg := prometheus.NewRegistry()
		cfg.Registerer = reg
		rs, err := message.NewReadStates(cfg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rs.List(t.Context(), e.plain.ID, []uint64{e.general})
		if err != nil || len(got) != 1 {
			t.Fatalf("List on fresh counters: %+v, %v", got, err)
		}
		wantState(t, "rebuilt", got[0], before)
		if f, h := metric(t, reg, "guildhall_readstate_fills_total", ""), metric(t, reg, "guildhall_readstate_head_rebuilds_total", ""); f != 1 || h != 1 {
			t.Errorf("after one rebuild: %v fills, %v head rebuilds; want 1, 1", f, h)
		}
		// Acking backwards on fresh counters still does not move back.
		after, err := rs.Ack(t.Context(), e.plain.ID, e.general, ms[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		wantState(t, "ack backwards on fresh counters", after, before)
		// Heads continue from the store.
		if err := fresh.Accepted(t.Context(), message.Message{ID: ms[3].ID + 1, ChannelID: e.general, Seq: 5, AuthorID: e.owner.ID}); err != nil {
			t.Fatal(err)
		}
		if st, err := rs.Get(t.Context(), e.plain.ID, e.general); err != nil || st.LastSeq != 5 || st.Unread != 3 {
			t.Errorf("after a new message: %+v, %v", st, err)
		}
	})
}

func TestReadStatesList(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *rsEnv) {
		ctx := t.Context()
		other, err := e.members.CreateChannel(ctx, e.owner, e.srv.ID, "other")
		if err != nil {
			t.Fatal(err)
		}
		e.send(t, e.owner, other.ID, "x")
		e.send(t, e.owner, other.ID, "y")
		e.send(t, e.owner, e.general, "z")
		got, err := e.rs.List(ctx, e.plain.ID, []uint64{other.ID, e.general, other.ID, e.secret})
		if err != nil {
			t.Fatal(err)
		}
		want := []message.ReadState{
			{ChannelID: other.ID, ServerID: e.srv.ID, LastSeq: 2, Unread: 2},
			{ChannelID: e.general, ServerID: e.srv.ID, LastSeq: 1, Unread: 1},
		}
		if !slices.Equal(got, want) {
			t.Errorf("List = %+v, want %+v", got, want)
		}
		if got, err := e.rs.List(ctx, e.plain.ID, nil); err != nil || got == nil || len(got) != 0 {
			t.Errorf("List(nil) = %#v, %v; want empty, not nil", got, err)
		}
		tooMany := make([]uint64, message.MaxReadStates+1)
		for i := range tooMany {
			tooMany[i] = uint64(i + 1)
		}
		if _, err := e.rs.List(ctx, e.plain.ID, tooMany); guildhall.KindOf(err) != guildhall.Invalid {
			t.Errorf("List of %d channels: %v, want invalid_argument", len(tooMany), err)
		}
	})
}

// metric is the value of a counter in reg, with the given result label
// ("" for none); 0 if it is not there.
func metric(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			label := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					label = l.GetValue()
				}
			}
			if label == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestReadStatesRegisterTwice: registering the metrics where they already
// are is an error, not a panic.
func TestReadStatesRegisterTwice(t *testing.T) {
	e := newRSEnv(t, inmem.NewCounters(inmem.CountersConfig{}))
	if _, err := message.NewReadStates(e.cfg); err == nil {
		t.Fatal("registered the same metrics twice")
	}
}
