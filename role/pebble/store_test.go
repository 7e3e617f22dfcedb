package pebble_test

import (
	"bytes"
	"slices"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/role"
	"github.com/guildhall/guildhall/role/pebble"
	"github.com/guildhall/guildhall/role/roletest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mustOpen opens a Pebble database in dir and closes it when tb ends.
func mustOpen(tb testing.TB, dir string) *pebbledb.DB {
	tb.Helper()
	db := open(tb, dir, nil)
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close pebble: %v", err)
		}
	})
	return db
}

// open opens a Pebble database in dir, on fs if not nil; the caller
// closes it.
func open(tb testing.TB, dir string, fs vfs.FS) *pebbledb.DB {
	tb.Helper()
	db, err := pebbledb.Open(dir, &pebbledb.Options{FS: fs, Logger: quietLogger{}})
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
	roletest.Run(t, func(t *testing.T) role.Store {
		return pebble.New(mustOpen(t, t.TempDir()))
	})
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir, nil)
	s := pebble.New(db)
	everyone := roletest.MustPutRole(t, s, 1000, role.Role{ID: 1000, Permissions: role.DefaultEveryone, Name: "@everyone"})
	mods := roletest.MustPutRole(t, s, 1000, role.Role{ID: 1001, Position: 1, Permissions: role.ManageMessages, Name: "mods", Color: 0x3366ff, Hoist: true, Mentionable: true})
	gone := roletest.MustPutRole(t, s, 1000, role.Role{ID: 1002, Position: 2, Name: "gone"})
	roletest.MustAddMemberRoles(t, s, 1000, 1, mods.ID, gone.ID)
	if err := s.DeleteRole(t.Context(), 1000, gone.ID); err != nil {
		t.Fatal(err)
	}
	ow := roletest.MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: 1, Type: role.OverwriteMember, Allow: role.ViewChannel, Deny: role.SendMessages})
	roletest.MustPutRole(t, s, 2000, role.Role{ID: 2000})
	v1000, v2000 := roletest.MustVersion(t, s, 1000), roletest.MustVersion(t, s, 2000)
	if err := db.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s = pebble.New(mustOpen(t, dir))
	ctx := t.Context()
	if got, err := s.Roles(ctx, 1000); err != nil || !slices.Equal(got, []role.Role{everyone, mods}) {
		t.Errorf("Roles after reopen = %+v, %v", got, err)
	}
	if got, err := s.MemberRoles(ctx, 1000, 1); err != nil || !slices.Equal(got, []uint64{mods.ID, gone.ID}) {
		t.Errorf("MemberRoles after reopen = %v, %v; want the stale ID kept", got, err)
	}
	if got, err := s.Overwrites(ctx, 3000); err != nil || !slices.Equal(got, []role.Overwrite{ow}) {
		t.Errorf("Overwrites after reopen = %+v, %v", got, err)
	}
	if got := roletest.MustVersion(t, s, 1000); got != v1000 || got == 0 {
		t.Errorf("Version(1000) after reopen = %d, want %d", got, v1000)
	}
	if got := roletest.MustVersion(t, s, 2000); got != v2000 || got == 0 {
		t.Errorf("Version(2000) after reopen = %d, want %d", got, v2000)
	}
	// The count goes on from where it was.
	roletest.MustAddMemberRoles(t, s, 1000, 2, mods.ID)
	if got := roletest.MustVersion(t, s, 1000); got != v1000+1 {
		t.Errorf("Version(1000) after a write = %d, want %d", got, v1000+1)
	}
}

// TestOrder pins down the orders this implementation documents beyond
// role.Store: member roles by ID, overwrites by (type, ID), and empty
// results as empty lists rather than nil (they become [] in JSON).
func TestOrder(t *testing.T) {
	s := pebble.New(mustOpen(t, t.TempDir()))
	ctx := t.Context()
	for _, id := range []uint64{1009, 1001, 1005} {
		roletest.MustAddMemberRoles(t, s, 1000, 1, id)
	}
	if got, err := s.MemberRoles(ctx, 1000, 1); err != nil || !slices.Equal(got, []uint64{1001, 1005, 1009}) {
		t.Errorf("MemberRoles = %v, %v; want ID order", got, err)
	}
	for _, ow := range []role.Overwrite{
		{ID: 5, Type: role.OverwriteMember},
		{ID: 1009, Type: role.OverwriteRole},
		{ID: 1, Type: role.OverwriteMember},
		{ID: 1000, Type: role.OverwriteRole},
	} {
		roletest.MustPutOverwrite(t, s, 1000, 3000, ow)
	}
	want := []role.Overwrite{
		{ID: 1000, Type: role.OverwriteRole},
		{ID: 1009, Type: role.OverwriteRole},
		{ID: 1, Type: role.OverwriteMember},
		{ID: 5, Type: role.OverwriteMember},
	}
	if got, err := s.Overwrites(ctx, 3000); err != nil || !slices.Equal(got, want) {
		t.Errorf("Overwrites = %+v, %v; want (type, ID) order", got, err)
	}
	if got, err := s.Roles(ctx, 2000); got == nil || err != nil {
		t.Errorf("Roles(none) = %#v, %v; want an empty list", got, err)
	}
	if got, err := s.MemberRoles(ctx, 2000, 1); got == nil || err != nil {
		t.Errorf("MemberRoles(none) = %#v, %v; want an empty list", got, err)
	}
	if got, err := s.Overwrites(ctx, 4000); got == nil || err != nil {
		t.Errorf("Overwrites(none) = %#v, %v; want an empty list", got, err)
	}
}

// A member at the role limit loses their stale role IDs when given a new
// role, so that deleted roles do not lock them out for good.
func TestMemberRoleLimitDropsStale(t *testing.T) {
	s := pebble.New(mustOpen(t, t.TempDir()))
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
	// Below the limit, stale IDs stay.
	if got, _ := s.MemberRoles(ctx, 1000, 1); len(got) != limit {
		t.Fatalf("member holds %d role IDs, want %d", len(got), limit)
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
	// No stale ID left and at 248: two more fit, the third does not.
	for _, id := range []uint64{5001, 5002} {
		roletest.MustPutRole(t, s, 1000, role.Role{ID: id, Position: 999})
		roletest.MustAddMemberRoles(t, s, 1000, 1, id)
	}
	err = s.AddMemberRole(ctx, 1000, 1, 5003)
	if guildhall.KindOf(err) != guildhall.Invalid {
		t.Errorf("AddMemberRole over the limit = %v, want invalid_argument", err)
	}
}

// The database is shared: this store writes only under "r/", and reads
// nothing outside it, even under neighbouring prefixes.
func TestSharedDB(t *testing.T) {
	db := mustOpen(t, t.TempDir())
	ctx := t.Context()
	foreign := [][]byte{[]byte("m/u/x"), []byte("q/"), []byte("r"), []byte("r0"), []byte("s/"), []byte("r/rolf"), {'r', '/', 'o', 'w', 0xff}}
	for _, k := range foreign {
		if err := db.Set(k, []byte("not ours"), pebbledb.Sync); err != nil {
			t.Fatal(err)
		}
	}
	s := pebble.New(db)
	roletest.MustPutRole(t, s, 1000, role.Role{ID: 1001, Position: 1})
	roletest.MustAddMemberRoles(t, s, 1000, 1, 1001)
	roletest.MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: 1001, Type: role.OverwriteRole})
	if err := s.DeleteRole(ctx, 1000, 1001); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Roles(ctx, 1000); err != nil || len(got) != 0 {
		t.Errorf("Roles = %v, %v", got, err)
	}
	if got, err := s.Overwrites(ctx, 3000); err != nil || len(got) != 1 {
		t.Errorf("Overwrites = %v, %v", got, err)
	}

	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if slices.ContainsFunc(foreign, func(f []byte) bool { return bytes.Equal(f, k) }) {
			if v, _ := it.ValueAndErr(); string(v) != "not ours" {
				t.Errorf("foreign key %q now holds %q", k, v)
			}
			continue
		}
		if !bytes.HasPrefix(k, []byte("r/")) {
			t.Errorf("store wrote key %q outside r/", k)
		}
	}
}

// BenchmarkRolesAndOverwrites is the uncached read of a permission
// computation's inputs: a server's 20 roles, a channel's 10 overwrites and
// a member's 5 roles, in a database holding 100 such servers. The database
// is in memory so that loading it does not wait for fsyncs; reads do not
// sync anyway. "memtable" reads freshly written data, "flushed" reads it
// from sstables through the block cache.
func BenchmarkRolesAndOverwrites(b *testing.B) {
	db := open(b, "", vfs.NewMem())
	defer db.Close()
	s := pebble.New(db)
	const servers, roles, overwrites, memberRoles = 100, 20, 10, 5
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
	const srv = 50_000_000
	read := func(b *testing.B) {
		b.ReportAllocs()
		ctx := b.Context()
		for b.Loop() {
			rs, err := s.Roles(ctx, srv)
			if err != nil || len(rs) != roles {
				b.Fatalf("Roles = %d, %v", len(rs), err)
			}
			ows, err := s.Overwrites(ctx, srv+500_000)
			if err != nil || len(ows) != overwrites {
				b.Fatalf("Overwrites = %d, %v", len(ows), err)
			}
			ids, err := s.MemberRoles(ctx, srv, 2)
			if err != nil || len(ids) != memberRoles {
				b.Fatalf("MemberRoles = %d, %v", len(ids), err)
			}
		}
	}
	b.Run("memtable", read)
	if err := db.Flush(); err != nil {
		b.Fatal(err)
	}
	b.Run("flushed", read)
}
