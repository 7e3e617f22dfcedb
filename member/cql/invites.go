package cql

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/member"
)

type inviteRow struct {
	Code      string    `db:"code"`
	ServerID  int64     `db:"server_id"`
	CreatorID int64     `db:"creator_id"`
	MaxUses   int       `db:"max_uses"`
	Uses      int       `db:"uses"`
	ExpiresAt time.Time `db:"expires_at"`
	CreatedAt time.Time `db:"created_at"`
}

func (r inviteRow) invite() member.Invite {
	return member.Invite{
		Code: r.Code, ServerID: uint64(r.ServerID), CreatorID: uint64(r.CreatorID), MaxUses: r.MaxUses,
		Uses: r.Uses, ExpiresAt: utc(r.ExpiresAt), CreatedAt: utc(r.CreatedAt),
	}
}

const inviteCols = `code, server_id, creator_id, max_uses, uses, expires_at, created_at`

func (s *Store) inviteRow(ctx context.Context, code string) (inviteRow, bool, error) {
	var r inviteRow
	if !utf8.ValidString(code) {
		return r, false, nil
	}
	ok, err := s.get(ctx, &r, `SELECT `+inviteCols+` FROM invites WHERE code = ?`, code)
	return r, ok, err
}

// CreateInvite implements member.Store. An unknown server is NotFound; a
// code that is already stored is a Conflict.
func (s *Store) CreateInvite(ctx context.Context, inv member.Invite) error {
	const op = "member/cql.CreateInvite"
	if err := checkText(op, inv.Code); err != nil {
		return err
	}
	if ok, err := s.serverExists(ctx, inv.ServerID); err != nil {
		return dbErr(op, err)
	} else if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	applied, _, err := s.cas(ctx, `INSERT INTO invites (`+inviteCols+`) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
		inv.Code, int64(inv.ServerID), int64(inv.CreatorID), inv.MaxUses, inv.Uses, inv.ExpiresAt, inv.CreatedAt)
	if err != nil {
		return dbErr(op, err)
	}
	if !applied {
		return guildhall.E(op, guildhall.Conflict, "invite code taken")
	}
	return nil
}

// Invite implements member.Store.
func (s *Store) Invite(ctx context.Context, code string) (member.Invite, error) {
	const op = "member/cql.Invite"
	r, ok, err := s.inviteRow(ctx, code)
	if err != nil {
		return member.Invite{}, dbErr(op, err)
	}
	if !ok {
		return member.Invite{}, guildhall.E(op, guildhall.NotFound, "unknown invite")
	}
	return r.invite(), nil
}

// JoinByInvite implements member.Store. m joins the invite's server
// whatever m.ServerID says. A user with a ban row is refused, a member gets
// their membership back (even on an expired or used-up invite); anyone else
// needs an invite that has not expired at m.JoinedAt and has a use left.
//
// In order: a use is claimed on the invite (compare-and-set of uses); the
// index rows are written at a new version; then the membership row and the
// count go in together in one conditional batch on the members partition,
// only if the user has no row there. That batch is the commit point, and
// the same row serializes a join with a ban, a removal or another join of
// the same user. If it finds a member (a concurrent join) or a ban, the use
// is given back. A crash, or an error, after the use is claimed and before
// the commit point leaves the invite one use short and index rows that
// reads skip.
func (s *Store) JoinByInvite(ctx context.Context, code string, m member.Member) (member.Member, error) {
	const op = "member/cql.JoinByInvite"
	inv, ok, err := s.inviteRow(ctx, code)
	if err != nil {
		return member.Member{}, dbErr(op, err)
	}
	if !ok {
		return member.Member{}, guildhall.E(op, guildhall.NotFound, "unknown invite")
	}
	m.ServerID = uint64(inv.ServerID)
	if err := checkIDs(op, m.UserID); err != nil {
		return member.Member{}, err
	}
	if err := checkText(op, m.Username, m.Nick); err != nil {
		return member.Member{}, err
	}
	r, ok, err := s.memberRow(ctx, m.ServerID, m.UserID)
	if err != nil {
		return member.Member{}, dbErr(op, err)
	}
	if ok {
		return decided(op, r)
	}
	if inv.invite().Expired(m.JoinedAt) {
		return member.Member{}, guildhall.E(op, guildhall.Forbidden, "invite expired")
	}
	if err := s.useInvite(ctx, op, code, inv.Uses, inv.MaxUses); err != nil {
		return member.Member{}, err
	}

	v := s.micros()
	if err := s.loggedBatch(ctx, memberIndex(m.ServerID, m.UserID, m.Username, v)...); err != nil {
		return member.Member{}, dbErr(op, err)
	}
	var other *memberRow // the row that was there first
	err = retry(ctx, op, func() (bool, error) {
		n, ok, err := s.memberCount(ctx, m.ServerID)
		if err != nil {
			return false, dbErr(op, err)
		}
		if !ok {
			return false, guildhall.E(op, guildhall.NotFound, "unknown server")
		}
		applied, err := s.casBatch(ctx,
			st(`INSERT INTO members (server_id, user_id, banned, version, username, nick, joined_at) VALUES (?, ?, false, ?, ?, ?, ?) IF NOT EXISTS`,
				int64(m.ServerID), int64(m.UserID), v, m.Username, m.Nick, m.JoinedAt),
			setCount(m.ServerID, n, n+1))
		if err != nil {
			// The outcome is unknown (a timeout): the row tells, by its version.
			if r, ok, rerr := s.memberRow(ctx, m.ServerID, m.UserID); rerr == nil && ok && !r.Banned && r.Version == v {
				return true, nil
			}
			return false, dbErr(op, err)
		}
		if applied {
			return true, nil
		}
		r, ok, err := s.memberRow(ctx, m.ServerID, m.UserID)
		if err != nil {
			return false, dbErr(op, err)
		}
		if ok {
			other = &r
			return true, nil
		}
		return false, nil // only the count moved on
	})
	if err != nil {
		return member.Member{}, err
	}
	if other == nil {
		return m, nil
	}
	if err := s.refundInvite(ctx, op, code); err != nil {
		return member.Member{}, err
	}
	if other.Banned {
		// Nobody can be a member while the ban row is there, so the index
		// rows at v are only ours.
		s.dropMemberIndex(ctx, memberRow{ServerID: int64(m.ServerID), UserID: int64(m.UserID), Username: m.Username, Version: v})
	}
	return decided(op, *other)
}

// decided is the outcome of a join that found a row for the user: their
// membership, or Forbidden for a ban.
func decided(op string, r memberRow) (member.Member, error) {
	if r.Banned {
		return member.Member{}, guildhall.E(op, guildhall.Forbidden, "you are banned from this server")
	}
	return r.member(), nil
}

// useInvite counts one use of an invite that had uses at the last read,
// by compare-and-set; Forbidden once maxUses (if not 0) are used.
func (s *Store) useInvite(ctx context.Context, op, code string, uses, maxUses int) error {
	return retry(ctx, op, func() (bool, error) {
		if maxUses > 0 && uses >= maxUses {
			return false, guildhall.E(op, guildhall.Forbidden, "invite used up")
		}
		applied, prev, err := s.cas(ctx, `UPDATE invites SET uses = ? WHERE code = ? IF uses = ?`, uses+1, code, uses)
		if err != nil {
			return false, dbErr(op, err)
		}
		if applied {
			return true, nil
		}
		cur, ok := prev["uses"].(int)
		if !ok {
			return false, guildhall.E(op, guildhall.NotFound, "unknown invite")
		}
		uses = cur
		return false, nil
	})
}

// refundInvite gives back a use that useInvite counted for a join that did
// not happen.
func (s *Store) refundInvite(ctx context.Context, op, code string) error {
	r, ok, err := s.inviteRow(ctx, code)
	if err != nil {
		return dbErr(op, err)
	}
	if !ok {
		return nil
	}
	uses := r.Uses
	return retry(ctx, op, func() (bool, error) {
		if uses <= 0 {
			return true, nil
		}
		applied, prev, err := s.cas(ctx, `UPDATE invites SET uses = ? WHERE code = ? IF uses = ?`, uses-1, code, uses)
		if err != nil {
			return false, dbErr(op, err)
		}
		if applied {
			return true, nil
		}
		cur, ok := prev["uses"].(int)
		if !ok {
			return true, nil
		}
		uses = cur
		return false, nil
	})
}
