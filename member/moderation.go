package member

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/audit"
	"github.com/guildhall/guildhall/role"
)

// Limits of moderation input.
const (
	MaxNick        = 32
	MaxBanReason   = 512
	DefaultBanPage = 100
	MaxBanPage     = 1000
)

// moderate checks that actor holds p and outranks target in a server.
// The owner cannot be moderated; nobody moderates themselves.
func (s *Service) moderate(ctx context.Context, op string, actor User, serverID, targetID uint64, p role.Permissions) error {
	in, err := s.need(ctx, op, actor, serverID, p)
	if err != nil {
		return err
	}
	var targetRoles []role.Role
	target, err := s.roles.ServerInput(ctx, targetID, serverID)
	switch {
	case err == nil:
		targetRoles = target.Roles
	case guildhall.KindOf(err) == guildhall.NotFound: // not a member: no roles to outrank
	default:
		return guildhall.Wrap(op, err)
	}
	if !role.CanModerate(in, targetID, targetRoles) {
		return guildhall.E(op, guildhall.Forbidden, "you can only act on members whose highest role is below yours (and never on the owner)")
	}
	return nil
}

// Member returns one member of a server actor is in.
func (s *Service) Member(ctx context.Context, actor User, serverID, userID uint64) (Member, error) {
	const op = "member.Member"
	if _, err := s.Server(ctx, actor, serverID); err != nil {
		return Member{}, guildhall.Wrap(op, err)
	}
	m, err := s.store.Member(ctx, serverID, userID)
	if guildhall.KindOf(err) == guildhall.NotFound {
		return Member{}, guildhall.E(op, guildhall.NotFound, "unknown member")
	}
	return m, guildhall.Wrap(op, err)
}

// Kick removes a member; actor needs KICK_MEMBERS and a higher role.
func (s *Service) Kick(ctx context.Context, actor User, serverID, userID uint64) error {
	const op = "member.Kick"
	if err := s.moderate(ctx, op, actor, serverID, userID, role.KickMembers); err != nil {
		return err
	}
	if err := s.store.RemoveMember(ctx, serverID, userID); err != nil {
		if guildhall.KindOf(err) == guildhall.NotFound {
			return guildhall.E(op, guildhall.NotFound, "unknown member")
		}
		return guildhall.Wrap(op, err)
	}
	if err := s.roles.ClearMember(ctx, serverID, userID); err != nil {
		return guildhall.Wrap(op, err)
	}
	s.record(ctx, audit.Entry{ServerID: serverID, ActorID: actor.ID, Action: audit.MemberKick, TargetID: userID})
	return nil
}

// Ban removes a user (member or not) and keeps them out; actor needs
// BAN_MEMBERS and a higher role than a member they ban.
func (s *Service) Ban(ctx context.Context, actor User, serverID, userID uint64, reason string) (Ban, error) {
	const op = "member.Ban"
	if len(reason) > MaxBanReason || !utf8.ValidString(reason) {
		return Ban{}, guildhall.E(op, guildhall.Invalid, "reason must be valid UTF-8 of at most %d bytes", MaxBanReason)
	}
	if err := s.moderate(ctx, op, actor, serverID, userID, role.BanMembers); err != nil {
		return Ban{}, err
	}
	u, err := s.store.User(ctx, userID)
	if guildhall.KindOf(err) == guildhall.NotFound {
		return Ban{}, guildhall.E(op, guildhall.NotFound, "unknown user")
	}
	if err != nil {
		return Ban{}, guildhall.Wrap(op, err)
	}
	b := Ban{ServerID: serverID, UserID: userID, Username: u.Username, ActorID: actor.ID, Reason: reason, CreatedAt: s.now().UTC()}
	if err := s.store.Ban(ctx, b); err != nil {
		return Ban{}, guildhall.Wrap(op, err)
	}
	if err := s.roles.ClearMember(ctx, serverID, userID); err != nil {
		return Ban{}, guildhall.Wrap(op, err)
	}
	var changes []audit.Change
	if reason != "" {
		changes = []audit.Change{{Key: "ban_reason", New: reason}}
	}
	s.record(ctx, audit.Entry{ServerID: serverID, ActorID: actor.ID, Action: audit.MemberBanAdd, TargetID: userID, Changes: changes})
	return b, nil
}

// Unban lifts a ban; actor needs BAN_MEMBERS.
func (s *Service) Unban(ctx context.Context, actor User, serverID, userID uint64) error {
	const op = "member.Unban"
	if _, err := s.need(ctx, op, actor, serverID, role.BanMembers); err != nil {
		return err
	}
	if err := s.store.Unban(ctx, serverID, userID); err != nil {
		return guildhall.Wrap(op, err)
	}
	s.record(ctx, audit.Entry{ServerID: serverID, ActorID: actor.ID, Action: audit.MemberBanRemove, TargetID: userID})
	return nil
}

// Bans pages through a server's bans; actor needs BAN_MEMBERS.
func (s *Service) Bans(ctx context.Context, actor User, serverID, after uint64, limit int) ([]Ban, error) {
	const op = "member.Bans"
	if limit == 0 {
		limit = DefaultBanPage
	}
	if limit < 1 || limit > MaxBanPage {
		return nil, guildhall.E(op, guildhall.Invalid, "limit must be 1 to %d", MaxBanPage)
	}
	if _, err := s.need(ctx, op, actor, serverID, role.BanMembers); err != nil {
		return nil, err
	}
	list, err := s.store.Bans(ctx, serverID, after, limit)
	return list, guildhall.Wrap(op, err)
}

// SetNick sets a member's nickname ("" clears it). For themselves a member
// needs CHANGE_NICKNAME; for others MANAGE_NICKNAMES and a higher role.
func (s *Service) SetNick(ctx context.Context, actor User, serverID, userID uint64, nick string) (Member, error) {
	const op = "member.SetNick"
	nick = strings.TrimSpace(nick)
	if utf8.RuneCountInString(nick) > MaxNick || !utf8.ValidString(nick) {
		return Member{}, guildhall.E(op, guildhall.Invalid, "nick must be at most %d characters", MaxNick)
	}
	for _, r := range nick {
		if unicode.IsControl(r) {
			return Member{}, guildhall.E(op, guildhall.Invalid, "nick may not hold control characters")
		}
	}
	if userID == actor.ID {
		if _, err := s.need(ctx, op, actor, serverID, role.ChangeNickname); err != nil {
			return Member{}, err
		}
	} else if err := s.moderate(ctx, op, actor, serverID, userID, role.ManageNicknames); err != nil {
		return Member{}, err
	}
	m, err := s.store.Member(ctx, serverID, userID)
	if guildhall.KindOf(err) == guildhall.NotFound {
		return Member{}, guildhall.E(op, guildhall.NotFound, "unknown member")
	}
	if err != nil {
		return Member{}, guildhall.Wrap(op, err)
	}
	old := m.Nick
	m.Nick = nick
	if err := s.store.UpdateMember(ctx, m); err != nil {
		return Member{}, guildhall.Wrap(op, err)
	}
	if old != nick {
		s.record(ctx, audit.Entry{ServerID: serverID, ActorID: actor.ID, Action: audit.MemberUpdate, TargetID: userID, Changes: []audit.Change{{Key: "nick", Old: old, New: nick}}})
	}
	return m, nil
}
