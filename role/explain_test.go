package role_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/guildhall/guildhall/role"
)

func TestExplain(t *testing.T) {
	type step = role.Step
	for _, c := range []struct {
		name string
		in   role.Input
		p    role.Permissions
		want []step
		ok   bool
	}{
		{"owner",
			role.Input{ServerID: server, OwnerID: owner, UserID: owner, Overwrites: []role.Overwrite{memberOW(owner, 0, role.All)}},
			manage,
			[]step{{Source: role.SourceOwner, Allow: true, Has: true}}, true},
		{"administrator via role",
			member(view, []role.Role{{ID: roleA, Permissions: manage}, {ID: roleB, Permissions: role.Administrator}}, memberOW(user, 0, manage)),
			manage,
			[]step{
				{Source: role.SourceRole, RoleID: roleA, Allow: true, Has: true},
				{Source: role.SourceAdministrator, RoleID: roleB, Allow: true, Has: true},
			}, true},
		{"administrator via @everyone",
			member(role.Administrator, rolesAB), send,
			[]step{{Source: role.SourceAdministrator, RoleID: server, Allow: true, Has: true}}, true},
		{"not granted anywhere",
			member(view, rolesAB, everyoneOW(0, react)), manage,
			[]step{}, false},
		{"granted by @everyone and a role",
			member(send|view, []role.Role{{ID: roleA}, {ID: roleB, Permissions: send}}), send,
			[]step{
				{Source: role.SourceEveryoneRole, RoleID: server, Allow: true, Has: true},
				{Source: role.SourceRole, RoleID: roleB, Allow: true, Has: true},
			}, true},
		{"role overwrites: allow beats deny",
			member(view|send, rolesABC, everyoneOW(0, send), roleOW(roleA, 0, send), roleOW(roleB, send, 0), roleOW(roleC, react, 0), roleOW(roleX, 0, send)),
			send,
			[]step{
				{Source: role.SourceEveryoneRole, RoleID: server, Allow: true, Has: true},
				{Source: role.SourceEveryoneOverwrite, Deny: true, Has: false},
				{Source: role.SourceRoleOverwrites, Allow: true, Deny: true, Has: true, Roles: []role.RoleEffect{
					{RoleID: roleA, Deny: true},
					{RoleID: roleB, Allow: true},
				}},
			}, true},
		{"member overwrite beats role overwrite",
			member(view, rolesAB, roleOW(roleA, manage, 0), memberOW(user, 0, manage)), manage,
			[]step{
				{Source: role.SourceRoleOverwrites, Allow: true, Has: true, Roles: []role.RoleEffect{{RoleID: roleA, Allow: true}}},
				{Source: role.SourceMemberOverwrite, Deny: true, Has: false},
			}, false},
		{"implicit: no VIEW_CHANNEL",
			member(view|send, rolesAB, roleOW(roleB, 0, view)), send,
			[]step{
				{Source: role.SourceEveryoneRole, RoleID: server, Allow: true, Has: true},
				{Source: role.SourceNoViewChannel, Deny: true, Has: false},
			}, false},
		{"implicit rule not listed for VIEW_CHANNEL itself",
			member(view, rolesAB, roleOW(roleB, 0, view)), view,
			[]step{
				{Source: role.SourceEveryoneRole, RoleID: server, Allow: true, Has: true},
				{Source: role.SourceRoleOverwrites, Deny: true, Has: false, Roles: []role.RoleEffect{{RoleID: roleB, Deny: true}}},
			}, false},
		{"implicit: no SEND_MESSAGES",
			member(view|embed, rolesAB), embed,
			[]step{
				{Source: role.SourceEveryoneRole, RoleID: server, Allow: true, Has: true},
				{Source: role.SourceNoSendMessages, Deny: true, Has: false},
			}, false},
	} {
		e := role.Explain(c.in, c.p)
		if !reflect.DeepEqual(e.Steps, c.want) || e.Allowed != c.ok {
			t.Errorf("%s: Explain(%v) =\n  %+v, %v\nwant\n  %+v, %v", c.name, c.p.Names(), e.Steps, e.Allowed, c.want, c.ok)
		}
		if e.Allowed != role.Compute(c.in).Has(c.p) {
			t.Errorf("%s: Allowed = %v disagrees with Compute", c.name, e.Allowed)
		}
		if e.Permission != c.p {
			t.Errorf("%s: Permission = %v, want %v", c.name, e.Permission, c.p)
		}
	}
}

func TestExplainJSON(t *testing.T) {
	const big = 1234567890123456789 // snowflakes do not fit a JavaScript number
	in := role.Input{ServerID: server, OwnerID: owner, UserID: user, Everyone: view,
		Roles:      []role.Role{{ID: big, Position: 1}},
		Overwrites: []role.Overwrite{roleOW(big, send, 0)}}
	b, err := json.Marshal(role.Explain(in, send))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"permission":"2048","names":["SEND_MESSAGES"],"steps":[` +
		`{"source":"role overwrites","roles":[{"role_id":"1234567890123456789","allow":true,"deny":false}],"allow":true,"deny":false,"has":true}` +
		`],"allowed":true}`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}

	b, err = json.Marshal(role.Explain(in, manage))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"steps":[]`) {
		t.Errorf("JSON of an explanation without steps: %s, want \"steps\":[]", b)
	}
}
