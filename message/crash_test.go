package message_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/nats-io/nats.go"
	"github.com/scylladb/gocqlx/v2"

	"github.com/guildhall/guildhall/bus/bustest"
	"github.com/guildhall/guildhall/internal/cqldb"
	"github.com/guildhall/guildhall/internal/cqldb/cqltest"
	"github.com/guildhall/guildhall/message"
	messagecql "github.com/guildhall/guildhall/message/cql"
	messagejs "github.com/guildhall/guildhall/message/jetstream"
	messagepebble "github.com/guildhall/guildhall/message/pebble"
	"github.com/guildhall/guildhall/snowflake"
)

// allowAll lets everyone do everything, in channel 1 of server 1.
type allowAll struct{}

func (allowAll) CanRead(context.Context, uint64, uint64) (uint64, error) { return 1, nil }
func (allowAll) CanSend(context.Context, uint64, uint64) (uint64, error) { return 1, nil }
func (allowAll) CanView(context.Context, uint64, uint64) (uint64, uint64, error) {
	return 1, 1, nil
}
func (allowAll) CanManageMessages(context.Context, uint64, uint64) (uint64, error) { return 1, nil }
func (allowAll) CanMentionEveryone(context.Context, uint64, uint64) (bool, error)  { return true, nil }

// crashLogConfig is the log both processes of TestPersisterCrash use: a
// batch a dead persister held is handed out again after a second.
var crashLogConfig = messagejs.Config{AckWait: time.Second, LagRefresh: -1}

const (
	crashChildEnv = "GH_PERSISTER_CRASH_CHILD"
	crashMarker   = "CRASH-HALF-WRITTEN"
)

// halfStore writes the first half of its third batch and then hangs,
// after saying so on stdout: the moment to kill the process.
type halfStore struct {
	message.Store
	calls int
}

func (h *halfStore) Persist(ctx context.Context, changes []message.Change) error {
	h.calls++
	if h.calls < 3 {
		return h.Store.Persist(ctx, changes)
	}
	if err := h.Store.Persist(ctx, changes[:len(changes)/2]); err != nil {
		return err
	}
	fmt.Println(crashMarker)
	select {} // killed here
}

// TestPersisterCrash: a persister process killed (SIGKILL) in the middle
// of a batch, after half of it reached the store, loses nothing: once a
// persister runs again, every acked message, edit and deletion is in the
// store exactly once and in order.
func TestPersisterCrash(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild(t, openPebbleChild)
		return
	}
	dir := t.TempDir()
	var db *pebbledb.DB
	open := func() message.Store {
		var err error
		if db, err = pebbledb.Open(dir, &pebbledb.Options{Logger: quietLogger{}}); err != nil {
			t.Fatal(err)
		}
		return messagepebble.New(db)
	}
	closeDB := func() {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if db != nil {
			_ = db.Close()
		}
	})
	// Pebble is one process's: the parent closes it while the child runs.
	runCrash(t, "^TestPersisterCrash$", []string{"GH_PEBBLE_DIR=" + dir}, open, func() { closeDB(); db = nil })
}

// TestPersisterCrashCQL is TestPersisterCrash on the CQL store, which the
// parent and the child share.
func TestPersisterCrashCQL(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild(t, openCQLChild)
		return
	}
	hosts := cqltest.Hosts(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	keyspace := "t_" + hex.EncodeToString(b)
	session := mustCQL(t, hosts, keyspace)
	t.Cleanup(func() {
		_ = session.ContextQuery(context.Background(), "DROP KEYSPACE IF EXISTS "+keyspace, nil).ExecRelease()
	})
	if err := cqldb.Migrate(t.Context(), session, messagecql.Component, messagecql.Migrations); err != nil {
		t.Fatal(err)
	}
	store := messagecql.New(session)
	runCrash(t, "^TestPersisterCrashCQL$", []string{"GH_CQL_KEYSPACE=" + keyspace}, func() message.Store { return store }, func() {})
}

func mustCQL(tb testing.TB, hosts []string, keyspace string) gocqlx.Session {
	tb.Helper()
	s, err := cqldb.Open(tb.Context(), cqldb.Config{Hosts: hosts, Keyspace: keyspace, Timeout: 30 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// runCrash sends to a channel with no persister running, runs a
// persister in a child process (test run) that is killed half way through
// a batch, then persists the rest here and checks the store. open opens
// the store in this process; release lets the child have it.
func runCrash(t *testing.T, run string, childEnv []string, open func() message.Store, release func()) {
	ns := bustest.MustServer(t)
	store := open()
	mlog := mustLog(t, ns, crashLogConfig)
	ids, err := snowflake.New(3, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := message.NewService(message.Config{Store: store, Access: allowAll{}, Log: mlog, Publisher: &recorder{}, IDs: ids, Cache: newMemCache()})
	ctx := t.Context()
	const ch, n = 1, 300
	want := map[uint64]message.Message{} // the final state, by ID
	var order []uint64                   // IDs in seq order
	for i := range n {
		m, err := svc.Send(ctx, 10+uint64(i%3), ch, fmt.Sprintf("m%d", i+1), fmt.Sprintf("nonce-%d", i))
		if err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		want[m.ID] = m
		order = append(order, m.ID)
		switch {
		case i%10 == 4:
			e, err := svc.Edit(ctx, m.AuthorID, ch, m.ID, m.Content+" (edited)")
			if err != nil {
				t.Fatalf("Edit: %v", err)
			}
			want[m.ID] = e
		case i%10 == 7:
			if err := svc.Delete(ctx, m.AuthorID, ch, order[i-1]); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			delete(want, order[i-1])
		}
	}
	release()

	// A persister in another process, killed half way through a batch.
	cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.v")
	cmd.Env = append(append(os.Environ(), crashChildEnv+"=1", "GH_NATS_URL="+ns.ClientURL()), childEnv...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	found := false
	for lines.Scan() {
		if strings.Contains(lines.Text(), crashMarker) {
			found = true
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !found {
		t.Fatalf("the child persister never got to its third batch")
	}

	// Restarted: a persister in this process finishes the work.
	store = open()
	half, err := store.List(ctx, ch, message.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(half) == 0 || len(half) >= len(want) {
		t.Fatalf("after the crash the store holds %d messages; want some, not all", len(half))
	}
	mustPersister(t, message.PersisterConfig{Source: mustLog(t, ns, crashLogConfig), Store: store, BatchSize: 50})
	settle(t, mlog)
	got, err := store.List(ctx, ch, message.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(got)
	var wantOrder []uint64
	for _, id := range order {
		if _, ok := want[id]; ok {
			wantOrder = append(wantOrder, id)
		}
	}
	var gotOrder []uint64
	for _, m := range got {
		gotOrder = append(gotOrder, m.ID)
		w := want[m.ID]
		if m.Content != w.Content || m.Seq != w.Seq || !m.EditedAt.Equal(w.EditedAt) || m.Nonce != w.Nonce {
			t.Errorf("stored %+v, want %+v", m, w)
		}
	}
	if !slices.Equal(gotOrder, wantOrder) {
		t.Fatalf("stored %d messages %v,\nwant %d %v", len(gotOrder), gotOrder, len(wantOrder), wantOrder)
	}
	if seq, id, err := store.Last(ctx, ch); err != nil || seq != n || id != order[n-1] {
		t.Errorf("Last = %d, %d, %v; want %d, %d", seq, id, err, n, order[n-1])
	}
}

func openPebbleChild(t *testing.T) message.Store {
	db, err := pebbledb.Open(os.Getenv("GH_PEBBLE_DIR"), &pebbledb.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	return messagepebble.New(db)
}

func openCQLChild(t *testing.T) message.Store {
	s, err := cqldb.Open(t.Context(), cqldb.Config{Hosts: cqltest.Hosts(t), Keyspace: os.Getenv("GH_CQL_KEYSPACE"), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return messagecql.New(s)
}

// crashChild is the persister process of the crash tests.
func crashChild(t *testing.T, open func(t *testing.T) message.Store) {
	store := open(t)
	nc, err := nats.Connect(os.Getenv("GH_NATS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	mlog, err := messagejs.New(t.Context(), nc, crashLogConfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := message.StartPersister(message.PersisterConfig{
		Source: mlog, Store: &halfStore{Store: store}, BatchSize: 50, BatchWait: 50 * time.Millisecond,
	}); err != nil {
		t.Fatal(err)
	}
	select {} // until killed
}
