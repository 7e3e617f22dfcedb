package membertest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/member"
)

// MustUser creates user id named username, created at the suite's base
// time, with a password hash made from the name.
func MustUser(tb testing.TB, s member.Store, id uint64, username string) member.User {
	tb.Helper()
	u := member.User{ID: id, Username: username, CreatedAt: base}
	if err := s.CreateUser(tb.Context(), u, []byte("hash:"+username)); err != nil {
		tb.Fatalf("CreateUser(%d, %q): %v", id, username, err)
	}
	return u
}

// MustServer creates server id owned by owner, with a text channel for each
// of channelIDs at positions 0, 1, ...
func MustServer(tb testing.TB, s member.Store, id uint64, owner member.User, channelIDs ...uint64) member.Server {
	tb.Helper()
	srv := member.Server{ID: id, Name: "Test server", OwnerID: owner.ID, CreatedAt: base}
	var channels []member.Channel
	for i, cid := range channelIDs {
		channels = append(channels, member.Channel{ID: cid, ServerID: id, Name: fmt.Sprintf("channel-%d", i), Position: i, CreatedAt: base})
	}
	m := member.Member{ServerID: id, UserID: owner.ID, Username: owner.Username, JoinedAt: base}
	if err := s.CreateServer(tb.Context(), srv, channels, m); err != nil {
		tb.Fatalf("CreateServer(%d): %v", id, err)
	}
	return srv
}

// MustInvite creates an invite to serverID; maxUses 0 is unlimited, a zero
// expires never expires.
func MustInvite(tb testing.TB, s member.Store, code string, serverID, creatorID uint64, maxUses int, expires time.Time) member.Invite {
	tb.Helper()
	inv := member.Invite{Code: code, ServerID: serverID, CreatorID: creatorID, MaxUses: maxUses, ExpiresAt: expires, CreatedAt: base}
	if err := s.CreateInvite(tb.Context(), inv); err != nil {
		tb.Fatalf("CreateInvite(%q): %v", code, err)
	}
	return inv
}

// MustJoin has u join with code at base+d and returns the membership.
func MustJoin(tb testing.TB, s member.Store, code string, u member.User, d time.Duration) member.Member {
	tb.Helper()
	m, err := s.JoinByInvite(tb.Context(), code, member.Member{UserID: u.ID, Username: u.Username, JoinedAt: base.Add(d)})
	if err != nil {
		tb.Fatalf("JoinByInvite(%q, user %d): %v", code, u.ID, err)
	}
	return normMember(m)
}

// MustBan bans u from serverID at base+d, by actorID, and returns the ban.
func MustBan(tb testing.TB, s member.Store, serverID uint64, u member.User, actorID uint64, reason string, d time.Duration) member.Ban {
	tb.Helper()
	b := member.Ban{ServerID: serverID, UserID: u.ID, Username: u.Username, ActorID: actorID, Reason: reason, CreatedAt: base.Add(d)}
	if err := s.Ban(tb.Context(), b); err != nil {
		tb.Fatalf("Ban(server %d, user %d): %v", serverID, u.ID, err)
	}
	return b
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

func wantEqual[T comparable](tb testing.TB, what string, got, want T) {
	tb.Helper()
	if got != want {
		tb.Errorf("%s = %+v\nwant %+v", what, got, want)
	}
}

func wantCount(tb testing.TB, s member.Store, serverID uint64, want int) {
	tb.Helper()
	n, err := s.MemberCount(tb.Context(), serverID)
	if err != nil {
		tb.Fatalf("MemberCount(%d): %v", serverID, err)
	}
	if n != want {
		tb.Errorf("MemberCount(%d) = %d, want %d", serverID, n, want)
	}
}

func wantUses(tb testing.TB, s member.Store, code string, want int) {
	tb.Helper()
	inv, err := s.Invite(tb.Context(), code)
	if err != nil {
		tb.Fatalf("Invite(%q): %v", code, err)
	}
	if inv.Uses != want {
		tb.Errorf("Invite(%q).Uses = %d, want %d", code, inv.Uses, want)
	}
}

func wantServersOf(tb testing.TB, s member.Store, userID uint64, want ...uint64) {
	tb.Helper()
	servers, err := s.ServersOf(tb.Context(), userID)
	if err != nil {
		tb.Fatalf("ServersOf(%d): %v", userID, err)
	}
	got := make([]uint64, 0, len(servers))
	for _, srv := range servers {
		got = append(got, srv.ID)
	}
	if !slices.Equal(got, want) {
		tb.Errorf("ServersOf(%d) = %v, want %v", userID, got, want)
	}
}

func wantChannels(tb testing.TB, s member.Store, serverID uint64, want ...uint64) {
	tb.Helper()
	channels, err := s.Channels(tb.Context(), serverID)
	if err != nil {
		tb.Fatalf("Channels(%d): %v", serverID, err)
	}
	got := make([]uint64, 0, len(channels))
	for _, c := range channels {
		if c.ServerID != serverID {
			tb.Errorf("Channels(%d) has channel %d of server %d", serverID, c.ID, c.ServerID)
		}
		got = append(got, c.ID)
	}
	if !slices.Equal(got, want) {
		tb.Errorf("Channels(%d) = %v, want %v", serverID, got, want)
	}
}

func wantMemberIDs(tb testing.TB, s member.Store, serverID uint64, q member.MemberQuery, want ...uint64) {
	tb.Helper()
	members, err := s.Members(tb.Context(), serverID, q)
	if err != nil {
		tb.Fatalf("Members(%d, %+v): %v", serverID, q, err)
	}
	got := make([]uint64, 0, len(members))
	for _, m := range members {
		got = append(got, m.UserID)
	}
	if !slices.Equal(got, want) {
		tb.Errorf("Members(%d, %+v) = %v, want %v", serverID, q, got, want)
	}
}

func wantBanIDs(tb testing.TB, s member.Store, serverID, after uint64, limit int, want ...uint64) {
	tb.Helper()
	bans, err := s.Bans(tb.Context(), serverID, after, limit)
	if err != nil {
		tb.Fatalf("Bans(%d, after %d, limit %d): %v", serverID, after, limit, err)
	}
	got := make([]uint64, 0, len(bans))
	for _, b := range bans {
		if b.ServerID != serverID {
			tb.Errorf("Bans(%d) has a ban of server %d", serverID, b.ServerID)
		}
		got = append(got, b.UserID)
	}
	if !slices.Equal(got, want) {
		tb.Errorf("Bans(%d, after %d, limit %d) = %v, want %v", serverID, after, limit, got, want)
	}
}

// wantNotMember checks every way a store shows a membership: the record,
// both member orders and the user's servers. The count is the caller's to
// check.
func wantNotMember(tb testing.TB, s member.Store, serverID uint64, u member.User) {
	tb.Helper()
	_, err := s.Member(tb.Context(), serverID, u.ID)
	wantKind(tb, fmt.Sprintf("Member(%d, %d)", serverID, u.ID), err, guildhall.NotFound)
	for _, q := range []member.MemberQuery{{Limit: 1000}, {Limit: 1000, Prefix: strings.ToLower(u.Username)}} {
		members, err := s.Members(tb.Context(), serverID, q)
		if err != nil {
			tb.Fatalf("Members(%d, %+v): %v", serverID, q, err)
		}
		for _, m := range members {
			if m.UserID == u.ID {
				tb.Errorf("Members(%d, %+v) still lists user %d", serverID, q, u.ID)
			}
		}
	}
	servers, err := s.ServersOf(tb.Context(), u.ID)
	if err != nil {
		tb.Fatalf("ServersOf(%d): %v", u.ID, err)
	}
	for _, srv := range servers {
		if srv.ID == serverID {
			tb.Errorf("ServersOf(%d) still lists server %d", u.ID, serverID)
		}
	}
}

// The norm functions make times comparable with ==: a store may hand back
// an equal time in another location.

func normUser(u member.User) member.User {
	u.CreatedAt = u.CreatedAt.UTC()
	return u
}

func normToken(t member.Token) member.Token {
	t.CreatedAt, t.ExpiresAt = t.CreatedAt.UTC(), t.ExpiresAt.UTC()
	return t
}

func normServer(s member.Server) member.Server {
	s.CreatedAt = s.CreatedAt.UTC()
	return s
}

func normChannel(c member.Channel) member.Channel {
	c.CreatedAt = c.CreatedAt.UTC()
	return c
}

func normMember(m member.Member) member.Member {
	m.JoinedAt = m.JoinedAt.UTC()
	return m
}

func normBan(b member.Ban) member.Ban {
	b.CreatedAt = b.CreatedAt.UTC()
	return b
}

func normInvite(i member.Invite) member.Invite {
	i.ExpiresAt, i.CreatedAt = i.ExpiresAt.UTC(), i.CreatedAt.UTC()
	return i
}
