package message_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus/bustest"
	"github.com/guildhall/guildhall/member"
	memberpebble "github.com/guildhall/guildhall/member/pebble"
	"github.com/guildhall/guildhall/message"
	messagejs "github.com/guildhall/guildhall/message/jetstream"
	messagepebble "github.com/guildhall/guildhall/message/pebble"
	"github.com/guildhall/guildhall/role"
	rolepebble "github.com/guildhall/guildhall/role/pebble"
	"github.com/guildhall/guildhall/snowflake"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is a fake clock that moves only when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

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

// recorder is a message.Publisher that keeps every event it is given.
type recorder struct {
	mu     sync.Mutex
	events []message.Event
	err    error // returned by Publish
}

func (r *recorder) Publish(_ context.Context, ev message.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return r.err
}

func (r *recorder) Events() []message.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// env is a message.Service on a Pebble store, with the member service on
// the same database deciding access, and a server with one channel whose
// owner, a plain member and an outsider are registered.
type env struct {
	svc     *message.Service
	store   message.Store
	log     *messagejs.Log
	ns      *server.Server
	cache   *memCache
	access  message.Access
	ids     *snowflake.Generator
	members *member.Service
	pub     *recorder
	clock   *clock

	owner, plain, outsider member.User
	srv                    member.Server
	channel                uint64 // "general" of srv
}

// envConfig varies newEnv.
type envConfig struct {
	noPersister bool                              // start no persister
	persistTo   func(message.Store) message.Store // wraps the store the persister writes
	persister   message.PersisterConfig           // BatchSize and the like
	maxLag      uint64
	access      func(message.Access) message.Access // wraps access
}

func newEnv(t *testing.T, opts ...func(*envConfig)) *env {
	t.Helper()
	var cfg envConfig
	for _, o := range opts {
		o(&cfg)
	}
	db := mustOpen(t)
	ids, err := snowflake.New(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 123_456_789, time.UTC)}
	mstore := memberpebble.New(db)
	rstore := rolepebble.New(db)
	res := role.NewResolver(rstore, member.NewDirectory(mstore))
	members := member.NewService(mstore, role.NewService(rstore, res, ids, nil), ids, clk.Now, member.Config{
		Password: member.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1},
	})
	store := messagepebble.New(db)
	pub := &recorder{}
	ns := bustest.MustServer(t)
	mlog := mustLog(t, ns, messagejs.Config{})
	cache := newMemCache()
	var access message.Access = res
	if cfg.access != nil {
		access = cfg.access(res)
	}
	e := &env{
		svc: message.NewService(message.Config{
			Store: store, Access: access, Log: mlog, Publisher: pub, IDs: ids, Cache: cache, Now: clk.Now, MaxLag: cfg.maxLag,
		}),
		store:   store,
		log:     mlog,
		ns:      ns,
		cache:   cache,
		access:  access,
		ids:     ids,
		members: members,
		pub:     pub,
		clock:   clk,
	}
	if !cfg.noPersister {
		e.startPersister(t, cfg)
	}
	ctx := t.Context()
	e.owner = mustRegister(t, members, "owner")
	e.plain = mustRegister(t, members, "plain")
	e.outsider = mustRegister(t, members, "outsider")
	if e.srv, err = members.CreateServer(ctx, e.owner, "guild"); err != nil {
		t.Fatal(err)
	}
	channels, err := members.Channels(ctx, e.owner, e.srv.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.channel = channels[0].ID
	inv, err := members.CreateInvite(ctx, e.owner, e.srv.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := members.Join(ctx, e.plain, inv.Code); err != nil {
		t.Fatal(err)
	}
	return e
}

// startPersister runs a persister into e's store (wrapped by
// cfg.persistTo) until the test ends.
func (e *env) startPersister(t *testing.T, cfg envConfig) *message.Persister {
	t.Helper()
	pc := cfg.persister
	pc.Source, pc.Store = e.log, e.store
	if cfg.persistTo != nil {
		pc.Store = cfg.persistTo(e.store)
	}
	return mustPersister(t, pc)
}

func mustRegister(t *testing.T, members *member.Service, name string) member.User {
	t.Helper()
	u, _, err := members.Register(t.Context(), name, "password-"+name)
	if err != nil {
		t.Fatalf("Register(%q): %v", name, err)
	}
	return u
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

func (e *env) mustSend(t *testing.T, author member.User, content string) message.Message {
	t.Helper()
	m, err := e.svc.Send(t.Context(), author.ID, e.channel, content, "")
	if err != nil {
		t.Fatalf("Send(%q): %v", content, err)
	}
	return m
}

// history is the whole history of the channel as the owner sees it,
// newest first, once the persister has stored everything.
func (e *env) history(t *testing.T) []message.Message {
	t.Helper()
	settle(t, e.log)
	list, err := e.svc.History(t.Context(), e.owner.ID, e.channel, message.Query{Limit: message.MaxPage})
	if err != nil {
		t.Fatalf("History: %v", err)
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

func seqs(list []message.Message) []uint64 {
	out := make([]uint64, 0, len(list))
	for _, m := range list {
		out = append(out, m.Seq)
	}
	return out
}

func TestSend(t *testing.T) {
	e := newEnv(t)
	m, err := e.svc.Send(t.Context(), e.plain.ID, e.channel, "hello, world", "n1")
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := message.Message{
		ID: m.ID, ChannelID: e.channel, ServerID: e.srv.ID, AuthorID: e.plain.ID, Content: "hello, world",
		Seq: 1, Nonce: "n1", CreatedAt: e.clock.Now().Truncate(time.Millisecond),
	}
	if m.ID == 0 || !reflect.DeepEqual(m, want) {
		t.Errorf("Send = %+v, want %+v", m, want)
	}
	got := e.history(t)
	if len(got) != 1 || !reflect.DeepEqual(got[0], m) {
		t.Errorf("History = %+v, want [%+v]", got, m)
	}
	events := e.pub.Events()
	if len(events) != 1 || events[0].Kind != message.Created || !reflect.DeepEqual(events[0].Message, m) {
		t.Errorf("events = %+v, want one Created of the message", events)
	}
}

func TestSendValidation(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, content, nonce string
		kind                 guildhall.Kind
	}{
		{"empty", "", "", guildhall.Invalid},
		{"spaces", "   ", "", guildhall.Invalid},
		{"whitespace", " \t\n\r\u00a0\u3000", "", guildhall.Invalid},
		{"too long", strings.Repeat("a", message.MaxContent+1), "", guildhall.TooLarge},
		{"too many runes", strings.Repeat("é", message.MaxContent+1), "", guildhall.TooLarge},
		{"invalid UTF-8", "hi \xff there", "", guildhall.Invalid},
		{"truncated UTF-8", "\xe2\x82", "", guildhall.Invalid},
		{"nonce too long", "hi", strings.Repeat("n", message.MaxNonce+1), guildhall.Invalid},
	}
	for _, tt := range tests {
		_, err := e.svc.Send(t.Context(), e.owner.ID, e.channel, tt.content, tt.nonce)
		wantKind(t, "Send("+tt.name+")", err, tt.kind)
	}
	if got := e.history(t); len(got) != 0 {
		t.Fatalf("rejected sends stored %d messages", len(got))
	}
	if n := len(e.pub.Events()); n != 0 {
		t.Fatalf("rejected sends published %d events", n)
	}

	// The limits themselves are fine; MaxContent counts characters, not bytes.
	for i, content := range []string{
		strings.Repeat("a", message.MaxContent),
		strings.Repeat("é", message.MaxContent),
		strings.Repeat("🙂", message.MaxContent),
		"  padded  ",
	} {
		m, err := e.svc.Send(t.Context(), e.owner.ID, e.channel, content, fmt.Sprintf("%0*d", message.MaxNonce, i))
		if err != nil {
			t.Errorf("Send(%d bytes): %v", len(content), err)
			continue
		}
		if m.Content != content {
			t.Errorf("Send changed the content (%d bytes to %d)", len(content), len(m.Content))
		}
	}
}

func TestSendNotMember(t *testing.T) {
	e := newEnv(t)
	_, errHidden := e.svc.Send(t.Context(), e.outsider.ID, e.channel, "let me in", "")
	wantKind(t, "Send(outsider)", errHidden, guildhall.NotFound)
	_, errMissing := e.svc.Send(t.Context(), e.owner.ID, 424242, "anyone?", "")
	wantKind(t, "Send(unknown channel)", errMissing, guildhall.NotFound)
	if guildhall.Message(errHidden) != guildhall.Message(errMissing) {
		t.Errorf("outsider gets %q, unknown channel %q: existence leaks", guildhall.Message(errHidden), guildhall.Message(errMissing))
	}
	_, err := e.svc.Send(t.Context(), 0, e.channel, "anonymous", "")
	wantKind(t, "Send(user 0)", err, guildhall.NotFound)

	if last, err := e.store.LastSeq(t.Context(), e.channel); err != nil || last != 0 {
		t.Errorf("LastSeq = %d, %v; want 0", last, err)
	}
	if got := e.history(t); len(got) != 0 {
		t.Errorf("History = %+v, want none", got)
	}
	if n := len(e.pub.Events()); n != 0 {
		t.Errorf("%d events published", n)
	}
	_, err = e.svc.History(t.Context(), e.outsider.ID, e.channel, message.Query{})
	wantKind(t, "History(outsider)", err, guildhall.NotFound)

	// A member who left is an outsider again.
	if err := e.members.Leave(t.Context(), e.plain, e.srv.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Send(t.Context(), e.plain.ID, e.channel, "still here?", "")
	wantKind(t, "Send(after leaving)", err, guildhall.NotFound)
}

func TestSendNonceRetry(t *testing.T) {
	e := newEnv(t)
	first, err := e.svc.Send(t.Context(), e.plain.ID, e.channel, "once", "abc")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	retry, err := e.svc.Send(t.Context(), e.plain.ID, e.channel, "once, retried with other content", "abc")
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if !reflect.DeepEqual(retry, first) {
		t.Errorf("retry = %+v, want the first message %+v", retry, first)
	}
	if got := e.history(t); len(got) != 1 {
		t.Errorf("History holds %d messages, want 1", len(got))
	}
	if n := len(e.pub.Events()); n != 1 {
		t.Errorf("%d events published, want 1 (a retry is not news)", n)
	}

	// The nonce belongs to the author: another author's same nonce is a
	// new message, and so is a message without nonce.
	other, err := e.svc.Send(t.Context(), e.owner.ID, e.channel, "mine", "abc")
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == first.ID || other.Seq != 2 {
		t.Errorf("another author's send with the same nonce = %+v", other)
	}
	a := e.mustSend(t, e.plain, "no nonce")
	b := e.mustSend(t, e.plain, "no nonce")
	if a.ID == b.ID || a.Seq != 3 || b.Seq != 4 {
		t.Errorf("sends without nonce: %+v, %+v", a, b)
	}

	// A deleted message frees its nonce, once the deletion is persisted
	// (until then a retry still finds the message in the log's duplicate
	// window).
	if err := e.svc.Delete(t.Context(), e.plain.ID, e.channel, first.ID); err != nil {
		t.Fatal(err)
	}
	settle(t, e.log)
	again, err := e.svc.Send(t.Context(), e.plain.ID, e.channel, "once more", "abc")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID == first.ID || again.Seq != 5 || again.Content != "once more" {
		t.Errorf("send with the nonce of a deleted message = %+v", again)
	}
}

func TestConcurrentSends(t *testing.T) {
	e := newEnv(t)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		author := e.owner
		if i%2 == 1 {
			author = e.plain
		}
		wg.Go(func() {
			_, err := e.svc.Send(context.Background(), author.ID, e.channel, fmt.Sprintf("message %d", i), fmt.Sprintf("nonce-%d", i))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}

	history := e.history(t)
	slices.Reverse(history) // oldest first
	if got := seqs(history); !slices.Equal(got, seqRange(1, n)) {
		t.Fatalf("stored seqs = %v, want 1..%d", got, n)
	}
	for i := 1; i < len(history); i++ {
		if history[i].ID <= history[i-1].ID {
			t.Errorf("seq %d has ID %d, not above seq %d's %d", history[i].Seq, history[i].ID, history[i-1].Seq, history[i-1].ID)
		}
	}
	var published []uint64
	for _, ev := range e.pub.Events() {
		if ev.Kind != message.Created {
			t.Errorf("event kind %d, want Created", ev.Kind)
		}
		published = append(published, ev.Message.Seq)
	}
	if !slices.Equal(published, seqRange(1, n)) {
		t.Errorf("published seqs = %v, want 1..%d in order", published, n)
	}
	if last, err := e.store.LastSeq(t.Context(), e.channel); err != nil || last != n {
		t.Errorf("LastSeq = %d, %v; want %d", last, err, n)
	}
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// TestConcurrentNonceRetries: many retries of one send at once make one
// message.
func TestConcurrentNonceRetries(t *testing.T) {
	e := newEnv(t)
	const n = 20
	got := make([]message.Message, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m, err := e.svc.Send(context.Background(), e.plain.ID, e.channel, "same", "retry-me")
			if err != nil {
				t.Errorf("Send: %v", err)
			}
			got[i] = m
		})
	}
	wg.Wait()
	for _, m := range got[1:] {
		if !reflect.DeepEqual(m, got[0]) {
			t.Fatalf("retries returned different messages: %+v and %+v", got[0], m)
		}
	}
	if h := e.history(t); len(h) != 1 {
		t.Errorf("%d messages stored, want 1", len(h))
	}
	if n := len(e.pub.Events()); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
}

func TestEdit(t *testing.T) {
	e := newEnv(t)
	m := e.mustSend(t, e.plain, "first draft")
	e.clock.Advance(90 * time.Second)

	edited, err := e.svc.Edit(t.Context(), e.plain.ID, e.channel, m.ID, "final")
	if err != nil {
		t.Fatalf("Edit: %v", err)
	}
	want := m
	want.Content = "final"
	want.EditedAt = e.clock.Now().Truncate(time.Millisecond)
	if !reflect.DeepEqual(edited, want) {
		t.Errorf("Edit = %+v, want %+v", edited, want)
	}
	if h := e.history(t); len(h) != 1 || !reflect.DeepEqual(h[0], want) {
		t.Errorf("History after edit = %+v, want [%+v]", h, want)
	}
	events := e.pub.Events()
	if len(events) != 2 || events[1].Kind != message.Updated || !reflect.DeepEqual(events[1].Message, want) {
		t.Errorf("events = %+v, want Created then Updated with the new content", events)
	}

	// Only the author may edit; an outsider does not see the message.
	_, err = e.svc.Edit(t.Context(), e.owner.ID, e.channel, m.ID, "owner's words")
	wantKind(t, "Edit(not the author)", err, guildhall.Forbidden)
	_, err = e.svc.Edit(t.Context(), e.outsider.ID, e.channel, m.ID, "outsider's words")
	wantKind(t, "Edit(outsider)", err, guildhall.NotFound)
	_, err = e.svc.Edit(t.Context(), e.plain.ID, e.channel, m.ID, " ")
	wantKind(t, "Edit(blank)", err, guildhall.Invalid)
	_, err = e.svc.Edit(t.Context(), e.plain.ID, e.channel, m.ID, strings.Repeat("x", message.MaxContent+1))
	wantKind(t, "Edit(too long)", err, guildhall.TooLarge)
	_, err = e.svc.Edit(t.Context(), e.plain.ID, e.channel, 424242, "ghost")
	wantKind(t, "Edit(unknown message)", err, guildhall.NotFound)
	// A message is addressed within its channel.
	other, err := e.members.CreateChannel(t.Context(), e.owner, e.srv.ID, "other")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Edit(t.Context(), e.plain.ID, other.ID, m.ID, "wrong channel")
	wantKind(t, "Edit(message of another channel)", err, guildhall.NotFound)

	if h := e.history(t); len(h) != 1 || !reflect.DeepEqual(h[0], want) {
		t.Errorf("failed edits changed the message: %+v", h)
	}
	if n := len(e.pub.Events()); n != 2 {
		t.Errorf("failed edits published events: %d in all", n)
	}
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	keep := e.mustSend(t, e.owner, "keep")
	m := e.mustSend(t, e.plain, "regret")

	wantKind(t, "Delete(not the author, no MANAGE_MESSAGES)", e.svc.Delete(t.Context(), e.plain.ID, e.channel, keep.ID), guildhall.Forbidden)
	wantKind(t, "Delete(outsider)", e.svc.Delete(t.Context(), e.outsider.ID, e.channel, m.ID), guildhall.NotFound)
	wantKind(t, "Delete(unknown)", e.svc.Delete(t.Context(), e.plain.ID, e.channel, 424242), guildhall.NotFound)
	if h := e.history(t); len(h) != 2 {
		t.Fatalf("failed deletes removed messages: %d left", len(h))
	}
	if n := len(e.pub.Events()); n != 2 {
		t.Fatalf("failed deletes published events: %d in all", n)
	}

	if err := e.svc.Delete(t.Context(), e.plain.ID, e.channel, m.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if h := e.history(t); len(h) != 1 || h[0].ID != keep.ID {
		t.Errorf("History after delete = %+v, want only %d", h, keep.ID)
	}
	events := e.pub.Events()
	wantEv := message.Event{Kind: message.Deleted, Message: message.Message{ID: m.ID, ChannelID: e.channel, ServerID: e.srv.ID, Seq: m.Seq}}
	if len(events) != 3 || !reflect.DeepEqual(events[2], wantEv) {
		t.Errorf("last event = %+v, want %+v", events[len(events)-1], wantEv)
	}
	wantKind(t, "Delete(again)", e.svc.Delete(t.Context(), e.plain.ID, e.channel, m.ID), guildhall.NotFound)
	_, err := e.svc.Edit(t.Context(), e.plain.ID, e.channel, m.ID, "undo")
	wantKind(t, "Edit(deleted)", err, guildhall.NotFound)

	// The seq of a deleted message stays taken.
	next := e.mustSend(t, e.plain, "next")
	if next.Seq != 3 {
		t.Errorf("seq after a delete = %d, want 3", next.Seq)
	}
	// A member with MANAGE_MESSAGES (here the owner) deletes others' messages.
	if err := e.svc.Delete(t.Context(), e.owner.ID, e.channel, next.ID); err != nil {
		t.Fatalf("moderator Delete: %v", err)
	}
	if h := e.history(t); len(h) != 1 || h[0].ID != keep.ID {
		t.Errorf("History after moderator delete = %+v", h)
	}
}

// TestPublishFailure: a fan-out failure costs live delivery only; the
// change is stored and the caller succeeds.
func TestPublishFailure(t *testing.T) {
	e := newEnv(t)
	e.pub.err = errors.New("bus down")
	m, err := e.svc.Send(t.Context(), e.plain.ID, e.channel, "into the void", "")
	if err != nil {
		t.Fatalf("Send with a failing publisher: %v", err)
	}
	if _, err := e.svc.Edit(t.Context(), e.plain.ID, e.channel, m.ID, "edited"); err != nil {
		t.Fatalf("Edit with a failing publisher: %v", err)
	}
	if h := e.history(t); len(h) != 1 || h[0].Content != "edited" {
		t.Errorf("History = %+v", h)
	}
}

func TestHistoryBounds(t *testing.T) {
	e := newEnv(t)
	var sent []message.Message
	for i := range message.DefaultPage + 5 {
		sent = append(sent, e.mustSend(t, e.owner, fmt.Sprintf("m%d", i+1)))
	}
	ctx := t.Context()
	h, err := e.svc.History(ctx, e.owner.ID, e.channel, message.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != message.DefaultPage || h[0].Seq != uint64(len(sent)) {
		t.Errorf("History(limit 0) = %d messages from seq %d, want the newest %d", len(h), h[0].Seq, message.DefaultPage)
	}
	if h, err := e.svc.History(ctx, e.owner.ID, e.channel, message.Query{Limit: message.MaxPage}); err != nil || len(h) != len(sent) {
		t.Errorf("History(limit %d) = %d, %v", message.MaxPage, len(h), err)
	}
	for _, q := range []message.Query{
		{Limit: message.MaxPage + 1},
		{Limit: -1},
		{Before: sent[3].ID, After: sent[1].ID},
		{Before: sent[3].ID, Around: sent[1].ID},
		{After: sent[3].ID, Around: sent[1].ID},
		{Before: 1, After: 1, Around: 1},
	} {
		_, err := e.svc.History(ctx, e.owner.ID, e.channel, q)
		wantKind(t, fmt.Sprintf("History(%+v)", q), err, guildhall.Invalid)
	}
	// A plain member reads too.
	if h, err := e.svc.History(ctx, e.plain.ID, e.channel, message.Query{Limit: 1}); err != nil || len(h) != 1 {
		t.Errorf("History(plain member) = %d, %v", len(h), err)
	}
	_, err = e.svc.History(ctx, e.owner.ID, 424242, message.Query{})
	wantKind(t, "History(unknown channel)", err, guildhall.NotFound)
}

func TestHistoryPaging(t *testing.T) {
	e := newEnv(t)
	var sent []message.Message // sent[i] has seq i+1
	for i := range 10 {
		sent = append(sent, e.mustSend(t, e.plain, fmt.Sprintf("m%d", i+1)))
	}
	id := func(seq int) uint64 { return sent[seq-1].ID }
	tests := []struct {
		q    message.Query
		want []uint64 // seqs, newest first
	}{
		{message.Query{Limit: 3}, []uint64{10, 9, 8}},
		{message.Query{Limit: 100}, []uint64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{message.Query{Before: id(5), Limit: 3}, []uint64{4, 3, 2}},
		{message.Query{Before: id(2), Limit: 3}, []uint64{1}},
		{message.Query{Before: id(1), Limit: 3}, []uint64{}},
		{message.Query{After: id(5), Limit: 3}, []uint64{8, 7, 6}},
		{message.Query{After: id(8), Limit: 3}, []uint64{10, 9}},
		{message.Query{After: id(10), Limit: 3}, []uint64{}},
		{message.Query{Around: id(5), Limit: 4}, []uint64{6, 5, 4, 3}},
		{message.Query{Around: id(5), Limit: 5}, []uint64{6, 5, 4, 3, 2}},
		{message.Query{Around: id(1), Limit: 4}, []uint64{2, 1}},
		// Around the newest: up to 3 at or after it (only itself) and 3
		// before it; the short side is not filled from the other.
		{message.Query{Around: id(10), Limit: 6}, []uint64{10, 9, 8, 7}},
	}
	for _, tt := range tests {
		got, err := e.svc.History(t.Context(), e.owner.ID, e.channel, tt.q)
		if err != nil {
			t.Errorf("History(%+v): %v", tt.q, err)
			continue
		}
		if !slices.Equal(seqs(got), tt.want) {
			t.Errorf("History(%+v) = seqs %v, want %v", tt.q, seqs(got), tt.want)
		}
	}

	// Paging backwards with before visits every message once.
	var all []uint64
	var before uint64
	for range 10 {
		page, err := e.svc.History(t.Context(), e.owner.ID, e.channel, message.Query{Before: before, Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, seqs(page)...)
		before = page[len(page)-1].ID
	}
	if want := []uint64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}; !slices.Equal(all, want) {
		t.Errorf("paging with before = %v, want %v", all, want)
	}
	// And forwards with after.
	all = nil
	var after uint64 = 1 // every real ID is above it
	for range 10 {
		page, err := e.svc.History(t.Context(), e.owner.ID, e.channel, message.Query{After: after, Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, seqs(page)...)
		after = page[0].ID // newest of the page
	}
	if want := []uint64{4, 3, 2, 1, 8, 7, 6, 5, 10, 9}; !slices.Equal(all, want) {
		t.Errorf("paging with after = %v, want %v", all, want)
	}
}

func TestTyping(t *testing.T) {
	e := newEnv(t)
	if err := e.svc.Typing(t.Context(), e.plain.ID, e.channel); err != nil {
		t.Fatal(err)
	}
	wantKind(t, "Typing(outsider)", e.svc.Typing(t.Context(), e.outsider.ID, e.channel), guildhall.NotFound)
	events := e.pub.Events()
	if len(events) != 1 || events[0].Kind != message.Typing || events[0].Message.AuthorID != e.plain.ID ||
		events[0].Message.ChannelID != e.channel || events[0].Message.ServerID != e.srv.ID {
		t.Fatalf("events %+v", events)
	}
	if h := e.history(t); len(h) != 0 {
		t.Fatalf("typing stored messages: %+v", h)
	}
}

// racingLog is the real log with another writer (another message
// service process) that appends a create to the channel just before each
// of the service's first appends, taking the seq the service picked.
type racingLog struct {
	message.Log
	ids   *snowflake.Generator
	races int
}

func (r *racingLog) Append(ctx context.Context, c message.Change, expect uint64, dedupe string) (uint64, message.Change, bool, error) {
	if r.races > 0 && c.Kind == message.ChangeCreate {
		r.races--
		h, ok, err := r.Log.Head(ctx, c.Message.ChannelID)
		if err != nil {
			return 0, message.Change{}, false, err
		}
		other := c.Message
		other.ID, other.Nonce, other.Content, other.Seq = r.ids.Next(), "", "the other writer's", h.Seq+1
		if !ok {
			other.Seq = 1
		}
		if _, _, _, err := r.Log.Append(ctx, message.Change{Kind: message.ChangeCreate, Message: other}, h.Pos, ""); err != nil {
			return 0, message.Change{}, false, err
		}
	}
	return r.Log.Append(ctx, c, expect, dedupe)
}

// TestSendRetriesWhenAnotherWriterTookTheSeq: with several message
// service processes, another create can reach the channel between this
// service's look at the head and its append; the log refuses, the
// service looks again and succeeds.
func TestSendRetriesWhenAnotherWriterTookTheSeq(t *testing.T) {
	e := newEnv(t)
	e.mustSend(t, e.plain, "first")
	racing := &racingLog{Log: e.log, ids: e.ids, races: 3}
	svc := message.NewService(message.Config{Store: e.store, Access: e.access, Log: racing, Publisher: e.pub, IDs: e.ids})
	m, err := svc.Send(t.Context(), e.plain.ID, e.channel, "mine", "n-race")
	if err != nil {
		t.Fatal(err)
	}
	if m.Seq != 5 {
		t.Fatalf("seq %d, want 5 (after 1 and the other writer's 2, 3, 4)", m.Seq)
	}
	h := e.history(t)
	if len(h) != 5 || h[0].ID != m.ID || !slices.Equal(seqs(h), []uint64{5, 4, 3, 2, 1}) {
		t.Fatalf("history %+v", h)
	}
	// Past the attempts, the caller is told to retry, and nothing is stored.
	racing.races = 100
	if _, err := svc.Send(t.Context(), e.plain.ID, e.channel, "busy", ""); guildhall.KindOf(err) != guildhall.Unavailable {
		t.Fatalf("send in a too busy channel: %v", err)
	}
	h = e.history(t)
	for _, m := range h {
		if m.Content == "busy" {
			t.Fatalf("a refused send was stored: %+v", m)
		}
	}
	if !slices.Equal(seqs(h[len(h)-5:]), []uint64{5, 4, 3, 2, 1}) {
		t.Fatalf("history %v", seqs(h))
	}
}
