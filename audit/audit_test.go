package audit_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/audit"
	"github.com/guildhall/guildhall/audit/audittest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// memStore is an audit.Store in memory that records how it is called.
type memStore struct {
	mu      sync.Mutex
	entries []audit.Entry
	fail    error    // returned by every call when set
	ctxErrs []error  // ctx.Err() of each Append
	reasons []string // audit.ReasonFrom(ctx) of each Append
	queries []audit.Query
	prunes  []time.Time // olderThan of each Prune
}

var _ audit.Store = (*memStore)(nil)

func (s *memStore) Append(ctx context.Context, e audit.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctxErrs = append(s.ctxErrs, ctx.Err())
	s.reasons = append(s.reasons, audit.ReasonFrom(ctx))
	if s.fail != nil {
		return s.fail
	}
	if e.ID == 0 {
		return guildhall.E("memStore.Append", guildhall.Invalid, "entry without ID")
	}
	for _, old := range s.entries {
		if old.ServerID == e.ServerID && old.ID == e.ID {
			return guildhall.E("memStore.Append", guildhall.Conflict, "entry ID taken")
		}
	}
	e.Changes = slices.Clone(e.Changes)
	s.entries = append(s.entries, e)
	return nil
}

func (s *memStore) List(_ context.Context, serverID uint64, q audit.Query) ([]audit.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries = append(s.queries, q)
	if s.fail != nil {
		return nil, s.fail
	}
	limit := min(max(q.Limit, 1), audit.MaxLimit)
	sorted := slices.SortedFunc(slices.Values(s.entries), func(a, b audit.Entry) int { return cmp.Compare(b.ID, a.ID) })
	out := []audit.Entry{}
	for _, e := range sorted {
		if len(out) == limit {
			break
		}
		if e.ServerID == serverID && (q.Before == 0 || e.ID < q.Before) &&
			(q.ActorID == 0 || e.ActorID == q.ActorID) && (q.Action == "" || e.Action == q.Action) {
			e.Changes = slices.Clone(e.Changes)
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *memStore) Prune(_ context.Context, olderThan time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prunes = append(s.prunes, olderThan)
	if s.fail != nil {
		return 0, s.fail
	}
	n := len(s.entries)
	s.entries = slices.DeleteFunc(s.entries, func(e audit.Entry) bool { return e.CreatedAt.Before(olderThan) })
	return n - len(s.entries), nil
}

func (s *memStore) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *memStore) pruneCalls() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.prunes)
}

// The fake passes the suite, which keeps the suite honest about what it
// asks of a store.
func TestMemStore(t *testing.T) {
	audittest.Run(t, func(*testing.T) audit.Store { return &memStore{} })
}

// counter is an ID source: 1, 2, 3...
type counter struct{ n atomic.Uint64 }

func (c *counter) Next() uint64 { return c.n.Add(1) }

// clock is an injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// logBuffer collects a Log's process log; it is safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewTextHandler(buf, nil)), buf
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func listAll(t *testing.T, l *audit.Log, serverID uint64) []audit.Entry {
	t.Helper()
	es, err := l.List(t.Context(), serverID, audit.Query{Limit: audit.MaxLimit})
	if err != nil {
		t.Fatalf("List(%d): %v", serverID, err)
	}
	return es
}

func TestRecord(t *testing.T) {
	st := &memStore{}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	clk := newClock(base.In(paris))
	l := audit.NewLog(st, &counter{}, clk.Now, nil, 0)

	changes := []audit.Change{{Key: "name", Old: `"old"`, New: `"new"`}}
	l.Record(t.Context(), audit.Entry{ID: 999, ServerID: 1000, ActorID: 100, Action: audit.ChannelUpdate, TargetID: 2000,
		Changes: changes, CreatedAt: base.Add(-time.Hour)})
	clk.Set(base.Add(time.Minute))
	l.Record(audit.WithReason(t.Context(), "cleanup"), audit.Entry{ServerID: 1000, ActorID: 101, Action: audit.RoleDelete, TargetID: 3000})

	want := []audit.Entry{
		{ID: 2, ServerID: 1000, ActorID: 101, Action: audit.RoleDelete, TargetID: 3000, Reason: "cleanup", CreatedAt: base.Add(time.Minute)},
		{ID: 1, ServerID: 1000, ActorID: 100, Action: audit.ChannelUpdate, TargetID: 2000, Changes: changes, CreatedAt: base},
	}
	got := listAll(t, l, 1000)
	if len(got) != len(want) {
		t.Fatalf("List = %+v\nwant %+v", got, want)
	}
	for i := range got {
		if !audittest.Equal(got[i], want[i]) {
			t.Errorf("List[%d] = %+v\nwant %+v", i, got[i], want[i])
		}
		if got[i].CreatedAt.Location() != time.UTC {
			t.Errorf("List[%d].CreatedAt is in %v, want UTC", i, got[i].CreatedAt.Location())
		}
	}
}

func TestRecordReason(t *testing.T) {
	ascii := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		name          string
		ctx, explicit string
		want          string
	}{
		{"none", "", "", ""},
		{"from context", "banned for spam", "", "banned for spam"},
		{"explicit wins", "from header", "from service", "from service"},
		{"max", ascii(512), "", ascii(512)},
		{"one over", ascii(513), "", ascii(512)},
		{"explicit one over", "", ascii(600), ascii(512)},
		{"2-byte rune across the limit", ascii(511) + "é", "", ascii(511)},
		{"2-byte rune at the limit", ascii(510) + "éé", "", ascii(510) + "é"},
		{"3-byte rune across the limit", ascii(510) + "€", "", ascii(510)},
		{"3-byte rune across the limit by one", ascii(511) + "€", "", ascii(511)},
		{"4-byte rune across the limit", ascii(509) + "😀", "", ascii(509)},
		{"4-byte rune at the limit", ascii(508) + "😀x", "", ascii(508) + "😀"},
		{"all runes", strings.Repeat("😀", 200), "", strings.Repeat("😀", 128)},
		{"mixed runes", strings.Repeat("é€😀", 100), "", strings.Repeat("é€😀", 56) + "é€"},
		{"invalid bytes kept", ascii(511) + "\x80\x80\x80", "", ascii(511) + "\x80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &memStore{}
			l := audit.NewLog(st, &counter{}, func() time.Time { return base }, nil, 0)
			ctx := t.Context()
			if tc.ctx != "" {
				ctx = audit.WithReason(ctx, tc.ctx)
			}
			l.Record(ctx, audit.Entry{ServerID: 1, ActorID: 2, Action: audit.MemberBanAdd, Reason: tc.explicit})
			es := listAll(t, l, 1)
			if len(es) != 1 {
				t.Fatalf("List = %+v, want one entry", es)
			}
			if got := es[0].Reason; got != tc.want {
				t.Errorf("Reason = %q (%d bytes), want %q (%d bytes)", got, len(got), tc.want, len(tc.want))
			}
			if len(es[0].Reason) > audit.MaxReason {
				t.Errorf("Reason is %d bytes, over %d", len(es[0].Reason), audit.MaxReason)
			}
			if utf8.ValidString(tc.ctx+tc.explicit) && !utf8.ValidString(es[0].Reason) {
				t.Errorf("Reason %q is not valid UTF-8", es[0].Reason)
			}
		})
	}
}

func TestReasonFrom(t *testing.T) {
	ctx := t.Context()
	if r := audit.ReasonFrom(ctx); r != "" {
		t.Errorf("ReasonFrom(no reason) = %q", r)
	}
	ctx = audit.WithReason(ctx, "first")
	if r := audit.ReasonFrom(ctx); r != "first" {
		t.Errorf("ReasonFrom = %q, want first", r)
	}
	if r := audit.ReasonFrom(audit.WithReason(ctx, "second")); r != "second" {
		t.Errorf("ReasonFrom(inner) = %q, want second", r)
	}
	// Another package's string value under a look-alike key is not a reason.
	type reasonKey struct{}
	if r := audit.ReasonFrom(context.WithValue(t.Context(), reasonKey{}, "spoof")); r != "" {
		t.Errorf("ReasonFrom(foreign key) = %q, want none", r)
	}
}

// The action has happened: a client that hung up does not lose its entry.
func TestRecordCancelledContext(t *testing.T) {
	st := &memStore{}
	l := audit.NewLog(st, &counter{}, func() time.Time { return base }, nil, 0)
	ctx, cancel := context.WithCancel(audit.WithReason(t.Context(), "why"))
	cancel()
	l.Record(ctx, audit.Entry{ServerID: 1, ActorID: 2, Action: audit.MemberKick, TargetID: 3})
	if len(st.ctxErrs) != 1 || st.ctxErrs[0] != nil {
		t.Errorf("Append saw ctx errors %v, want one nil", st.ctxErrs)
	}
	if len(st.reasons) != 1 || st.reasons[0] != "why" {
		t.Errorf("Append saw reasons %q, want the context's values kept", st.reasons)
	}
	if es := listAll(t, l, 1); len(es) != 1 || es[0].Reason != "why" {
		t.Errorf("List = %+v, want the entry", es)
	}
}

func TestRecordFailureIsLogged(t *testing.T) {
	st := &memStore{}
	log, buf := newLogger()
	l := audit.NewLog(st, &counter{}, func() time.Time { return base }, log, 0)
	st.setFail(errors.New("disk on fire"))
	l.Record(audit.WithReason(t.Context(), "raid"), audit.Entry{ServerID: 1000, ActorID: 100, Action: audit.RoleUpdate, TargetID: 3000,
		Changes: []audit.Change{{Key: "color", Old: "0", New: "255"}}})
	out := buf.String()
	for _, want := range []string{"level=ERROR", "entry lost", "disk on fire", "id=1", "server=1000", "actor=100",
		"action=role_update", "target=3000", "changes.color.old=0", "changes.color.new=255", "reason=raid"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q does not contain %q", out, want)
		}
	}
}

func TestRecordBadEntryDropped(t *testing.T) {
	st := &memStore{}
	log, buf := newLogger()
	l := audit.NewLog(st, &counter{}, func() time.Time { return base }, log, 0)
	l.Record(t.Context(), audit.Entry{ActorID: 100, Action: audit.RoleUpdate})
	l.Record(t.Context(), audit.Entry{ServerID: 1, ActorID: 100, Action: "role_rename"})
	l.Record(t.Context(), audit.Entry{ServerID: 1, ActorID: 100})
	if len(st.ctxErrs) != 0 {
		t.Errorf("store got %d appends, want none", len(st.ctxErrs))
	}
	if n := strings.Count(buf.String(), "entry dropped"); n != 3 {
		t.Errorf("log has %d dropped entries, want 3:\n%s", n, buf.String())
	}
}

func TestNilLog(t *testing.T) {
	var l *audit.Log
	l.Record(audit.WithReason(t.Context(), "x"), audit.Entry{ServerID: 1, ActorID: 2, Action: audit.MemberKick})
	es, err := l.List(t.Context(), 1, audit.Query{})
	if err != nil || es == nil || len(es) != 0 {
		t.Errorf("nil Log List = %v, %v; want an empty list", es, err)
	}
	_, err = l.List(t.Context(), 1, audit.Query{Limit: audit.MaxLimit + 1})
	if guildhall.KindOf(err) != guildhall.Invalid {
		t.Errorf("nil Log List(bad limit) error = %v, want invalid", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		l.Run(ctx)
		close(done)
	}()
	cancel()
	<-done
}

func TestListValidation(t *testing.T) {
	st := &memStore{}
	l := audit.NewLog(st, &counter{}, nil, nil, 0)
	for _, tc := range []struct {
		serverID  uint64
		q         audit.Query
		wantLimit int // the limit the store gets; 0 if Invalid
	}{
		{1, audit.Query{}, audit.DefaultLimit},
		{1, audit.Query{Limit: 1}, 1},
		{1, audit.Query{Limit: audit.MaxLimit}, audit.MaxLimit},
		{1, audit.Query{Limit: 7, Before: 5, ActorID: 9, Action: audit.MemberBanRemove}, 7},
		{1, audit.Query{Limit: audit.MaxLimit + 1}, 0},
		{1, audit.Query{Limit: -1}, 0},
		{1, audit.Query{Action: "member_ban"}, 0},
		{1, audit.Query{Action: "SERVER_UPDATE"}, 0},
		{0, audit.Query{}, 0},
	} {
		st.queries = nil
		_, err := l.List(t.Context(), tc.serverID, tc.q)
		if tc.wantLimit == 0 {
			if guildhall.KindOf(err) != guildhall.Invalid {
				t.Errorf("List(%d, %+v) error = %v, want invalid", tc.serverID, tc.q, err)
			}
			if len(st.queries) != 0 {
				t.Errorf("List(%d, %+v) reached the store", tc.serverID, tc.q)
			}
			continue
		}
		if err != nil {
			t.Errorf("List(%d, %+v): %v", tc.serverID, tc.q, err)
			continue
		}
		want := tc.q
		want.Limit = tc.wantLimit
		if len(st.queries) != 1 || st.queries[0] != want {
			t.Errorf("List(%d, %+v) asked the store %+v, want %+v", tc.serverID, tc.q, st.queries, want)
		}
	}

	st.setFail(guildhall.E("store", guildhall.Unavailable, "down"))
	_, err := l.List(t.Context(), 1, audit.Query{})
	if guildhall.KindOf(err) != guildhall.Unavailable {
		t.Errorf("List(store down) error = %v, want unavailable", err)
	}
}

func TestActionValid(t *testing.T) {
	all := []audit.Action{audit.ServerUpdate, audit.ChannelCreate, audit.ChannelUpdate, audit.ChannelDelete,
		audit.OverwriteUpdate, audit.OverwriteDelete, audit.RoleCreate, audit.RoleUpdate, audit.RoleDelete,
		audit.MemberRoleAdd, audit.MemberRoleRemove, audit.MemberKick, audit.MemberBanAdd, audit.MemberBanRemove,
		audit.MemberUpdate, audit.InviteCreate}
	seen := map[audit.Action]bool{}
	for _, a := range all {
		if !a.Valid() {
			t.Errorf("%q is not valid", a)
		}
		if seen[a] {
			t.Errorf("%q twice", a)
		}
		seen[a] = true
	}
	for _, a := range []audit.Action{"", "server", "Server_Update", "server_update "} {
		if a.Valid() {
			t.Errorf("%q is valid", a)
		}
	}
}

// Run prunes at start and then every PruneEvery, going by the injected
// clock, and returns when its context is cancelled. The test runs in a
// synctest bubble, where the hour-long ticker fires as soon as everything
// else is blocked.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &memStore{}
		clk := newClock(base.Add(-100 * 24 * time.Hour))
		log, buf := newLogger()
		l := audit.NewLog(st, &counter{}, clk.Now, log, 0)
		l.Record(t.Context(), audit.Entry{ServerID: 1, ActorID: 2, Action: audit.RoleCreate}) // 100 days old at base
		clk.Set(base.Add(-90*24*time.Hour + 30*time.Minute))
		l.Record(t.Context(), audit.Entry{ServerID: 1, ActorID: 2, Action: audit.RoleUpdate}) // expires 30 minutes after base
		clk.Set(base)
		l.Record(t.Context(), audit.Entry{ServerID: 1, ActorID: 2, Action: audit.RoleDelete})

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			l.Run(ctx)
			close(done)
		}()
		synctest.Wait()
		wantTimes(t, "prunes at start", st.pruneCalls(), base.Add(-audit.DefaultRetention))
		wantIDs(t, listAll(t, l, 1), 3, 2)
		if !strings.Contains(buf.String(), "deleted=1") {
			t.Errorf("log %q does not tell the prune", buf.String())
		}

		clk.Set(base.Add(time.Hour))
		time.Sleep(audit.PruneEvery - time.Second)
		synctest.Wait()
		if n := len(st.pruneCalls()); n != 1 {
			t.Errorf("%d prunes before the first hour is over, want 1", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		wantTimes(t, "prunes after an hour", st.pruneCalls(),
			base.Add(-audit.DefaultRetention), base.Add(time.Hour-audit.DefaultRetention))
		wantIDs(t, listAll(t, l, 1), 3)

		// A failed prune is logged and the loop goes on.
		st.setFail(errors.New("compaction stuck"))
		time.Sleep(audit.PruneEvery)
		synctest.Wait()
		if !strings.Contains(buf.String(), "compaction stuck") {
			t.Errorf("log %q does not tell the failed prune", buf.String())
		}
		st.setFail(nil)
		time.Sleep(audit.PruneEvery)
		synctest.Wait()
		if n := len(st.pruneCalls()); n != 4 {
			t.Errorf("%d prunes after 3 hours, want 4", n)
		}

		cancel()
		<-done // Run returns; the bubble also fails if it leaked a goroutine
	})
}

func TestRunRetention(t *testing.T) {
	for _, tc := range []struct {
		retention time.Duration
		want      []time.Time
	}{
		{time.Hour, []time.Time{base.Add(-time.Hour), base.Add(time.Hour)}},
		{-1, nil},
	} {
		synctest.Test(t, func(t *testing.T) {
			st := &memStore{}
			clk := newClock(base)
			l := audit.NewLog(st, &counter{}, clk.Now, nil, tc.retention)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() {
				l.Run(ctx)
				close(done)
			}()
			synctest.Wait()
			clk.Set(base.Add(2 * time.Hour))
			time.Sleep(audit.PruneEvery)
			synctest.Wait()
			wantTimes(t, "prunes", st.pruneCalls(), tc.want...)
			select {
			case <-done:
				t.Errorf("Run(retention %v) returned before its context was cancelled", tc.retention)
			default:
			}
			cancel()
			<-done
		})
	}
}

func wantTimes(t *testing.T, what string, got []time.Time, want ...time.Time) {
	t.Helper()
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("%s: got %v\nwant %v", what, got, want)
	}
}

func wantIDs(t *testing.T, es []audit.Entry, want ...uint64) {
	t.Helper()
	got := make([]uint64, 0, len(es))
	for _, e := range es {
		got = append(got, e.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("IDs = %v, want %v", got, want)
	}
}
