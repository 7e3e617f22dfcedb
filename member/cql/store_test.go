package cql_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/scylladb/gocqlx/v2"
	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/internal/cqldb/cqltest"
	"github.com/guildhall/guildhall/member"
	"github.com/guildhall/guildhall/member/cql"
	"github.com/guildhall/guildhall/member/membertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestStore runs the conformance suite and the CQL-specific tests on one
// keyspace, emptied before each subtest: creating a keyspace and its tables
// costs several seconds of DDL, emptying it a fraction of one.
func TestStore(t *testing.T) {
	sess := cqltest.MustSession(t, cql.Component, cql.Migrations)
	newStore := func(t *testing.T) *cql.Store {
		mustEmpty(t, sess)
		return cql.New(sess)
	}
	t.Run("Conformance", func(t *testing.T) {
		membertest.Run(t, func(t *testing.T) member.Store { return newStore(t) })
	})
	for _, tt := range []struct {
		name string
		fn   func(*testing.T, *cql.Store, gocqlx.Session)
	}{
		{"ConcurrentUsername", testConcurrentUsername},
		{"ConcurrentJoinOneUse", testConcurrentJoinOneUse},
		{"ConcurrentJoinSameUser", testConcurrentJoinSameUser},
		{"ConcurrentRemove", testConcurrentRemove},
		{"JoinRacesBan", testJoinRacesBan},
		{"DanglingIndexRows", testDanglingIndexRows},
		{"StaleUsernameClaim", testStaleUsernameClaim},
		{"TokenTTL", testTokenTTL},
		{"PrefixCursorAfterLeave", testPrefixCursorAfterLeave},
		{"PrefixUnicode", testPrefixUnicode},
		{"DeleteCategoryFreesChildren", testDeleteCategoryFreesChildren},
		{"IDOutOfRange", testIDOutOfRange},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t), sess) })
	}
}

// mustEmpty deletes every partition of every table of the session's
// keyspace but schema_migrations.
func mustEmpty(tb testing.TB, sess gocqlx.Session) {
	tb.Helper()
	ctx := tb.Context()
	keyspace := sess.Query(`SELECT release_version FROM system.local`, nil).Keyspace()
	var cols []struct {
		TableName  string `db:"table_name"`
		ColumnName string `db:"column_name"`
		Kind       string `db:"kind"`
	}
	err := sess.ContextQuery(ctx, `SELECT table_name, column_name, kind FROM system_schema.columns WHERE keyspace_name = ?`, nil).
		Bind(keyspace).SelectRelease(&cols)
	if err != nil {
		tb.Fatalf("read schema: %v", err)
	}
	keys := map[string][]string{}
	for _, c := range cols {
		if c.Kind == "partition_key" && c.TableName != "schema_migrations" {
			keys[c.TableName] = append(keys[c.TableName], c.ColumnName)
		}
	}
	var g errgroup.Group
	g.SetLimit(32)
	for table, k := range keys {
		if len(k) != 1 {
			tb.Fatalf("table %s: mustEmpty handles one partition key column, not %v", table, k)
		}
		rows, err := sess.ContextQuery(ctx, fmt.Sprintf(`SELECT DISTINCT %s FROM %s`, k[0], table), nil).Iter().SliceMap()
		if err != nil {
			tb.Fatalf("list %s: %v", table, err)
		}
		for _, row := range rows {
			g.Go(func() error {
				return sess.ContextQuery(ctx, fmt.Sprintf(`DELETE FROM %s WHERE %s = ?`, table, k[0]), nil).Bind(row[k[0]]).ExecRelease()
			})
		}
	}
	if err := g.Wait(); err != nil {
		tb.Fatalf("empty keyspace: %v", err)
	}
}

// Two registrations of one name, in different case, at once: one wins.
func testConcurrentUsername(t *testing.T, s *cql.Store, _ gocqlx.Session) {
	ctx := t.Context()
	for round := range 10 {
		names := []string{fmt.Sprintf("Racer%d", round), fmt.Sprintf("RACER%d", round)}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				u := member.User{ID: uint64(100*round + i + 1), Username: names[i], CreatedAt: base}
				errs[i] = s.CreateUser(ctx, u, []byte("hash"))
			})
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: both registrations of %q succeeded", round, names[0])
				}
				winner = i
			case guildhall.KindOf(err) != guildhall.Conflict:
				t.Fatalf("round %d: CreateUser(%q): %v, want nil or conflict", round, names[i], err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: both registrations failed: %v", round, errs)
		}
		u, _, err := s.UserByName(ctx, names[0])
		if err != nil || u.ID != uint64(100*round+winner+1) {
			t.Errorf("round %d: UserByName = %+v, %v; want user %d", round, u, err, 100*round+winner+1)
		}
		loser := uint64(100*round + (1 - winner) + 1)
		if _, err := s.User(ctx, loser); guildhall.KindOf(err) != guildhall.NotFound {
			t.Errorf("round %d: User(loser %d) = %v, want not found", round, loser, err)
		}
	}
}

// Many users on an invite with one use, at once: exactly one gets in.
func testConcurrentJoinOneUse(t *testing.T, s *cql.Store, _ gocqlx.Session) {
	ctx := t.Context()
	owner := membertest.MustUser(t, s, 1, "owner")
	const n = 8
	for round := range 3 {
		serverID := uint64(1000 * (round + 1))
		membertest.MustServer(t, s, serverID, owner)
		code := fmt.Sprintf("once%d", round)
		membertest.MustInvite(t, s, code, serverID, owner.ID, 1, time.Time{})
		var joined []uint64
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range n {
			u := member.User{ID: serverID + uint64(i) + 1, Username: fmt.Sprintf("u%d-%d", round, i)}
			wg.Go(func() {
				m, err := s.JoinByInvite(ctx, code, member.Member{UserID: u.ID, Username: u.Username, JoinedAt: base})
				switch {
				case err == nil:
					mu.Lock()
					joined = append(joined, m.UserID)
					mu.Unlock()
				case guildhall.KindOf(err) != guildhall.Forbidden:
					t.Errorf("JoinByInvite(user %d): %v, want nil or forbidden", u.ID, err)
				}
			})
		}
		wg.Wait()
		if len(joined) != 1 {
			t.Fatalf("round %d: %d users joined on a one-use invite: %v", round, len(joined), joined)
		}
		wantUses(t, s, code, 1)
		wantCount(t, s, serverID, 2)
		ms, err := s.Members(ctx, serverID, member.MemberQuery{Limit: 100})
		if err != nil || len(ms) != 2 || ms[0].UserID != owner.ID || ms[1].UserID != joined[0] {
			t.Errorf("round %d: Members = %v, %v; want the owner and user %d", round, ms, err, joined[0])
		}
	}
}

// One user joining many times at once becomes a member once, uses one use
// and is counted once.
func testConcurrentJoinSameUser(t *testing.T, s *cql.Store, _ gocqlx.Session) {
	ctx := t.Context()
	owner := membertest.MustUser(t, s, 1, "owner")
	membertest.MustServer(t, s, 1000, owner)
	membertest.MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})
	alice := membertest.MustUser(t, s, 2, "alice")
	const n = 8
	got := make([]member.Member, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m, err := s.JoinByInvite(ctx, "open", member.Member{UserID: alice.ID, Username: alice.Username, JoinedAt: base.Add(time.Duration(i) * time.Second)})
			if err != nil {
				t.Errorf("JoinByInvite #%d: %v", i, err)
			}
			got[i] = m
		})
	}
	wg.Wait()
	for i, m := range got {
		if !m.JoinedAt.Equal(got[0].JoinedAt) || m.ServerID != 1000 {
			t.Errorf("join #%d = %+v, join #0 = %+v; want one membership", i, m, got[0])
		}
	}
	wantUses(t, s, "open", 1)
	wantCount(t, s, 1000, 2)
	if ms, err := s.Members(ctx, 1000, member.MemberQuery{Prefix: "alice", Limit: 10}); err != nil || len(ms) != 1 {
		t.Errorf("Members(alice) = %v, %v; want her once", ms, err)
	}
}

// Removals of one member at once: one succeeds, the count drops by one.
func testConcurrentRemove(t *testing.T, s *cql.Store, _ gocqlx.Session) {
	ctx := t.Context()
	owner := membertest.MustUser(t, s, 1, "owner")
	membertest.MustServer(t, s, 1000, owner)
	membertest.MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})
	alice := membertest.MustUser(t, s, 2, "alice")
	membertest.MustJoin(t, s, "open", alice, time.Minute)
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.RemoveMember(ctx, 1000, alice.ID) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case guildhall.KindOf(err) != guildhall.NotFound:
			t.Errorf("RemoveMember: %v, want nil or not found", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d removals succeeded, want 1", ok)
	}
	wantCount(t, s, 1000, 1)
}

// A join racing a ban of the same user ends with the user banned and not a
// member, whichever runs first, and the count agrees.
func testJoinRacesBan(t *testing.T, s *cql.Store, _ gocqlx.Session) {
	ctx := t.Context()
	owner := membertest.MustUser(t, s, 100, "owner")
	membertest.MustServer(t, s, 1000, owner)
	membertest.MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})
	const n = 10
	var users []member.User
	for i := range n {
		users = append(users, membertest.MustUser(t, s, uint64(200+i), fmt.Sprintf("user%d", i)))
	}
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			_, err := s.JoinByInvite(ctx, "open", member.Member{UserID: u.ID, Username: u.Username, JoinedAt: base})
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
		if ss, err := s.ServersOf(ctx, u.ID); err != nil || len(ss) != 0 {
			t.Errorf("ServersOf(%d) = %v, %v; want none", u.ID, ss, err)
		}
	}
	wantCount(t, s, 1000, 1)
	if ms, err := s.Members(ctx, 1000, member.MemberQuery{Prefix: "user", Limit: 100}); err != nil || len(ms) != 0 {
		t.Errorf("Members(user) = %v, %v; want none", ms, err)
	}
	if bans, err := s.Bans(ctx, 1000, 0, 100); err != nil || len(bans) != n {
		t.Errorf("Bans = %d bans, %v; want %d", len(bans), err, n)
	}
}

// Index rows without the row they index, as a crash between the two writes
// leaves them, are skipped by every read.
func testDanglingIndexRows(t *testing.T, s *cql.Store, sess gocqlx.Session) {
	ctx := t.Context()
	owner := membertest.MustUser(t, s, 100, "owner")
	ghost := membertest.MustUser(t, s, 77, "ghost")
	membertest.MustServer(t, s, 1000, owner)
	membertest.MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})
	gina := membertest.MustJoin(t, s, "open", membertest.MustUser(t, s, 78, "gina"), time.Minute)
	now := time.Now().UnixMicro()
	for _, q := range []string{
		`INSERT INTO members_by_name (server_id, name_lower, user_id) VALUES (1000, 'ghost', 77) USING TIMESTAMP ?`,
		`INSERT INTO members_by_name (server_id, name_lower, user_id) VALUES (1000, 'gina-old-name', 78) USING TIMESTAMP ?`,
		`INSERT INTO servers_by_user (user_id, server_id) VALUES (77, 1000) USING TIMESTAMP ?`,
		`INSERT INTO servers_by_user (user_id, server_id) VALUES (77, 2000) USING TIMESTAMP ?`,
		`INSERT INTO bans (server_id, user_id) VALUES (1000, 77) USING TIMESTAMP ?`,
		`INSERT INTO bans (server_id, user_id) VALUES (1000, 78) USING TIMESTAMP ?`,
	} {
		if err := sess.ContextQuery(ctx, q, nil).Bind(now).ExecRelease(); err != nil {
			t.Fatal(err)
		}
	}
	wantIDs(t, "Members(g)", members(t, s, 1000, member.MemberQuery{Prefix: "g", Limit: 100}), gina.UserID)
	wantIDs(t, "Members(g, limit 1)", members(t, s, 1000, member.MemberQuery{Prefix: "g", Limit: 1}), gina.UserID)
	wantIDs(t, "Members(gh)", members(t, s, 1000, member.MemberQuery{Prefix: "gh", Limit: 100}))
	if ss, err := s.ServersOf(ctx, ghost.ID); err != nil || len(ss) != 0 {
		t.Errorf("ServersOf(ghost) = %v, %v; want none", ss, err)
	}
	if bans, err := s.Bans(ctx, 1000, 0, 100); err != nil || len(bans) != 0 {
		t.Errorf("Bans = %v, %v; want none", bans, err)
	}
	wantCount(t, s, 1000, 2)
	// The ghost can still join, and then shows up once.
	membertest.MustJoin(t, s, "open", ghost, time.Hour)
	wantIDs(t, "Members(g) after the ghost joined", members(t, s, 1000, member.MemberQuery{Prefix: "g", Limit: 100}), ghost.ID, gina.UserID)
	if ss, err := s.ServersOf(ctx, ghost.ID); err != nil || len(ss) != 1 || ss[0].ID != 1000 {
		t.Errorf("ServersOf(ghost) = %v, %v; want server 1000", ss, err)
	}
}

// A username claim whose user row never came (its CreateUser died between
// the two writes) blocks the name for staleClaim, then gives way.
func testStaleUsernameClaim(t *testing.T, s *cql.Store, sess gocqlx.Session) {
	ctx := t.Context()
	claim := func(name string, id int64, at time.Time) {
		t.Helper()
		err := sess.ContextQuery(ctx, `INSERT INTO users_by_name (name_lower, user_id, claimed_at) VALUES (?, ?, ?)`, nil).
			Bind(name, id, at).ExecRelease()
		if err != nil {
			t.Fatal(err)
		}
	}
	claim("fresh", 50, time.Now())
	claim("stale", 51, time.Now().Add(-2*time.Minute))
	for _, name := range []string{"fresh", "stale"} {
		if _, _, err := s.UserByName(ctx, name); guildhall.KindOf(err) != guildhall.NotFound {
			t.Errorf("UserByName(%s) with a claim but no user = %v, want not found", name, err)
		}
	}
	err := s.CreateUser(ctx, member.User{ID: 60, Username: "Fresh", CreatedAt: base}, nil)
	if guildhall.KindOf(err) != guildhall.Conflict {
		t.Errorf("CreateUser(name claimed a moment ago) = %v, want conflict", err)
	}
	u := membertest.MustUser(t, s, 61, "Stale")
	got, _, err := s.UserByName(ctx, "STALE")
	if err != nil || got.ID != u.ID {
		t.Errorf("UserByName(STALE) after taking the claim over = %+v, %v", got, err)
	}
	// A claim held by a user who exists under that name never goes stale.
	claim("stale", 61, time.Now().Add(-time.Hour))
	err = s.CreateUser(ctx, member.User{ID: 62, Username: "stale", CreatedAt: base}, nil)
	if guildhall.KindOf(err) != guildhall.Conflict {
		t.Errorf("CreateUser(name of an old user) = %v, want conflict", err)
	}
}

// Tokens that expire get a TTL of their remaining life plus a day.
func testTokenTTL(t *testing.T, s *cql.Store, sess gocqlx.Session) {
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, tc := range []struct {
		name    string
		expires time.Time
		want    time.Duration // 0 for no TTL
	}{
		{"hour", now.Add(time.Hour), 25 * time.Hour},
		{"never", time.Time{}, 0},
		{"expired", now.Add(-time.Hour), 23 * time.Hour},
		{"beyond 2038", time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), 0},
	} {
		tok := member.Token{Hash: [32]byte{byte(len(tc.name)), tc.name[0]}, UserID: 1, CreatedAt: now, ExpiresAt: tc.expires}
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatalf("CreateToken(%s): %v", tc.name, err)
		}
		var ttl *int
		err := sess.ContextQuery(ctx, `SELECT TTL(user_id) FROM tokens WHERE hash = ?`, nil).Bind(tok.Hash[:]).GetRelease(&ttl)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case tc.want == 0 && ttl != nil:
			t.Errorf("%s: TTL %d s, want none", tc.name, *ttl)
		case tc.want != 0 && (ttl == nil || (time.Duration(*ttl)*time.Second-tc.want).Abs() > time.Minute):
			t.Errorf("%s: TTL %v s, want about %v", tc.name, ttl, tc.want)
		}
		got, err := s.Token(ctx, tok.Hash)
		if err != nil || !got.ExpiresAt.Equal(tc.expires) {
			t.Errorf("%s: Token = %+v, %v", tc.name, got, err)
		}
	}
}

// A name-ordered page must go on where it stopped even if the member it
// stopped at has left since.
func testPrefixCursorAfterLeave(t *testing.T, s *cql.Store, _ gocqlx.Session) {
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

// Prefix ranges hold for names beyond ASCII, at the top of the code space
// too, and a prefix that is not UTF-8 matches nothing.
func testPrefixUnicode(t *testing.T, s *cql.Store, _ gocqlx.Session) {
	owner := membertest.MustUser(t, s, 100, "zz")
	membertest.MustServer(t, s, 1000, owner)
	inv := membertest.MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})
	names := map[uint64]string{201: "a", 202: "a\x00", 203: "aé", 204: "aÉz", 205: "a\U0010FFFF", 206: "a\U0010FFFFb", 207: "b", 208: "a\uD7FF", 209: "a\uE000"}
	for _, id := range []uint64{206, 201, 205, 203, 202, 204, 207, 208, 209} {
		membertest.MustJoin(t, s, inv.Code, membertest.MustUser(t, s, id, names[id]), time.Minute)
	}
	for _, tc := range []struct {
		prefix string
		after  uint64
		want   []uint64
	}{
		{"a", 0, []uint64{201, 202, 203, 204, 208, 209, 205, 206}},
		{"a", 203, []uint64{204, 208, 209, 205, 206}},
		{"aé", 0, []uint64{203, 204}},
		{"a\x00", 0, []uint64{202}},
		{"a\uD7FF", 0, []uint64{208}},
		{"a\U0010FFFF", 0, []uint64{205, 206}},
		{"\U0010FFFF", 0, nil},
		{"a\xff", 0, nil},
	} {
		q := member.MemberQuery{Prefix: tc.prefix, After: tc.after, Limit: 100}
		wantIDs(t, fmt.Sprintf("Members(%q after %d)", tc.prefix, tc.after), members(t, s, 1000, q), tc.want...)
	}
}

func testDeleteCategoryFreesChildren(t *testing.T, s *cql.Store, _ gocqlx.Session) {
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

// IDs are stored as bigint; those that do not fit are refused, and
// looking them up finds nothing.
func testIDOutOfRange(t *testing.T, s *cql.Store, _ gocqlx.Session) {
	ctx := t.Context()
	const big = 1 << 63
	err := s.CreateUser(ctx, member.User{ID: big, Username: "big", CreatedAt: base}, nil)
	if guildhall.KindOf(err) != guildhall.Invalid {
		t.Errorf("CreateUser(ID 2^63) = %v, want invalid", err)
	}
	owner := membertest.MustUser(t, s, 100, "owner")
	err = s.CreateServer(ctx, member.Server{ID: big, OwnerID: owner.ID}, nil, member.Member{ServerID: big, UserID: owner.ID})
	if guildhall.KindOf(err) != guildhall.Invalid {
		t.Errorf("CreateServer(ID 2^63) = %v, want invalid", err)
	}
	if _, err := s.User(ctx, big); guildhall.KindOf(err) != guildhall.NotFound {
		t.Errorf("User(2^63) = %v, want not found", err)
	}
	membertest.MustServer(t, s, 1000, owner)
	wantIDs(t, "Members(after 2^63)", members(t, s, 1000, member.MemberQuery{After: big, Limit: 10}))
	wantIDs(t, "Members(after 2^63-1)", members(t, s, 1000, member.MemberQuery{After: big - 1, Limit: 10}))
}

func members(tb testing.TB, s member.Store, serverID uint64, q member.MemberQuery) []member.Member {
	tb.Helper()
	ms, err := s.Members(tb.Context(), serverID, q)
	if err != nil {
		tb.Fatalf("Members(%d, %+v): %v", serverID, q, err)
	}
	return ms
}

func wantIDs(tb testing.TB, what string, ms []member.Member, want ...uint64) {
	tb.Helper()
	got := make([]uint64, 0, len(ms))
	for _, m := range ms {
		got = append(got, m.UserID)
	}
	if !slices.Equal(got, want) {
		tb.Errorf("%s = %v, want %v", what, got, want)
	}
}

func wantUses(tb testing.TB, s member.Store, code string, want int) {
	tb.Helper()
	inv, err := s.Invite(tb.Context(), code)
	if err != nil || inv.Uses != want {
		tb.Errorf("Invite(%q) = %+v, %v; want %d uses", code, inv, err, want)
	}
}

func wantCount(tb testing.TB, s member.Store, serverID uint64, want int) {
	tb.Helper()
	if n, err := s.MemberCount(tb.Context(), serverID); err != nil || n != want {
		tb.Errorf("MemberCount(%d) = %d, %v; want %d", serverID, n, err, want)
	}
}
