// Package membertest is the conformance suite of member.Store. Every
// implementation runs it from its own tests:
//
//	func TestStore(t *testing.T) {
//		membertest.Run(t, func(t *testing.T) member.Store { return newStore(t) })
//	}
//
// The suite talks to the store only through member.Store. newStore must
// return an empty store for each call; the subtests do not run in parallel,
// so an implementation on a shared server may reset it in newStore. Times
// are in UTC and whole milliseconds, which every backend can keep exactly.
//
// Besides what member.Store documents, the suite pins down these rules:
//   - creating a user, token, server, channel or invite whose ID (or hash,
//     or code) is taken is a Conflict, and a failed CreateServer leaves
//     nothing behind;
//   - Channels, Members and MemberCount of an unknown server, ServersOf an
//     unknown user, CreateChannel and CreateInvite in an unknown server,
//     DeleteToken of an unknown token are NotFound;
//   - JoinByInvite puts m in the invite's server whatever m.ServerID says,
//     and a user who is already a member gets their membership back even
//     if the invite has expired or is used up;
//   - UpdateServer changes the name only: owner and creation time keep,
//     whatever the given server says; an unknown server is NotFound;
//   - UpdateMember changes the nickname only: username, join time and the
//     member's place in prefix search (which stays on the username) keep;
//   - Ban and Bans in an unknown server are NotFound; Ban needs no
//     membership (nor a known user), and banning again neither removes nor
//     counts anything twice;
//   - a banned user's JoinByInvite is Forbidden and counts no use, on any
//     invite of that server; Unban does not restore the membership, and
//     Bans clamps its limit to at least 1.
package membertest

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/member"
)

// Run runs the suite; newStore returns a new, empty store.
func Run(t *testing.T, newStore func(t *testing.T) member.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s member.Store)
	}{
		{"Users", testUsers},
		{"Tokens", testTokens},
		{"CreateServer", testCreateServer},
		{"CreateServerTakenIDs", testCreateServerTakenIDs},
		{"UnknownServer", testUnknownServer},
		{"ServersOf", testServersOf},
		{"UpdateServer", testUpdateServer},
		{"Channels", testChannels},
		{"MembersByID", testMembersByID},
		{"MembersByPrefix", testMembersByPrefix},
		{"JoinAndLeave", testJoinAndLeave},
		{"Invites", testInvites},
		{"InviteMaxUses", testInviteMaxUses},
		{"InviteExpired", testInviteExpired},
		{"InviteAlreadyMember", testInviteAlreadyMember},
		{"SyncedChannels", testSyncedChannels},
		{"Nicknames", testNicknames},
		{"BanRemovesMember", testBanRemovesMember},
		{"BanNonMember", testBanNonMember},
		{"BansPaging", testBansPaging},
		{"BannedCannotJoin", testBannedCannotJoin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

// base is the suite's clock: every time is base plus an offset.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return base.Add(d) }

func testUsers(t *testing.T, s member.Store) {
	ctx := t.Context()
	alice := member.User{ID: 101, Username: "Alice", CreatedAt: at(time.Second)}
	hash := []byte("argon2id$alice")
	if err := s.CreateUser(ctx, alice, hash); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	got, err := s.User(ctx, alice.ID)
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	wantEqual(t, "User", normUser(got), alice)

	for _, name := range []string{"Alice", "alice", "ALICE", "aLiCe"} {
		got, gotHash, err := s.UserByName(ctx, name)
		if err != nil {
			t.Fatalf("UserByName(%q): %v", name, err)
		}
		wantEqual(t, "UserByName("+name+")", normUser(got), alice)
		if string(gotHash) != string(hash) {
			t.Errorf("UserByName(%q) hash = %q, want %q", name, gotHash, hash)
		}
	}

	err = s.CreateUser(ctx, member.User{ID: 102, Username: "ALICE", CreatedAt: at(2 * time.Second)}, []byte("x"))
	wantKind(t, "CreateUser(taken name, other case)", err, guildhall.Conflict)
	_, err = s.User(ctx, 102)
	wantKind(t, "User(rejected user)", err, guildhall.NotFound)

	err = s.CreateUser(ctx, member.User{ID: alice.ID, Username: "other", CreatedAt: at(2 * time.Second)}, []byte("x"))
	wantKind(t, "CreateUser(taken ID)", err, guildhall.Conflict)
	_, _, err = s.UserByName(ctx, "other")
	wantKind(t, "UserByName(rejected user)", err, guildhall.NotFound)

	bob := MustUser(t, s, 103, "bob")
	got, _, err = s.UserByName(ctx, "BOB")
	if err != nil {
		t.Fatalf("UserByName(BOB): %v", err)
	}
	wantEqual(t, "UserByName(BOB)", normUser(got), bob)

	_, err = s.User(ctx, 999)
	wantKind(t, "User(unknown)", err, guildhall.NotFound)
	_, _, err = s.UserByName(ctx, "nobody")
	wantKind(t, "UserByName(unknown)", err, guildhall.NotFound)
	_, _, err = s.UserByName(ctx, "alic")
	wantKind(t, "UserByName(prefix of a name)", err, guildhall.NotFound)
}

func testTokens(t *testing.T, s member.Store) {
	ctx := t.Context()
	u := MustUser(t, s, 101, "alice")
	tok := member.Token{
		Hash:      sha256.Sum256([]byte("secret")),
		UserID:    u.ID,
		CreatedAt: at(time.Minute),
		ExpiresAt: at(time.Hour),
	}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	other := member.Token{Hash: sha256.Sum256([]byte("other")), UserID: u.ID, CreatedAt: at(time.Minute)}
	if err := s.CreateToken(ctx, other); err != nil {
		t.Fatalf("CreateToken(no expiry): %v", err)
	}
	err := s.CreateToken(ctx, member.Token{Hash: tok.Hash, UserID: 999, CreatedAt: at(time.Minute)})
	wantKind(t, "CreateToken(taken hash)", err, guildhall.Conflict)

	got, err := s.Token(ctx, tok.Hash)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	wantEqual(t, "Token", normToken(got), tok)
	got, err = s.Token(ctx, other.Hash)
	if err != nil {
		t.Fatalf("Token(other): %v", err)
	}
	wantEqual(t, "Token(other)", normToken(got), other)

	_, err = s.Token(ctx, sha256.Sum256([]byte("unknown")))
	wantKind(t, "Token(unknown)", err, guildhall.NotFound)

	if err := s.DeleteToken(ctx, tok.Hash); err != nil {
		t.Fatalf("DeleteToken: %v", err)
	}
	_, err = s.Token(ctx, tok.Hash)
	wantKind(t, "Token(deleted)", err, guildhall.NotFound)
	wantKind(t, "DeleteToken(deleted)", s.DeleteToken(ctx, tok.Hash), guildhall.NotFound)
	if _, err := s.Token(ctx, other.Hash); err != nil {
		t.Errorf("Token(other) after deleting the first: %v", err)
	}
}

func testCreateServer(t *testing.T, s member.Store) {
	ctx := t.Context()
	owner := MustUser(t, s, 101, "Owner")
	srv := member.Server{ID: 1000, Name: "Guild", OwnerID: owner.ID, CreatedAt: at(time.Minute)}
	channels := []member.Channel{
		{ID: 1003, ServerID: srv.ID, Name: "general", Type: member.ChannelText, Position: 1, ParentID: 1001, CreatedAt: at(time.Minute)},
		{ID: 1001, ServerID: srv.ID, Name: "Text Channels", Type: member.ChannelCategory, Position: 0, CreatedAt: at(time.Minute)},
		{ID: 1002, ServerID: srv.ID, Name: "rules", Type: member.ChannelText, Position: 0, ParentID: 1001, CreatedAt: at(time.Minute)},
	}
	ownerM := member.Member{ServerID: srv.ID, UserID: owner.ID, Username: owner.Username, JoinedAt: at(time.Minute)}
	if err := s.CreateServer(ctx, srv, channels, ownerM); err != nil {
		t.Fatalf("CreateServer: %v", err)
	}

	got, err := s.Server(ctx, srv.ID)
	if err != nil {
		t.Fatalf("Server: %v", err)
	}
	wantEqual(t, "Server", normServer(got), srv)
	for _, c := range channels {
		got, err := s.Channel(ctx, c.ID)
		if err != nil {
			t.Fatalf("Channel(%d): %v", c.ID, err)
		}
		wantEqual(t, "Channel", normChannel(got), c)
	}
	// By (position, ID): both position 0, then position 1.
	wantChannels(t, s, srv.ID, 1001, 1002, 1003)

	m, err := s.Member(ctx, srv.ID, owner.ID)
	if err != nil {
		t.Fatalf("Member(owner): %v", err)
	}
	wantEqual(t, "Member(owner)", normMember(m), ownerM)
	wantCount(t, s, srv.ID, 1)
	wantServersOf(t, s, owner.ID, srv.ID)
	members, err := s.Members(ctx, srv.ID, member.MemberQuery{Limit: 100})
	if err != nil {
		t.Fatalf("Members: %v", err)
	}
	if len(members) != 1 || normMember(members[0]) != ownerM {
		t.Errorf("Members = %v, want only the owner %v", members, ownerM)
	}
	wantMemberIDs(t, s, srv.ID, member.MemberQuery{Prefix: "own", Limit: 10}, owner.ID)
	wantMemberIDs(t, s, srv.ID, member.MemberQuery{Prefix: "owner", Limit: 10}, owner.ID)
	wantMemberIDs(t, s, srv.ID, member.MemberQuery{Prefix: "owners", Limit: 10})

	// A server with no channels is fine.
	srv2 := member.Server{ID: 2000, Name: "Empty", OwnerID: owner.ID, CreatedAt: at(2 * time.Minute)}
	if err := s.CreateServer(ctx, srv2, nil, member.Member{ServerID: srv2.ID, UserID: owner.ID, Username: owner.Username, JoinedAt: at(2 * time.Minute)}); err != nil {
		t.Fatalf("CreateServer(no channels): %v", err)
	}
	wantChannels(t, s, srv2.ID)
	wantServersOf(t, s, owner.ID, srv.ID, srv2.ID)
}

func testCreateServerTakenIDs(t *testing.T, s member.Store) {
	ctx := t.Context()
	alice := MustUser(t, s, 101, "alice")
	bob := MustUser(t, s, 102, "bob")
	MustServer(t, s, 1000, alice, 1001, 1002)

	// The server ID is taken: nothing of the second server may appear.
	srv := member.Server{ID: 1000, Name: "Copy", OwnerID: bob.ID, CreatedAt: at(time.Hour)}
	chans := []member.Channel{{ID: 1101, ServerID: srv.ID, Name: "x", CreatedAt: at(time.Hour)}}
	err := s.CreateServer(ctx, srv, chans, member.Member{ServerID: srv.ID, UserID: bob.ID, Username: bob.Username, JoinedAt: at(time.Hour)})
	wantKind(t, "CreateServer(taken server ID)", err, guildhall.Conflict)
	_, err = s.Channel(ctx, 1101)
	wantKind(t, "Channel(of rejected server)", err, guildhall.NotFound)
	_, err = s.Member(ctx, 1000, bob.ID)
	wantKind(t, "Member(owner of rejected server)", err, guildhall.NotFound)
	wantServersOf(t, s, bob.ID)
	wantCount(t, s, 1000, 1)
	got, err := s.Server(ctx, 1000)
	if err != nil || got.Name != "Test server" {
		t.Errorf("Server(1000) = %v, %v; want the first server unchanged", got, err)
	}

	// A channel ID is taken: the new server must not exist at all.
	srv = member.Server{ID: 3000, Name: "Other", OwnerID: bob.ID, CreatedAt: at(time.Hour)}
	chans = []member.Channel{
		{ID: 3001, ServerID: srv.ID, Name: "a", CreatedAt: at(time.Hour)},
		{ID: 1002, ServerID: srv.ID, Name: "b", CreatedAt: at(time.Hour)},
	}
	err = s.CreateServer(ctx, srv, chans, member.Member{ServerID: srv.ID, UserID: bob.ID, Username: bob.Username, JoinedAt: at(time.Hour)})
	wantKind(t, "CreateServer(taken channel ID)", err, guildhall.Conflict)
	_, err = s.Server(ctx, srv.ID)
	wantKind(t, "Server(rejected)", err, guildhall.NotFound)
	_, err = s.Channel(ctx, 3001)
	wantKind(t, "Channel(of rejected server)", err, guildhall.NotFound)
	c, err := s.Channel(ctx, 1002)
	if err != nil || c.ServerID != 1000 {
		t.Errorf("Channel(1002) = %v, %v; want it still in server 1000", c, err)
	}
	wantServersOf(t, s, bob.ID)
	wantChannels(t, s, 1000, 1001, 1002)
}

func testUnknownServer(t *testing.T, s member.Store) {
	ctx := t.Context()
	alice := MustUser(t, s, 101, "alice")
	MustServer(t, s, 1000, alice)
	const unknown = 4242

	_, err := s.Server(ctx, unknown)
	wantKind(t, "Server", err, guildhall.NotFound)
	_, err = s.Channels(ctx, unknown)
	wantKind(t, "Channels", err, guildhall.NotFound)
	_, err = s.Members(ctx, unknown, member.MemberQuery{Limit: 10})
	wantKind(t, "Members", err, guildhall.NotFound)
	_, err = s.Members(ctx, unknown, member.MemberQuery{Limit: 10, Prefix: "a"})
	wantKind(t, "Members(prefix)", err, guildhall.NotFound)
	_, err = s.MemberCount(ctx, unknown)
	wantKind(t, "MemberCount", err, guildhall.NotFound)
	_, err = s.Member(ctx, unknown, alice.ID)
	wantKind(t, "Member", err, guildhall.NotFound)
	_, err = s.Member(ctx, 1000, 999)
	wantKind(t, "Member(unknown user)", err, guildhall.NotFound)
	wantKind(t, "RemoveMember", s.RemoveMember(ctx, unknown, alice.ID), guildhall.NotFound)
	err = s.CreateChannel(ctx, member.Channel{ID: 5000, ServerID: unknown, Name: "x", CreatedAt: base})
	wantKind(t, "CreateChannel", err, guildhall.NotFound)
	_, err = s.Channel(ctx, 5000)
	wantKind(t, "Channel(rejected)", err, guildhall.NotFound)
	err = s.CreateInvite(ctx, member.Invite{Code: "nowhere", ServerID: unknown, CreatorID: alice.ID, CreatedAt: base})
	wantKind(t, "CreateInvite", err, guildhall.NotFound)
	_, err = s.Invite(ctx, "nowhere")
	wantKind(t, "Invite(rejected)", err, guildhall.NotFound)
	_, err = s.ServersOf(ctx, 999)
	wantKind(t, "ServersOf(unknown user)", err, guildhall.NotFound)
}

func testServersOf(t *testing.T, s member.Store) {
	ctx := t.Context()
	alice := MustUser(t, s, 101, "alice")
	bob := MustUser(t, s, 102, "bob")
	carol := MustUser(t, s, 103, "carol")
	wantServersOf(t, s, alice.ID)

	// Created out of ID order; alice owns two and joins a third.
	MustServer(t, s, 3000, alice)
	MustServer(t, s, 2000, bob)
	MustServer(t, s, 1000, alice)
	MustServer(t, s, 4000, bob)
	inv := MustInvite(t, s, "to-bob", 2000, bob.ID, 0, time.Time{})
	MustJoin(t, s, inv.Code, alice, time.Hour)

	wantServersOf(t, s, alice.ID, 1000, 2000, 3000)
	wantServersOf(t, s, bob.ID, 2000, 4000)
	wantServersOf(t, s, carol.ID)
	list, err := s.ServersOf(ctx, alice.ID)
	if err != nil {
		t.Fatalf("ServersOf: %v", err)
	}
	if list[1].Name != "Test server" || list[1].OwnerID != bob.ID {
		t.Errorf("ServersOf()[1] = %+v, want the whole server 2000", list[1])
	}
}

func testUpdateServer(t *testing.T, s member.Store) {
	ctx := t.Context()
	alice := MustUser(t, s, 101, "alice")
	bob := MustUser(t, s, 102, "bob")
	srv := MustServer(t, s, 1000, alice, 1001)
	other := MustServer(t, s, 2000, alice)

	// Only the name changes, whatever else the argument says.
	err := s.UpdateServer(ctx, member.Server{ID: srv.ID, Name: "Renamed ✨", OwnerID: bob.ID, CreatedAt: at(time.Hour)})
	if err != nil {
		t.Fatalf("UpdateServer: %v", err)
	}
	want := srv
	want.Name = "Renamed ✨"
	got, err := s.Server(ctx, srv.ID)
	if err != nil {
		t.Fatalf("Server: %v", err)
	}
	wantEqual(t, "Server(renamed)", normServer(got), want)
	list, err := s.ServersOf(ctx, alice.ID)
	if err != nil {
		t.Fatalf("ServersOf: %v", err)
	}
	if len(list) != 2 || normServer(list[0]) != want || normServer(list[1]) != other {
		t.Errorf("ServersOf = %+v, want %+v and %+v", list, want, other)
	}
	wantServersOf(t, s, bob.ID)
	wantChannels(t, s, srv.ID, 1001)
	wantCount(t, s, srv.ID, 1)

	// Renaming to the same name again is fine.
	if err := s.UpdateServer(ctx, want); err != nil {
		t.Fatalf("UpdateServer(same name): %v", err)
	}

	// An unknown server is NotFound and appears nowhere afterwards.
	err = s.UpdateServer(ctx, member.Server{ID: 4242, Name: "Ghost", OwnerID: alice.ID, CreatedAt: base})
	wantKind(t, "UpdateServer(unknown)", err, guildhall.NotFound)
	_, err = s.Server(ctx, 4242)
	wantKind(t, "Server(after UpdateServer of unknown)", err, guildhall.NotFound)
	wantServersOf(t, s, alice.ID, 1000, 2000)
}

func testChannels(t *testing.T, s member.Store) {
	ctx := t.Context()
	alice := MustUser(t, s, 101, "alice")
	MustServer(t, s, 1000, alice)
	MustServer(t, s, 2000, alice, 2001)

	add := func(id uint64, typ member.ChannelType, pos int, parent uint64) member.Channel {
		t.Helper()
		c := member.Channel{ID: id, ServerID: 1000, Name: fmt.Sprintf("chan-%d", id), Type: typ, Position: pos, ParentID: parent, CreatedAt: at(time.Duration(id) * time.Millisecond)}
		if err := s.CreateChannel(ctx, c); err != nil {
			t.Fatalf("CreateChannel(%d): %v", id, err)
		}
		return c
	}
	wantChannels(t, s, 1000)
	cat := add(1010, member.ChannelCategory, 0, 0)
	add(1005, member.ChannelText, 2, cat.ID)
	add(1007, member.ChannelText, 1, cat.ID)
	add(1006, member.ChannelText, 1, cat.ID)
	add(1004, member.ChannelText, -1, 0)
	wantChannels(t, s, 1000, 1004, 1010, 1006, 1007, 1005)
	wantChannels(t, s, 2000, 2001)

	err := s.CreateChannel(ctx, member.Channel{ID: 1005, ServerID: 1000, Name: "again", CreatedAt: base})
	wantKind(t, "CreateChannel(taken ID)", err, guildhall.Conflict)
	err = s.CreateChannel(ctx, member.Channel{ID: 2001, ServerID: 1000, Name: "again", CreatedAt: base})
	wantKind(t, "CreateChannel(ID taken in another server)", err, guildhall.Conflict)
	wantChannels(t, s, 2000, 2001)

	// Rename and move 1005 to the top.
	upd := member.Channel{ID: 1005, ServerID: 1000, Name: "renamed", Type: member.ChannelText, Position: -5, ParentID: 0, CreatedAt: at(1005 * time.Millisecond)}
	if err := s.UpdateChannel(ctx, upd); err != nil {
		t.Fatalf("UpdateChannel: %v", err)
	}
	got, err := s.Channel(ctx, 1005)
	if err != nil {
		t.Fatalf("Channel: %v", err)
	}
	wantEqual(t, "Channel(updated)", normChannel(got), upd)
	wantChannels(t, s, 1000, 1005, 1004, 1010, 1006, 1007)
	list, err := s.Channels(ctx, 1000)
	if err != nil {
		t.Fatalf("Channels: %v", err)
	}
	wantEqual(t, "Channels()[0]", normChannel(list[0]), upd)
	err = s.UpdateChannel(ctx, member.Channel{ID: 9999, ServerID: 1000, Name: "ghost", CreatedAt: base})
	wantKind(t, "UpdateChannel(unknown)", err, guildhall.NotFound)
	_, err = s.Channel(ctx, 9999)
	wantKind(t, "Channel(after failed update)", err, guildhall.NotFound)

	if err := s.DeleteChannel(ctx, 1006); err != nil {
		t.Fatalf("DeleteChannel: %v", err)
	}
	_, err = s.Channel(ctx, 1006)
	wantKind(t, "Channel(deleted)", err, guildhall.NotFound)
	wantChannels(t, s, 1000, 1005, 1004, 1010, 1007)
	wantKind(t, "DeleteChannel(deleted)", s.DeleteChannel(ctx, 1006), guildhall.NotFound)
	wantKind(t, "DeleteChannel(unknown)", s.DeleteChannel(ctx, 9999), guildhall.NotFound)
	wantKind(t, "UpdateChannel(deleted)", s.UpdateChannel(ctx, member.Channel{ID: 1006, ServerID: 1000, Name: "zombie", CreatedAt: base}), guildhall.NotFound)
	wantChannels(t, s, 1000, 1005, 1004, 1010, 1007)

	// Deleting every channel leaves a known server with none.
	for _, id := range []uint64{1005, 1004, 1010, 1007} {
		if err := s.DeleteChannel(ctx, id); err != nil {
			t.Fatalf("DeleteChannel(%d): %v", id, err)
		}
	}
	wantChannels(t, s, 1000)
	wantChannels(t, s, 2000, 2001)
}

func testMembersByID(t *testing.T, s member.Store) {
	ctx := t.Context()
	const n = 250
	owner := MustUser(t, s, 500, "owner")
	MustServer(t, s, 1000, owner)
	inv := MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})

	// User IDs 1..501 step 2 apart from the owner's, joined in random order.
	ids := []uint64{owner.ID}
	var users []member.User
	for i := range n - 1 {
		id := uint64(1 + 2*i)
		if id >= owner.ID {
			id += 2
		}
		users = append(users, MustUser(t, s, id, fmt.Sprintf("user%03d", i)))
		ids = append(ids, id)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(users), func(i, j int) { users[i], users[j] = users[j], users[i] })
	for i, u := range users {
		MustJoin(t, s, inv.Code, u, time.Duration(i)*time.Second)
	}
	slices.Sort(ids)
	wantCount(t, s, 1000, n)

	var all []uint64
	var after uint64
	for page := 0; ; page++ {
		ms, err := s.Members(ctx, 1000, member.MemberQuery{After: after, Limit: 100})
		if err != nil {
			t.Fatalf("Members(after %d): %v", after, err)
		}
		if want := min(100, n-len(all)); len(ms) != want {
			t.Fatalf("page %d has %d members, want %d", page, len(ms), want)
		}
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			if m.ServerID != 1000 || m.Username == "" || m.JoinedAt.IsZero() {
				t.Errorf("page %d: incomplete member %+v", page, m)
			}
			all = append(all, m.UserID)
		}
		after = ms[len(ms)-1].UserID
	}
	if !slices.Equal(all, ids) {
		t.Errorf("paged member IDs = %v\nwant %v", all, ids)
	}

	// A page may start after any ID, member or not.
	wantMemberIDs(t, s, 1000, member.MemberQuery{After: ids[10], Limit: 3}, ids[11:14]...)
	wantMemberIDs(t, s, 1000, member.MemberQuery{After: ids[10] + 1, Limit: 3}, ids[11:14]...)
	wantMemberIDs(t, s, 1000, member.MemberQuery{After: ids[n-2], Limit: 100}, ids[n-1])
	wantMemberIDs(t, s, 1000, member.MemberQuery{After: ids[n-1], Limit: 100})
	wantMemberIDs(t, s, 1000, member.MemberQuery{After: ^uint64(0), Limit: 100})
	wantMemberIDs(t, s, 1000, member.MemberQuery{Limit: 1}, ids[0])
}

func testMembersByPrefix(t *testing.T, s member.Store) {
	owner := MustUser(t, s, 900, "zed")
	MustServer(t, s, 1000, owner)
	MustServer(t, s, 2000, owner)
	inv := MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})
	inv2 := MustInvite(t, s, "other", 2000, owner.ID, 0, time.Time{})

	// (lower-cased name, ID) order is: al 105, albert 102, alice 101,
	// alicia 103, alistair 104, bob 106, ... zed 900.
	names := map[uint64]string{101: "alice", 102: "ALBERT", 103: "Alicia", 104: "alistair", 105: "Al", 106: "bob", 107: "Bobby", 108: "carol"}
	for _, id := range []uint64{104, 101, 108, 102, 106, 103, 105, 107} {
		u := MustUser(t, s, id, names[id])
		MustJoin(t, s, inv.Code, u, time.Duration(id)*time.Second)
	}
	// Members of another server never show up.
	MustJoin(t, s, inv2.Code, MustUser(t, s, 110, "alfred"), time.Hour)

	q := func(prefix string, after uint64, limit int) member.MemberQuery {
		return member.MemberQuery{Prefix: prefix, After: after, Limit: limit}
	}
	wantMemberIDs(t, s, 1000, q("al", 0, 100), 105, 102, 101, 103, 104)
	wantMemberIDs(t, s, 1000, q("ali", 0, 100), 101, 103, 104)
	wantMemberIDs(t, s, 1000, q("alice", 0, 100), 101)
	wantMemberIDs(t, s, 1000, q("b", 0, 100), 106, 107)
	wantMemberIDs(t, s, 1000, q("bobby", 0, 100), 107)
	wantMemberIDs(t, s, 1000, q("bobbyx", 0, 100))
	wantMemberIDs(t, s, 1000, q("x", 0, 100))
	wantMemberIDs(t, s, 1000, q("alf", 0, 100))
	wantMemberIDs(t, s, 2000, q("al", 0, 100), 110)

	// Paging: each page starts after the (name, ID) of the previous page's last.
	wantMemberIDs(t, s, 1000, q("al", 0, 2), 105, 102)
	wantMemberIDs(t, s, 1000, q("al", 102, 2), 101, 103)
	wantMemberIDs(t, s, 1000, q("al", 103, 2), 104)
	wantMemberIDs(t, s, 1000, q("al", 104, 2))
	wantMemberIDs(t, s, 1000, q("a", 105, 1), 102)

	// Many pages of a larger prefix match.
	inv3 := MustInvite(t, s, "many", 1000, owner.ID, 0, time.Time{})
	var want []uint64
	for i := range 120 {
		id := uint64(5000 - i) // names ascend while IDs descend
		u := MustUser(t, s, id, fmt.Sprintf("Member%03d", i))
		MustJoin(t, s, inv3.Code, u, time.Duration(i)*time.Millisecond)
		if i >= 100 {
			want = append(want, id) // member100..member119
		}
	}
	var got []uint64
	var after uint64
	for range 10 {
		ms, err := s.Members(t.Context(), 1000, q("member1", after, 7))
		if err != nil {
			t.Fatalf("Members: %v", err)
		}
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			got = append(got, m.UserID)
		}
		after = ms[len(ms)-1].UserID
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged prefix member1 = %v\nwant %v", got, want)
	}
}

func testJoinAndLeave(t *testing.T, s member.Store) {
	ctx := t.Context()
	owner := MustUser(t, s, 100, "owner")
	alice := MustUser(t, s, 101, "alice")
	bob := MustUser(t, s, 102, "bob")
	MustServer(t, s, 1000, owner)
	MustServer(t, s, 2000, owner)
	inv := MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})
	inv2 := MustInvite(t, s, "open2", 2000, owner.ID, 0, time.Time{})

	joined := MustJoin(t, s, inv.Code, alice, time.Minute)
	got, err := s.Member(ctx, 1000, alice.ID)
	if err != nil {
		t.Fatalf("Member: %v", err)
	}
	wantEqual(t, "Member", normMember(got), joined)
	MustJoin(t, s, inv.Code, bob, 2*time.Minute)
	MustJoin(t, s, inv2.Code, alice, 3*time.Minute)
	wantCount(t, s, 1000, 3)
	wantCount(t, s, 2000, 2)
	wantServersOf(t, s, alice.ID, 1000, 2000)

	if err := s.RemoveMember(ctx, 1000, alice.ID); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	wantCount(t, s, 1000, 2)
	wantCount(t, s, 2000, 2)
	_, err = s.Member(ctx, 1000, alice.ID)
	wantKind(t, "Member(removed)", err, guildhall.NotFound)
	wantServersOf(t, s, alice.ID, 2000)
	wantMemberIDs(t, s, 1000, member.MemberQuery{Limit: 100}, owner.ID, bob.ID)
	wantMemberIDs(t, s, 1000, member.MemberQuery{Limit: 100, Prefix: "a"})
	wantMemberIDs(t, s, 2000, member.MemberQuery{Limit: 100, Prefix: "a"}, alice.ID)
	wantKind(t, "RemoveMember(removed)", s.RemoveMember(ctx, 1000, alice.ID), guildhall.NotFound)
	wantKind(t, "RemoveMember(never joined)", s.RemoveMember(ctx, 2000, bob.ID), guildhall.NotFound)
	wantCount(t, s, 1000, 2)
	wantCount(t, s, 2000, 2)

	// Leaving and joining again works and counts again.
	MustJoin(t, s, inv.Code, alice, time.Hour)
	wantCount(t, s, 1000, 3)
	wantServersOf(t, s, alice.ID, 1000, 2000)
	wantMemberIDs(t, s, 1000, member.MemberQuery{Limit: 100, Prefix: "alice"}, alice.ID)

	// The owner can be removed too; the store leaves that rule to the service.
	if err := s.RemoveMember(ctx, 2000, owner.ID); err != nil {
		t.Fatalf("RemoveMember(owner): %v", err)
	}
	wantCount(t, s, 2000, 1)
	wantServersOf(t, s, owner.ID, 1000)
}

func testInvites(t *testing.T, s member.Store) {
	ctx := t.Context()
	owner := MustUser(t, s, 100, "owner")
	MustServer(t, s, 1000, owner)
	inv := member.Invite{Code: "aB3xY9", ServerID: 1000, CreatorID: owner.ID, MaxUses: 5, ExpiresAt: at(24 * time.Hour), CreatedAt: at(time.Minute)}
	if err := s.CreateInvite(ctx, inv); err != nil {
		t.Fatalf("CreateInvite: %v", err)
	}
	got, err := s.Invite(ctx, inv.Code)
	if err != nil {
		t.Fatalf("Invite: %v", err)
	}
	wantEqual(t, "Invite", normInvite(got), inv)
	never := MustInvite(t, s, "forever", 1000, owner.ID, 0, time.Time{})
	got, err = s.Invite(ctx, never.Code)
	if err != nil {
		t.Fatalf("Invite(forever): %v", err)
	}
	wantEqual(t, "Invite(forever)", normInvite(got), never)

	err = s.CreateInvite(ctx, member.Invite{Code: inv.Code, ServerID: 1000, CreatorID: owner.ID, CreatedAt: base})
	wantKind(t, "CreateInvite(taken code)", err, guildhall.Conflict)
	_, err = s.Invite(ctx, "ab3xy9")
	wantKind(t, "Invite(code in other case)", err, guildhall.NotFound)
	_, err = s.Invite(ctx, "nope")
	wantKind(t, "Invite(unknown)", err, guildhall.NotFound)

	alice := MustUser(t, s, 101, "alice")
	_, err = s.JoinByInvite(ctx, "nope", member.Member{UserID: alice.ID, Username: alice.Username, JoinedAt: at(time.Hour)})
	wantKind(t, "JoinByInvite(unknown code)", err, guildhall.NotFound)
	_, err = s.Member(ctx, 1000, alice.ID)
	wantKind(t, "Member(after unknown code)", err, guildhall.NotFound)
	wantCount(t, s, 1000, 1)

	// The invite decides the server, whatever m.ServerID says.
	m, err := s.JoinByInvite(ctx, inv.Code, member.Member{ServerID: 4242, UserID: alice.ID, Username: alice.Username, JoinedAt: at(time.Hour)})
	if err != nil {
		t.Fatalf("JoinByInvite: %v", err)
	}
	want := member.Member{ServerID: 1000, UserID: alice.ID, Username: alice.Username, JoinedAt: at(time.Hour)}
	wantEqual(t, "JoinByInvite", normMember(m), want)
	got2, err := s.Member(ctx, 1000, alice.ID)
	if err != nil {
		t.Fatalf("Member: %v", err)
	}
	wantEqual(t, "Member(joined)", normMember(got2), want)
	_, err = s.Member(ctx, 4242, alice.ID)
	wantKind(t, "Member(in m.ServerID)", err, guildhall.NotFound)
	wantUses(t, s, inv.Code, 1)
	wantUses(t, s, never.Code, 0)
	wantCount(t, s, 1000, 2)
	wantServersOf(t, s, alice.ID, 1000)
}

func testInviteMaxUses(t *testing.T, s member.Store) {
	ctx := t.Context()
	owner := MustUser(t, s, 100, "owner")
	MustServer(t, s, 1000, owner)
	inv := MustInvite(t, s, "two", 1000, owner.ID, 2, time.Time{})
	MustJoin(t, s, inv.Code, MustUser(t, s, 101, "a"), time.Minute)
	wantUses(t, s, inv.Code, 1)
	MustJoin(t, s, inv.Code, MustUser(t, s, 102, "b"), 2*time.Minute)
	wantUses(t, s, inv.Code, 2)

	c := MustUser(t, s, 103, "c")
	_, err := s.JoinByInvite(ctx, inv.Code, member.Member{ServerID: 1000, UserID: c.ID, Username: c.Username, JoinedAt: at(3 * time.Minute)})
	wantKind(t, "JoinByInvite(used up)", err, guildhall.Forbidden)
	wantUses(t, s, inv.Code, 2)
	wantCount(t, s, 1000, 3)
	_, err = s.Member(ctx, 1000, c.ID)
	wantKind(t, "Member(refused)", err, guildhall.NotFound)
	wantServersOf(t, s, c.ID)
	wantMemberIDs(t, s, 1000, member.MemberQuery{Limit: 100}, 100, 101, 102)
	wantMemberIDs(t, s, 1000, member.MemberQuery{Limit: 100, Prefix: "c"})
}

func testInviteExpired(t *testing.T, s member.Store) {
	ctx := t.Context()
	owner := MustUser(t, s, 100, "owner")
	MustServer(t, s, 1000, owner)
	expires := at(time.Hour)
	inv := MustInvite(t, s, "hour", 1000, owner.ID, 0, expires)

	a := MustUser(t, s, 101, "a")
	m, err := s.JoinByInvite(ctx, inv.Code, member.Member{UserID: a.ID, Username: a.Username, JoinedAt: expires.Add(-time.Millisecond)})
	if err != nil || m.UserID != a.ID {
		t.Fatalf("JoinByInvite(just before expiry) = %v, %v", m, err)
	}
	for i, when := range []time.Time{expires, expires.Add(time.Hour)} {
		u := MustUser(t, s, uint64(102+i), fmt.Sprintf("late%d", i))
		_, err := s.JoinByInvite(ctx, inv.Code, member.Member{UserID: u.ID, Username: u.Username, JoinedAt: when})
		wantKind(t, fmt.Sprintf("JoinByInvite(at %v)", when), err, guildhall.Forbidden)
		_, err = s.Member(ctx, 1000, u.ID)
		wantKind(t, "Member(refused)", err, guildhall.NotFound)
	}
	wantUses(t, s, inv.Code, 1)
	wantCount(t, s, 1000, 2)
}

func testInviteAlreadyMember(t *testing.T, s member.Store) {
	ctx := t.Context()
	owner := MustUser(t, s, 100, "owner")
	MustServer(t, s, 1000, owner)
	inv := MustInvite(t, s, "one", 1000, owner.ID, 1, time.Time{})
	open := MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})

	// The owner is a member already: no use counted.
	m, err := s.JoinByInvite(ctx, inv.Code, member.Member{UserID: owner.ID, Username: owner.Username, JoinedAt: at(time.Hour)})
	if err != nil {
		t.Fatalf("JoinByInvite(owner): %v", err)
	}
	if !m.JoinedAt.Equal(at(0)) || m.ServerID != 1000 {
		t.Errorf("JoinByInvite(owner) = %+v, want the membership from server creation", m)
	}
	wantUses(t, s, inv.Code, 0)
	wantCount(t, s, 1000, 1)

	alice := MustUser(t, s, 101, "alice")
	first := MustJoin(t, s, open.Code, alice, time.Minute)
	again, err := s.JoinByInvite(ctx, open.Code, member.Member{UserID: alice.ID, Username: alice.Username, JoinedAt: at(2 * time.Hour)})
	if err != nil {
		t.Fatalf("JoinByInvite(again): %v", err)
	}
	wantEqual(t, "JoinByInvite(again)", normMember(again), first)
	wantUses(t, s, open.Code, 1)
	wantCount(t, s, 1000, 2)

	// Use up the single-use invite; a member holding it still gets in.
	MustJoin(t, s, inv.Code, MustUser(t, s, 102, "bob"), 3*time.Hour)
	wantUses(t, s, inv.Code, 1)
	again, err = s.JoinByInvite(ctx, inv.Code, member.Member{UserID: alice.ID, Username: alice.Username, JoinedAt: at(4 * time.Hour)})
	if err != nil {
		t.Fatalf("JoinByInvite(member, used-up invite): %v", err)
	}
	wantEqual(t, "JoinByInvite(member, used-up invite)", normMember(again), first)
	wantUses(t, s, inv.Code, 1)
	wantCount(t, s, 1000, 3)
}

func testSyncedChannels(t *testing.T, s member.Store) {
	ctx := t.Context()
	owner := MustUser(t, s, 100, "owner")
	srv := member.Server{ID: 1000, Name: "Guild", OwnerID: owner.ID, CreatedAt: base}
	cat := member.Channel{ID: 1001, ServerID: srv.ID, Name: "cat", Type: member.ChannelCategory, CreatedAt: base}
	synced := member.Channel{ID: 1002, ServerID: srv.ID, Name: "synced", ParentID: cat.ID, Position: 1, Synced: true, CreatedAt: base}
	own := member.Channel{ID: 1003, ServerID: srv.ID, Name: "own", ParentID: cat.ID, Position: 2, CreatedAt: base}
	ownerM := member.Member{ServerID: srv.ID, UserID: owner.ID, Username: owner.Username, JoinedAt: base}
	if err := s.CreateServer(ctx, srv, []member.Channel{cat, synced, own}, ownerM); err != nil {
		t.Fatalf("CreateServer: %v", err)
	}
	later := member.Channel{ID: 1004, ServerID: srv.ID, Name: "later", ParentID: cat.ID, Position: 3, Synced: true, CreatedAt: at(time.Minute)}
	if err := s.CreateChannel(ctx, later); err != nil {
		t.Fatalf("CreateChannel(synced): %v", err)
	}

	want := map[uint64]member.Channel{cat.ID: cat, synced.ID: synced, own.ID: own, later.ID: later}
	check := func(what string) {
		t.Helper()
		for id, c := range want {
			got, err := s.Channel(ctx, id)
			if err != nil {
				t.Fatalf("Channel(%d): %v", id, err)
			}
			wantEqual(t, fmt.Sprintf("%s: Channel(%d)", what, id), normChannel(got), c)
		}
		list, err := s.Channels(ctx, srv.ID)
		if err != nil {
			t.Fatalf("Channels: %v", err)
		}
		if len(list) != len(want) {
			t.Fatalf("%s: Channels = %v, want %d channels", what, list, len(want))
		}
		for _, c := range list {
			wantEqual(t, fmt.Sprintf("%s: Channels()[%d]", what, c.ID), normChannel(c), want[c.ID])
		}
	}
	check("created")

	// UpdateChannel writes synced both ways.
	synced.Synced, own.Synced = false, true
	for _, c := range []member.Channel{synced, own} {
		if err := s.UpdateChannel(ctx, c); err != nil {
			t.Fatalf("UpdateChannel(%d): %v", c.ID, err)
		}
		want[c.ID] = c
	}
	check("updated")
}

func testNicknames(t *testing.T, s member.Store) {
	ctx := t.Context()
	owner := MustUser(t, s, 100, "owner")
	alice := MustUser(t, s, 101, "alice")
	bob := MustUser(t, s, 102, "bob")
	MustServer(t, s, 1000, owner)
	MustServer(t, s, 2000, owner)
	inv := MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})
	inv2 := MustInvite(t, s, "open2", 2000, owner.ID, 0, time.Time{})
	joined := MustJoin(t, s, inv.Code, alice, time.Minute)
	MustJoin(t, s, inv2.Code, alice, time.Minute)
	MustJoin(t, s, inv.Code, bob, 2*time.Minute)
	wantEqual(t, "Nick after joining", joined.Nick, "")

	// Only the nickname changes, whatever else m says.
	err := s.UpdateMember(ctx, member.Member{ServerID: 1000, UserID: alice.ID, Username: "zoe", Nick: "Queen Alice", JoinedAt: at(time.Hour)})
	if err != nil {
		t.Fatalf("UpdateMember: %v", err)
	}
	want := joined
	want.Nick = "Queen Alice"
	got, err := s.Member(ctx, 1000, alice.ID)
	if err != nil {
		t.Fatalf("Member: %v", err)
	}
	wantEqual(t, "Member(nicked)", normMember(got), want)
	for _, q := range []member.MemberQuery{{Limit: 100}, {Limit: 100, Prefix: "al"}} {
		members, err := s.Members(ctx, 1000, q)
		if err != nil {
			t.Fatalf("Members(%+v): %v", q, err)
		}
		i := slices.IndexFunc(members, func(m member.Member) bool { return m.UserID == alice.ID })
		if i < 0 {
			t.Errorf("Members(%+v) = %v, want alice in it", q, members)
			continue
		}
		wantEqual(t, fmt.Sprintf("Members(%+v) alice", q), normMember(members[i]), want)
	}
	// Prefix search stays on the username.
	wantMemberIDs(t, s, 1000, member.MemberQuery{Limit: 100, Prefix: "alice"}, alice.ID)
	wantMemberIDs(t, s, 1000, member.MemberQuery{Limit: 100, Prefix: "queen"})
	wantMemberIDs(t, s, 1000, member.MemberQuery{Limit: 100, Prefix: "zoe"})
	// The nickname is per server.
	other, err := s.Member(ctx, 2000, alice.ID)
	if err != nil {
		t.Fatalf("Member(other server): %v", err)
	}
	wantEqual(t, "Nick in the other server", other.Nick, "")
	wantCount(t, s, 1000, 3)

	// Clearing it.
	if err := s.UpdateMember(ctx, member.Member{ServerID: 1000, UserID: alice.ID}); err != nil {
		t.Fatalf("UpdateMember(no nick): %v", err)
	}
	got, err = s.Member(ctx, 1000, alice.ID)
	if err != nil {
		t.Fatalf("Member: %v", err)
	}
	wantEqual(t, "Member(nick cleared)", normMember(got), joined)

	carol := MustUser(t, s, 103, "carol")
	wantKind(t, "UpdateMember(not a member)", s.UpdateMember(ctx, member.Member{ServerID: 1000, UserID: carol.ID, Nick: "x"}), guildhall.NotFound)
	wantKind(t, "UpdateMember(unknown server)", s.UpdateMember(ctx, member.Member{ServerID: 4242, UserID: alice.ID, Nick: "x"}), guildhall.NotFound)
	wantKind(t, "UpdateMember(member elsewhere)", s.UpdateMember(ctx, member.Member{ServerID: 2000, UserID: bob.ID, Nick: "x"}), guildhall.NotFound)
	_, err = s.Member(ctx, 1000, carol.ID)
	wantKind(t, "Member(after UpdateMember of a non-member)", err, guildhall.NotFound)
	_, err = s.Member(ctx, 2000, bob.ID)
	wantKind(t, "Member(after UpdateMember of a member elsewhere)", err, guildhall.NotFound)
	if err := s.RemoveMember(ctx, 1000, bob.ID); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	wantKind(t, "UpdateMember(left)", s.UpdateMember(ctx, member.Member{ServerID: 1000, UserID: bob.ID, Nick: "x"}), guildhall.NotFound)
	wantCount(t, s, 1000, 2)
	wantMemberIDs(t, s, 1000, member.MemberQuery{Limit: 100}, owner.ID, alice.ID)

	// A nickname does not survive leaving and joining again.
	if err := s.UpdateMember(ctx, member.Member{ServerID: 2000, UserID: alice.ID, Nick: "Al"}); err != nil {
		t.Fatalf("UpdateMember: %v", err)
	}
	if err := s.RemoveMember(ctx, 2000, alice.ID); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	again := MustJoin(t, s, inv2.Code, alice, time.Hour)
	wantEqual(t, "Nick after leaving and joining again", again.Nick, "")
}

func testBanRemovesMember(t *testing.T, s member.Store) {
	ctx := t.Context()
	owner := MustUser(t, s, 100, "owner")
	MustServer(t, s, 1000, owner)
	MustServer(t, s, 2000, owner)
	inv := MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})
	inv2 := MustInvite(t, s, "open2", 2000, owner.ID, 0, time.Time{})
	var users []member.User
	for i := range 6 {
		u := MustUser(t, s, uint64(101+i), fmt.Sprintf("user%d", i))
		MustJoin(t, s, inv.Code, u, time.Duration(i)*time.Minute)
		users = append(users, u)
	}
	target := users[2]
	MustJoin(t, s, inv2.Code, target, time.Hour)
	if err := s.UpdateMember(ctx, member.Member{ServerID: 1000, UserID: target.ID, Nick: "trouble"}); err != nil {
		t.Fatalf("UpdateMember: %v", err)
	}
	wantCount(t, s, 1000, 7)
	wantServersOf(t, s, target.ID, 1000, 2000)

	ban := MustBan(t, s, 1000, target, owner.ID, "spam", 2*time.Hour)
	got, err := s.BanOf(ctx, 1000, target.ID)
	if err != nil {
		t.Fatalf("BanOf: %v", err)
	}
	wantEqual(t, "BanOf", normBan(got), ban)
	wantNotMember(t, s, 1000, target)
	wantCount(t, s, 1000, 6)
	wantServersOf(t, s, target.ID, 2000)
	// Pages by ID go on past the hole, whatever the page size.
	wantMemberIDs(t, s, 1000, member.MemberQuery{Limit: 100}, 100, 101, 102, 104, 105, 106)
	wantMemberIDs(t, s, 1000, member.MemberQuery{After: 102, Limit: 1}, 104)
	wantMemberIDs(t, s, 1000, member.MemberQuery{After: 101, Limit: 2}, 102, 104)
	wantMemberIDs(t, s, 1000, member.MemberQuery{After: target.ID, Limit: 2}, 104, 105)
	wantMemberIDs(t, s, 1000, member.MemberQuery{Prefix: "user", Limit: 100}, 101, 102, 104, 105, 106)
	wantMemberIDs(t, s, 1000, member.MemberQuery{Prefix: "user", After: 102, Limit: 1}, 104)
	wantKind(t, "RemoveMember(banned)", s.RemoveMember(ctx, 1000, target.ID), guildhall.NotFound)
	wantKind(t, "UpdateMember(banned)", s.UpdateMember(ctx, member.Member{ServerID: 1000, UserID: target.ID, Nick: "x"}), guildhall.NotFound)
	// Their membership of another server is untouched.
	if m, err := s.Member(ctx, 2000, target.ID); err != nil || m.ServerID != 2000 {
		t.Errorf("Member(other server) = %+v, %v; want the membership kept", m, err)
	}
	wantCount(t, s, 2000, 2)
	_, err = s.BanOf(ctx, 2000, target.ID)
	wantKind(t, "BanOf(other server)", err, guildhall.NotFound)

	// Banning again replaces the record and removes nothing more.
	again := MustBan(t, s, 1000, target, users[0].ID, "spam, again", 3*time.Hour)
	got, err = s.BanOf(ctx, 1000, target.ID)
	if err != nil {
		t.Fatalf("BanOf(banned again): %v", err)
	}
	wantEqual(t, "BanOf(banned again)", normBan(got), again)
	wantBanIDs(t, s, 1000, 0, 100, target.ID)
	wantCount(t, s, 1000, 6)
	wantServersOf(t, s, target.ID, 2000)

	// Unban lifts the ban but does not restore the membership.
	if err := s.Unban(ctx, 1000, target.ID); err != nil {
		t.Fatalf("Unban: %v", err)
	}
	wantNotMember(t, s, 1000, target)
	wantCount(t, s, 1000, 6)

	// The owner is no exception to the store; protecting them is the
	// service's rule.
	MustBan(t, s, 2000, owner, owner.ID, "", 4*time.Hour)
	wantNotMember(t, s, 2000, owner)
	wantCount(t, s, 2000, 1)
	wantServersOf(t, s, owner.ID, 1000)
}

func testBanNonMember(t *testing.T, s member.Store) {
	ctx := t.Context()
	owner := MustUser(t, s, 100, "owner")
	MustServer(t, s, 1000, owner)
	inv := MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})
	alice := MustUser(t, s, 101, "alice")
	bob := MustUser(t, s, 102, "bob")
	MustJoin(t, s, inv.Code, alice, time.Minute)

	// bob never joined; a ban keeps him out all the same.
	ban := MustBan(t, s, 1000, bob, owner.ID, "pre-emptive", time.Hour)
	got, err := s.BanOf(ctx, 1000, bob.ID)
	if err != nil {
		t.Fatalf("BanOf: %v", err)
	}
	wantEqual(t, "BanOf(non-member)", normBan(got), ban)
	wantCount(t, s, 1000, 2)
	wantMemberIDs(t, s, 1000, member.MemberQuery{Limit: 100}, owner.ID, alice.ID)
	wantServersOf(t, s, bob.ID)
	wantServersOf(t, s, alice.ID, 1000)

	// Nor does the store need to know the user.
	ghost := member.Ban{ServerID: 1000, UserID: 999, Username: "ghost", ActorID: owner.ID, Reason: "", CreatedAt: at(2 * time.Hour)}
	if err := s.Ban(ctx, ghost); err != nil {
		t.Fatalf("Ban(unknown user): %v", err)
	}
	got, err = s.BanOf(ctx, 1000, 999)
	if err != nil {
		t.Fatalf("BanOf(unknown user): %v", err)
	}
	wantEqual(t, "BanOf(unknown user)", normBan(got), ghost)
	wantCount(t, s, 1000, 2)

	err = s.Ban(ctx, member.Ban{ServerID: 4242, UserID: alice.ID, Username: alice.Username, ActorID: owner.ID, CreatedAt: base})
	wantKind(t, "Ban(unknown server)", err, guildhall.NotFound)
	_, err = s.BanOf(ctx, 4242, alice.ID)
	wantKind(t, "BanOf(rejected ban)", err, guildhall.NotFound)
	if m, err := s.Member(ctx, 1000, alice.ID); err != nil || m.UserID != alice.ID {
		t.Errorf("Member(alice) = %+v, %v; want her membership untouched", m, err)
	}
}

func testBansPaging(t *testing.T, s member.Store) {
	ctx := t.Context()
	owner := MustUser(t, s, 5000, "owner")
	MustServer(t, s, 1000, owner)
	MustServer(t, s, 2000, owner)
	const n = 25

	// User IDs 1, 3, ... banned in random order, so that the store cannot
	// get ID order from ban order; a ban elsewhere never shows up.
	var ids []uint64
	for i := range n {
		ids = append(ids, uint64(1+2*i))
	}
	order := slices.Clone(ids)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	bans := map[uint64]member.Ban{}
	for i, id := range order {
		u := MustUser(t, s, id, fmt.Sprintf("user%02d", id))
		bans[id] = MustBan(t, s, 1000, u, owner.ID, fmt.Sprintf("reason %d", id), time.Duration(i)*time.Second)
	}
	other := MustBan(t, s, 2000, MustUser(t, s, 4, "elsewhere"), owner.ID, "", time.Hour)

	var all []uint64
	var after uint64
	for page := 0; ; page++ {
		list, err := s.Bans(ctx, 1000, after, 10)
		if err != nil {
			t.Fatalf("Bans(after %d): %v", after, err)
		}
		if want := min(10, n-len(all)); len(list) != want {
			t.Fatalf("page %d has %d bans, want %d", page, len(list), want)
		}
		if len(list) == 0 {
			break
		}
		for _, b := range list {
			wantEqual(t, fmt.Sprintf("page %d: ban of %d", page, b.UserID), normBan(b), bans[b.UserID])
			all = append(all, b.UserID)
		}
		after = list[len(list)-1].UserID
	}
	if !slices.Equal(all, ids) {
		t.Errorf("paged ban IDs = %v\nwant %v", all, ids)
	}
	wantBanIDs(t, s, 2000, 0, 100, other.UserID)

	// A page may start after any ID, banned or not.
	wantBanIDs(t, s, 1000, ids[4], 3, ids[5:8]...)
	wantBanIDs(t, s, 1000, ids[4]+1, 3, ids[5:8]...)
	wantBanIDs(t, s, 1000, ids[n-1], 100)
	wantBanIDs(t, s, 1000, ^uint64(0), 100)
	for _, limit := range []int{0, -1, 1} {
		wantBanIDs(t, s, 1000, 0, limit, ids[0])
	}

	// Unban takes one ban out of the pages.
	if err := s.Unban(ctx, 1000, ids[5]); err != nil {
		t.Fatalf("Unban: %v", err)
	}
	_, err := s.BanOf(ctx, 1000, ids[5])
	wantKind(t, "BanOf(unbanned)", err, guildhall.NotFound)
	wantBanIDs(t, s, 1000, ids[3], 3, ids[4], ids[6], ids[7])
	wantBanIDs(t, s, 1000, ids[4], 1, ids[6])
	wantKind(t, "Unban(unbanned)", s.Unban(ctx, 1000, ids[5]), guildhall.NotFound)
	wantKind(t, "Unban(never banned)", s.Unban(ctx, 1000, owner.ID), guildhall.NotFound)
	wantKind(t, "Unban(banned elsewhere)", s.Unban(ctx, 1000, other.UserID), guildhall.NotFound)
	wantKind(t, "Unban(unknown server)", s.Unban(ctx, 4242, ids[0]), guildhall.NotFound)
	_, err = s.BanOf(ctx, 1000, owner.ID)
	wantKind(t, "BanOf(never banned)", err, guildhall.NotFound)
	_, err = s.BanOf(ctx, 4242, ids[0])
	wantKind(t, "BanOf(unknown server)", err, guildhall.NotFound)
	wantBanIDs(t, s, 2000, 0, 100, other.UserID)

	// A known server without bans has an empty list; an unknown one has none.
	MustServer(t, s, 3000, owner)
	wantBanIDs(t, s, 3000, 0, 100)
	_, err = s.Bans(ctx, 4242, 0, 100)
	wantKind(t, "Bans(unknown server)", err, guildhall.NotFound)
}

func testBannedCannotJoin(t *testing.T, s member.Store) {
	ctx := t.Context()
	owner := MustUser(t, s, 100, "owner")
	MustServer(t, s, 1000, owner)
	MustServer(t, s, 2000, owner)
	inv := MustInvite(t, s, "open", 1000, owner.ID, 0, time.Time{})
	one := MustInvite(t, s, "one", 1000, owner.ID, 1, time.Time{})
	expired := MustInvite(t, s, "expired", 1000, owner.ID, 0, at(time.Minute))
	inv2 := MustInvite(t, s, "open2", 2000, owner.ID, 0, time.Time{})
	alice := MustUser(t, s, 101, "alice")
	MustJoin(t, s, inv.Code, alice, time.Minute)
	MustBan(t, s, 1000, alice, owner.ID, "", time.Hour)
	wantUses(t, s, inv.Code, 1)
	wantCount(t, s, 1000, 1)

	join := func(code string, d time.Duration) (member.Member, error) {
		return s.JoinByInvite(ctx, code, member.Member{UserID: alice.ID, Username: alice.Username, JoinedAt: at(d)})
	}
	for _, code := range []string{inv.Code, one.Code, expired.Code} {
		_, err := join(code, 2*time.Hour)
		wantKind(t, fmt.Sprintf("JoinByInvite(%s, banned)", code), err, guildhall.Forbidden)
	}
	wantUses(t, s, inv.Code, 1)
	wantUses(t, s, one.Code, 0)
	wantUses(t, s, expired.Code, 0)
	wantCount(t, s, 1000, 1)
	wantNotMember(t, s, 1000, alice)
	_, err := join("nope", 2*time.Hour)
	wantKind(t, "JoinByInvite(unknown code, banned)", err, guildhall.NotFound)

	// The ban is for one server only.
	MustJoin(t, s, inv2.Code, alice, 3*time.Hour)
	wantServersOf(t, s, alice.ID, 2000)

	if err := s.Unban(ctx, 1000, alice.ID); err != nil {
		t.Fatalf("Unban: %v", err)
	}
	_, err = s.BanOf(ctx, 1000, alice.ID)
	wantKind(t, "BanOf(unbanned)", err, guildhall.NotFound)
	m, err := join(one.Code, 4*time.Hour)
	if err != nil {
		t.Fatalf("JoinByInvite(unbanned): %v", err)
	}
	wantEqual(t, "JoinByInvite(unbanned)", normMember(m), member.Member{ServerID: 1000, UserID: alice.ID, Username: alice.Username, JoinedAt: at(4 * time.Hour)})
	wantUses(t, s, one.Code, 1)
	wantCount(t, s, 1000, 2)
	wantServersOf(t, s, alice.ID, 1000, 2000)
	// Expiry still applies once the ban is gone.
	bob := MustUser(t, s, 102, "bob")
	_, err = s.JoinByInvite(ctx, expired.Code, member.Member{UserID: bob.ID, Username: bob.Username, JoinedAt: at(5 * time.Hour)})
	wantKind(t, "JoinByInvite(expired)", err, guildhall.Forbidden)
}
