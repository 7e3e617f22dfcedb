package cluster_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/guildhall/guildhall/audit"
	auditpebble "github.com/guildhall/guildhall/audit/pebble"
	"github.com/guildhall/guildhall/bus/bustest"
	"github.com/guildhall/guildhall/link"
	"github.com/guildhall/guildhall/member"
	memberpebble "github.com/guildhall/guildhall/member/pebble"
	"github.com/guildhall/guildhall/message"
	messagejs "github.com/guildhall/guildhall/message/jetstream"
	"github.com/guildhall/guildhall/message/natsrpc"
	messagepebble "github.com/guildhall/guildhall/message/pebble"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
	"github.com/guildhall/guildhall/role"
	rolepebble "github.com/guildhall/guildhall/role/pebble"
	"github.com/guildhall/guildhall/subscribe"
)

// BenchmarkSendCostByMembers measures what one message costs the servers
// in a server of 1,000 members and in one of 1,000,000 (GH_BENCH_MEMBERS
// overrides the big one), with the same sessions online in both: ONLINE
// (default 1,000) gateway clients over two link nodes, all following the
// channel. Members beyond the online ones are inserted straight into the
// member store (no accounts, no argon2). Reported per message: process
// CPU (user+system, every role and the in-process clients), bus messages
// to link nodes, and deliveries; with the plain Fanout (one bus message
// per event and interested node) and the batching one. Nothing on the send
// path enumerates members, so the two servers must match.
//
//	go test -run '^$' -bench SendCostByMembers -benchtime 300x -timeout 30m ./cluster/
func BenchmarkSendCostByMembers(b *testing.B) {
	big := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("GH_BENCH_MEMBERS")); err == nil && v > 0 {
		big = v
	}
	online := 1000
	if v, err := strconv.Atoi(os.Getenv("GH_BENCH_ONLINE")); err == nil && v > 0 {
		online = v
	}
	for _, members := range []int{1000, big} {
		b.Run(fmt.Sprintf("members=%d/online=%d", members, online), func(b *testing.B) {
			w := newCostWorld(b, members, online) // built once for both fanouts
			for _, batched := range []bool{false, true} {
				b.Run(fmt.Sprintf("batched=%v", batched), func(b *testing.B) {
					w.measure(b, batched)
				})
			}
		})
	}
}

// costWorld is the deployment BenchmarkSendCostByMembers measures.
type costWorld struct {
	online        int
	direct, batch *natsrpc.Fanout
	pub           *switchPub
	send          func(tb testing.TB, i int)
	received      *atomic.Int64
	busMsgs       *atomic.Int64
}

// switchPub publishes through the Fanout a measurement chose.
type switchPub struct {
	cur atomic.Pointer[natsrpc.Fanout]
}

func (p *switchPub) Publish(ctx context.Context, ev message.Event) error {
	return p.cur.Load().Publish(ctx, ev)
}

func newCostWorld(b *testing.B, members, online int) *costWorld {
	ctx := context.Background()
	ns := bustest.MustServer(b)
	// On tmpfs when there is one: a million synced joins on a disk take
	// minutes, and the store's speed is not what is measured here.
	dir := b.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err = os.MkdirTemp("/dev/shm", "gh-bench-"); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = os.RemoveAll(dir) })
	}
	db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: quietPebble{b}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	ids := mustIDs(b, 0, nil)
	mstore := memberpebble.New(db)
	rstore := rolepebble.New(db)
	auditLog := audit.NewLog(auditpebble.New(db), ids, nil, nil, 0)
	resolver := role.NewResolver(rstore, member.NewDirectory(mstore))
	roles := role.NewService(rstore, resolver, ids, auditLog)
	mem := member.NewService(mstore, roles, ids, nil, member.Config{
		Audit:    auditLog,
		Password: member.PasswordParams{MemoryKiB: 64, Time: 1},
	})
	owner, _, err := mem.Register(ctx, "owner", "correct horse")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := mem.CreateServer(ctx, owner, "Guild")
	if err != nil {
		b.Fatal(err)
	}
	ch, err := mem.CreateChannel(ctx, owner, srv.ID, "general")
	if err != nil {
		b.Fatal(err)
	}
	inv, err := mem.CreateInvite(ctx, owner, srv.ID, 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	// Online users are real accounts with tokens.
	tokens := make([]string, online)
	for i := range online {
		u, token, err := mem.Register(ctx, fmt.Sprintf("online%d", i), "correct horse")
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := mem.Join(ctx, u, inv.Code); err != nil {
			b.Fatal(err)
		}
		tokens[i] = token
	}
	// The rest are memberships only, straight into the store.
	start := time.Now()
	for i := online + 1; i < members; i++ { // the owner is a member too
		m := member.Member{ServerID: srv.ID, UserID: 1<<50 | uint64(i), Username: fmt.Sprintf("m%d", i), JoinedAt: start}
		if _, err := mstore.JoinByInvite(ctx, inv.Code, m); err != nil {
			b.Fatal(err)
		}
	}
	if n, err := mstore.MemberCount(ctx, srv.ID); err != nil || n < members-1 {
		b.Fatalf("member count %d (%v), want %d", n, err, members)
	}
	b.Logf("inserted %d members in %v", members, time.Since(start).Round(time.Millisecond))

	connect := func(name string) *nats.Conn {
		nc, err := nats.Connect(ns.ClientURL(), nats.Name(name))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		return nc
	}
	sub, err := subscribe.Start(connect("subscribe"), nil, subscribe.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { shutdown(b, sub.Shutdown) })
	mnc := connect("message")
	view, err := subscribe.StartView(mnc, nil, subscribe.ViewConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { shutdown(b, view.Shutdown) })
	cw := &costWorld{online: online, pub: &switchPub{}, received: &atomic.Int64{}, busMsgs: &atomic.Int64{}}
	cw.direct = natsrpc.NewFanout(mnc, view, rstore) // one bus message per event and node
	cw.batch = natsrpc.StartFanout(mnc, view, rstore, nil, natsrpc.FanoutConfig{})
	b.Cleanup(func() { shutdown(b, cw.batch.Shutdown) })
	cw.pub.cur.Store(cw.direct)
	mlog, err := messagejs.New(context.Background(), mnc, testLogConfig(0))
	if err != nil {
		b.Fatal(err)
	}
	msvc := message.NewService(message.Config{Store: messagepebble.New(db), Access: resolver, Log: mlog, Publisher: cw.pub, IDs: mustIDs(b, 1, nil)})
	rpc, err := natsrpc.Serve(mnc, msvc, nil, natsrpc.ServerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { shutdown(b, rpc.Shutdown) })

	// Two link nodes, the online clients split between them, all following
	// the channel explicitly (the small-server rule is off, so both
	// servers are followed the same way).
	w := &world{members: mem, resolver: resolver, rstore: rstore}
	nodes := []*linkNode{
		// The clients send no heartbeats: a long interval keeps them.
		w.startLinkOn(b, connect("link-a"), "link-a", link.Config{SmallServer: -1, QueueLen: 4096, HeartbeatInterval: time.Hour}),
		w.startLinkOn(b, connect("link-b"), "link-b", link.Config{SmallServer: -1, QueueLen: 4096, HeartbeatInterval: time.Hour}),
	}
	received := cw.received
	var readers sync.WaitGroup
	b.Cleanup(readers.Wait)
	for i, token := range tokens {
		c := nodes[i%2].dial(b, fmt.Sprint("c", i), token)
		c.subscribe(ch.ID)
		readers.Go(func() {
			for {
				_, data, err := c.conn.Read(context.Background())
				if err != nil {
					return
				}
				var f pb.Frame
				if proto.Unmarshal(data, &f) == nil && f.GetEvent() != nil {
					received.Add(1)
				}
			}
		})
		b.Cleanup(func() { c.conn.Close(websocket.StatusNormalClosure, "") })
	}
	checkFor(b, func() error {
		if got := sub.Counts(ch.ID); got.Messages != uint32(online) {
			return fmt.Errorf("subscription service counts %+v", got)
		}
		if got := view.Nodes(ch.ID); len(got) != 2 {
			return fmt.Errorf("view routes to %v", got)
		}
		return nil
	})

	// Bus messages to link nodes, counted on the side.
	counter := connect("counter")
	if _, err := counter.Subscribe("gh.link.*.deliver", func(*nats.Msg) { cw.busMsgs.Add(1) }); err != nil {
		b.Fatal(err)
	}
	if err := counter.Flush(); err != nil {
		b.Fatal(err)
	}
	sender := natsrpc.NewClient(connect("edge"))
	cw.send = func(tb testing.TB, i int) {
		sctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if _, err := sender.Send(sctx, owner.ID, ch.ID, fmt.Sprint("m", i), ""); err != nil {
			tb.Fatal(err)
		}
	}
	for i := range 50 { // warm up caches and routes
		cw.send(b, i)
	}
	cw.drain(b, 50*online)
	return cw
}

// drain waits until the clients received n events (then zeroes the count).
func (cw *costWorld) drain(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for cw.received.Load() < int64(n) {
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d deliveries", cw.received.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cw.received.Store(0)
}

// measure sends b.N messages one at a time through the chosen fanout and
// waits until every client has each.
func (cw *costWorld) measure(b *testing.B, batched bool) {
	cw.pub.cur.Store(cw.direct)
	if batched {
		cw.pub.cur.Store(cw.batch)
	}
	cw.busMsgs.Store(0)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		cw.send(b, i)
	}
	cw.drain(b, b.N*cw.online)
	b.StopTimer()
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	b.ReportMetric(float64(cw.busMsgs.Load())/float64(b.N), "bus-msgs/msg")
	b.ReportMetric(float64(cw.online), "deliveries/msg")
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
