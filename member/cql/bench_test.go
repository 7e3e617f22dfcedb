package cql_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"
	"golang.org/x/sync/errgroup"

	"github.com/guildhall/guildhall/internal/cqldb/cqltest"
	"github.com/guildhall/guildhall/member"
	"github.com/guildhall/guildhall/member/cql"
	"github.com/guildhall/guildhall/member/membertest"
)

// BenchmarkMembersPrefix is mention completion on the real CQL server: the
// first 25 members whose name starts with a prefix, in a server of 20,000
// (user00000..user19999), as member/pebble's benchmark of the same name.
// "after" is the page that follows, from a cursor; "by-id" a page of 25 in
// user ID order for comparison.
func BenchmarkMembersPrefix(b *testing.B) {
	sess := cqltest.MustSession(b, cql.Component, cql.Migrations)
	s := cql.New(sess)
	owner := membertest.MustUser(b, s, 1, "owner")
	membertest.MustServer(b, s, 1000, owner)
	const n = 20000
	mustLoadMembers(b, sess, 1000, n)
	membertest.MustUser(b, s, 10+12024, "user12024") // the "after" cursor's user

	for _, bc := range []struct {
		name string
		q    member.MemberQuery
	}{
		{"prefix", member.MemberQuery{Prefix: "user12", Limit: 25}},
		{"after", member.MemberQuery{Prefix: "user12", After: 10 + 12024, Limit: 25}},
		{"by-id", member.MemberQuery{After: 10 + 12024, Limit: 25}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				ms, err := s.Members(b.Context(), 1000, bc.q)
				if err != nil || len(ms) != 25 {
					b.Fatalf("Members = %d, %v", len(ms), err)
				}
			}
		})
	}
}

// mustLoadMembers writes n members (user IDs 10.., names user00000..) of
// server the way JoinByInvite leaves them, but without its lightweight
// transactions: 20,000 joins one at a time would take minutes.
func mustLoadMembers(tb testing.TB, sess gocqlx.Session, server int64, n int) {
	tb.Helper()
	ctx := tb.Context()
	version := time.Now().UnixMicro()
	var g errgroup.Group
	g.SetLimit(16)
	const per = 100
	for start := 0; start < n; start += per {
		g.Go(func() error {
			rows := sess.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
			names := sess.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
			for i := start; i < min(start+per, n); i++ {
				id, name := int64(10+i), fmt.Sprintf("user%05d", i)
				rows.Query(`INSERT INTO members (server_id, user_id, banned, version, username, nick, joined_at) VALUES (?, ?, false, ?, ?, '', ?)`,
					server, id, version, name, base)
				names.Query(`INSERT INTO members_by_name (server_id, name_lower, user_id) VALUES (?, ?, ?) USING TIMESTAMP ?`,
					server, name, id, version)
			}
			if err := sess.ExecuteBatch(rows); err != nil {
				return err
			}
			return sess.ExecuteBatch(names)
		})
	}
	if err := g.Wait(); err != nil {
		tb.Fatalf("load members: %v", err)
	}
	applied, err := sess.ContextQuery(ctx, `UPDATE members SET member_count = ? WHERE server_id = ? IF member_count = 1`, nil).
		Bind(int64(n+1), server).ExecCASRelease()
	if err != nil || !applied {
		tb.Fatalf("set count: applied %v, %v", applied, err)
	}
}

// BenchmarkJoinByInvite is one new member joining through an unlimited
// invite: two reads, two compare-and-sets (the invite's uses, then the
// membership with the count) and a logged batch of index rows.
func BenchmarkJoinByInvite(b *testing.B) {
	s := cql.New(cqltest.MustSession(b, cql.Component, cql.Migrations))
	owner := membertest.MustUser(b, s, 1, "owner")
	membertest.MustServer(b, s, 1000, owner)
	membertest.MustInvite(b, s, "open", 1000, owner.ID, 0, time.Time{})
	id := uint64(10)
	for b.Loop() {
		id++
		_, err := s.JoinByInvite(b.Context(), "open", member.Member{UserID: id, Username: fmt.Sprintf("user%d", id), JoinedAt: base})
		if err != nil {
			b.Fatal(err)
		}
	}
}
