package pebble_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/member"
	"github.com/guildhall/guildhall/member/membertest"
	"github.com/guildhall/guildhall/member/pebble"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mustOpen opens a Pebble database in dir and closes it when tb ends.
func mustOpen(tb testing.TB, dir string) *pebbledb.DB {
	tb.Helper()
	db := open(tb, dir)
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close pebble: %v", err)
		}
	})
	return db
}

// open opens a Pebble database in dir; the caller closes it.
func open(tb testing.TB, dir string) *pebbledb.DB {
	tb.Helper()
	db, err := pebbledb.Open(dir, &pebbledb.Options{Logger: quietLogger{}})
	if err != nil {
		tb.Fatalf("open pebble: %v", err)
	}
	return db
}

// quietLogger drops Pebble's informational messages (WAL recovery, ...).
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	pebbledb.DefaultLogger.Errorf(format, args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	pebbledb.DefaultLogger.Fatalf(format, args...)
}

func TestStore(t *testing.T) {
	membertest.Run(t, func(t *testing.T) member.Store {
		return pebble.New(mustOpen(t, t.TempDir()))
	})
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	s := pebble.New(db)
	alice := membertest.MustUser(t, s, 101, "Alice")
	bob := membertest.MustUser(t, s, 102, "bob")
	membertest.MustServer(t, s, 1000, alice, 1001, 1002)
	inv := membertest.MustInvite(t, s, "code", 1000, alice.ID, 5, time.Time{})
	membertest.MustJoin(t, s, inv.Code, bob, time.Minute)
	tok := member.Token{Hash: [32]byte{1, 2, 3}, UserID: alice.ID, CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	if err := s.CreateToken(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMember(t.Context(), member.Member{ServerID: 1000, UserID: bob.ID, Nick: "Bobby"}); err != nil {
		t.Fatal(err)
	}
	synced := member.Channel{ID: 1003, ServerID: 1000, Name: "synced", ParentID: 1001, Synced: true, CreatedAt: base}
	if err := s.CreateChannel(t.Context(), synced); err != nil {
		t.Fatal(err)
	}
	carol := membertest.MustUser(t, s, 103, "carol")
	membertest.MustBan(t, s, 1000, carol, alice.ID, "spam", time.Hour)
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s = pebble.New(mustOpen(t, dir))
	ctx := t.Context()
	u, hash, err := s.UserByName(ctx, "ALICE")
	if err != nil || u.ID != alice.ID || string(hash) != "hash:Alice" {
		t.Errorf("UserByName after reopen = %+v, %q, %v", u, hash, err)
	}
	if got, err := s.Token(ctx, tok.Hash); err != nil || got.UserID != alice.ID || !got.ExpiresAt.Equal(tok.ExpiresAt) {
		t.Errorf("Token after reopen = %+v, %v", got, err)
	}
	if cs, err := s.Channels(ctx, 1000); err != nil || len(cs) != 3 {
		t.Errorf("Channels after reopen = %v, %v", cs, err)
	}
	if c, err := s.Channel(ctx, synced.ID); err != nil || !c.Synced {
		t.Errorf("Channel(synced) after reopen = %+v, %v", c, err)
	}
	if m, err := s.Member(ctx, 1000, bob.ID); err != nil || m.Nick != "Bobby" {
		t.Errorf("Member(bob) after reopen = %+v, %v", m, err)
	}
	if b, err := s.BanOf(ctx, 1000, carol.ID); err != nil || b.Reason != "spam" || b.ActorID != alice.ID {
		t.Errorf("BanOf(carol) after reopen = %+v, %v", b, err)
	}
	_, err = s.JoinByInvite(ctx, inv.Code, member.Member{UserID: carol.ID, Username: carol.Username, JoinedAt: base.Add(2 * time.Hour)})
	if guildhall.KindOf(err) != guildhall.Forbidden {
		t.Errorf("JoinByInvite(banned) after reopen = %v, want forbidden", err)
	}
	if n, err := s.MemberCount(ctx, 1000); err != nil || n != 2 {
		t.Errorf("MemberCount after reopen = %d, %v", n, err)
	}
	if ms, err := s.Members(ctx, 1000, member.MemberQuery{Prefix: "b", Limit: 10}); err != nil || len(ms) != 1 || ms[0].UserID != bob.ID {
		t.Errorf("Members(b) after reopen = %v, %v", ms, err)
	}
	if servers, err := s.ServersOf(ctx, bob.ID); err != nil || len(servers) != 1 {
		t.Errorf("ServersOf after reopen = %v, %v", servers, err)
	}
	if got, err := s.Invite(ctx, inv.Code); err != nil || got.Uses != 1 {
		t.Errorf("Invite after reopen = %+v, %v", got, err)
	}
	err = s.CreateUser(ctx, member.User{ID: 104, Username: "BOB", CreatedAt: base}, nil)
	if guildhall.KindOf(err) != guildhall.Conflict {
		t.Errorf("CreateUser(BOB) after reopen = %v, want conflict", err)
	}
}

// A name-ordered page must go on where it stopped even if the member it
// stopped at has left since.
func TestPrefixCursorAfterLeave(t *testing.T) {
	s := pebble.New(mustOpen(t, t.TempDir()))
	ctx := t.Context()
	owner := membertest.MustUser(t, s, 100, "owner")
	membertest.MustServer(t, s, 1000, owner)
	inv := membertest.MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})
	for i, name := range []string{"ann", "anna", "annabel", "annie"} {
		membertest.MustJoin(t, s, inv.Code, membertest.MustUser(t, s, uint64(200-i), name), time.Minute)
	}
	page, err := s.Members(ctx, 1000, member.MemberQuery{Prefix: "ann", Limit: 2})
	if err != nil || len(page) != 2 || page[1].Username != "anna" {
		t.Fatalf("first page = %v, %v", page, err)
	}
	if err := s.RemoveMember(ctx, 1000, page[1].UserID); err != nil {
		t.Fatal(err)
	}
	page, err = s.Members(ctx, 1000, member.MemberQuery{Prefix: "ann", After: page[1].UserID, Limit: 2})
	if err != nil || len(page) != 2 || page[0].Username != "annabel" || page[1].Username != "annie" {
		t.Errorf("page after a member who left = %v, %v", page, err)
	}
	_, err = s.Members(ctx, 1000, member.MemberQuery{Prefix: "ann", After: 999, Limit: 2})
	if guildhall.KindOf(err) != guildhall.Invalid {
		t.Errorf("Members(after unknown user) error = %v, want invalid", err)
	}
}

// Usernames are arbitrary bytes to the store: a NUL must not break the
// (name, ID) order or the prefix ranges.
func TestPrefixOrderWithOddBytes(t *testing.T) {
	s := pebble.New(mustOpen(t, t.TempDir()))
	ctx := t.Context()
	owner := membertest.MustUser(t, s, 100, "zz")
	membertest.MustServer(t, s, 1000, owner)
	inv := membertest.MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})
	names := map[uint64]string{201: "a", 202: "a\x00", 203: "a\x00b", 204: "a\x01", 205: "ab", 206: "a\xff"}
	for _, id := range []uint64{206, 201, 205, 203, 202, 204} {
		membertest.MustJoin(t, s, inv.Code, membertest.MustUser(t, s, id, names[id]), time.Minute)
	}
	for _, tc := range []struct {
		prefix string
		after  uint64
		want   []uint64
	}{
		{"a", 0, []uint64{201, 202, 203, 204, 205, 206}},
		{"a", 202, []uint64{203, 204, 205, 206}},
		{"a\x00", 0, []uint64{202, 203}},
		{"a\x00", 202, []uint64{203}},
		{"a\x01", 0, []uint64{204}},
		{"a\xff", 0, []uint64{206}},
	} {
		ms, err := s.Members(ctx, 1000, member.MemberQuery{Prefix: tc.prefix, After: tc.after, Limit: 10})
		if err != nil {
			t.Fatalf("Members(%q): %v", tc.prefix, err)
		}
		var got []uint64
		for _, m := range ms {
			got = append(got, m.UserID)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Members(%q after %d) = %v, want %v", tc.prefix, tc.after, got, tc.want)
		}
	}
}

func TestDeleteCategoryFreesChildren(t *testing.T) {
	s := pebble.New(mustOpen(t, t.TempDir()))
	ctx := t.Context()
	owner := membertest.MustUser(t, s, 100, "owner")
	membertest.MustServer(t, s, 1000, owner)
	cat := member.Channel{ID: 1001, ServerID: 1000, Name: "cat", Type: member.ChannelCategory, CreatedAt: base}
	child := member.Channel{ID: 1002, ServerID: 1000, Name: "child", ParentID: cat.ID, Position: 1, CreatedAt: base}
	for _, c := range []member.Channel{cat, child} {
		if err := s.CreateChannel(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteChannel(ctx, cat.ID); err != nil {
		t.Fatal(err)
	}
	got, err := s.Channel(ctx, child.ID)
	if err != nil || got.ParentID != 0 {
		t.Errorf("child after its category was deleted = %+v, %v; want no parent", got, err)
	}
	list, err := s.Channels(ctx, 1000)
	if err != nil || len(list) != 1 || list[0].ParentID != 0 {
		t.Errorf("Channels = %+v, %v; want the child without parent", list, err)
	}
}

// A join racing a ban of the same user ends with the user banned and not a
// member, whichever runs first, and the count agrees.
func TestJoinRacesBan(t *testing.T) {
	s := pebble.New(mustOpen(t, t.TempDir()))
	ctx := t.Context()
	owner := membertest.MustUser(t, s, 100, "owner")
	membertest.MustServer(t, s, 1000, owner)
	inv := membertest.MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})
	const n = 20
	var users []member.User
	for i := range n {
		users = append(users, membertest.MustUser(t, s, uint64(200+i), fmt.Sprintf("user%d", i)))
	}
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			_, err := s.JoinByInvite(ctx, inv.Code, member.Member{UserID: u.ID, Username: u.Username, JoinedAt: base})
			if err != nil && guildhall.KindOf(err) != guildhall.Forbidden {
				t.Errorf("JoinByInvite(%d): %v", u.ID, err)
			}
		})
		wg.Go(func() {
			if err := s.Ban(ctx, member.Ban{ServerID: 1000, UserID: u.ID, Username: u.Username, ActorID: owner.ID, CreatedAt: base}); err != nil {
				t.Errorf("Ban(%d): %v", u.ID, err)
			}
		})
	}
	wg.Wait()
	for _, u := range users {
		if _, err := s.Member(ctx, 1000, u.ID); guildhall.KindOf(err) != guildhall.NotFound {
			t.Errorf("Member(%d) after join and ban: %v, want not found", u.ID, err)
		}
	}
	if n, err := s.MemberCount(ctx, 1000); err != nil || n != 1 {
		t.Errorf("MemberCount = %d, %v; want only the owner", n, err)
	}
	if bans, err := s.Bans(ctx, 1000, 0, 100); err != nil || len(bans) != n {
		t.Errorf("Bans = %d bans, %v; want %d", len(bans), err, n)
	}
}

func TestLimitClamped(t *testing.T) {
	s := pebble.New(mustOpen(t, t.TempDir()))
	owner := membertest.MustUser(t, s, 100, "owner")
	membertest.MustServer(t, s, 1000, owner)
	inv := membertest.MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})
	membertest.MustJoin(t, s, inv.Code, membertest.MustUser(t, s, 101, "x"), time.Minute)
	for _, limit := range []int{0, -1} {
		ms, err := s.Members(t.Context(), 1000, member.MemberQuery{Limit: limit})
		if err != nil || len(ms) != 1 {
			t.Errorf("Members(limit %d) = %v, %v; want one member", limit, ms, err)
		}
	}
}

// BenchmarkMembersPrefix is mention completion: the first 25 members whose
// name starts with a prefix, in a server of 20,000. The database is in
// memory so that loading it does not wait for 40,000 fsyncs; reads do not
// sync anyway.
func BenchmarkMembersPrefix(b *testing.B) {
	db, err := pebbledb.Open("", &pebbledb.Options{FS: vfs.NewMem(), Logger: quietLogger{}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := pebble.New(db)
	owner := membertest.MustUser(b, s, 1, "owner")
	membertest.MustServer(b, s, 1000, owner)
	inv := membertest.MustInvite(b, s, "open", 1000, owner.ID, 0, time.Time{})
	const n = 20000
	for i := range n {
		u := membertest.MustUser(b, s, uint64(10+i), fmt.Sprintf("user%05d", i))
		membertest.MustJoin(b, s, inv.Code, u, time.Second)
	}
	q := member.MemberQuery{Prefix: "user12", Limit: 25}
	for b.Loop() {
		ms, err := s.Members(b.Context(), 1000, q)
		if err != nil || len(ms) != 25 {
			b.Fatalf("Members = %d, %v", len(ms), err)
		}
	}
}
