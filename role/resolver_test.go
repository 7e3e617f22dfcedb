package role_test

import (
	"context"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	guildhall "github.com/guildhall/guildhall"
	memberpkg "github.com/guildhall/guildhall/member"
	memberpebble "github.com/guildhall/guildhall/member/pebble"
	"github.com/guildhall/guildhall/role"
	rolepebble "github.com/guildhall/guildhall/role/pebble"
	"github.com/guildhall/guildhall/snowflake"
)

// world is a server on real Pebble stores: an owner, a plain member, a
// channel and a category.
type world struct {
	members  *memberpkg.Service
	roles    *role.Service
	res      *role.Resolver
	rstore   role.Store
	owner    memberpkg.User
	plain    memberpkg.User
	srv      memberpkg.Server
	channel  memberpkg.Channel
	category memberpkg.Channel
}

func mustWorld(tb testing.TB) *world {
	tb.Helper()
	db, err := pebbledb.Open("", &pebbledb.Options{FS: vfs.NewMem(), Logger: quiet{}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	ids, _ := snowflake.New(1, nil)
	mstore, rstore := memberpebble.New(db), rolepebble.New(db)
	w := &world{rstore: rstore}
	w.res = role.NewResolver(rstore, memberpkg.NewDirectory(mstore))
	w.roles = role.NewService(rstore, w.res, ids, nil)
	w.members = memberpkg.NewService(mstore, w.roles, ids, nil, memberpkg.Config{Password: memberpkg.PasswordParams{MemoryKiB: 64, Time: 1, Threads: 1}})
	ctx := context.Background()
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	w.owner, _, err = w.members.Register(ctx, "owner", "password1")
	must(err)
	w.plain, _, err = w.members.Register(ctx, "plain", "password1")
	must(err)
	w.srv, err = w.members.CreateServer(ctx, w.owner, "guild")
	must(err)
	inv, err := w.members.CreateInvite(ctx, w.owner, w.srv.ID, 0, 0)
	must(err)
	_, _, err = w.members.Join(ctx, w.plain, inv.Code)
	must(err)
	w.category, err = w.members.CreateChannelSpec(ctx, w.owner, w.srv.ID, memberpkg.ChannelSpec{Name: "staff", Type: memberpkg.ChannelCategory})
	must(err)
	w.channel, err = w.members.CreateChannel(ctx, w.owner, w.srv.ID, "chat")
	must(err)
	return w
}

type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(f string, a ...any) {
	panic("pebble: " + f)
}

// TestResolverSeesEveryChange checks that the cache never serves a stale
// decision: every write that changes who sees what is visible to the very
// next check.
func TestResolverSeesEveryChange(t *testing.T) {
	w := mustWorld(t)
	ctx := context.Background()
	canView := func() bool {
		_, err := w.res.CanRead(ctx, w.plain.ID, w.channel.ID)
		return err == nil
	}
	if !canView() {
		t.Fatal("plain cannot read a new channel")
	}
	// Hide it with an @everyone overwrite.
	if err := w.roles.PutOverwrite(ctx, w.owner.ID, w.channel.ID, role.Overwrite{ID: w.srv.ID, Type: role.OverwriteRole, Deny: role.ViewChannel}); err != nil {
		t.Fatal(err)
	}
	if canView() {
		t.Fatal("overwrite not seen")
	}
	// A role with an allow overwrite brings it back.
	r, err := w.roles.CreateRole(ctx, w.owner.ID, w.srv.ID, role.RoleUpdate{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.roles.PutOverwrite(ctx, w.owner.ID, w.channel.ID, role.Overwrite{ID: r.ID, Type: role.OverwriteRole, Allow: role.ViewChannel}); err != nil {
		t.Fatal(err)
	}
	if canView() {
		t.Fatal("role overwrite applies to a member without the role")
	}
	if err := w.roles.SetMemberRole(ctx, w.owner.ID, w.srv.ID, w.plain.ID, r.ID, true); err != nil {
		t.Fatal(err)
	}
	if !canView() {
		t.Fatal("assigned role not seen")
	}
	if err := w.roles.DeleteRole(ctx, w.owner.ID, w.srv.ID, r.ID); err != nil {
		t.Fatal(err)
	}
	if canView() {
		t.Fatal("deleted role still counts")
	}
	// Syncing to the (open) category takes its overwrites instead.
	yes, cat := true, w.category.ID
	if _, err := w.members.UpdateChannel(ctx, w.owner, w.channel.ID, memberpkg.ChannelUpdate{ParentID: &cat, Synced: &yes}); err != nil {
		t.Fatal(err)
	}
	if !canView() {
		t.Fatal("synced channel does not follow its category")
	}
	if err := w.roles.PutOverwrite(ctx, w.owner.ID, w.category.ID, role.Overwrite{ID: w.plain.ID, Type: role.OverwriteMember, Deny: role.ViewChannel}); err != nil {
		t.Fatal(err)
	}
	if canView() {
		t.Fatal("category overwrite not applied to a synced channel")
	}
	// Editing a synced channel's own overwrites is refused: it would do nothing.
	err = w.roles.PutOverwrite(ctx, w.owner.ID, w.channel.ID, role.Overwrite{ID: w.plain.ID, Type: role.OverwriteMember, Allow: role.ViewChannel})
	if guildhall.KindOf(err) != guildhall.Conflict {
		t.Fatalf("overwrite on a synced channel: %v, want Conflict", err)
	}
	// Unsynced, the channel's own overwrites apply again.
	no := false
	if _, err := w.members.UpdateChannel(ctx, w.owner, w.channel.ID, memberpkg.ChannelUpdate{Synced: &no}); err != nil {
		t.Fatal(err)
	}
	if canView() {
		t.Fatal("own @everyone deny not applied after unsync")
	}
	// The owner is never locked out, whatever the overwrites say.
	if err := w.roles.PutOverwrite(ctx, w.owner.ID, w.channel.ID, role.Overwrite{ID: w.owner.ID, Type: role.OverwriteMember, Deny: role.All &^ role.Administrator}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.res.CanSend(ctx, w.owner.ID, w.channel.ID); err != nil {
		t.Fatalf("owner locked out: %v", err)
	}
	// Leaving ends access at once.
	if err := w.members.Leave(ctx, w.plain, w.srv.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.res.CanRead(ctx, w.plain.ID, w.category.ID); guildhall.KindOf(err) != guildhall.NotFound {
		t.Fatalf("after leaving: %v, want NotFound", err)
	}
}

// TestVersionMovesOnMembershipChanges: sessions re-check what they follow
// when the version moves, so kicks, bans and leaves must move it.
func TestVersionMovesOnMembershipChanges(t *testing.T) {
	w := mustWorld(t)
	ctx := context.Background()
	version := func() uint64 {
		v, err := w.rstore.Version(ctx, w.srv.ID)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v0 := version()
	if err := w.members.Kick(ctx, w.owner, w.srv.ID, w.plain.ID); err != nil {
		t.Fatal(err)
	}
	if v1 := version(); v1 <= v0 {
		t.Fatalf("kick left the version at %d", v1)
	}
	v1 := version()
	if _, err := w.members.Ban(ctx, w.owner, w.srv.ID, w.plain.ID, "spam"); err != nil {
		t.Fatal(err)
	}
	if v2 := version(); v2 <= v1 {
		t.Fatalf("ban left the version at %d", v2)
	}
}

// BenchmarkCheck measures the permission check on the send path: cached
// (roles and overwrites unchanged since the last check) and uncached (the
// server's version moved before every check, so everything is re-read).
func BenchmarkCheck(b *testing.B) {
	w := mustWorld(b)
	ctx := context.Background()
	for i := range 5 {
		r, err := w.roles.CreateRole(ctx, w.owner.ID, w.srv.ID, role.RoleUpdate{})
		if err != nil {
			b.Fatal(err)
		}
		if i%2 == 0 {
			_ = w.roles.SetMemberRole(ctx, w.owner.ID, w.srv.ID, w.plain.ID, r.ID, true)
		}
		_ = w.roles.PutOverwrite(ctx, w.owner.ID, w.channel.ID, role.Overwrite{ID: r.ID, Type: role.OverwriteRole, Allow: role.SendMessages})
	}
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := w.res.CanSend(ctx, w.plain.ID, w.channel.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			if err := w.rstore.Bump(ctx, w.srv.ID); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := w.res.CanSend(ctx, w.plain.ID, w.channel.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCanMentionEveryone: MENTION_EVERYONE in the channel, with what
// sending needs; a hidden channel is NotFound.
func TestCanMentionEveryone(t *testing.T) {
	w := mustWorld(t)
	ctx := context.Background()
	can := func(u memberpkg.User) bool {
		t.Helper()
		ok, err := w.res.CanMentionEveryone(ctx, u.ID, w.channel.ID)
		if err != nil {
			t.Fatalf("CanMentionEveryone: %v", err)
		}
		return ok
	}
	if !can(w.owner) {
		t.Error("the owner may not mention everyone")
	}
	before := can(w.plain)
	if err := w.roles.PutOverwrite(ctx, w.owner.ID, w.channel.ID, role.Overwrite{ID: w.plain.ID, Type: role.OverwriteMember, Deny: role.MentionEveryone}); err != nil {
		t.Fatal(err)
	}
	if can(w.plain) {
		t.Errorf("plain mentions everyone with MENTION_EVERYONE denied (before: %v)", before)
	}
	if err := w.roles.PutOverwrite(ctx, w.owner.ID, w.channel.ID, role.Overwrite{ID: w.plain.ID, Type: role.OverwriteMember, Allow: role.MentionEveryone}); err != nil {
		t.Fatal(err)
	}
	if !can(w.plain) {
		t.Error("plain may not mention everyone with MENTION_EVERYONE allowed")
	}
	if err := w.roles.PutOverwrite(ctx, w.owner.ID, w.channel.ID, role.Overwrite{ID: w.plain.ID, Type: role.OverwriteMember, Deny: role.ViewChannel}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.res.CanMentionEveryone(ctx, w.plain.ID, w.channel.ID); guildhall.KindOf(err) != guildhall.NotFound {
		t.Errorf("hidden channel: %v, want NotFound", err)
	}
}
