package roletest

import (
	"cmp"
	"slices"
	"testing"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/role"
)

// MustPutRole stores r in serverID.
func MustPutRole(tb testing.TB, s role.Store, serverID uint64, r role.Role) role.Role {
	tb.Helper()
	if err := s.PutRole(tb.Context(), serverID, r); err != nil {
		tb.Fatalf("PutRole(%d, role %d): %v", serverID, r.ID, err)
	}
	return r
}

// MustAddMemberRoles gives the member each of roleIDs.
func MustAddMemberRoles(tb testing.TB, s role.Store, serverID, userID uint64, roleIDs ...uint64) {
	tb.Helper()
	for _, id := range roleIDs {
		if err := s.AddMemberRole(tb.Context(), serverID, userID, id); err != nil {
			tb.Fatalf("AddMemberRole(%d, %d, %d): %v", serverID, userID, id, err)
		}
	}
}

// MustPutOverwrite stores ow on channelID of serverID.
func MustPutOverwrite(tb testing.TB, s role.Store, serverID, channelID uint64, ow role.Overwrite) role.Overwrite {
	tb.Helper()
	if err := s.PutOverwrite(tb.Context(), serverID, channelID, ow); err != nil {
		tb.Fatalf("PutOverwrite(%d, %d, %s %d): %v", serverID, channelID, ow.Type, ow.ID, err)
	}
	return ow
}

// MustVersion returns the server's version.
func MustVersion(tb testing.TB, s role.Store, serverID uint64) uint64 {
	tb.Helper()
	v, err := s.Version(tb.Context(), serverID)
	if err != nil {
		tb.Fatalf("Version(%d): %v", serverID, err)
	}
	return v
}

// versions follows the versions of some servers through a test, so that
// each step can say which of them it should have bumped.
type versions struct {
	tb   testing.TB
	s    role.Store
	last map[uint64]uint64
}

// watch starts following the given servers.
func watch(tb testing.TB, s role.Store, serverIDs ...uint64) *versions {
	tb.Helper()
	v := &versions{tb: tb, s: s, last: make(map[uint64]uint64)}
	for _, id := range serverIDs {
		v.last[id] = MustVersion(tb, s, id)
	}
	return v
}

// bumped checks that what raised the version of each of serverIDs and
// left every other followed server's alone. With no serverIDs, it checks
// that nothing changed.
func (v *versions) bumped(what string, serverIDs ...uint64) {
	v.tb.Helper()
	for id, last := range v.last {
		got := MustVersion(v.tb, v.s, id)
		switch {
		case slices.Contains(serverIDs, id) && got <= last:
			v.tb.Errorf("%s: version of server %d is %d, was %d; want it bumped", what, id, got, last)
		case !slices.Contains(serverIDs, id) && got != last:
			v.tb.Errorf("%s: version of server %d is %d, was %d; want it unchanged", what, id, got, last)
		}
		v.last[id] = got
	}
}

// same checks that what changed no followed server's version.
func (v *versions) same(what string) {
	v.tb.Helper()
	v.bumped(what)
}

// noop checks after a write that changes nothing: serverID's version may
// have been bumped or not, but must not go back; the others are unchanged.
func (v *versions) noop(what string, serverID uint64) {
	v.tb.Helper()
	if got := MustVersion(v.tb, v.s, serverID); got < v.last[serverID] {
		v.tb.Errorf("%s: version of server %d went back from %d to %d", what, serverID, v.last[serverID], got)
	} else if got > v.last[serverID] {
		v.bumped(what, serverID)
		return
	}
	v.same(what)
}

func wantKind(tb testing.TB, what string, err error, kind guildhall.Kind) {
	tb.Helper()
	if err == nil {
		tb.Errorf("%s: no error, want %s", what, kind.Code())
		return
	}
	if got := guildhall.KindOf(err); got != kind {
		tb.Errorf("%s: error %q is %s, want %s", what, err, got.Code(), kind.Code())
	}
}

func wantNoError(tb testing.TB, what string, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

// wantRoles checks the server's roles, in order.
func wantRoles(tb testing.TB, s role.Store, serverID uint64, want ...role.Role) {
	tb.Helper()
	got, err := s.Roles(tb.Context(), serverID)
	if err != nil {
		tb.Fatalf("Roles(%d): %v", serverID, err)
	}
	if !slices.Equal(got, want) {
		tb.Errorf("Roles(%d) =\n%+v\nwant\n%+v", serverID, got, want)
	}
}

// wantRoleIDs checks the IDs of the server's roles, in order.
func wantRoleIDs(tb testing.TB, s role.Store, serverID uint64, want ...uint64) {
	tb.Helper()
	roles, err := s.Roles(tb.Context(), serverID)
	if err != nil {
		tb.Fatalf("Roles(%d): %v", serverID, err)
	}
	got := make([]uint64, 0, len(roles))
	for _, r := range roles {
		got = append(got, r.ID)
	}
	if !slices.Equal(got, want) {
		tb.Errorf("Roles(%d) IDs = %v, want %v", serverID, got, want)
	}
}

// wantMemberRoles checks the member's role IDs in any order.
func wantMemberRoles(tb testing.TB, s role.Store, serverID, userID uint64, want ...uint64) {
	tb.Helper()
	got, err := s.MemberRoles(tb.Context(), serverID, userID)
	if err != nil {
		tb.Fatalf("MemberRoles(%d, %d): %v", serverID, userID, err)
	}
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		tb.Errorf("MemberRoles(%d, %d) = %v, want %v", serverID, userID, got, want)
	}
}

// wantOverwrites checks the channel's overwrites in any order.
func wantOverwrites(tb testing.TB, s role.Store, channelID uint64, want ...role.Overwrite) {
	tb.Helper()
	got, err := s.Overwrites(tb.Context(), channelID)
	if err != nil {
		tb.Fatalf("Overwrites(%d): %v", channelID, err)
	}
	byTarget := func(a, b role.Overwrite) int { return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.ID, b.ID)) }
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, byTarget)
	slices.SortFunc(want, byTarget)
	if !slices.Equal(got, want) {
		tb.Errorf("Overwrites(%d) =\n%+v\nwant\n%+v", channelID, got, want)
	}
}

// wantOverwriteCount checks how many overwrites the channel has.
func wantOverwriteCount(tb testing.TB, s role.Store, channelID uint64, want int) {
	tb.Helper()
	got, err := s.Overwrites(tb.Context(), channelID)
	if err != nil {
		tb.Fatalf("Overwrites(%d): %v", channelID, err)
	}
	if len(got) != want {
		tb.Errorf("Overwrites(%d) has %d, want %d", channelID, len(got), want)
	}
}
