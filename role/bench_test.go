package role_test

import (
	"testing"

	"github.com/guildhall/guildhall/role"
)

// realistic is a member with five roles in a channel with ten overwrites:
// @everyone, four of the member's roles, four roles the member lacks and
// the member's own.
func realistic() role.Input {
	const srv = 1_100_000_000_000_000_000
	roles := make([]role.Role, 5)
	for i := range roles {
		roles[i] = role.Role{ID: srv + 10 + uint64(i), Position: i + 1, Permissions: role.AttachFiles << (i % 3)}
	}
	return role.Input{
		ServerID: srv,
		OwnerID:  srv + 1,
		UserID:   srv + 2,
		Everyone: role.DefaultEveryone,
		Roles:    roles,
		Overwrites: []role.Overwrite{
			{ID: srv, Type: role.OverwriteRole, Deny: role.SendMessages | role.ViewChannel},
			{ID: srv + 20, Type: role.OverwriteRole, Allow: role.ManageMessages},
			{ID: srv + 10, Type: role.OverwriteRole, Allow: role.ViewChannel},
			{ID: srv + 21, Type: role.OverwriteRole, Deny: role.AddReactions},
			{ID: srv + 12, Type: role.OverwriteRole, Allow: role.SendMessages, Deny: role.MentionEveryone},
			{ID: srv + 22, Type: role.OverwriteRole, Allow: role.MentionEveryone},
			{ID: srv + 13, Type: role.OverwriteRole, Deny: role.EmbedLinks},
			{ID: srv + 23, Type: role.OverwriteRole, Deny: role.ViewChannel},
			{ID: srv + 14, Type: role.OverwriteRole, Allow: role.ReadMessageHistory},
			{ID: srv + 2, Type: role.OverwriteMember, Allow: role.EmbedLinks},
		},
	}
}

func TestRealistic(t *testing.T) {
	in := realistic()
	// Mention is denied by a role overwrite, send and view come back through
	// role overwrites, embed through the member overwrite.
	want := role.DefaultEveryone
	if got := role.Compute(in); got != want {
		t.Errorf("Compute = %v, want %v", got.Names(), want.Names())
	}
}

func TestComputeDoesNotAllocate(t *testing.T) {
	in := realistic()
	if n := testing.AllocsPerRun(100, func() { role.Compute(in) }); n != 0 {
		t.Errorf("Compute allocates %v times per call, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { role.Base(in) }); n != 0 {
		t.Errorf("Base allocates %v times per call, want 0", n)
	}
}

func BenchmarkCompute(b *testing.B) {
	in := realistic()
	b.ReportAllocs()
	for b.Loop() {
		role.Compute(in)
	}
}

func BenchmarkBase(b *testing.B) {
	in := realistic()
	b.ReportAllocs()
	for b.Loop() {
		role.Base(in)
	}
}

func BenchmarkExplain(b *testing.B) {
	in := realistic()
	b.ReportAllocs()
	for b.Loop() {
		role.Explain(in, role.SendMessages)
	}
}

// BenchmarkComputeReference is the baseline for BenchmarkCompute: the
// plain one-bit-at-a-time implementation the fuzz test compares against.
func BenchmarkComputeReference(b *testing.B) {
	in := realistic()
	b.ReportAllocs()
	for b.Loop() {
		reference(in)
	}
}
