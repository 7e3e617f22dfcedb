package role_test

import (
	"testing"

	"github.com/guildhall/guildhall/role"
)

// IDs used by the table tests.
const (
	server = 100 // the server, and its @everyone role
	owner  = 1
	user   = 2 // the member whose permissions are computed
	other  = 3 // another member
	roleA  = 10
	roleB  = 11
	roleC  = 12
	roleX  = 99 // a role the member does not hold
)

// member returns an Input for user, who does not own the server.
func member(everyone role.Permissions, roles []role.Role, ows ...role.Overwrite) role.Input {
	return role.Input{ServerID: server, OwnerID: owner, UserID: user, Everyone: everyone, Roles: roles, Overwrites: ows}
}

func everyoneOW(allow, deny role.Permissions) role.Overwrite {
	return role.Overwrite{ID: server, Type: role.OverwriteRole, Allow: allow, Deny: deny}
}

func roleOW(id uint64, allow, deny role.Permissions) role.Overwrite {
	return role.Overwrite{ID: id, Type: role.OverwriteRole, Allow: allow, Deny: deny}
}

func memberOW(id uint64, allow, deny role.Permissions) role.Overwrite {
	return role.Overwrite{ID: id, Type: role.OverwriteMember, Allow: allow, Deny: deny}
}

const (
	view    = role.ViewChannel
	send    = role.SendMessages
	history = role.ReadMessageHistory
	mention = role.MentionEveryone
	embed   = role.EmbedLinks
	attach  = role.AttachFiles
	react   = role.AddReactions
	manage  = role.ManageMessages
)

var (
	rolesAB  = []role.Role{{ID: roleA, Position: 1}, {ID: roleB, Position: 2}}
	rolesABC = []role.Role{{ID: roleA, Position: 1}, {ID: roleB, Position: 2}, {ID: roleC, Position: 3}}
)

func TestBase(t *testing.T) {
	for _, c := range []struct {
		name string
		in   role.Input
		want role.Permissions
	}{
		{"zero input is not the owner", role.Input{}, 0},
		{"@everyone only", member(role.DefaultEveryone, nil), role.DefaultEveryone},
		{"owner", role.Input{ServerID: server, OwnerID: owner, UserID: owner}, role.All},
		{"owner ignores overwrites", role.Input{ServerID: server, OwnerID: owner, UserID: owner,
			Overwrites: []role.Overwrite{everyoneOW(0, role.All), memberOW(owner, 0, role.All)}}, role.All},
		{"roles add to @everyone", member(view, []role.Role{{ID: roleA, Permissions: send}, {ID: roleB, Permissions: role.KickMembers}}),
			view | send | role.KickMembers},
		{"administrator via role", member(view, []role.Role{{ID: roleA, Permissions: role.Administrator}}), role.All},
		{"administrator via @everyone", member(role.Administrator, nil), role.All},
		{"unknown bits dropped", member(view|1<<8|1<<40, []role.Role{{ID: roleA, Permissions: send | 1<<63}}), view | send},
		{"overwrites do not matter", member(view, nil, everyoneOW(send, view)), view},
		{"no implicit rules at server level", member(mention|embed, nil), mention | embed},
	} {
		if got := role.Base(c.in); got != c.want {
			t.Errorf("%s: Base = %v, want %v", c.name, got.Names(), c.want.Names())
		}
	}
}

func TestCompute(t *testing.T) {
	base := view | send | history | react | embed | attach
	for _, c := range []struct {
		name string
		in   role.Input
		want role.Permissions
	}{
		{"zero input", role.Input{}, 0},
		{"no overwrites: base", member(base, rolesAB), base},
		{"owner: All despite every deny", role.Input{ServerID: server, OwnerID: owner, UserID: owner,
			Overwrites: []role.Overwrite{everyoneOW(0, role.All), memberOW(owner, 0, role.All)}}, role.All},
		{"administrator via role: overwrites ignored",
			member(0, []role.Role{{ID: roleA, Permissions: role.Administrator}},
				everyoneOW(0, role.All), roleOW(roleA, 0, role.All), memberOW(user, 0, role.All)), role.All},
		{"@everyone overwrite denies",
			member(base, nil, everyoneOW(0, react)), base &^ react},
		{"@everyone overwrite allows",
			member(base, nil, everyoneOW(manage, 0)), base | manage},
		{"@everyone overwrite needs type role",
			member(base, nil, memberOW(server, 0, react)), base},
		{"role overwrite denies",
			member(base, rolesAB, roleOW(roleA, 0, react)), base &^ react},
		{"role overwrites merged: allow on one role beats deny on another",
			member(base&^send, rolesAB, roleOW(roleB, 0, send), roleOW(roleA, send, 0)), base},
		{"role overwrites merged: order of overwrites does not matter",
			member(base&^send, rolesAB, roleOW(roleA, send, 0), roleOW(roleB, 0, send)), base},
		{"role overwrite deny beats @everyone overwrite allow",
			member(base, rolesAB, everyoneOW(mention, 0), roleOW(roleA, 0, mention)), base},
		{"role overwrite allow beats @everyone overwrite deny",
			member(base, rolesAB, everyoneOW(0, send), roleOW(roleB, send, 0)), base},
		{"member overwrite deny beats role overwrite allow",
			member(base, rolesAB, roleOW(roleA, manage, 0), memberOW(user, 0, manage|react)), base &^ react},
		{"member overwrite allow beats role overwrite deny",
			member(base, rolesAB, roleOW(roleA, 0, view), roleOW(roleB, 0, view), memberOW(user, view, 0)), base},
		{"overwrites of roles not held are ignored",
			member(base, rolesAB, roleOW(roleX, 0, view), roleOW(roleC, 0, send)), base},
		{"overwrites of other members are ignored",
			member(base, rolesAB, memberOW(other, 0, view)), base},
		{"a member overwrite with a held role's ID is not a role overwrite",
			member(base, rolesAB, memberOW(roleA, 0, view)), base},
		{"a role overwrite with the user's ID is not a member overwrite",
			member(base, rolesAB, roleOW(user, 0, view)), base},
		{"overwrites of unknown type are ignored",
			member(base, rolesAB, role.Overwrite{ID: user, Type: 7, Deny: view}), base},
		{"@everyone listed among the roles: its overwrite still applies once, as @everyone",
			member(base, []role.Role{{ID: server}, {ID: roleA, Position: 1}}, everyoneOW(0, send), roleOW(roleA, send, 0)), base},
		{"implicit: no VIEW_CHANNEL means nothing",
			member(base|manage, rolesAB, everyoneOW(0, view), roleOW(roleA, send|mention, 0)), 0},
		{"implicit: no VIEW_CHANNEL without any overwrite",
			member(send|history, nil), 0},
		{"implicit: no SEND_MESSAGES drops mention, embed, attach",
			member(base|mention, rolesAB, roleOW(roleA, 0, send)), base &^ (send | embed | attach)},
		{"implicit: SEND_MESSAGES regained by member overwrite keeps them",
			member(base|mention, rolesAB, roleOW(roleA, 0, send), memberOW(user, send, 0)), base | mention},
		{"an overwrite cannot grant Administrator",
			member(base, rolesAB, everyoneOW(role.Administrator, 0), roleOW(roleA, role.Administrator, 0), memberOW(user, role.Administrator, 0)), base},
		{"unknown bits in overwrites are dropped",
			member(base, rolesAB, memberOW(user, 1<<8|1<<50, 0)), base},
		{"duplicate overwrites for one target are merged",
			member(base, rolesAB, memberOW(user, 0, send), memberOW(user, send, react)), base &^ react},
		{"server-level permissions pass through channel computation",
			member(base|role.KickMembers, nil), base | role.KickMembers},
	} {
		if got := role.Compute(c.in); got != c.want {
			t.Errorf("%s: Compute = %v, want %v", c.name, got.Names(), c.want.Names())
		}
		if got, want := role.Compute(c.in), reference(c.in); got != want {
			t.Errorf("%s: Compute = %v, reference = %v", c.name, got.Names(), want.Names())
		}
	}
}

// TestDiscordExamples runs the examples of the "Permissions" topic of
// Discord's developer documentation.
func TestDiscordExamples(t *testing.T) {
	// "Permission Hierarchy": a user has roles A and B; on #coolstuff A's
	// overwrite denies VIEW_CHANNEL and B's allows it. The user can view the
	// channel, whichever role is higher.
	for _, roles := range [][]role.Role{
		{{ID: roleA, Position: 1}, {ID: roleB, Position: 2}},
		{{ID: roleA, Position: 2}, {ID: roleB, Position: 1}},
	} {
		in := member(role.DefaultEveryone, roles, roleOW(roleA, 0, view), roleOW(roleB, view, 0))
		if !role.Compute(in).Has(view) {
			t.Errorf("#coolstuff, A at %d, B at %d: cannot view; want can", roles[0].Position, roles[1].Position)
		}
	}

	// "Permission Overwrites": the eight steps, in order. Each permission
	// below is settled by a different step, and each later step undoes the
	// one before it for that permission.
	in := member(
		view|send, // 1. @everyone allows view, send
		[]role.Role{{ID: roleA, Position: 1, Permissions: history | react}}, // 2. roles allow history, react
		everyoneOW(
			embed,        // 4. @everyone overwrite allows embed
			history|send, // 3. @everyone overwrite denies history, send
		),
		roleOW(roleA,
			history|attach, // 6. role overwrite allows history, attach
			embed|react,    // 5. role overwrite denies embed, react
		),
		memberOW(user,
			react|send, // 8. member overwrite allows react, send
			attach,     // 7. member overwrite denies attach
		),
	)
	if got, want := role.Compute(in), view|send|history|react; got != want {
		t.Errorf("eight steps: Compute = %v, want %v", got.Names(), want.Names())
	}

	// "Implicit Permissions": denying VIEW_CHANNEL to a role implicitly
	// denies everything else on the channel, though SEND_MESSAGES is not
	// explicitly denied.
	in = member(role.DefaultEveryone, rolesAB, roleOW(roleA, 0, view))
	if got := role.Compute(in); got != 0 {
		t.Errorf("VIEW_CHANNEL denied to a role: Compute = %v, want nothing", got.Names())
	}
	// The same for a user.
	in = member(role.DefaultEveryone, nil, memberOW(user, 0, view))
	if got := role.Compute(in); got != 0 {
		t.Errorf("VIEW_CHANNEL denied to the user: Compute = %v, want nothing", got.Names())
	}
	// Denying SEND_MESSAGES implicitly denies MENTION_EVERYONE,
	// ATTACH_FILES and EMBED_LINKS (and SEND_TTS_MESSAGES, which Guildhall
	// lacks); permissions that do not need sending stay.
	in = member(role.DefaultEveryone|mention, nil, memberOW(user, 0, send))
	got := role.Compute(in)
	if got.Has(mention) || got.Has(attach) || got.Has(embed) || got.Has(send) {
		t.Errorf("SEND_MESSAGES denied: Compute = %v, want no send, mention, attach, embed", got.Names())
	}
	if want := view | history | react | role.CreateInvite | role.ChangeNickname; got != want {
		t.Errorf("SEND_MESSAGES denied: Compute = %v, want %v", got.Names(), want.Names())
	}
}
