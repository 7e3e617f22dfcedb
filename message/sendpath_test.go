package message_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/message"
	messagejs "github.com/guildhall/guildhall/message/jetstream"
	"github.com/guildhall/guildhall/snowflake"
)

// second is another message service process next to e's: its own NATS
// connection and log, its own IDs, cache and publisher, the same NATS
// server and store.
func (e *env) second(t *testing.T) (*message.Service, *recorder) {
	t.Helper()
	ids, err := snowflake.New(2, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := &recorder{}
	svc := message.NewService(message.Config{
		Store: e.store, Access: e.access, Log: mustLog(t, e.ns, messagejs.Config{}), Publisher: pub, IDs: ids, Cache: newMemCache(),
	})
	return svc, pub
}

// stored is the whole channel as the store has it, oldest first.
func (e *env) stored(t *testing.T) []message.Message {
	t.Helper()
	list, err := e.store.List(t.Context(), e.channel, message.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(list)
	return list
}

// TestTwoServicesOneChannel: two message service processes on one NATS
// and one store send to one channel at once. Seqs come out gapless, every
// acked message is stored exactly once, and each process publishes its
// events in seq order.
func TestTwoServicesOneChannel(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.persister.BatchSize = 16 })
	e.startPersister(t, envConfig{persister: message.PersisterConfig{BatchSize: 16}}) // two persisters share the work
	svcB, pubB := e.second(t)
	const perWorker, workers = 25, 4
	var (
		mu    sync.Mutex
		acked []message.Message
		wg    sync.WaitGroup
	)
	for w := range 2 * workers {
		svc, author := e.svc, e.owner
		if w%2 == 1 {
			svc, author = svcB, e.plain
		}
		wg.Go(func() {
			for i := range perWorker {
				m, err := svc.Send(context.Background(), author.ID, e.channel, fmt.Sprintf("w%d m%d", w, i), "")
				if err != nil {
					t.Errorf("Send: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, m)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	const n = 2 * workers * perWorker
	if len(acked) != n {
		t.Fatalf("%d sends acked, want %d", len(acked), n)
	}
	settle(t, e.log)
	stored := e.stored(t)
	if got := seqs(stored); !slices.Equal(got, seqRange(1, n)) {
		t.Fatalf("stored seqs = %v, want 1..%d", got, n)
	}
	byID := map[uint64]message.Message{}
	for _, m := range stored {
		byID[m.ID] = m
	}
	for _, m := range acked {
		s, ok := byID[m.ID]
		if !ok || s.Seq != m.Seq || s.Content != m.Content {
			t.Errorf("acked %+v, stored %+v (found %v)", m, s, ok)
		}
	}
	for i := 1; i < len(stored); i++ {
		if stored[i].ID <= stored[i-1].ID {
			t.Errorf("seq %d has ID %d, not above seq %d's %d", stored[i].Seq, stored[i].ID, stored[i-1].Seq, stored[i-1].ID)
		}
	}
	for name, pub := range map[string]*recorder{"A": e.pub, "B": pubB} {
		var got []uint64
		for _, ev := range pub.Events() {
			got = append(got, ev.Message.Seq)
		}
		if len(got) != n/2 || !slices.IsSorted(got) {
			t.Errorf("process %s published %d events, seqs %v; want %d in increasing order", name, len(got), got, n/2)
		}
	}
	// History agrees, from either process.
	if h := e.history(t); len(h) != message.MaxPage || h[0].Seq != n {
		t.Errorf("History = %d messages from seq %d", len(h), h[0].Seq)
	}
}

// TestPersisterShutdownDrains: Shutdown returns once everything accepted
// is stored.
func TestPersisterShutdownDrains(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.noPersister = true })
	var acked []message.Message
	for i := range 30 {
		acked = append(acked, e.mustSend(t, e.plain, fmt.Sprintf("m%d", i)))
	}
	var gated *gatedStore
	p := e.startPersister(t, envConfig{
		persister: message.PersisterConfig{BatchSize: 7},
		persistTo: func(s message.Store) message.Store { gated = newGatedStore(s); return gated },
	})
	gated.hold()
	checkFor(t, func() error {
		if gated.persist.Load() == 0 {
			return errors.New("no batch yet")
		}
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- p.Shutdown(context.Background()) }()
	gated.release()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := seqs(e.stored(t)); !slices.Equal(got, seqRange(1, uint64(len(acked)))) {
		t.Errorf("stored after Shutdown: seqs %v", got)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// TestNonceRetryAcrossServices: a send retried through another process
// makes no second message, whether the first is still only in the log
// or already persisted.
func TestNonceRetryAcrossServices(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.noPersister = true })
	svcB, pubB := e.second(t)
	first, err := e.svc.Send(t.Context(), e.plain.ID, e.channel, "once", "n1")
	if err != nil {
		t.Fatal(err)
	}
	// Not persisted: the log's duplicate window answers.
	retry, err := svcB.Send(t.Context(), e.plain.ID, e.channel, "once (retried)", "n1")
	if err != nil {
		t.Fatal(err)
	}
	if retry.ID != first.ID || retry.Seq != first.Seq || retry.Content != "once" {
		t.Fatalf("retry through B = %+v, want %+v", retry, first)
	}
	if n := len(pubB.Events()); n != 0 {
		t.Errorf("the retry published %d events", n)
	}
	// B appends after it without a gap.
	next, err := svcB.Send(t.Context(), e.plain.ID, e.channel, "next", "n2")
	if err != nil || next.Seq != 2 {
		t.Fatalf("next send = %+v, %v; want seq 2", next, err)
	}
	// Persisted: the store's nonce check answers too.
	e.startPersister(t, envConfig{})
	settle(t, e.log)
	again, err := svcB.Send(t.Context(), e.plain.ID, e.channel, "once more", "n1")
	if err != nil || again.ID != first.ID {
		t.Fatalf("retry after persisting = %+v, %v; want message %d", again, err, first.ID)
	}
	if got := seqs(e.stored(t)); !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("stored seqs %v, want [1 2]", got)
	}
}

// TestReadYourWrites: a message is in history right after its send is
// acked, before the persister stored it; edits too. A failing cache
// makes reads fall back to the store.
func TestReadYourWrites(t *testing.T) {
	defer message.SetPersistWait(50 * time.Millisecond)() // no persister runs: don't wait for it long
	e := newEnv(t, func(c *envConfig) { c.noPersister = true })
	ctx := t.Context()
	var sent []message.Message
	for i := range 5 {
		sent = append(sent, e.mustSend(t, e.plain, fmt.Sprintf("m%d", i+1)))
	}
	read := func(q message.Query) []uint64 {
		t.Helper()
		h, err := e.svc.History(ctx, e.owner.ID, e.channel, q)
		if err != nil {
			t.Fatalf("History(%+v): %v", q, err)
		}
		return seqs(h)
	}
	if got := read(message.Query{Limit: 10}); !slices.Equal(got, []uint64{5, 4, 3, 2, 1}) {
		t.Errorf("History before persisting = %v", got)
	}
	if got := read(message.Query{Before: sent[3].ID, Limit: 2}); !slices.Equal(got, []uint64{3, 2}) {
		t.Errorf("History(before) = %v", got)
	}
	if got := read(message.Query{After: sent[0].ID, Limit: 2}); !slices.Equal(got, []uint64{3, 2}) {
		t.Errorf("History(after) = %v", got)
	}
	if got := read(message.Query{Around: sent[2].ID, Limit: 4}); !slices.Equal(got, []uint64{4, 3, 2, 1}) {
		t.Errorf("History(around) = %v", got)
	}
	if _, err := e.svc.Edit(ctx, e.plain.ID, e.channel, sent[1].ID, "edited"); err != nil {
		t.Fatalf("Edit of an unpersisted message: %v", err)
	}
	if h, _ := e.svc.History(ctx, e.owner.ID, e.channel, message.Query{Limit: 10}); len(h) != 5 || h[3].Content != "edited" {
		t.Errorf("History after edit = %+v", h)
	}
	if n := len(e.stored(t)); n != 0 {
		t.Fatalf("the store has %d messages before any persister ran", n)
	}

	// The cache down: reads go to the store, which has nothing yet.
	e.cache.fail(errors.New("cache down"))
	if got := read(message.Query{Limit: 10}); len(got) != 0 {
		t.Errorf("History with the cache down, nothing persisted = %v", got)
	}
	// Sends still work (the log is the ack point, the cache best effort).
	e.mustSend(t, e.plain, "m6")
	e.startPersister(t, envConfig{})
	settle(t, e.log)
	if got := read(message.Query{Limit: 10}); !slices.Equal(got, []uint64{6, 5, 4, 3, 2, 1}) {
		t.Errorf("History from the store = %v", got)
	}
	if m, err := e.store.Get(ctx, e.channel, sent[1].ID); err != nil || m.Content != "edited" {
		t.Errorf("stored edit = %+v, %v", m, err)
	}
	// Back up: the window that missed m6 is invalidated with the next
	// change, and the next read fills it from the store.
	e.cache.fail(nil)
	e.mustSend(t, e.plain, "m7")
	if got := read(message.Query{Limit: 3}); !slices.Equal(got, []uint64{7, 6, 5}) {
		t.Errorf("History after the cache came back = %v", got)
	}
}

// countingStore counts List calls and can hold them.
type countingStore struct {
	message.Store
	lists atomic.Int64
	gate  chan struct{} // List waits on it when not nil
}

func (s *countingStore) List(ctx context.Context, channelID uint64, q message.Query) ([]message.Message, error) {
	s.lists.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	return s.Store.List(ctx, channelID, q)
}

// TestHistoryMissesShareOneRead: concurrent cache misses for one channel
// make one store read, and fill the cache for the reads after them.
func TestHistoryMissesShareOneRead(t *testing.T) {
	e := newEnv(t)
	for i := range 10 {
		e.mustSend(t, e.plain, fmt.Sprintf("m%d", i))
	}
	settle(t, e.log)
	counting := &countingStore{Store: e.store, gate: make(chan struct{})}
	cache := newMemCache()
	r := message.NewReader(counting, e.access, cache, e.log)
	const readers = 16
	var wg sync.WaitGroup
	for range readers {
		wg.Go(func() {
			h, err := r.History(context.Background(), e.owner.ID, e.channel, message.Query{Limit: 5})
			if err != nil || len(h) != 5 || h[0].Seq != 10 {
				t.Errorf("History = %d messages, %v", len(h), err)
			}
		})
	}
	checkFor(t, func() error {
		if counting.lists.Load() == 0 {
			return errors.New("no store read yet")
		}
		return nil
	})
	close(counting.gate)
	wg.Wait()
	if n := counting.lists.Load(); n >= readers {
		t.Errorf("%d readers made %d store reads", readers, n)
	}
	before := counting.lists.Load()
	if h, err := r.History(t.Context(), e.owner.ID, e.channel, message.Query{Limit: 5}); err != nil || len(h) != 5 {
		t.Fatalf("History = %v, %v", h, err)
	}
	if n := counting.lists.Load(); n != before {
		t.Errorf("a read of a filled window went to the store")
	}
}

// gatedStore is a store whose Persist waits while the gate is closed or
// fails while down: a slow or unavailable history store.
type gatedStore struct {
	message.Store
	mu      sync.Mutex
	open    chan struct{} // Persist waits until it is closed
	down    bool
	persist atomic.Int64 // Persist calls
}

func newGatedStore(s message.Store) *gatedStore {
	g := &gatedStore{Store: s, open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gatedStore) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
}

func (g *gatedStore) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.open)
}

func (g *gatedStore) setDown(down bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down = down
}

func (g *gatedStore) Persist(ctx context.Context, changes []message.Change) error {
	g.persist.Add(1)
	g.mu.Lock()
	open, down := g.open, g.down
	g.mu.Unlock()
	if down {
		return guildhall.E("gatedStore.Persist", guildhall.Unavailable, "store down")
	}
	select {
	case <-open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Store.Persist(ctx, changes)
}

// TestBackPressure: with the store too slow to keep up, sends fail fast
// with Unavailable once the persister is MaxLag behind; none is lost, and
// sends succeed again once it caught up.
func TestBackPressure(t *testing.T) {
	var gated *gatedStore
	const maxLag = 10
	e := newEnv(t, func(c *envConfig) {
		c.maxLag = maxLag
		c.persister = message.PersisterConfig{BatchSize: 4}
		c.persistTo = func(s message.Store) message.Store { gated = newGatedStore(s); return gated }
	})
	gated.hold() // the store takes forever
	var acked []message.Message
	var refused error
	for i := range 100 {
		m, err := e.svc.Send(t.Context(), e.plain.ID, e.channel, fmt.Sprintf("m%d", i), "")
		if err != nil {
			refused = err
			break
		}
		acked = append(acked, m)
	}
	if guildhall.KindOf(refused) != guildhall.Unavailable || !strings.Contains(guildhall.Message(refused), "retry later") {
		t.Fatalf("after %d sends with a stuck store: %v; want unavailable, retry later", len(acked), refused)
	}
	if len(acked) < maxLag || len(acked) > maxLag+1 {
		t.Errorf("%d sends acked before back-pressure, want about %d", len(acked), maxLag)
	}
	gated.release()
	settle(t, e.log)
	stored := e.stored(t)
	if got := seqs(stored); !slices.Equal(got, seqRange(1, uint64(len(acked)))) {
		t.Fatalf("stored seqs = %v, want 1..%d", got, len(acked))
	}
	for i, m := range acked {
		if stored[i].ID != m.ID {
			t.Errorf("seq %d: stored message %d, acked %d", m.Seq, stored[i].ID, m.ID)
		}
	}
	if _, err := e.svc.Send(t.Context(), e.plain.ID, e.channel, "after", ""); err != nil {
		t.Errorf("send once caught up: %v", err)
	}
}

// TestStoreUnavailable: with the history store down, sends are still
// acked (durable in the log), readable from the cache, and persisted
// once it returns, each once and in order.
func TestStoreUnavailable(t *testing.T) {
	var gated *gatedStore
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(c *envConfig) {
		c.persister = message.PersisterConfig{BatchSize: 8, Registerer: reg}
		c.persistTo = func(s message.Store) message.Store { gated = newGatedStore(s); return gated }
	})
	gated.setDown(true)
	var acked []message.Message
	for i := range 20 {
		acked = append(acked, e.mustSend(t, e.plain, fmt.Sprintf("m%d", i)))
	}
	h, err := e.svc.History(t.Context(), e.owner.ID, e.channel, message.Query{Limit: 50})
	if err != nil || len(h) != 20 {
		t.Fatalf("History with the store's writes down = %d, %v", len(h), err)
	}
	checkFor(t, func() error {
		if gated.persist.Load() < 2 {
			return errors.New("persister has not retried yet")
		}
		return nil
	})
	if n := len(e.stored(t)); n != 0 {
		t.Fatalf("%d stored while down", n)
	}
	gated.setDown(false)
	settle(t, e.log)
	stored := e.stored(t)
	if len(stored) != len(acked) {
		t.Fatalf("%d stored, want %d", len(stored), len(acked))
	}
	for i, m := range acked {
		if stored[i].ID != m.ID || stored[i].Seq != uint64(i+1) {
			t.Errorf("stored[%d] = %d seq %d, want %d seq %d", i, stored[i].ID, stored[i].Seq, m.ID, i+1)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				got[f.GetName()] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[f.GetName()] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	if got["guildhall_message_persister_errors_total"] < 1 || got["guildhall_message_persister_persisted_total"] != 20 || got["guildhall_message_persister_batch_size"] < 3 {
		t.Errorf("metrics = %v; want errors, 20 persisted, at least 3 batches", got)
	}
}

// mentionGate is the real access with MENTION_EVERYONE taken from one user.
type mentionGate struct {
	message.Access
	denied uint64
}

func (g mentionGate) CanMentionEveryone(ctx context.Context, userID, channelID uint64) (bool, error) {
	if userID == g.denied {
		return false, nil
	}
	return g.Access.CanMentionEveryone(ctx, userID, channelID)
}

// TestSendMentions: mentions are parsed and stored; @everyone stays only
// for authors who may mention everyone; too many is refused.
func TestSendMentions(t *testing.T) {
	var gate *mentionGate
	e := newEnv(t, func(c *envConfig) {
		c.access = func(a message.Access) message.Access { gate = &mentionGate{Access: a}; return gate }
	})
	gate.denied = e.plain.ID
	content := fmt.Sprintf("hi <@%d> <@!%d> and <@&77>, @everyone", e.owner.ID, e.owner.ID)
	m, err := e.svc.Send(t.Context(), e.owner.ID, e.channel, content, "")
	if err != nil {
		t.Fatal(err)
	}
	want := message.Mentions{Users: []uint64{e.owner.ID}, Roles: []uint64{77}, Everyone: true}
	if !mentionsEqual(m.Mentions, want) {
		t.Errorf("owner's mentions = %+v, want %+v", m.Mentions, want)
	}
	p, err := e.svc.Send(t.Context(), e.plain.ID, e.channel, "@everyone look", "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Mentions.Everyone {
		t.Errorf("a member without MENTION_EVERYONE mentioned everyone")
	}
	settle(t, e.log)
	if s, err := e.store.Get(t.Context(), e.channel, m.ID); err != nil || !mentionsEqual(s.Mentions, want) {
		t.Errorf("stored mentions = %+v, %v", s.Mentions, err)
	}
	var many strings.Builder
	for i := range message.MaxMentions + 1 {
		fmt.Fprintf(&many, "<@%d> ", i+1)
	}
	_, err = e.svc.Send(t.Context(), e.owner.ID, e.channel, many.String(), "")
	wantKind(t, "Send(too many mentions)", err, guildhall.Invalid)
	if n := len(e.stored(t)); n != 2 {
		t.Errorf("%d stored, want 2", n)
	}
}

func mentionsEqual(a, b message.Mentions) bool {
	return slices.Equal(a.Users, b.Users) && slices.Equal(a.Roles, b.Roles) && a.Everyone == b.Everyone
}

// TestPersisterDropsInvalidRecords: a record the store refuses as
// invalid (not one the service writes: an ID of 0) is dropped, logged and
// counted; the records around it are stored and the persister goes on.
func TestPersisterDropsInvalidRecords(t *testing.T) {
	e := newEnv(t, func(c *envConfig) { c.noPersister = true })
	first := e.mustSend(t, e.plain, "before")
	bad := message.Message{ChannelID: e.channel + 1, Seq: 1, Content: "no ID"}
	if _, _, _, err := e.log.Append(t.Context(), message.Change{Kind: message.ChangeCreate, Message: bad}, 0, ""); err != nil {
		t.Fatal(err)
	}
	second := e.mustSend(t, e.plain, "after")
	reg := prometheus.NewRegistry()
	e.startPersister(t, envConfig{persister: message.PersisterConfig{Registerer: reg}})
	settle(t, e.log)
	if got := e.stored(t); len(got) != 2 || got[0].ID != first.ID || got[1].ID != second.ID {
		t.Errorf("stored %+v", got)
	}
	families, _ := reg.Gather()
	for _, f := range families {
		if f.GetName() == "guildhall_message_persister_errors_total" && f.GetMetric()[0].GetCounter().GetValue() < 1 {
			t.Errorf("the dropped record was not counted")
		}
	}
}

// slowStore adds latency to every Persist.
type slowStore struct {
	message.Store
	delay time.Duration
}

func (s slowStore) Persist(ctx context.Context, changes []message.Change) error {
	time.Sleep(s.delay)
	return s.Store.Persist(ctx, changes)
}

// TestSlowStore: senders that outrun a slow store get back-pressure
// errors; retrying them, every message lands once, in seq order.
func TestSlowStore(t *testing.T) {
	e := newEnv(t, func(c *envConfig) {
		c.maxLag = 6
		c.persister = message.PersisterConfig{BatchSize: 4}
		c.persistTo = func(s message.Store) message.Store { return slowStore{s, 10 * time.Millisecond} }
	})
	var refused atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 20 {
				for {
					_, err := e.svc.Send(context.Background(), e.plain.ID, e.channel, fmt.Sprintf("w%d m%d", w, i), fmt.Sprintf("w%d-%d", w, i))
					if err == nil {
						break
					}
					if guildhall.KindOf(err) != guildhall.Unavailable {
						t.Errorf("Send: %v", err)
						return
					}
					refused.Add(1)
					time.Sleep(time.Millisecond) // a client's backoff
				}
			}
		})
	}
	wg.Wait()
	if refused.Load() == 0 {
		t.Errorf("no send was refused, with a store slower than the senders")
	}
	settle(t, e.log)
	stored := e.stored(t)
	if got := seqs(stored); !slices.Equal(got, seqRange(1, 80)) {
		t.Fatalf("stored seqs %v, want 1..80", got)
	}
	seen := map[string]bool{}
	for _, m := range stored {
		if seen[m.Content] {
			t.Errorf("%q stored twice", m.Content)
		}
		seen[m.Content] = true
	}
	t.Logf("%d sends refused and retried", refused.Load())
}
