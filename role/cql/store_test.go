package cql_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/internal/cqldb/cqltest"
	"github.com/guildhall/guildhall/role"
	"github.com/guildhall/guildhall/role/cql"
	"github.com/guildhall/guildhall/role/roletest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mustStore returns a Store on a new keyspace, dropped when tb ends.
func mustStore(tb testing.TB) *cql.Store {
	tb.Helper()
	return cql.New(cqltest.MustSession(tb, cql.Component, cql.Migrations))
}

func TestStore(t *testing.T) {
	roletest.Run(t, func(t *testing.T) role.Store { return mustStore(t) })
}

// TestVersionConcurrent has writers race on one server through two Stores
// (a Store keeps no state, so two of them are like two processes) while
// readers check what the resolver relies on: the version never goes back,
// and data read after a version is at least as new as every write that
// version counts. Each write adds one role and bumps once, so a reader
// that sees version v must then see at least v-base roles.
func TestVersionConcurrent(t *testing.T) {
	session := cqltest.MustSession(t, cql.Component, cql.Migrations)
	a := cql.New(session)
	ctx := t.Context()
	const server, writers, each = 1000, 8, 8
	stores := []*cql.Store{a, cql.New(session)}
	base := roletest.MustVersion(t, a, server)

	var wg sync.WaitGroup
	var done atomic.Bool
	errs := make(chan error, writers*each+4)
	for w := range writers {
		s := stores[w%len(stores)]
		wg.Go(func() {
			for i := range each {
				id := uint64(server + 1 + w*each + i)
				if err := s.PutRole(ctx, server, role.Role{ID: id, Position: int(id - server)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var readers sync.WaitGroup
	for r := range 2 {
		s := stores[r%len(stores)]
		readers.Go(func() {
			last := base
			for reads := 0; !done.Load() || reads < 3; reads++ {
				v, err := s.Version(ctx, server)
				if err != nil {
					errs <- err
					return
				}
				if v < last {
					errs <- fmt.Errorf("version went back from %d to %d", last, v)
				}
				last = v
				roles, err := s.Roles(ctx, server)
				if err != nil {
					errs <- err
					return
				}
				if uint64(len(roles)) < v-base {
					errs <- fmt.Errorf("read %d roles after version %d (base %d): data older than its version", len(roles), v, base)
				}
			}
		})
	}
	wg.Wait()
	done.Store(true)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if v := roletest.MustVersion(t, a, server); v < base+writers*each {
		t.Errorf("version after %d writes went from %d to %d", writers*each, base, v)
	}
}

// A member at the limit with stale IDs (roles since deleted) makes room by
// losing them, in the same write.
func TestMemberRoleLimitStale(t *testing.T) {
	s := mustStore(t)
	ctx := t.Context()
	const limit = 250
	var ids []uint64
	for i := range limit {
		id := uint64(1001 + i)
		roletest.MustPutRole(t, s, 1000, role.Role{ID: id, Position: 1 + i})
		ids = append(ids, id)
	}
	roletest.MustAddMemberRoles(t, s, 1000, 1, ids...)
	for _, id := range ids[10:13] {
		if err := s.DeleteRole(ctx, 1000, id); err != nil {
			t.Fatal(err)
		}
	}
	roletest.MustPutRole(t, s, 1000, role.Role{ID: 5000, Position: 999})
	v := roletest.MustVersion(t, s, 1000)
	if err := s.AddMemberRole(ctx, 1000, 1, 5000); err != nil {
		t.Fatalf("AddMemberRole at the limit with stale IDs: %v", err)
	}
	got, err := s.MemberRoles(ctx, 1000, 1)
	want := append(slices.Concat(ids[:10], ids[13:]), 5000)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("MemberRoles = %v, %v\nwant %v", got, err, want)
	}
	if got := roletest.MustVersion(t, s, 1000); got != v+1 {
		t.Errorf("Version = %d, want %d: one write, one bump", got, v+1)
	}
	for _, id := range []uint64{5001, 5002} {
		roletest.MustPutRole(t, s, 1000, role.Role{ID: id, Position: 999})
		roletest.MustAddMemberRoles(t, s, 1000, 1, id)
	}
	if err := s.AddMemberRole(ctx, 1000, 1, 5003); guildhall.KindOf(err) != guildhall.Invalid {
		t.Errorf("AddMemberRole over the limit = %v, want invalid_argument", err)
	}
}

// A write whose context is done before it starts writes and bumps nothing.
func TestCancelledWrite(t *testing.T) {
	s := mustStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.PutRole(ctx, 1000, role.Role{ID: 1001}); err == nil {
		t.Error("PutRole(cancelled): no error")
	}
	if err := s.Bump(ctx, 1000); err == nil {
		t.Error("Bump(cancelled): no error")
	}
	if v := roletest.MustVersion(t, s, 1000); v != 0 {
		t.Errorf("Version after cancelled writes = %d, want 0", v)
	}
}

// BenchmarkPermissionInputs is the uncached read of a permission
// computation's inputs as role.Resolver does it, one statement after the
// other: the version, a server's 20 roles, a member's 5 roles and a
// channel's 10 overwrites, in a keyspace holding 20 such servers.
func BenchmarkPermissionInputs(b *testing.B) {
	benchInputs(b, mustStore(b))
}

func benchInputs(b *testing.B, s *cql.Store) {
	const servers, roles, overwrites, memberRoles = 20, 20, 10, 5
	for i := range servers {
		srv := uint64(1_000_000 * (i + 1))
		channel := srv + 500_000
		roletest.MustPutRole(b, s, srv, role.Role{ID: srv, Permissions: role.DefaultEveryone, Name: "@everyone"})
		for r := 1; r < roles; r++ {
			roletest.MustPutRole(b, s, srv, role.Role{ID: srv + uint64(r), Position: r, Permissions: role.SendMessages, Name: "some role", Color: 0x123456})
		}
		for o := range overwrites {
			typ := role.OverwriteRole
			if o%2 == 1 {
				typ = role.OverwriteMember
			}
			roletest.MustPutOverwrite(b, s, srv, channel, role.Overwrite{ID: srv + uint64(o), Type: typ, Allow: role.ViewChannel, Deny: role.SendMessages})
		}
		for u := range 3 {
			for r := range memberRoles {
				roletest.MustAddMemberRoles(b, s, srv, uint64(u+1), srv+uint64(1+r*3))
			}
		}
	}
	const srv = 10_000_000
	read := func(s role.Store) error {
		ctx := b.Context()
		if _, err := s.Version(ctx, srv); err != nil {
			return err
		}
		rs, err := s.Roles(ctx, srv)
		if err != nil || len(rs) != roles {
			return fmt.Errorf("Roles = %d, %v", len(rs), err)
		}
		ids, err := s.MemberRoles(ctx, srv, 2)
		if err != nil || len(ids) != memberRoles {
			return fmt.Errorf("MemberRoles = %d, %v", len(ids), err)
		}
		ows, err := s.Overwrites(ctx, srv+500_000)
		if err != nil || len(ows) != overwrites {
			return fmt.Errorf("Overwrites = %d, %v", len(ows), err)
		}
		return nil
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := read(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Many resolvers at once, as a gateway checks many members.
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := read(s); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
