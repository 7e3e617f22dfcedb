package cql

import (
	"context"
	"math"
	"time"
	"unicode/utf8"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/member"
)

// memberRow is a row of members: a membership (banned false) or a ban
// (banned true), never both.
type memberRow struct {
	ServerID     int64     `db:"server_id"`
	UserID       int64     `db:"user_id"`
	MemberCount  int64     `db:"member_count"`
	Banned       bool      `db:"banned"`
	Version      int64     `db:"version"`
	Username     string    `db:"username"`
	Nick         string    `db:"nick"`
	JoinedAt     time.Time `db:"joined_at"`
	BanUsername  string    `db:"ban_username"`
	BanActorID   int64     `db:"ban_actor_id"`
	BanReason    string    `db:"ban_reason"`
	BanCreatedAt time.Time `db:"ban_created_at"`
}

const memberCols = `server_id, user_id, member_count, banned, version, username, nick, joined_at, ban_username, ban_actor_id, ban_reason, ban_created_at`

func (r memberRow) member() member.Member {
	return member.Member{ServerID: uint64(r.ServerID), UserID: uint64(r.UserID), Username: r.Username, Nick: r.Nick, JoinedAt: utc(r.JoinedAt)}
}

func (r memberRow) ban() member.Ban {
	return member.Ban{
		ServerID: uint64(r.ServerID), UserID: uint64(r.UserID), Username: r.BanUsername,
		ActorID: uint64(r.BanActorID), Reason: r.BanReason, CreatedAt: utc(r.BanCreatedAt),
	}
}

// memberRow reads the row of (server, user), with the server's member
// count.
func (s *Store) memberRow(ctx context.Context, serverID, userID uint64) (memberRow, bool, error) {
	var r memberRow
	ok, err := s.get(ctx, &r, `SELECT `+memberCols+` FROM members WHERE server_id = ? AND user_id = ?`, int64(serverID), int64(userID))
	return r, ok, err
}

// memberRows reads the rows of ids (at most inChunk) in a server, by user
// ID.
func (s *Store) memberRows(ctx context.Context, serverID uint64, ids []int64) (map[int64]memberRow, error) {
	var rows []memberRow
	if err := s.sel(ctx, &rows, `SELECT `+memberCols+` FROM members WHERE server_id = ? AND user_id IN ?`, int64(serverID), ids); err != nil {
		return nil, err
	}
	byID := make(map[int64]memberRow, len(rows))
	for _, r := range rows {
		byID[r.UserID] = r
	}
	return byID, nil
}

// memberCount reads a server's member count; false if the server has no
// members partition (it does not exist).
func (s *Store) memberCount(ctx context.Context, serverID uint64) (int64, bool, error) {
	var n int64
	ok, err := s.get(ctx, &n, `SELECT member_count FROM members WHERE server_id = ? LIMIT 1`, int64(serverID))
	return n, ok, err
}

// setCount is the compare-and-set of a member count, for a conditional
// batch with the membership row it counts.
func setCount(serverID uint64, from, to int64) stmt {
	return st(`UPDATE members SET member_count = ? WHERE server_id = ? IF member_count = ?`, to, int64(serverID), from)
}

// memberIndex writes a membership's index rows at its version.
func memberIndex(serverID, userID uint64, username string, version int64) []stmt {
	return []stmt{
		st(`INSERT INTO members_by_name (server_id, name_lower, user_id) VALUES (?, ?, ?) USING TIMESTAMP ?`,
			int64(serverID), fold(username), int64(userID), version),
		st(`INSERT INTO servers_by_user (user_id, server_id) VALUES (?, ?) USING TIMESTAMP ?`,
			int64(userID), int64(serverID), version),
	}
}

// dropMemberIndex deletes the index rows of the membership r ended. The
// deletes carry r's version as their timestamp: they remove what that
// membership wrote and nothing a later membership of the same user writes.
// It runs after the commit point, so it is best effort: rows it leaves
// behind are skipped by every read.
func (s *Store) dropMemberIndex(ctx context.Context, r memberRow) {
	_ = s.loggedBatch(ctx,
		st(`DELETE FROM members_by_name USING TIMESTAMP ? WHERE server_id = ? AND name_lower = ? AND user_id = ?`,
			r.Version, r.ServerID, fold(r.Username), r.UserID),
		st(`DELETE FROM servers_by_user USING TIMESTAMP ? WHERE user_id = ? AND server_id = ?`,
			r.Version, r.UserID, r.ServerID))
}

// Member implements member.Store.
func (s *Store) Member(ctx context.Context, serverID, userID uint64) (member.Member, error) {
	const op = "member/cql.Member"
	r, ok, err := s.memberRow(ctx, serverID, userID)
	if err != nil {
		return member.Member{}, dbErr(op, err)
	}
	if !ok || r.Banned {
		return member.Member{}, guildhall.E(op, guildhall.NotFound, "unknown member")
	}
	return r.member(), nil
}

// Members implements member.Store. An unknown server is NotFound. Limit is
// clamped to 1..1000. With a prefix, the After member's place in (name,
// ID) order is found from their membership or, if they left since, from
// their user record; an After that is neither is Invalid.
func (s *Store) Members(ctx context.Context, serverID uint64, q member.MemberQuery) ([]member.Member, error) {
	const op = "member/cql.Members"
	limit := min(max(q.Limit, 1), maxPage)
	var members []member.Member
	var err error
	if q.Prefix == "" {
		members, err = s.membersByID(ctx, serverID, q.After, limit)
	} else {
		members, err = s.membersByName(ctx, serverID, fold(q.Prefix), q.After, limit)
	}
	if err != nil {
		return nil, dbErr(op, err)
	}
	if len(members) == 0 {
		if ok, err := s.serverExists(ctx, serverID); err != nil {
			return nil, dbErr(op, err)
		} else if !ok {
			return nil, guildhall.E(op, guildhall.NotFound, "unknown server")
		}
	}
	return members, nil
}

// membersByID pages through the members partition, skipping ban rows.
func (s *Store) membersByID(ctx context.Context, serverID, after uint64, limit int) ([]member.Member, error) {
	members := make([]member.Member, 0, min(limit, 100))
	if after >= math.MaxInt64 {
		return members, nil
	}
	// user_id >= 0 rather than no bound: a partition whose members all
	// left still has its static count, which an unbounded query returns
	// as a row without a user.
	cur, cmpOp := int64(0), ">="
	if after != 0 {
		cur, cmpOp = int64(after), ">"
	}
	for len(members) < limit {
		need := limit - len(members)
		var rows []memberRow
		err := s.sel(ctx, &rows, `SELECT `+memberCols+` FROM members WHERE server_id = ? AND user_id `+cmpOp+` ? LIMIT ?`,
			int64(serverID), cur, need)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if !r.Banned {
				members = append(members, r.member())
			}
		}
		if len(rows) < need {
			break
		}
		cur, cmpOp = rows[len(rows)-1].UserID, ">"
	}
	return members, nil
}

// membersByName pages through members_by_name from prefix, or from the
// (name, ID) of the after member, to the end of the prefix, and reads the
// members it lists from the members partition. An index row whose
// membership is gone, or that has another name, is skipped.
func (s *Store) membersByName(ctx context.Context, serverID uint64, prefix string, after uint64, limit int) ([]member.Member, error) {
	members := make([]member.Member, 0, min(limit, 100))
	if !utf8.ValidString(prefix) { // no username is invalid UTF-8
		return members, nil
	}
	end, bounded := prefixEnd(prefix)
	var curName string
	var curID int64
	cursor := false
	if after != 0 {
		name, err := s.cursorName(ctx, serverID, after)
		if err != nil {
			return nil, err
		}
		switch {
		case bounded && name >= end:
			return members, nil
		case name >= prefix:
			curName, curID, cursor = fold(name), int64(after), true
		}
	}
	for len(members) < limit {
		need := limit - len(members)
		q := `SELECT name_lower, user_id FROM members_by_name WHERE server_id = ? AND name_lower >= ?`
		args := []any{int64(serverID), prefix}
		if cursor {
			q = `SELECT name_lower, user_id FROM members_by_name WHERE server_id = ? AND (name_lower, user_id) > (?, ?)`
			args = []any{int64(serverID), curName, curID}
		}
		if bounded {
			q += ` AND name_lower < ?`
			args = append(args, end)
		}
		var index []struct {
			NameLower string `db:"name_lower"`
			UserID    int64  `db:"user_id"`
		}
		if err := s.sel(ctx, &index, q+` LIMIT ?`, append(args, need)...); err != nil {
			return nil, err
		}
		if len(index) == 0 {
			break
		}
		ids := make([]int64, 0, len(index))
		for _, x := range index {
			ids = append(ids, x.UserID)
		}
		rows := map[int64]memberRow{}
		for _, chunk := range chunks(ids) {
			byID, err := s.memberRows(ctx, serverID, chunk)
			if err != nil {
				return nil, err
			}
			for id, r := range byID {
				rows[id] = r
			}
		}
		for _, x := range index {
			if r, ok := rows[x.UserID]; ok && !r.Banned && fold(r.Username) == x.NameLower {
				members = append(members, r.member())
			}
		}
		if len(index) < need {
			break
		}
		last := index[len(index)-1]
		curName, curID, cursor = last.NameLower, last.UserID, true
	}
	return members, nil
}

// cursorName is the username that places userID in a name-ordered page.
func (s *Store) cursorName(ctx context.Context, serverID, userID uint64) (string, error) {
	r, ok, err := s.memberRow(ctx, serverID, userID)
	if err != nil {
		return "", err
	}
	if ok && !r.Banned {
		return fold(r.Username), nil
	}
	u, ok, err := s.userRow(ctx, int64(userID))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", guildhall.E("", guildhall.Invalid, "unknown member cursor")
	}
	return fold(u.Username), nil
}

// prefixEnd is the least string greater than every string that starts with
// prefix: prefix with its last rune incremented (dropping trailing
// U+10FFFF). CQL text compares by UTF-8 bytes, which is code point order.
// It reports false if there is no such string.
func prefixEnd(prefix string) (string, bool) {
	rs := []rune(prefix)
	for len(rs) > 0 {
		last := rs[len(rs)-1]
		if last < utf8.MaxRune {
			next := last + 1
			if next >= 0xD800 && next <= 0xDFFF { // surrogates are not valid UTF-8
				next = 0xE000
			}
			rs[len(rs)-1] = next
			return string(rs), true
		}
		rs = rs[:len(rs)-1]
	}
	return "", false
}

// MemberCount implements member.Store. An unknown server is NotFound.
func (s *Store) MemberCount(ctx context.Context, serverID uint64) (int, error) {
	const op = "member/cql.MemberCount"
	n, ok, err := s.memberCount(ctx, serverID)
	if err != nil {
		return 0, dbErr(op, err)
	}
	if !ok {
		return 0, guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	return int(n), nil
}

// RemoveMember implements member.Store. The membership row is deleted and
// the count decremented in one conditional batch, on the version of the
// membership read, so that of two removals only one counts. The index rows
// go after.
func (s *Store) RemoveMember(ctx context.Context, serverID, userID uint64) error {
	const op = "member/cql.RemoveMember"
	var gone memberRow
	err := retry(ctx, op, func() (bool, error) {
		r, ok, err := s.memberRow(ctx, serverID, userID)
		if err != nil {
			return false, dbErr(op, err)
		}
		if !ok || r.Banned {
			return false, guildhall.E(op, guildhall.NotFound, "unknown member")
		}
		applied, err := s.casBatch(ctx,
			st(`DELETE FROM members WHERE server_id = ? AND user_id = ? IF banned = false AND version = ?`, r.ServerID, r.UserID, r.Version),
			setCount(serverID, r.MemberCount, r.MemberCount-1))
		gone = r
		return applied, dbErr(op, err)
	})
	if err != nil {
		return err
	}
	s.dropMemberIndex(ctx, gone)
	return nil
}

// UpdateMember implements member.Store. Only the nickname changes; the
// username (and so the member's place in prefix search) and the join time
// stay as stored.
func (s *Store) UpdateMember(ctx context.Context, m member.Member) error {
	const op = "member/cql.UpdateMember"
	if err := checkText(op, m.Nick); err != nil {
		return err
	}
	applied, _, err := s.cas(ctx, `UPDATE members SET nick = ? WHERE server_id = ? AND user_id = ? IF banned = false`,
		m.Nick, int64(m.ServerID), int64(m.UserID))
	if err != nil {
		return dbErr(op, err)
	}
	if !applied {
		return guildhall.E(op, guildhall.NotFound, "unknown member")
	}
	return nil
}

// Ban implements member.Store. An unknown server is NotFound; the user is
// not looked up. The ban is listed in bans first; then the user's row in
// members becomes the ban: a membership is turned into it together with
// the count in one conditional batch, a missing row is inserted, an
// earlier ban is replaced. The membership's index rows go last.
func (s *Store) Ban(ctx context.Context, b member.Ban) error {
	const op = "member/cql.Ban"
	if err := checkIDs(op, b.UserID); err != nil {
		return err
	}
	if err := checkText(op, b.Username, b.Reason); err != nil {
		return err
	}
	if ok, err := s.serverExists(ctx, b.ServerID); err != nil {
		return dbErr(op, err)
	} else if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	v := s.micros()
	listBan := func(v int64) error {
		return s.exec(ctx, `INSERT INTO bans (server_id, user_id) VALUES (?, ?) USING TIMESTAMP ?`, int64(b.ServerID), int64(b.UserID), v)
	}
	if err := listBan(v); err != nil {
		return dbErr(op, err)
	}
	var was memberRow
	var wasMember bool
	err := retry(ctx, op, func() (bool, error) {
		r, ok, err := s.memberRow(ctx, b.ServerID, b.UserID)
		if err != nil {
			return false, dbErr(op, err)
		}
		var applied bool
		switch {
		case ok && r.Banned:
			// Replace the ban. Its version must pass the old one, whose
			// listing Unban would delete at that version.
			nv := max(v, r.Version+1)
			if nv != v {
				if err := listBan(nv); err != nil {
					return false, dbErr(op, err)
				}
			}
			applied, _, err = s.cas(ctx,
				`UPDATE members SET version = ?, ban_username = ?, ban_actor_id = ?, ban_reason = ?, ban_created_at = ? WHERE server_id = ? AND user_id = ? IF banned = true AND version = ?`,
				nv, b.Username, int64(b.ActorID), b.Reason, b.CreatedAt, r.ServerID, r.UserID, r.Version)
		case ok:
			applied, err = s.casBatch(ctx,
				st(`UPDATE members SET banned = true, version = ?, username = null, nick = null, joined_at = null, ban_username = ?, ban_actor_id = ?, ban_reason = ?, ban_created_at = ? WHERE server_id = ? AND user_id = ? IF banned = false AND version = ?`,
					v, b.Username, int64(b.ActorID), b.Reason, b.CreatedAt, r.ServerID, r.UserID, r.Version),
				setCount(b.ServerID, r.MemberCount, r.MemberCount-1))
			was, wasMember = r, true
		default:
			applied, _, err = s.cas(ctx,
				`INSERT INTO members (server_id, user_id, banned, version, ban_username, ban_actor_id, ban_reason, ban_created_at) VALUES (?, ?, true, ?, ?, ?, ?, ?) IF NOT EXISTS`,
				int64(b.ServerID), int64(b.UserID), v, b.Username, int64(b.ActorID), b.Reason, b.CreatedAt)
		}
		if !applied {
			wasMember = false
		}
		return applied, dbErr(op, err)
	})
	if err != nil {
		return err
	}
	if wasMember {
		s.dropMemberIndex(ctx, was)
	}
	return nil
}

// Unban implements member.Store. It deletes the ban row, then its listing;
// the user is not made a member again.
func (s *Store) Unban(ctx context.Context, serverID, userID uint64) error {
	const op = "member/cql.Unban"
	var gone memberRow
	err := retry(ctx, op, func() (bool, error) {
		r, ok, err := s.memberRow(ctx, serverID, userID)
		if err != nil {
			return false, dbErr(op, err)
		}
		if !ok || !r.Banned {
			return false, guildhall.E(op, guildhall.NotFound, "unknown ban")
		}
		applied, _, err := s.cas(ctx, `DELETE FROM members WHERE server_id = ? AND user_id = ? IF banned = true AND version = ?`,
			r.ServerID, r.UserID, r.Version)
		gone = r
		return applied, dbErr(op, err)
	})
	if err != nil {
		return err
	}
	// Best effort, like dropMemberIndex: Bans skips a listing without a ban.
	_ = s.exec(ctx, `DELETE FROM bans USING TIMESTAMP ? WHERE server_id = ? AND user_id = ?`, gone.Version, gone.ServerID, gone.UserID)
	return nil
}

// BanOf implements member.Store.
func (s *Store) BanOf(ctx context.Context, serverID, userID uint64) (member.Ban, error) {
	const op = "member/cql.BanOf"
	r, ok, err := s.memberRow(ctx, serverID, userID)
	if err != nil {
		return member.Ban{}, dbErr(op, err)
	}
	if !ok || !r.Banned {
		return member.Ban{}, guildhall.E(op, guildhall.NotFound, "unknown ban")
	}
	return r.ban(), nil
}

// Bans implements member.Store. An unknown server is NotFound. Limit is
// clamped to 1..1000. The bans listing is checked against the members
// partition, so a listing whose ban is gone is skipped.
func (s *Store) Bans(ctx context.Context, serverID, after uint64, limit int) ([]member.Ban, error) {
	const op = "member/cql.Bans"
	limit = min(max(limit, 1), maxPage)
	bans := make([]member.Ban, 0, min(limit, 100))
	cur, cmpOp := int64(0), ">="
	if after != 0 {
		cur, cmpOp = int64(after), ">"
	}
	for after < math.MaxInt64 && len(bans) < limit {
		need := limit - len(bans)
		var ids []int64
		if err := s.sel(ctx, &ids, `SELECT user_id FROM bans WHERE server_id = ? AND user_id `+cmpOp+` ? LIMIT ?`, int64(serverID), cur, need); err != nil {
			return nil, dbErr(op, err)
		}
		if len(ids) == 0 {
			break
		}
		for _, chunk := range chunks(ids) {
			rows, err := s.memberRows(ctx, serverID, chunk)
			if err != nil {
				return nil, dbErr(op, err)
			}
			for _, id := range chunk {
				if r, ok := rows[id]; ok && r.Banned {
					bans = append(bans, r.ban())
				}
			}
		}
		if len(ids) < need {
			break
		}
		cur, cmpOp = ids[len(ids)-1], ">"
	}
	if len(bans) == 0 {
		if ok, err := s.serverExists(ctx, serverID); err != nil {
			return nil, dbErr(op, err)
		} else if !ok {
			return nil, guildhall.E(op, guildhall.NotFound, "unknown server")
		}
	}
	return bans, nil
}
