package role_test

import (
	"encoding/json"
	"math/bits"
	"slices"
	"strings"
	"testing"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/role"
)

func TestAllAndDefaults(t *testing.T) {
	if n := bits.OnesCount64(uint64(role.All)); n != 18 {
		t.Errorf("All has %d bits, want 18", n)
	}
	if len(role.All.Names()) != 18 {
		t.Errorf("All.Names() = %v, want 18 names", role.All.Names())
	}
	if !role.All.Has(role.DefaultEveryone) {
		t.Errorf("DefaultEveryone %v has bits outside All", role.DefaultEveryone)
	}
	want := []string{"CREATE_INVITE", "ADD_REACTIONS", "VIEW_CHANNEL", "SEND_MESSAGES",
		"EMBED_LINKS", "ATTACH_FILES", "READ_MESSAGE_HISTORY", "CHANGE_NICKNAME"}
	if got := role.DefaultEveryone.Names(); !slices.Equal(got, want) {
		t.Errorf("DefaultEveryone.Names() = %v, want %v", got, want)
	}
	if role.DefaultEveryone.Has(role.Administrator) || role.DefaultEveryone.Has(role.MentionEveryone) {
		t.Errorf("DefaultEveryone grants too much: %v", role.DefaultEveryone.Names())
	}
}

// TestDiscordValues pins the bit values to Discord's table, written out in
// hex as the documentation does.
func TestDiscordValues(t *testing.T) {
	for _, c := range []struct {
		p    role.Permissions
		want uint64
		name string
	}{
		{role.CreateInvite, 0x1, "CREATE_INVITE"},
		{role.KickMembers, 0x2, "KICK_MEMBERS"},
		{role.BanMembers, 0x4, "BAN_MEMBERS"},
		{role.Administrator, 0x8, "ADMINISTRATOR"},
		{role.ManageChannels, 0x10, "MANAGE_CHANNELS"},
		{role.ManageServer, 0x20, "MANAGE_SERVER"},
		{role.AddReactions, 0x40, "ADD_REACTIONS"},
		{role.ViewAuditLog, 0x80, "VIEW_AUDIT_LOG"},
		{role.ViewChannel, 0x400, "VIEW_CHANNEL"},
		{role.SendMessages, 0x800, "SEND_MESSAGES"},
		{role.ManageMessages, 0x2000, "MANAGE_MESSAGES"},
		{role.EmbedLinks, 0x4000, "EMBED_LINKS"},
		{role.AttachFiles, 0x8000, "ATTACH_FILES"},
		{role.ReadMessageHistory, 0x10000, "READ_MESSAGE_HISTORY"},
		{role.MentionEveryone, 0x20000, "MENTION_EVERYONE"},
		{role.ChangeNickname, 0x4000000, "CHANGE_NICKNAME"},
		{role.ManageNicknames, 0x8000000, "MANAGE_NICKNAMES"},
		{role.ManageRoles, 0x10000000, "MANAGE_ROLES"},
	} {
		if uint64(c.p) != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, uint64(c.p), c.want)
		}
		if got := c.p.Names(); !slices.Equal(got, []string{c.name}) {
			t.Errorf("%#x.Names() = %v, want [%s]", c.want, got, c.name)
		}
		if got, ok := role.Named(c.name); !ok || got != c.p {
			t.Errorf("Named(%q) = %v, %v; want %v, true", c.name, got, ok, c.p)
		}
	}
	if _, ok := role.Named("MANAGE_GUILD"); ok {
		t.Error(`Named("MANAGE_GUILD") found a permission; the name is MANAGE_SERVER`)
	}
	if _, ok := role.Named(""); ok {
		t.Error(`Named("") found a permission`)
	}
}

func TestHas(t *testing.T) {
	p := role.ViewChannel | role.SendMessages
	for _, c := range []struct {
		q    role.Permissions
		want bool
	}{
		{0, true},
		{role.ViewChannel, true},
		{role.ViewChannel | role.SendMessages, true},
		{role.ViewChannel | role.AttachFiles, false},
		{role.AttachFiles, false},
	} {
		if got := p.Has(c.q); got != c.want {
			t.Errorf("%v.Has(%v) = %v, want %v", p.Names(), c.q.Names(), got, c.want)
		}
	}
}

func TestNames(t *testing.T) {
	if got := role.Permissions(0).Names(); got == nil || len(got) != 0 {
		t.Errorf("0.Names() = %#v, want empty non-nil", got)
	}
	p := role.ManageRoles | role.CreateInvite | 1<<40 | 1<<8
	if got, want := p.Names(), []string{"CREATE_INVITE", "MANAGE_ROLES"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v (unknown bits left out)", got, want)
	}
}

func TestParsePermissions(t *testing.T) {
	for _, c := range []struct {
		in   string
		want role.Permissions
	}{
		{"0", 0},
		{"1024", role.ViewChannel},
		{"3072", role.ViewChannel | role.SendMessages},
		{role.All.String(), role.All},
		{role.DefaultEveryone.String(), role.DefaultEveryone},
		{"0008", role.Administrator}, // leading zeros are still decimal
	} {
		got, err := role.ParsePermissions(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParsePermissions(%q) = %v, %v; want %v, nil", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{
		"",
		" 1024",
		"1024 ",
		"+1024",
		"-1",
		"0x400",
		"1e3",
		"1_024",
		"10.0",
		"abc",
		"18446744073709551616", // 2^64
		"256",                  // bit 8 (PRIORITY_SPEAKER): a Discord bit Guildhall lacks
		"4096",                 // bit 12
		"1099511627776",        // bit 40
		"18446744073709551615", // every bit
		strings.Repeat("9", 100),
	} {
		got, err := role.ParsePermissions(in)
		if err == nil {
			t.Errorf("ParsePermissions(%q) = %v, nil; want an error", in, got)
			continue
		}
		if k := guildhall.KindOf(err); k != guildhall.Invalid {
			t.Errorf("ParsePermissions(%q): kind %v, want Invalid (%v)", in, k, err)
		}
		if len(err.Error()) > 200 {
			t.Errorf("ParsePermissions(%q): error too long: %q", in, err)
		}
	}
	_, err := role.ParsePermissions("1280") // VIEW_CHANNEL | bit 8
	if err == nil || !strings.Contains(err.Error(), "unknown permission bits 0x100") {
		t.Errorf(`ParsePermissions("1280") error = %v, want it to name the unknown bits 0x100`, err)
	}
}

func TestStringRoundTrip(t *testing.T) {
	for p := role.Permissions(1); p <= role.ManageRoles; p <<= 1 {
		if !role.All.Has(p) {
			continue
		}
		got, err := role.ParsePermissions(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePermissions(%q) = %v, %v; want %v", p.String(), got, err, p)
		}
	}
}

func TestPermissionsJSON(t *testing.T) {
	ow := role.Overwrite{ID: 123456789012345678, Type: role.OverwriteMember, Allow: role.ViewChannel, Deny: role.SendMessages}
	b, err := json.Marshal(ow)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"id":"123456789012345678","type":1,"allow":"1024","deny":"2048"}`
	if string(b) != want {
		t.Errorf("json.Marshal(overwrite) = %s, want %s", b, want)
	}
	var back role.Overwrite
	if err := json.Unmarshal(b, &back); err != nil || back != ow {
		t.Errorf("json.Unmarshal(%s) = %+v, %v; want %+v", b, back, err, ow)
	}
	var r role.Role
	if err := json.Unmarshal([]byte(`{"id":"5","position":2,"permissions":"256"}`), &r); err == nil {
		t.Errorf("unmarshalling a role with unknown permission bits succeeded: %+v", r)
	}
	if err := json.Unmarshal([]byte(`{"id":"5","position":2,"permissions":1024}`), &r); err == nil {
		t.Errorf("unmarshalling permissions as a JSON number succeeded: %+v", r)
	}
}
