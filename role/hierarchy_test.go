package role_test

import (
	"testing"

	"github.com/guildhall/guildhall/role"
)

func TestHighestPosition(t *testing.T) {
	for _, c := range []struct {
		roles []role.Role
		want  int
	}{
		{nil, 0},
		{[]role.Role{}, 0},
		{[]role.Role{{ID: roleA, Position: 3}}, 3},
		{[]role.Role{{ID: roleA, Position: 2}, {ID: roleB, Position: 7}, {ID: roleC, Position: 5}}, 7},
	} {
		if got := role.HighestPosition(c.roles); got != c.want {
			t.Errorf("HighestPosition(%+v) = %d, want %d", c.roles, got, c.want)
		}
	}
}

func TestCanManageRole(t *testing.T) {
	mod := role.Role{ID: roleB, Position: 5, Permissions: role.ManageRoles}
	admin := role.Role{ID: roleC, Position: 5, Permissions: role.Administrator}
	plain := role.Role{ID: roleA, Position: 9}
	for _, c := range []struct {
		name   string
		actor  role.Input
		target role.Role
		want   bool
	}{
		{"owner, no roles, target at the top", role.Input{ServerID: server, OwnerID: owner, UserID: owner}, role.Role{ID: roleX, Position: 100}, true},
		{"ManageRoles, target below", member(0, []role.Role{mod}), role.Role{ID: roleX, Position: 4}, true},
		{"ManageRoles, target equal", member(0, []role.Role{mod}), role.Role{ID: roleX, Position: 5}, false},
		{"ManageRoles, target above", member(0, []role.Role{mod}), role.Role{ID: roleX, Position: 6}, false},
		{"ManageRoles, its own highest role", member(0, []role.Role{mod}), mod, false},
		{"ManageRoles from a low role, high role without it", member(0, []role.Role{{ID: roleA, Position: 1, Permissions: role.ManageRoles}, plain}), role.Role{ID: roleX, Position: 8}, true},
		{"ManageRoles via @everyone", member(role.ManageRoles, []role.Role{plain}), role.Role{ID: roleX, Position: 2}, true},
		{"ManageRoles, only @everyone: nothing below position 0", member(role.ManageRoles, nil), role.Role{ID: server, Position: 0}, false},
		{"ManageRoles, the @everyone role", member(0, []role.Role{mod}), role.Role{ID: server, Position: 0}, true},
		{"administrator, target below", member(0, []role.Role{admin}), role.Role{ID: roleX, Position: 4}, true},
		{"administrator is bound by hierarchy", member(0, []role.Role{admin}), role.Role{ID: roleX, Position: 6}, false},
		{"high role but no ManageRoles", member(role.DefaultEveryone, []role.Role{plain}), role.Role{ID: roleX, Position: 1}, false},
		{"zero input", role.Input{}, role.Role{}, false},
		{"channel overwrites do not grant ManageRoles", member(0, []role.Role{plain}, memberOW(user, role.ManageRoles, 0)), role.Role{ID: roleX, Position: 1}, false},
	} {
		if got := role.CanManageRole(c.actor, c.target); got != c.want {
			t.Errorf("%s: CanManageRole = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestCanGrant(t *testing.T) {
	mod := member(role.DefaultEveryone, []role.Role{{ID: roleB, Position: 5, Permissions: role.ManageRoles | manage}})
	if !role.CanGrant(mod, manage|view) {
		t.Error("cannot grant permissions the actor has")
	}
	if role.CanGrant(mod, role.KickMembers) || role.CanGrant(mod, role.Administrator) {
		t.Error("can grant permissions the actor lacks")
	}
	if !role.CanGrant(member(0, []role.Role{{ID: roleA, Permissions: role.Administrator}}), role.All) {
		t.Error("administrator cannot grant All")
	}
	if !role.CanGrant(role.Input{OwnerID: owner, UserID: owner}, role.All) {
		t.Error("owner cannot grant All")
	}
	if role.CanGrant(role.Input{OwnerID: owner, UserID: owner}, 1<<40) {
		t.Error("owner can grant an unknown bit")
	}
}

func TestCanModerate(t *testing.T) {
	low := []role.Role{{ID: roleA, Position: 1}}
	mid := []role.Role{{ID: roleA, Position: 1}, {ID: roleB, Position: 2}}
	high := []role.Role{{ID: roleC, Position: 3}}
	adminLow := []role.Role{{ID: roleA, Position: 1, Permissions: role.Administrator}}
	asOwner := role.Input{ServerID: server, OwnerID: owner, UserID: owner}
	for _, c := range []struct {
		name   string
		actor  role.Input
		target uint64
		roles  []role.Role
		want   bool
	}{
		{"owner moderates anyone", asOwner, other, high, true},
		{"owner moderates a member without roles", asOwner, other, nil, true},
		{"owner cannot moderate themselves", asOwner, owner, nil, false},
		{"nobody moderates the owner", member(0, high), owner, nil, false},
		{"higher moderates lower", member(0, mid), other, low, true},
		{"higher moderates a member without roles", member(0, low), other, nil, true},
		{"equal cannot", member(0, mid), other, []role.Role{{ID: roleC, Position: 2}}, false},
		{"lower cannot", member(0, low), other, mid, false},
		{"no roles cannot", member(0, nil), other, nil, false},
		{"cannot moderate oneself", member(0, high), user, high, false},
		{"administrator is bound by hierarchy", member(0, adminLow), other, mid, false},
		{"highest role counts, not the first", member(0, []role.Role{{ID: roleC, Position: 9}, {ID: roleA, Position: 1}}), other, mid, true},
		{"zero input", role.Input{}, other, nil, false},
	} {
		if got := role.CanModerate(c.actor, c.target, c.roles); got != c.want {
			t.Errorf("%s: CanModerate = %v, want %v", c.name, got, c.want)
		}
	}
}
