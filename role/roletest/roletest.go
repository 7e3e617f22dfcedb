// Package roletest is the conformance suite of role.Store. Every
// implementation runs it from its own tests:
//
//	func TestStore(t *testing.T) {
//		roletest.Run(t, func(t *testing.T) role.Store { return newStore(t) })
//	}
//
// The suite talks to the store only through role.Store. newStore must
// return an empty store for each call; the subtests do not run in parallel,
// so an implementation on a shared server may reset it in newStore.
//
// Besides what role.Store documents, the suite pins down these rules:
//   - Roles, MemberRoles and Overwrites of something never written are
//     empty, not an error, and Version of a server never written is 0: the
//     store does not know which servers, channels and members exist;
//   - every successful write raises its server's version and no other's;
//     PutOverwrite and DeleteOverwrite bump the server they are given. N
//     writes raise it by at least N, even when they run concurrently. A
//     write that changes nothing (AddMemberRole of a held role,
//     RemoveMemberRole of one not held) may bump it or not. Reads and
//     failed writes never change a version, and a failed write stores
//     nothing;
//   - a role keeps every field as given, and an overwrite its Allow and
//     Deny, permission bits outside role.All included;
//   - the same role ID in two servers, or target in two channels, are two
//     things: DeleteRole of a role stored only in another server, and
//     DeleteOverwrite of an overwrite stored only on another channel, are
//     NotFound;
//   - PutOverwrite of a type other than role.OverwriteRole and
//     role.OverwriteMember is Invalid; a role and a member overwrite with
//     the same ID are two overwrites, and DeleteOverwrite of that ID
//     removes both;
//   - DeleteRole leaves member role lists alone: the stale ID stays until
//     RemoveMemberRole, which works on it like on any other;
//   - limits: a server has at most 250 roles, @everyone included; a channel
//     at most 500 overwrites of both types together; a member at most 250
//     role IDs. A write that would add one more is Invalid; replacing a
//     role or overwrite, or adding a role the member holds, is not.
//
// The order of MemberRoles and Overwrites is not part of the contract; the
// suite compares them as sets.
package roletest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/role"
)

// The limits the suite holds every implementation to.
const (
	maxRoles       = 250
	maxOverwrites  = 500
	maxMemberRoles = 250
)

// Run runs the suite; newStore returns a new, empty store.
func Run(t *testing.T, newStore func(t *testing.T) role.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s role.Store)
	}{
		{"Empty", testEmpty},
		{"Roles", testRoles},
		{"ReplaceRole", testReplaceRole},
		{"DeleteRole", testDeleteRole},
		{"MemberRoles", testMemberRoles},
		{"DeleteRoleKeepsMemberRoles", testDeleteRoleKeepsMemberRoles},
		{"Overwrites", testOverwrites},
		{"ReplaceOverwrite", testReplaceOverwrite},
		{"DeleteOverwrite", testDeleteOverwrite},
		{"OverwriteType", testOverwriteType},
		{"Versions", testVersions},
		{"ConcurrentWrites", testConcurrentWrites},
		{"RoleLimit", testRoleLimit},
		{"OverwriteLimit", testOverwriteLimit},
		{"MemberRoleLimit", testMemberRoleLimit},
		{"ClearMember", testClearMember},
		{"DeleteChannel", testDeleteChannel},
		{"Bump", testBump},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

// IDs used throughout: servers 1000 and 2000 (also their @everyone role
// IDs), channels 3000 and 3001 of server 1000 and 4000 of server 2000,
// roles 1001.. of server 1000 and 2001.. of server 2000, users 1 to 99.

func testEmpty(t *testing.T, s role.Store) {
	ctx := t.Context()
	if roles, err := s.Roles(ctx, 1000); err != nil || len(roles) != 0 {
		t.Errorf("Roles(new server) = %v, %v; want none", roles, err)
	}
	if ids, err := s.MemberRoles(ctx, 1000, 1); err != nil || len(ids) != 0 {
		t.Errorf("MemberRoles(new server) = %v, %v; want none", ids, err)
	}
	if ows, err := s.Overwrites(ctx, 3000); err != nil || len(ows) != 0 {
		t.Errorf("Overwrites(new channel) = %v, %v; want none", ows, err)
	}
	if v, err := s.Version(ctx, 1000); err != nil || v != 0 {
		t.Errorf("Version(new server) = %d, %v; want 0", v, err)
	}
}

func testRoles(t *testing.T, s role.Store) {
	v := watch(t, s, 1000, 2000)
	everyone := role.Role{ID: 1000, Position: 0, Permissions: role.DefaultEveryone, Name: "@everyone"}
	mods := role.Role{ID: 1001, Position: 3, Permissions: role.KickMembers | role.BanMembers | role.ManageMessages, Name: "Modérateurs 🛡", Color: 0xff8800, Hoist: true, Mentionable: true}
	admin := role.Role{ID: 1002, Position: 5, Permissions: role.Administrator, Name: "admin", Color: 0xffffff, Hoist: true}
	// 1003 and 1005 share position 2: ID breaks the tie.
	a := role.Role{ID: 1005, Position: 2, Permissions: role.SendMessages, Name: "a", Mentionable: true}
	b := role.Role{ID: 1003, Position: 2, Name: ""}
	// Bits outside All and extreme values are kept as given.
	odd := role.Role{ID: 1004, Position: 1, Permissions: role.All | 1<<63 | 1<<40, Name: "odd\tname ⚔", Color: 0x000001}
	for _, r := range []role.Role{admin, a, everyone, odd, mods, b} {
		MustPutRole(t, s, 1000, r)
		v.bumped("PutRole", 1000)
	}
	wantRoles(t, s, 1000, everyone, odd, b, a, mods, admin)
	v.same("Roles")

	// Another server's roles, one with an ID also used in server 1000.
	other := role.Role{ID: 2001, Position: 1, Permissions: role.ViewChannel, Name: "other"}
	shared := role.Role{ID: 1001, Position: 2, Name: "same ID, other server"}
	MustPutRole(t, s, 2000, shared)
	v.bumped("PutRole(other server)", 2000)
	MustPutRole(t, s, 2000, other)
	v.bumped("PutRole(other server)", 2000)
	wantRoles(t, s, 2000, other, shared)
	wantRoles(t, s, 1000, everyone, odd, b, a, mods, admin)
	wantRoles(t, s, 3000)
	v.same("Roles")
}

func testReplaceRole(t *testing.T, s role.Store) {
	v := watch(t, s, 1000, 2000)
	r1 := MustPutRole(t, s, 1000, role.Role{ID: 1001, Position: 1, Permissions: role.SendMessages, Name: "one", Color: 1, Hoist: true, Mentionable: true})
	r2 := MustPutRole(t, s, 1000, role.Role{ID: 1002, Position: 2, Name: "two"})
	MustPutRole(t, s, 2000, role.Role{ID: 1001, Position: 7, Name: "untouched"})
	v.bumped("setup", 1000, 2000)

	// Every field is replaced, flags cleared included, and the order follows.
	r1 = role.Role{ID: 1001, Position: 3, Permissions: role.ManageRoles, Name: "renamed"}
	MustPutRole(t, s, 1000, r1)
	v.bumped("PutRole(replace)", 1000)
	wantRoles(t, s, 1000, r2, r1)

	// Replacing with the same value is still a write.
	MustPutRole(t, s, 1000, r1)
	v.bumped("PutRole(same value)", 1000)
	wantRoles(t, s, 1000, r2, r1)
	wantRoles(t, s, 2000, role.Role{ID: 1001, Position: 7, Name: "untouched"})
}

func testDeleteRole(t *testing.T, s role.Store) {
	ctx := t.Context()
	everyone := MustPutRole(t, s, 1000, role.Role{ID: 1000, Permissions: role.DefaultEveryone})
	r1 := MustPutRole(t, s, 1000, role.Role{ID: 1001, Position: 1, Name: "one"})
	MustPutRole(t, s, 1000, role.Role{ID: 1002, Position: 2, Name: "two"})
	r3 := MustPutRole(t, s, 1000, role.Role{ID: 1003, Position: 3, Name: "three"})
	o1 := MustPutRole(t, s, 2000, role.Role{ID: 2001, Position: 1, Name: "other"})
	v := watch(t, s, 1000, 2000)

	wantNoError(t, "DeleteRole", s.DeleteRole(ctx, 1000, 1002))
	v.bumped("DeleteRole", 1000)
	wantRoles(t, s, 1000, everyone, r1, r3)

	wantKind(t, "DeleteRole(deleted)", s.DeleteRole(ctx, 1000, 1002), guildhall.NotFound)
	wantKind(t, "DeleteRole(unknown)", s.DeleteRole(ctx, 1000, 9999), guildhall.NotFound)
	wantKind(t, "DeleteRole(role of another server)", s.DeleteRole(ctx, 1000, 2001), guildhall.NotFound)
	wantKind(t, "DeleteRole(in another server)", s.DeleteRole(ctx, 2000, 1001), guildhall.NotFound)
	wantKind(t, "DeleteRole(unknown server)", s.DeleteRole(ctx, 5000, 1001), guildhall.NotFound)
	v.same("failed DeleteRole")
	if ver := MustVersion(t, s, 5000); ver != 0 {
		t.Errorf("Version(5000) after a failed DeleteRole there = %d, want 0", ver)
	}
	wantRoles(t, s, 1000, everyone, r1, r3)
	wantRoles(t, s, 2000, o1)

	// @everyone is a role like the others for the store.
	wantNoError(t, "DeleteRole(@everyone)", s.DeleteRole(ctx, 1000, 1000))
	v.bumped("DeleteRole(@everyone)", 1000)
	wantRoles(t, s, 1000, r1, r3)

	// A deleted role can be created again.
	again := MustPutRole(t, s, 1000, role.Role{ID: 1002, Position: 9, Name: "back"})
	v.bumped("PutRole(deleted ID)", 1000)
	wantRoles(t, s, 1000, r1, r3, again)
}

func testMemberRoles(t *testing.T, s role.Store) {
	ctx := t.Context()
	for _, id := range []uint64{1001, 1002, 1003, 1004} {
		MustPutRole(t, s, 1000, role.Role{ID: id, Position: int(id - 1000)})
	}
	MustPutRole(t, s, 2000, role.Role{ID: 2001, Position: 1})
	v := watch(t, s, 1000, 2000)

	for _, id := range []uint64{1003, 1001, 1004} {
		wantNoError(t, "AddMemberRole", s.AddMemberRole(ctx, 1000, 1, id))
		v.bumped("AddMemberRole", 1000)
	}
	wantMemberRoles(t, s, 1000, 1, 1001, 1003, 1004)

	// Adding a role held already is a success and adds nothing.
	wantNoError(t, "AddMemberRole(held)", s.AddMemberRole(ctx, 1000, 1, 1003))
	v.noop("AddMemberRole(held)", 1000)
	wantMemberRoles(t, s, 1000, 1, 1001, 1003, 1004)

	// Other members, and the same user in another server, are apart.
	MustAddMemberRoles(t, s, 1000, 2, 1002)
	v.bumped("AddMemberRole(other member)", 1000)
	MustAddMemberRoles(t, s, 2000, 1, 2001)
	v.bumped("AddMemberRole(other server)", 2000)
	wantMemberRoles(t, s, 1000, 1, 1001, 1003, 1004)
	wantMemberRoles(t, s, 1000, 2, 1002)
	wantMemberRoles(t, s, 2000, 1, 2001)
	wantMemberRoles(t, s, 1000, 3)
	wantMemberRoles(t, s, 2000, 2)
	v.same("MemberRoles")

	wantNoError(t, "RemoveMemberRole", s.RemoveMemberRole(ctx, 1000, 1, 1003))
	v.bumped("RemoveMemberRole", 1000)
	wantMemberRoles(t, s, 1000, 1, 1001, 1004)

	// Removing a role not held is a no-op, wherever the role is.
	for _, id := range []uint64{1003, 1002, 2001, 9999} {
		wantNoError(t, "RemoveMemberRole(not held)", s.RemoveMemberRole(ctx, 1000, 1, id))
		v.noop("RemoveMemberRole(not held)", 1000)
	}
	wantNoError(t, "RemoveMemberRole(unknown member)", s.RemoveMemberRole(ctx, 1000, 99, 1001))
	v.noop("RemoveMemberRole(unknown member)", 1000)
	wantMemberRoles(t, s, 1000, 1, 1001, 1004)
	wantMemberRoles(t, s, 1000, 2, 1002)
	wantMemberRoles(t, s, 2000, 1, 2001)

	// A removed role can be given back; removing every role leaves none.
	MustAddMemberRoles(t, s, 1000, 1, 1003)
	v.bumped("AddMemberRole(again)", 1000)
	wantMemberRoles(t, s, 1000, 1, 1001, 1003, 1004)
	for _, id := range []uint64{1001, 1003, 1004} {
		wantNoError(t, "RemoveMemberRole", s.RemoveMemberRole(ctx, 1000, 1, id))
		v.bumped("RemoveMemberRole", 1000)
	}
	wantMemberRoles(t, s, 1000, 1)
	wantMemberRoles(t, s, 1000, 2, 1002)
}

func testDeleteRoleKeepsMemberRoles(t *testing.T, s role.Store) {
	ctx := t.Context()
	everyone := MustPutRole(t, s, 1000, role.Role{ID: 1000, Permissions: role.DefaultEveryone})
	r1 := MustPutRole(t, s, 1000, role.Role{ID: 1001, Position: 1})
	MustPutRole(t, s, 1000, role.Role{ID: 1002, Position: 2})
	MustAddMemberRoles(t, s, 1000, 1, 1001, 1002)
	MustAddMemberRoles(t, s, 1000, 2, 1002)
	v := watch(t, s, 1000)

	wantNoError(t, "DeleteRole", s.DeleteRole(ctx, 1000, 1002))
	v.bumped("DeleteRole", 1000)
	wantRoles(t, s, 1000, everyone, r1)
	// The stale ID stays: readers drop it, since Roles no longer lists it.
	wantMemberRoles(t, s, 1000, 1, 1001, 1002)
	wantMemberRoles(t, s, 1000, 2, 1002)

	// RemoveMemberRole clears a stale ID like any other.
	wantNoError(t, "RemoveMemberRole(stale)", s.RemoveMemberRole(ctx, 1000, 2, 1002))
	v.bumped("RemoveMemberRole(stale)", 1000)
	wantMemberRoles(t, s, 1000, 2)
	wantMemberRoles(t, s, 1000, 1, 1001, 1002)

	// A role created again with the old ID is held again by those who
	// kept the stale ID.
	r2 := MustPutRole(t, s, 1000, role.Role{ID: 1002, Position: 2, Name: "reborn"})
	wantRoles(t, s, 1000, everyone, r1, r2)
	wantMemberRoles(t, s, 1000, 1, 1001, 1002)
}

func testOverwrites(t *testing.T, s role.Store) {
	v := watch(t, s, 1000, 2000)
	everyone := role.Overwrite{ID: 1000, Type: role.OverwriteRole, Deny: role.ViewChannel}
	mods := role.Overwrite{ID: 1001, Type: role.OverwriteRole, Allow: role.ViewChannel | role.ManageMessages}
	alice := role.Overwrite{ID: 1, Type: role.OverwriteMember, Allow: role.ViewChannel, Deny: role.SendMessages}
	// Bits outside All are kept; Allow and Deny may overlap in storage.
	odd := role.Overwrite{ID: 2, Type: role.OverwriteMember, Allow: 1<<63 | role.All, Deny: 1<<40 | role.SendMessages}
	empty := role.Overwrite{ID: 1002, Type: role.OverwriteRole}
	for _, ow := range []role.Overwrite{alice, mods, odd, everyone, empty} {
		MustPutOverwrite(t, s, 1000, 3000, ow)
		v.bumped("PutOverwrite", 1000)
	}
	wantOverwrites(t, s, 3000, everyone, mods, alice, odd, empty)
	v.same("Overwrites")

	// Another channel of the same server, and one of another server, with
	// the same targets.
	other := role.Overwrite{ID: 1001, Type: role.OverwriteRole, Deny: role.SendMessages}
	MustPutOverwrite(t, s, 1000, 3001, other)
	v.bumped("PutOverwrite(other channel)", 1000)
	far := role.Overwrite{ID: 1, Type: role.OverwriteMember, Deny: role.ViewChannel}
	MustPutOverwrite(t, s, 2000, 4000, far)
	v.bumped("PutOverwrite(other server)", 2000)
	wantOverwrites(t, s, 3000, everyone, mods, alice, odd, empty)
	wantOverwrites(t, s, 3001, other)
	wantOverwrites(t, s, 4000, far)
	wantOverwrites(t, s, 3002)
	v.same("Overwrites")

	// A role and a member overwrite with the same ID are two overwrites.
	asMember := role.Overwrite{ID: 1001, Type: role.OverwriteMember, Allow: role.AttachFiles}
	MustPutOverwrite(t, s, 1000, 3000, asMember)
	v.bumped("PutOverwrite(same ID, other type)", 1000)
	wantOverwrites(t, s, 3000, everyone, mods, alice, odd, empty, asMember)
}

func testReplaceOverwrite(t *testing.T, s role.Store) {
	v := watch(t, s, 1000)
	mods := MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: 1001, Type: role.OverwriteRole, Allow: role.ViewChannel, Deny: role.SendMessages})
	alice := MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: 1, Type: role.OverwriteMember, Allow: role.ViewChannel})
	other := MustPutOverwrite(t, s, 1000, 3001, role.Overwrite{ID: 1001, Type: role.OverwriteRole, Allow: role.AddReactions})
	v.bumped("setup", 1000)

	mods.Allow, mods.Deny = role.ManageMessages, 0
	MustPutOverwrite(t, s, 1000, 3000, mods)
	v.bumped("PutOverwrite(replace)", 1000)
	wantOverwrites(t, s, 3000, mods, alice)

	MustPutOverwrite(t, s, 1000, 3000, mods)
	v.bumped("PutOverwrite(same value)", 1000)
	wantOverwrites(t, s, 3000, mods, alice)

	alice.Allow, alice.Deny = 0, 0
	MustPutOverwrite(t, s, 1000, 3000, alice)
	v.bumped("PutOverwrite(cleared)", 1000)
	wantOverwrites(t, s, 3000, mods, alice)
	wantOverwrites(t, s, 3001, other)
}

func testDeleteOverwrite(t *testing.T, s role.Store) {
	ctx := t.Context()
	everyone := MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: 1000, Type: role.OverwriteRole, Deny: role.ViewChannel})
	MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: 1001, Type: role.OverwriteRole, Allow: role.ViewChannel})
	alice := MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: 1, Type: role.OverwriteMember, Allow: role.ViewChannel})
	MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: 77, Type: role.OverwriteRole, Allow: role.AddReactions})
	MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: 77, Type: role.OverwriteMember, Deny: role.AddReactions})
	other := MustPutOverwrite(t, s, 1000, 3001, role.Overwrite{ID: 1001, Type: role.OverwriteRole, Deny: role.ViewChannel})
	far := MustPutOverwrite(t, s, 2000, 4000, role.Overwrite{ID: 2, Type: role.OverwriteMember, Deny: role.ViewChannel})
	v := watch(t, s, 1000, 2000)

	wantNoError(t, "DeleteOverwrite", s.DeleteOverwrite(ctx, 1000, 3000, 1001))
	v.bumped("DeleteOverwrite", 1000)
	wantOverwrites(t, s, 3000, everyone, alice,
		role.Overwrite{ID: 77, Type: role.OverwriteRole, Allow: role.AddReactions},
		role.Overwrite{ID: 77, Type: role.OverwriteMember, Deny: role.AddReactions})
	wantOverwrites(t, s, 3001, other)

	// Without a type, both overwrites of the target go.
	wantNoError(t, "DeleteOverwrite(both types)", s.DeleteOverwrite(ctx, 1000, 3000, 77))
	v.bumped("DeleteOverwrite(both types)", 1000)
	wantOverwrites(t, s, 3000, everyone, alice)

	wantKind(t, "DeleteOverwrite(deleted)", s.DeleteOverwrite(ctx, 1000, 3000, 1001), guildhall.NotFound)
	wantKind(t, "DeleteOverwrite(unknown)", s.DeleteOverwrite(ctx, 1000, 3000, 9999), guildhall.NotFound)
	wantKind(t, "DeleteOverwrite(on another channel)", s.DeleteOverwrite(ctx, 1000, 3001, 1), guildhall.NotFound)
	wantKind(t, "DeleteOverwrite(unknown channel)", s.DeleteOverwrite(ctx, 1000, 3999, 1000), guildhall.NotFound)
	wantKind(t, "DeleteOverwrite(other server's)", s.DeleteOverwrite(ctx, 1000, 3000, 2), guildhall.NotFound)
	v.same("failed DeleteOverwrite")
	wantOverwrites(t, s, 3000, everyone, alice)
	wantOverwrites(t, s, 3001, other)
	wantOverwrites(t, s, 4000, far)

	// The version bumped is that of the server given.
	wantNoError(t, "DeleteOverwrite(other server)", s.DeleteOverwrite(ctx, 2000, 4000, 2))
	v.bumped("DeleteOverwrite(other server)", 2000)
	wantOverwrites(t, s, 4000)

	// A deleted overwrite can be put again.
	MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: 1001, Type: role.OverwriteMember})
	v.bumped("PutOverwrite(deleted target)", 1000)
	wantOverwrites(t, s, 3000, everyone, alice, role.Overwrite{ID: 1001, Type: role.OverwriteMember})
}

func testOverwriteType(t *testing.T, s role.Store) {
	ctx := t.Context()
	mods := MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: 1001, Type: role.OverwriteRole, Allow: role.ViewChannel})
	v := watch(t, s, 1000)
	for _, typ := range []role.OverwriteType{2, 3, 0xff} {
		err := s.PutOverwrite(ctx, 1000, 3000, role.Overwrite{ID: 1002, Type: typ, Allow: role.ViewChannel})
		wantKind(t, fmt.Sprintf("PutOverwrite(type %d)", typ), err, guildhall.Invalid)
		// Not even over an existing overwrite of the same ID.
		err = s.PutOverwrite(ctx, 1000, 3000, role.Overwrite{ID: 1001, Type: typ})
		wantKind(t, fmt.Sprintf("PutOverwrite(type %d, existing ID)", typ), err, guildhall.Invalid)
	}
	v.same("invalid PutOverwrite")
	wantOverwrites(t, s, 3000, mods)
	wantOverwrites(t, s, 3001)
}

// testVersions checks each write method once more in one place, and that
// reads leave versions alone.
func testVersions(t *testing.T, s role.Store) {
	ctx := t.Context()
	if v := MustVersion(t, s, 1000); v != 0 {
		t.Fatalf("Version(new server) = %d, want 0", v)
	}
	v := watch(t, s, 1000, 2000, 5000)
	writes := []struct {
		name   string
		server uint64
		do     func() error
	}{
		{"PutRole", 1000, func() error { return s.PutRole(ctx, 1000, role.Role{ID: 1001, Position: 1}) }},
		{"PutRole(replace)", 1000, func() error { return s.PutRole(ctx, 1000, role.Role{ID: 1001, Position: 2}) }},
		{"AddMemberRole", 1000, func() error { return s.AddMemberRole(ctx, 1000, 1, 1001) }},
		{"RemoveMemberRole", 1000, func() error { return s.RemoveMemberRole(ctx, 1000, 1, 1001) }},
		{"PutOverwrite", 1000, func() error {
			return s.PutOverwrite(ctx, 1000, 3000, role.Overwrite{ID: 1001, Type: role.OverwriteRole, Allow: role.ViewChannel})
		}},
		{"PutOverwrite(replace)", 1000, func() error {
			return s.PutOverwrite(ctx, 1000, 3000, role.Overwrite{ID: 1001, Type: role.OverwriteRole, Deny: role.ViewChannel})
		}},
		{"DeleteOverwrite", 1000, func() error { return s.DeleteOverwrite(ctx, 1000, 3000, 1001) }},
		{"DeleteRole", 1000, func() error { return s.DeleteRole(ctx, 1000, 1001) }},
		{"PutRole(server 2000)", 2000, func() error { return s.PutRole(ctx, 2000, role.Role{ID: 2000}) }},
		{"AddMemberRole(server 2000)", 2000, func() error { return s.AddMemberRole(ctx, 2000, 1, 2000) }},
		{"PutOverwrite(server 2000)", 2000, func() error {
			return s.PutOverwrite(ctx, 2000, 4000, role.Overwrite{ID: 1, Type: role.OverwriteMember})
		}},
	}
	for _, w := range writes {
		wantNoError(t, w.name, w.do())
		v.bumped(w.name, w.server)
		// Reads, of the server written to and of others.
		for _, id := range []uint64{1000, 2000, 5000} {
			if _, err := s.Roles(ctx, id); err != nil {
				t.Fatalf("Roles(%d): %v", id, err)
			}
			if _, err := s.MemberRoles(ctx, id, 1); err != nil {
				t.Fatalf("MemberRoles(%d): %v", id, err)
			}
		}
		for _, id := range []uint64{3000, 4000} {
			if _, err := s.Overwrites(ctx, id); err != nil {
				t.Fatalf("Overwrites(%d): %v", id, err)
			}
		}
		v.same("reads after " + w.name)
	}
	if got := MustVersion(t, s, 5000); got != 0 {
		t.Errorf("Version(server never written) = %d, want 0", got)
	}
}

// testConcurrentWrites has writers race in one server: nothing is lost,
// and the version counts every write.
func testConcurrentWrites(t *testing.T, s role.Store) {
	ctx := t.Context()
	const writers, each = 8, 10
	before := MustVersion(t, s, 1000)
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*3)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := uint64(1001 + w*each + i)
				errs <- s.PutRole(ctx, 1000, role.Role{ID: id, Position: int(id - 1000)})
				errs <- s.AddMemberRole(ctx, 1000, uint64(1+w), id)
				errs <- s.PutOverwrite(ctx, 1000, 3000, role.Overwrite{ID: id, Type: role.OverwriteRole, Allow: role.ViewChannel})
				// Readers run alongside.
				if _, err := s.Roles(ctx, 1000); err != nil {
					errs <- err
				}
				if _, err := s.Version(ctx, 1000); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent write: %v", err)
		}
	}
	roles, err := s.Roles(ctx, 1000)
	if err != nil || len(roles) != writers*each {
		t.Errorf("Roles = %d roles, %v; want %d", len(roles), err, writers*each)
	}
	for w := range writers {
		ids, err := s.MemberRoles(ctx, 1000, uint64(1+w))
		if err != nil || len(ids) != each {
			t.Errorf("MemberRoles(user %d) = %v, %v; want %d roles", 1+w, ids, err, each)
		}
	}
	wantOverwriteCount(t, s, 3000, writers*each)
	if after := MustVersion(t, s, 1000); after < before+writers*each*3 {
		t.Errorf("Version after %d writes went from %d to %d", writers*each*3, before, after)
	}
}

func testRoleLimit(t *testing.T, s role.Store) {
	ctx := t.Context()
	MustPutRole(t, s, 1000, role.Role{ID: 1000, Permissions: role.DefaultEveryone})
	for i := 1; i < maxRoles; i++ {
		MustPutRole(t, s, 1000, role.Role{ID: uint64(1000 + i), Position: i})
	}
	v := watch(t, s, 1000, 2000)
	err := s.PutRole(ctx, 1000, role.Role{ID: 9999, Position: 1})
	wantKind(t, "PutRole(over the limit)", err, guildhall.Invalid)
	v.same("PutRole(over the limit)")
	roles, err := s.Roles(ctx, 1000)
	if err != nil || len(roles) != maxRoles {
		t.Fatalf("Roles = %d roles, %v; want %d", len(roles), err, maxRoles)
	}
	if roles[len(roles)-1].ID == 9999 {
		t.Errorf("the role over the limit was stored")
	}

	// Replacing is not adding.
	MustPutRole(t, s, 1000, role.Role{ID: 1001, Position: 1, Name: "renamed"})
	v.bumped("PutRole(replace at the limit)", 1000)
	// The limit is per server.
	MustPutRole(t, s, 2000, role.Role{ID: 2001, Position: 1})
	v.bumped("PutRole(other server)", 2000)
	// Deleting one makes room for one.
	wantNoError(t, "DeleteRole", s.DeleteRole(ctx, 1000, 1100))
	v.bumped("DeleteRole", 1000)
	MustPutRole(t, s, 1000, role.Role{ID: 9999, Position: 1})
	v.bumped("PutRole(after a delete)", 1000)
	wantKind(t, "PutRole(over the limit again)", s.PutRole(ctx, 1000, role.Role{ID: 9998, Position: 1}), guildhall.Invalid)
	v.same("PutRole(over the limit again)")
}

func testOverwriteLimit(t *testing.T, s role.Store) {
	ctx := t.Context()
	for i := range maxOverwrites / 2 {
		MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: uint64(1000 + i), Type: role.OverwriteRole, Allow: role.ViewChannel})
		MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: uint64(1 + i), Type: role.OverwriteMember, Deny: role.ViewChannel})
	}
	v := watch(t, s, 1000)
	for _, typ := range []role.OverwriteType{role.OverwriteRole, role.OverwriteMember} {
		err := s.PutOverwrite(ctx, 1000, 3000, role.Overwrite{ID: 9999, Type: typ})
		wantKind(t, "PutOverwrite(over the limit, "+typ.String()+")", err, guildhall.Invalid)
	}
	v.same("PutOverwrite(over the limit)")
	wantOverwriteCount(t, s, 3000, maxOverwrites)

	// Replacing is not adding; the limit is per channel.
	MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: 1000, Type: role.OverwriteRole, Deny: role.ViewChannel})
	v.bumped("PutOverwrite(replace at the limit)", 1000)
	MustPutOverwrite(t, s, 1000, 3001, role.Overwrite{ID: 9999, Type: role.OverwriteRole})
	v.bumped("PutOverwrite(other channel)", 1000)
	wantOverwriteCount(t, s, 3000, maxOverwrites)

	// Deleting one makes room for one.
	wantNoError(t, "DeleteOverwrite", s.DeleteOverwrite(ctx, 1000, 3000, 1))
	v.bumped("DeleteOverwrite", 1000)
	MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: 9999, Type: role.OverwriteMember})
	v.bumped("PutOverwrite(after a delete)", 1000)
	wantKind(t, "PutOverwrite(over the limit again)", s.PutOverwrite(ctx, 1000, 3000, role.Overwrite{ID: 9998, Type: role.OverwriteRole}), guildhall.Invalid)
	v.same("PutOverwrite(over the limit again)")
	wantOverwriteCount(t, s, 3000, maxOverwrites)
}

func testMemberRoleLimit(t *testing.T, s role.Store) {
	ctx := t.Context()
	ids := make([]uint64, maxMemberRoles)
	for i := range ids {
		ids[i] = uint64(1001 + i)
		MustPutRole(t, s, 1000, role.Role{ID: ids[i], Position: 1 + i})
	}
	MustAddMemberRoles(t, s, 1000, 1, ids...)
	v := watch(t, s, 1000)

	// Every role held is a stored one, and the server has no room for
	// another: a role ID beyond the limit is refused.
	err := s.AddMemberRole(ctx, 1000, 1, 9999)
	wantKind(t, "AddMemberRole(over the limit)", err, guildhall.Invalid)
	v.same("AddMemberRole(over the limit)")
	wantMemberRoles(t, s, 1000, 1, ids...)

	// Adding a role held is still fine; other members are not limited by
	// this one.
	wantNoError(t, "AddMemberRole(held, at the limit)", s.AddMemberRole(ctx, 1000, 1, ids[7]))
	v.noop("AddMemberRole(held, at the limit)", 1000)
	MustAddMemberRoles(t, s, 1000, 2, ids[0])
	v.bumped("AddMemberRole(other member)", 1000)

	// Removing one makes room for one.
	wantNoError(t, "RemoveMemberRole", s.RemoveMemberRole(ctx, 1000, 1, ids[0]))
	v.bumped("RemoveMemberRole", 1000)
	MustAddMemberRoles(t, s, 1000, 1, ids[0])
	v.bumped("AddMemberRole(after a removal)", 1000)
	wantMemberRoles(t, s, 1000, 1, ids...)
}

func testClearMember(t *testing.T, s role.Store) {
	ctx := context.Background()
	a := MustPutRole(t, s, 1000, role.Role{ID: 1001, Position: 1, Name: "a"})
	b := MustPutRole(t, s, 1000, role.Role{ID: 1002, Position: 2, Name: "b"})
	MustAddMemberRoles(t, s, 1000, 1, a.ID, b.ID)
	MustAddMemberRoles(t, s, 1000, 2, a.ID)
	v := watch(t, s, 1000, 2000)
	wantNoError(t, "ClearMember", s.ClearMember(ctx, 1000, 1))
	v.bumped("ClearMember", 1000)
	wantMemberRoles(t, s, 1000, 1)
	wantMemberRoles(t, s, 1000, 2, a.ID)
	wantNoError(t, "ClearMember of a member without roles", s.ClearMember(ctx, 1000, 3))
	v.noop("ClearMember of a member without roles", 1000)
}

func testDeleteChannel(t *testing.T, s role.Store) {
	ctx := context.Background()
	MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: 1000, Type: role.OverwriteRole, Deny: role.ViewChannel})
	MustPutOverwrite(t, s, 1000, 3000, role.Overwrite{ID: 1, Type: role.OverwriteMember, Allow: role.ViewChannel})
	keep := MustPutOverwrite(t, s, 1000, 3001, role.Overwrite{ID: 1000, Type: role.OverwriteRole, Deny: role.SendMessages})
	v := watch(t, s, 1000, 2000)
	wantNoError(t, "DeleteChannel", s.DeleteChannel(ctx, 1000, 3000))
	v.bumped("DeleteChannel", 1000)
	wantOverwrites(t, s, 3000)
	wantOverwrites(t, s, 3001, keep)
}

func testBump(t *testing.T, s role.Store) {
	ctx := context.Background()
	v := watch(t, s, 1000, 2000)
	wantNoError(t, "Bump", s.Bump(ctx, 2000))
	v.bumped("Bump", 2000)
	wantNoError(t, "Bump", s.Bump(ctx, 2000))
	v.bumped("second Bump", 2000)
}
