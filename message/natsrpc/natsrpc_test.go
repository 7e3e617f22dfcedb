package natsrpc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/bus/bustest"
	"github.com/guildhall/guildhall/member"
	memberpebble "github.com/guildhall/guildhall/member/pebble"
	"github.com/guildhall/guildhall/message"
	messagejs "github.com/guildhall/guildhall/message/jetstream"
	"github.com/guildhall/guildhall/message/natsrpc"
	messagepebble "github.com/guildhall/guildhall/message/pebble"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
	"github.com/guildhall/guildhall/role"
	rolepebble "github.com/guildhall/guildhall/role/pebble"
	"github.com/guildhall/guildhall/snowflake"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is a message.Service on Pebble, with the member service deciding
// access, next to a real embedded NATS server. The service is not on the
// bus until serve is called.
type env struct {
	ns      *server.Server
	svc     *message.Service
	members *member.Service
	store   message.Store

	srvConn *nats.Conn // the message service's connection
	cliConn *nats.Conn // the edge's connection
	client  *natsrpc.Client

	owner, plain, outsider member.User
	serverID, channel      uint64
}

func newEnv(t *testing.T, pub publisher) *env {
	t.Helper()
	ns := bustest.MustServer(t)
	db := mustOpen(t)
	ids, err := snowflake.New(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	mstore := memberpebble.New(db)
	rstore := rolepebble.New(db)
	res := role.NewResolver(rstore, member.NewDirectory(mstore))
	members := member.NewService(mstore, role.NewService(rstore, res, ids, nil), ids, nil, member.Config{
		Password: member.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1},
	})
	store := messagepebble.New(db)
	mlog, err := messagejs.New(t.Context(), bustest.MustConnect(t, ns), messagejs.Config{LagRefresh: -1})
	if err != nil {
		t.Fatal(err)
	}
	persister, err := message.StartPersister(message.PersisterConfig{Source: mlog, Store: store, BatchWait: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = persister.Shutdown(context.Background()) })
	e := &env{
		ns: ns,
		svc: message.NewService(message.Config{
			Store: store, Access: res, Log: mlog, Publisher: pub(bustest.MustConnect(t, ns)), IDs: ids,
		}),
		members: members,
		store:   settledStore{Store: store, t: t, log: mlog},
		srvConn: bustest.MustConnect(t, ns),
		cliConn: bustest.MustConnect(t, ns),
	}
	e.client = natsrpc.NewClient(e.cliConn)
	ctx := t.Context()
	register := func(name string) member.User {
		u, _, err := members.Register(ctx, name, "password-"+name)
		if err != nil {
			t.Fatalf("Register(%q): %v", name, err)
		}
		return u
	}
	e.owner, e.plain, e.outsider = register("owner"), register("plain"), register("outsider")
	srv, err := members.CreateServer(ctx, e.owner, "guild")
	if err != nil {
		t.Fatal(err)
	}
	e.serverID = srv.ID
	channels, err := members.Channels(ctx, e.owner, srv.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.channel = channels[0].ID
	inv, err := members.CreateInvite(ctx, e.owner, srv.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := members.Join(ctx, e.plain, inv.Code); err != nil {
		t.Fatal(err)
	}
	return e
}

// settledStore is the service's store as the tests read it: each read
// first waits until the persister has stored everything the service
// accepted (sends are acked once in the message log, before the store
// has them).
type settledStore struct {
	message.Store
	t   *testing.T
	log message.Log
}

func (s settledStore) settle() {
	s.t.Helper()
	checkFor(s.t, 10*time.Second, 5*time.Millisecond, func() error {
		lag, err := s.log.Lag(s.t.Context())
		if err == nil && lag != 0 {
			err = errors.New("the persister is behind")
		}
		return err
	})
}

func (s settledStore) Get(ctx context.Context, channelID, id uint64) (message.Message, error) {
	s.settle()
	return s.Store.Get(ctx, channelID, id)
}

func (s settledStore) LastSeq(ctx context.Context, channelID uint64) (uint64, error) {
	s.settle()
	return s.Store.LastSeq(ctx, channelID)
}

func (s settledStore) List(ctx context.Context, channelID uint64, q message.Query) ([]message.Message, error) {
	s.settle()
	return s.Store.List(ctx, channelID, q)
}

// publisher makes the service's message.Publisher on a connection to the
// env's bus.
type publisher func(nc *nats.Conn) message.Publisher

// just is a publisher that needs no bus.
func just(p message.Publisher) publisher { return func(*nats.Conn) message.Publisher { return p } }

// serve puts the service on the bus until the test ends.
func (e *env) serve(t *testing.T, cfg natsrpc.ServerConfig) *natsrpc.Server {
	t.Helper()
	s, err := natsrpc.Serve(e.srvConn, e.svc, nil, cfg)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
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

// discard is a message.Publisher that drops every event.
type discard struct{}

func (discard) Publish(context.Context, message.Event) error { return nil }

// gate is a message.Publisher whose first Publish waits until release is
// closed or its context ends; entered is closed when it starts waiting.
type gate struct {
	entered, release chan struct{}
	once             sync.Once
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) Publish(ctx context.Context, _ message.Event) error {
	first := false
	g.once.Do(func() { first = true; close(g.entered) })
	if !first {
		return nil
	}
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkFor calls f every interval until it returns nil, failing the test
// with f's last error after total.
func checkFor(t *testing.T, total, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", total, err)
		}
		time.Sleep(interval)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func sameMessage(a, b message.Message) bool {
	return a.ID == b.ID && a.ChannelID == b.ChannelID && a.ServerID == b.ServerID && a.AuthorID == b.AuthorID &&
		a.Content == b.Content && a.Seq == b.Seq && a.Nonce == b.Nonce &&
		a.CreatedAt.Equal(b.CreatedAt) && a.EditedAt.Equal(b.EditedAt)
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

func TestRoundTrip(t *testing.T) {
	e := newEnv(t, just(discard{}))
	e.serve(t, natsrpc.ServerConfig{})
	ctx := ctxTimeout(t, 10*time.Second)

	sent, err := e.client.Send(ctx, e.plain.ID, e.channel, "hello over the bus", "nonce-1")
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if sent.ID == 0 || sent.Seq != 1 || sent.ChannelID != e.channel || sent.ServerID != e.serverID ||
		sent.AuthorID != e.plain.ID || sent.Content != "hello over the bus" || sent.Nonce != "nonce-1" ||
		sent.CreatedAt.IsZero() || !sent.EditedAt.IsZero() {
		t.Errorf("Send = %+v", sent)
	}
	stored, err := e.store.Get(ctx, e.channel, sent.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !sameMessage(stored, sent) {
		t.Errorf("stored %+v, client got %+v", stored, sent)
	}
	retry, err := e.client.Send(ctx, e.plain.ID, e.channel, "hello over the bus", "nonce-1")
	if err != nil || !sameMessage(retry, sent) {
		t.Errorf("retried Send = %+v, %v; want the first message", retry, err)
	}

	edited, err := e.client.Edit(ctx, e.plain.ID, e.channel, sent.ID, "edited over the bus")
	if err != nil {
		t.Fatalf("Edit: %v", err)
	}
	if edited.ID != sent.ID || edited.Seq != 1 || edited.Content != "edited over the bus" || edited.EditedAt.IsZero() || !edited.CreatedAt.Equal(sent.CreatedAt) {
		t.Errorf("Edit = %+v", edited)
	}
	if stored, err := e.store.Get(ctx, e.channel, sent.ID); err != nil || !sameMessage(stored, edited) {
		t.Errorf("stored after edit %+v, %v; client got %+v", stored, err, edited)
	}

	if err := e.client.Delete(ctx, e.plain.ID, e.channel, sent.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = e.store.Get(ctx, e.channel, sent.ID)
	wantKind(t, "Get(deleted)", err, guildhall.NotFound)
}

// TestErrorsCrossTheBus: the client gets the kind and the client-visible
// message the service gave.
func TestErrorsCrossTheBus(t *testing.T) {
	e := newEnv(t, just(discard{}))
	e.serve(t, natsrpc.ServerConfig{})
	ctx := ctxTimeout(t, 20*time.Second)
	theirs, err := e.svc.Send(ctx, e.plain.ID, e.channel, "plain's message", "")
	if err != nil {
		t.Fatal(err)
	}
	mine, err := e.svc.Send(ctx, e.owner.ID, e.channel, "owner's message", "")
	if err != nil {
		t.Fatal(err)
	}

	type call struct {
		direct, remote func() error
	}
	send := func(actor uint64, content, nonce string) call {
		return call{
			func() error { _, err := e.svc.Send(ctx, actor, e.channel, content, nonce); return err },
			func() error { _, err := e.client.Send(ctx, actor, e.channel, content, nonce); return err },
		}
	}
	edit := func(actor, id uint64, content string) call {
		return call{
			func() error { _, err := e.svc.Edit(ctx, actor, e.channel, id, content); return err },
			func() error { _, err := e.client.Edit(ctx, actor, e.channel, id, content); return err },
		}
	}
	del := func(actor, id uint64) call {
		return call{
			func() error { return e.svc.Delete(ctx, actor, e.channel, id) },
			func() error { return e.client.Delete(ctx, actor, e.channel, id) },
		}
	}
	tests := []struct {
		name string
		call call
		kind guildhall.Kind
	}{
		{"empty content", send(e.owner.ID, "", ""), guildhall.Invalid},
		{"blank content", send(e.owner.ID, " \n ", ""), guildhall.Invalid},
		{"invalid UTF-8", send(e.owner.ID, "\xff", ""), guildhall.Invalid},
		{"content too long", send(e.owner.ID, strings.Repeat("x", message.MaxContent+1), ""), guildhall.TooLarge},
		{"nonce too long", send(e.owner.ID, "hi", strings.Repeat("n", message.MaxNonce+1)), guildhall.Invalid},
		{"outsider sends", send(e.outsider.ID, "hi", ""), guildhall.NotFound},
		{"edit someone else's", edit(e.owner.ID, theirs.ID, "mine now"), guildhall.Forbidden},
		{"edit unknown", edit(e.plain.ID, 424242, "ghost"), guildhall.NotFound},
		{"outsider edits", edit(e.outsider.ID, theirs.ID, "hi"), guildhall.NotFound},
		{"delete someone else's", del(e.plain.ID, mine.ID), guildhall.Forbidden},
		{"delete unknown", del(e.plain.ID, 424242), guildhall.NotFound},
	}
	for _, tt := range tests {
		direct := tt.call.direct()
		remote := tt.call.remote()
		wantKind(t, tt.name+" (in process)", direct, tt.kind)
		wantKind(t, tt.name+" (over the bus)", remote, tt.kind)
		if guildhall.KindOf(direct) != guildhall.KindOf(remote) || guildhall.Message(direct) != guildhall.Message(remote) {
			t.Errorf("%s: in process %s %q, over the bus %s %q", tt.name,
				guildhall.KindOf(direct).Code(), guildhall.Message(direct), guildhall.KindOf(remote).Code(), guildhall.Message(remote))
		}
	}
	// Nothing but the first two messages was stored.
	if last, err := e.store.LastSeq(ctx, e.channel); err != nil || last != 2 {
		t.Errorf("LastSeq = %d, %v; want 2", last, err)
	}
	if m, err := e.store.Get(ctx, e.channel, mine.ID); err != nil || m.Content != "owner's message" {
		t.Errorf("owner's message after failed calls = %+v, %v", m, err)
	}
	if m, err := e.store.Get(ctx, e.channel, theirs.ID); err != nil || m.Content != "plain's message" {
		t.Errorf("message after failed calls = %+v, %v", m, err)
	}
}

func TestMalformedRequest(t *testing.T) {
	e := newEnv(t, just(discard{}))
	e.serve(t, natsrpc.ServerConfig{})
	for _, subject := range []string{bus.MessageSend, bus.MessageEdit, bus.MessageDelete} {
		for _, data := range [][]byte{{0xff, 0xff, 0xff}, {0x0a, 0x05, 'a'}, {0x08}} {
			msg, err := e.cliConn.RequestWithContext(ctxTimeout(t, 5*time.Second), subject, data)
			if err != nil {
				t.Fatalf("request on %s: %v", subject, err)
			}
			var reply pb.MessageReply
			if err := proto.Unmarshal(msg.Data, &reply); err != nil {
				t.Fatalf("reply on %s is not a MessageReply: %v", subject, err)
			}
			if reply.GetError().GetCode() != guildhall.Invalid.Code() || reply.Message != nil {
				t.Errorf("reply to %x on %s = %v, want an %s error", data, subject, &reply, guildhall.Invalid.Code())
			}
		}
	}
	if last, err := e.store.LastSeq(t.Context(), e.channel); err != nil || last != 0 {
		t.Errorf("LastSeq = %d, %v; want 0", last, err)
	}
}

func TestNoService(t *testing.T) {
	e := newEnv(t, just(discard{}))
	ctx := ctxTimeout(t, 5*time.Second)
	_, err := e.client.Send(ctx, e.owner.ID, e.channel, "anyone?", "")
	wantKind(t, "Send", err, guildhall.Unavailable)
	_, err = e.client.Edit(ctx, e.owner.ID, e.channel, 1, "anyone?")
	wantKind(t, "Edit", err, guildhall.Unavailable)
	wantKind(t, "Delete", e.client.Delete(ctx, e.owner.ID, e.channel, 1), guildhall.Unavailable)
	if ctx.Err() != nil {
		t.Error("the client waited for its deadline instead of failing at once")
	}

	// A service that was shut down is as absent.
	s, err := natsrpc.Serve(e.srvConn, e.svc, nil, natsrpc.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Send(ctx, e.owner.ID, e.channel, "now?", ""); err != nil {
		t.Fatalf("Send while serving: %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.srvConn.Flush(); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Send(ctx, e.owner.ID, e.channel, "and now?", "")
	wantKind(t, "Send after Shutdown", err, guildhall.Unavailable)
}

func TestOverloaded(t *testing.T) {
	g := newGate()
	e := newEnv(t, just(g))
	s := e.serve(t, natsrpc.ServerConfig{Workers: 1, QueueDepth: 1})
	ctx := ctxTimeout(t, 10*time.Second)

	first := make(chan error, 1)
	go func() { _, err := e.client.Send(ctx, e.owner.ID, e.channel, "first", ""); first <- err }()
	<-g.entered
	second := make(chan error, 1)
	go func() { _, err := e.client.Send(ctx, e.owner.ID, e.channel, "second", ""); second <- err }()
	checkFor(t, 5*time.Second, time.Millisecond, func() error {
		if n := natsrpc.Queued(s); n != 1 {
			return fmt.Errorf("%d requests queued, want 1", n)
		}
		return nil
	})
	_, err := e.client.Send(ctx, e.owner.ID, e.channel, "third", "")
	wantKind(t, "Send to a full queue", err, guildhall.Unavailable)
	close(g.release)
	if err := <-first; err != nil {
		t.Errorf("first Send: %v", err)
	}
	if err := <-second; err != nil {
		t.Errorf("second Send: %v", err)
	}
}

// pipeline publishes Send requests for contents one after the other,
// without waiting for replies, and returns the subscription the replies
// come to.
func (e *env) pipeline(t *testing.T, actor uint64, contents ...string) *nats.Subscription {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := e.cliConn.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	for _, c := range contents {
		data, err := proto.Marshal(&pb.SendMessageRequest{ActorId: actor, ChannelId: e.channel, Content: c})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.cliConn.PublishRequest(bus.MessageSend, inbox, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.cliConn.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

func nextReply(t *testing.T, sub *nats.Subscription) *pb.MessageReply {
	t.Helper()
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("waiting for a reply: %v", err)
	}
	var r pb.MessageReply
	if err := proto.Unmarshal(msg.Data, &r); err != nil {
		t.Fatalf("reply: %v", err)
	}
	return &r
}

// TestShutdownFinishesQueued: Shutdown stops taking requests at once, but
// answers every request already queued, in order, before it returns; a
// second Shutdown returns at once.
func TestShutdownFinishesQueued(t *testing.T) {
	g := newGate()
	e := newEnv(t, just(g))
	s, err := natsrpc.Serve(e.srvConn, e.svc, nil, natsrpc.ServerConfig{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 20*time.Second)

	first := make(chan error, 1)
	go func() {
		m, err := e.client.Send(ctx, e.owner.ID, e.channel, "m1", "")
		if err == nil && m.Seq != 1 {
			err = fmt.Errorf("first message has seq %d", m.Seq)
		}
		first <- err
	}()
	<-g.entered // the worker is busy with m1
	contents := []string{"m2", "m3", "m4", "m5", "m6"}
	replies := e.pipeline(t, e.owner.ID, contents...)
	checkFor(t, 5*time.Second, time.Millisecond, func() error {
		if n := natsrpc.Queued(s); n != len(contents) {
			return fmt.Errorf("%d requests queued, want %d", n, len(contents))
		}
		return nil
	})

	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	checkFor(t, 5*time.Second, time.Millisecond, func() error {
		if !natsrpc.Stopping(s) {
			return errors.New("Shutdown has not begun")
		}
		return nil
	})
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while requests were still queued", err)
	default:
	}
	// New requests find no one.
	if err := e.srvConn.Flush(); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Send(ctxTimeout(t, 5*time.Second), e.owner.ID, e.channel, "too late", "")
	wantKind(t, "Send during Shutdown", err, guildhall.Unavailable)

	close(g.release)
	if err := <-first; err != nil {
		t.Errorf("first Send: %v", err)
	}
	for i, c := range contents {
		r := nextReply(t, replies)
		if r.Error != nil {
			t.Errorf("queued %s: %v", c, r.Error)
			continue
		}
		if got := r.GetMessage(); got.GetContent() != c || got.GetSeq() != uint64(i+2) {
			t.Errorf("reply %d = %q seq %d, want %q seq %d (queued requests keep their order)", i, got.GetContent(), got.GetSeq(), c, i+2)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if last, err := e.store.LastSeq(t.Context(), e.channel); err != nil || last != 6 {
		t.Errorf("LastSeq = %d, %v; want 6", last, err)
	}

	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("third Shutdown: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("repeated Shutdown took %v", d)
	}
}

// TestShutdownDeadline: if ctx ends first, Shutdown returns its error and
// cancels the request in progress; a later Shutdown waits for the rest.
func TestShutdownDeadline(t *testing.T) {
	g := newGate() // never released: only cancellation frees it
	e := newEnv(t, just(g))
	s, err := natsrpc.Serve(e.srvConn, e.svc, nil, natsrpc.ServerConfig{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	stuck := make(chan error, 1)
	go func() {
		_, err := e.client.Send(ctxTimeout(t, 10*time.Second), e.owner.ID, e.channel, "stuck", "")
		stuck <- err
	}()
	<-g.entered

	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown past its deadline = %v, want %v", err, context.DeadlineExceeded)
	}
	// The message was stored before the fan-out was cancelled, so the send
	// still succeeds.
	if err := <-stuck; err != nil {
		t.Errorf("Send cancelled by Shutdown: %v", err)
	}
	if err := s.Shutdown(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// TestShutdownUnderLoad: every request in flight while the service shuts
// down gets an answer (a message, or Unavailable at once), never silence
// until the caller's deadline.
func TestShutdownUnderLoad(t *testing.T) {
	e := newEnv(t, just(discard{}))
	s, err := natsrpc.Serve(e.srvConn, e.svc, nil, natsrpc.ServerConfig{Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	const senders, perSender = 16, 40
	timeout := 5 * time.Second
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sent, refused, silent int
	started := make(chan struct{}, senders*perSender)
	for i := range senders {
		wg.Go(func() {
			for j := range perSender {
				started <- struct{}{}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				_, err := e.client.Send(ctx, e.owner.ID, e.channel, fmt.Sprintf("s%d-%d", i, j), "")
				silentErr := ctx.Err() != nil
				cancel()
				mu.Lock()
				switch {
				case err == nil:
					sent++
				case silentErr:
					silent++
				case guildhall.KindOf(err) == guildhall.Unavailable:
					refused++
				default:
					t.Errorf("Send: %v", err)
				}
				mu.Unlock()
			}
		})
	}
	for range senders * perSender / 4 {
		<-started
	}
	if err := s.Shutdown(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	wg.Wait()
	t.Logf("%d sent, %d refused, %d unanswered", sent, refused, silent)
	if silent > 0 {
		t.Errorf("%d requests got no answer before their %v deadline", silent, timeout)
	}
	if last, err := e.store.LastSeq(t.Context(), e.channel); err != nil || last != uint64(sent) {
		t.Errorf("LastSeq = %d, %v; want %d (one per successful send)", last, err, sent)
	}
}

// router is a fixed natsrpc.Router that remembers the channels asked.
type router struct {
	nodes []string
	mu    sync.Mutex
	asked []uint64
}

func (r *router) Nodes(channelID uint64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, channelID)
	return r.nodes
}

// deliveries reads what sub received up to and including the sentinel
// event (a delete of message ID sentinel) and returns the events before it.
func deliveries(t *testing.T, sub *nats.Subscription, sentinel uint64) []*pb.Event {
	t.Helper()
	var events []*pb.Event
	for {
		msg, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("%s: waiting for the sentinel: %v", sub.Subject, err)
		}
		var d pb.Delivery
		if err := proto.Unmarshal(msg.Data, &d); err != nil {
			t.Fatalf("%s: not a Delivery: %v", sub.Subject, err)
		}
		if len(d.Events) != 1 {
			t.Errorf("%s: delivery of %d events, want 1", sub.Subject, len(d.Events))
		}
		for _, ev := range d.Events {
			if ev.GetMessageDelete().GetId() == sentinel {
				return events
			}
			events = append(events, ev)
		}
	}
}

func TestFanout(t *testing.T) {
	ns := bustest.MustServer(t)
	pubConn := bustest.MustConnect(t, ns)
	subConn := bustest.MustConnect(t, ns)
	nodes := []string{"node-a", "node-b", "node-c", "node-unlisted"}
	subs := map[string]*nats.Subscription{}
	for _, n := range nodes {
		sub, err := subConn.SubscribeSync(bus.LinkDeliver(n))
		if err != nil {
			t.Fatal(err)
		}
		subs[n] = sub
	}
	if err := subConn.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	created := time.Date(2026, 3, 1, 12, 0, 0, 5_000_000, time.UTC)
	listed := &router{nodes: nodes[:3]}
	nobody := &router{}
	ev := message.Event{Kind: message.Created, Message: message.Message{
		ID: 1001, ChannelID: 77, ServerID: 66, AuthorID: 55, Content: "fan me out", Seq: 9, Nonce: "n", CreatedAt: created,
	}}
	if err := natsrpc.NewFanout(pubConn, listed, nil).Publish(ctx, ev); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	quiet := message.Event{Kind: message.Created, Message: message.Message{ID: 1002, ChannelID: 78, Content: "nobody listens"}}
	if err := natsrpc.NewFanout(pubConn, nobody, nil).Publish(ctx, quiet); err != nil {
		t.Fatalf("Publish to no node: %v", err)
	}
	if !slices.Equal(listed.asked, []uint64{77}) || !slices.Equal(nobody.asked, []uint64{78}) {
		t.Errorf("routers asked for channels %v and %v, want [77] and [78]", listed.asked, nobody.asked)
	}
	// The same connection then sends a sentinel to every node: whatever
	// came before it has arrived once it has.
	const sentinel = 999_999
	end := message.Event{Kind: message.Deleted, Message: message.Message{ID: sentinel, ChannelID: 1}}
	if err := natsrpc.NewFanout(pubConn, &router{nodes: nodes}, nil).Publish(ctx, end); err != nil {
		t.Fatal(err)
	}

	for _, n := range nodes {
		events := deliveries(t, subs[n], sentinel)
		if n == "node-unlisted" {
			if len(events) != 0 {
				t.Errorf("%s got %d events, want none", n, len(events))
			}
			continue
		}
		if len(events) != 1 {
			t.Errorf("%s got %d events, want exactly 1", n, len(events))
			continue
		}
		got := events[0]
		if got.GetServerId() != 66 || got.GetChannelId() != 77 || got.GetMessageCreate() == nil {
			t.Errorf("%s got %v", n, got)
			continue
		}
		if m := natsrpc.FromProto(got.GetMessageCreate()); !sameMessage(m, ev.Message) {
			t.Errorf("%s got message %+v, want %+v", n, m, ev.Message)
		}
	}
}

// TestFanoutFromService: a message sent over the bus reaches the node that
// follows its channel as a MessageCreate event.
func TestFanoutFromService(t *testing.T) {
	e := newEnv(t, func(nc *nats.Conn) message.Publisher {
		return natsrpc.NewFanout(nc, &router{nodes: []string{"node-1"}}, nil)
	})
	nodeConn := bustest.MustConnect(t, e.ns)
	sub, err := nodeConn.SubscribeSync(bus.LinkDeliver("node-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := nodeConn.Flush(); err != nil {
		t.Fatal(err)
	}
	e.serve(t, natsrpc.ServerConfig{})
	m, err := e.client.Send(ctxTimeout(t, 10*time.Second), e.plain.ID, e.channel, "live", "")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no delivery: %v", err)
	}
	var d pb.Delivery
	if err := proto.Unmarshal(msg.Data, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Events) != 1 || !sameMessage(natsrpc.FromProto(d.Events[0].GetMessageCreate()), m) {
		t.Errorf("delivery = %v, want a MessageCreate of %+v", &d, m)
	}
}

func TestEventToProto(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 7_000_000, time.UTC)
	m := message.Message{ID: 1, ChannelID: 2, ServerID: 3, AuthorID: 4, Content: "c", Seq: 5, Nonce: "n", CreatedAt: created}
	if got := natsrpc.FromProto(natsrpc.ToProto(m)); !sameMessage(got, m) || !got.EditedAt.IsZero() {
		t.Errorf("FromProto(ToProto(%+v)) = %+v", m, got)
	}
	if p := natsrpc.ToProto(m); p.EditedAt != nil {
		t.Errorf("never edited message has edited_at %v", p.EditedAt)
	}
	edited := m
	edited.EditedAt = created.Add(time.Minute)
	if got := natsrpc.FromProto(natsrpc.ToProto(edited)); !sameMessage(got, edited) {
		t.Errorf("FromProto(ToProto(%+v)) = %+v", edited, got)
	}

	if ev := natsrpc.EventToProto(message.Event{Kind: message.Updated, Message: edited}); ev.GetMessageUpdate() == nil ||
		!sameMessage(natsrpc.FromProto(ev.GetMessageUpdate()), edited) || ev.GetChannelId() != 2 || ev.GetServerId() != 3 {
		t.Errorf("Updated event = %v", ev)
	}
	ev := natsrpc.EventToProto(message.Event{Kind: message.Deleted, Message: message.Message{ID: 1, ChannelID: 2, ServerID: 3, Seq: 5}})
	if d := ev.GetMessageDelete(); d.GetId() != 1 || d.GetChannelId() != 2 || d.GetServerId() != 3 || d.GetSeq() != 5 {
		t.Errorf("Deleted event = %v", ev)
	}
}

// TestProtoMentions: mentions cross the bus.
func TestProtoMentions(t *testing.T) {
	m := message.Message{ID: 1, ChannelID: 2, Content: "x", Seq: 1, CreatedAt: time.Unix(1, 0).UTC(),
		Mentions: message.Mentions{Users: []uint64{5, 6}, Roles: []uint64{7}, Everyone: true}}
	got := natsrpc.FromProto(natsrpc.ToProto(m))
	if !slices.Equal(got.Mentions.Users, m.Mentions.Users) || !slices.Equal(got.Mentions.Roles, m.Mentions.Roles) || !got.Mentions.Everyone {
		t.Errorf("round trip = %+v, want %+v", got.Mentions, m.Mentions)
	}
}
