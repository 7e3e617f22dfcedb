package cql

import (
	"context"
	"math"
	"time"
	"unicode/utf8"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/member"
)

const (
	// staleClaim is how long a username claim may wait for its user row
	// before another CreateUser may take the name over: the claimant died
	// between its two writes.
	staleClaim = time.Minute
	// tokenGrace is how long a token row outlives its expiry, so that the
	// service still finds it and says "expired" rather than "unknown", and
	// so that clock skew between us and the CQL server cannot cut a live
	// token short.
	tokenGrace = 24 * time.Hour
	// maxTTL is Cassandra's largest TTL (20 years).
	maxTTL = 630720000 * time.Second
)

// ttlHorizon is the last expiry a TTL may reach: Cassandra 5 in its default
// storage compatibility mode refuses TTLs that end after 2038-01-19.
var ttlHorizon = time.Date(2038, 1, 1, 0, 0, 0, 0, time.UTC)

type userRow struct {
	ID           int64     `db:"id"`
	Username     string    `db:"username"`
	PasswordHash []byte    `db:"password_hash"`
	CreatedAt    time.Time `db:"created_at"`
}

func (r userRow) user() member.User {
	return member.User{ID: uint64(r.ID), Username: r.Username, CreatedAt: utc(r.CreatedAt)}
}

const userCols = `id, username, password_hash, created_at`

func (s *Store) userRow(ctx context.Context, id int64) (userRow, bool, error) {
	var r userRow
	ok, err := s.get(ctx, &r, `SELECT `+userCols+` FROM users WHERE id = ?`, id)
	return r, ok, err
}

type claimRow struct {
	UserID    int64     `db:"user_id"`
	ClaimedAt time.Time `db:"claimed_at"`
}

// CreateUser implements member.Store. The lower-cased name is claimed in
// users_by_name first, then the ID in users, each with INSERT IF NOT
// EXISTS; the user exists (User finds it) once its users row does. If the
// ID is taken, the name claim is given back.
func (s *Store) CreateUser(ctx context.Context, u member.User, passwordHash []byte) error {
	const op = "member/cql.CreateUser"
	if err := checkIDs(op, u.ID); err != nil {
		return err
	}
	if err := checkText(op, u.Username); err != nil {
		return err
	}
	name := fold(u.Username)
	fresh, err := s.claimName(ctx, op, name, u.ID)
	if err != nil {
		return err
	}
	applied, prev, err := s.cas(ctx,
		`INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?) IF NOT EXISTS`,
		int64(u.ID), u.Username, passwordHash, u.CreatedAt)
	if err != nil {
		// Whether the row went in is unknown. If it did not, the claim
		// is left pointing at a missing user and goes stale.
		return dbErr(op, err)
	}
	if !applied {
		// The ID is taken. Give the name back, unless the holder of the ID
		// has this very name: a concurrent call with the same user, whose
		// claim this is as well.
		if holder, _ := prev["username"].(string); fresh && fold(holder) != name {
			if _, _, err := s.cas(ctx, `DELETE FROM users_by_name WHERE name_lower = ? IF user_id = ?`, name, int64(u.ID)); err != nil {
				return dbErr(op, err)
			}
		}
		return guildhall.E(op, guildhall.Conflict, "user ID taken")
	}
	// A call that found our claim stale (we stalled for staleClaim between
	// the two writes) may have taken the name over. It looks for our user
	// row after taking the name, and we look for our claim after writing
	// the row, so at least one of us sees the other and backs out.
	var c claimRow
	ok, err := s.get(ctx, &c, `SELECT user_id, claimed_at FROM users_by_name WHERE name_lower = ?`, name)
	if err != nil {
		return dbErr(op, err)
	}
	if !ok || c.UserID != int64(u.ID) {
		if _, _, err := s.cas(ctx, `DELETE FROM users WHERE id = ? IF EXISTS`, int64(u.ID)); err != nil {
			return dbErr(op, err)
		}
		return guildhall.E(op, guildhall.Conflict, "username taken")
	}
	return nil
}

// claimName makes users_by_name map name to id and reports whether this
// call wrote the claim (rather than found one for id already, left by an
// earlier try or a concurrent call with the same user). A claim whose user
// row is missing or has another name is taken over once it is staleClaim
// old: its CreateUser died between its two writes.
func (s *Store) claimName(ctx context.Context, op, name string, id uint64) (fresh bool, err error) {
	err = retry(ctx, op, func() (bool, error) {
		now := s.now().UTC().Truncate(time.Millisecond)
		applied, prev, err := s.cas(ctx,
			`INSERT INTO users_by_name (name_lower, user_id, claimed_at) VALUES (?, ?, ?) IF NOT EXISTS`,
			name, int64(id), now)
		if err != nil {
			return false, dbErr(op, err)
		}
		if applied {
			fresh = true
			return true, nil
		}
		holder, _ := prev["user_id"].(int64)
		claimedAt, _ := prev["claimed_at"].(time.Time)
		if holder == int64(id) {
			return true, nil
		}
		if owned, err := s.ownsName(ctx, holder, name); err != nil {
			return false, dbErr(op, err)
		} else if owned || now.Sub(claimedAt) < staleClaim {
			return false, guildhall.E(op, guildhall.Conflict, "username taken")
		}
		applied, _, err = s.cas(ctx,
			`UPDATE users_by_name SET user_id = ?, claimed_at = ? WHERE name_lower = ? IF user_id = ? AND claimed_at = ?`,
			int64(id), now, name, holder, claimedAt)
		if err != nil {
			return false, dbErr(op, err)
		}
		if !applied {
			return false, nil // someone else changed the claim first; look again
		}
		// The stalled claimant may have written its user row just now (see
		// the end of CreateUser). If so, it keeps the name.
		if owned, err := s.ownsName(ctx, holder, name); err != nil {
			return false, dbErr(op, err)
		} else if owned {
			if _, _, err := s.cas(ctx,
				`UPDATE users_by_name SET user_id = ?, claimed_at = ? WHERE name_lower = ? IF user_id = ?`,
				holder, claimedAt, name, int64(id)); err != nil {
				return false, dbErr(op, err)
			}
			return false, guildhall.E(op, guildhall.Conflict, "username taken")
		}
		fresh = true
		return true, nil
	})
	return fresh, err
}

// ownsName reports whether user id exists with a name that folds to name.
func (s *Store) ownsName(ctx context.Context, id int64, name string) (bool, error) {
	r, ok, err := s.userRow(ctx, id)
	return ok && fold(r.Username) == name, err
}

// User implements member.Store.
func (s *Store) User(ctx context.Context, id uint64) (member.User, error) {
	const op = "member/cql.User"
	r, ok, err := s.userRow(ctx, int64(id))
	if err != nil {
		return member.User{}, dbErr(op, err)
	}
	if !ok {
		return member.User{}, guildhall.E(op, guildhall.NotFound, "unknown user")
	}
	return r.user(), nil
}

// UserByName implements member.Store. A claim whose user row is missing (a
// CreateUser in progress, or one that died) is no user.
func (s *Store) UserByName(ctx context.Context, username string) (member.User, []byte, error) {
	const op = "member/cql.UserByName"
	notFound := guildhall.E(op, guildhall.NotFound, "unknown user")
	if !utf8.ValidString(username) {
		return member.User{}, nil, notFound
	}
	name := fold(username)
	var c claimRow
	ok, err := s.get(ctx, &c, `SELECT user_id, claimed_at FROM users_by_name WHERE name_lower = ?`, name)
	if err != nil {
		return member.User{}, nil, dbErr(op, err)
	}
	if !ok {
		return member.User{}, nil, notFound
	}
	r, ok, err := s.userRow(ctx, c.UserID)
	if err != nil {
		return member.User{}, nil, dbErr(op, err)
	}
	if !ok || fold(r.Username) != name {
		return member.User{}, nil, notFound
	}
	return r.user(), r.PasswordHash, nil
}

type tokenRow struct {
	UserID    int64     `db:"user_id"`
	CreatedAt time.Time `db:"created_at"`
	ExpiresAt time.Time `db:"expires_at"`
}

// CreateToken implements member.Store. A hash that is already stored is a
// Conflict. A token that expires gets a TTL of its remaining life plus
// tokenGrace, so Cassandra drops it a day after it stops working.
func (s *Store) CreateToken(ctx context.Context, t member.Token) error {
	const op = "member/cql.CreateToken"
	q := `INSERT INTO tokens (hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?) IF NOT EXISTS`
	args := []any{t.Hash[:], int64(t.UserID), t.CreatedAt, t.ExpiresAt}
	if ttl := s.tokenTTL(t.ExpiresAt); ttl > 0 {
		q += ` USING TTL ?`
		args = append(args, ttl)
	}
	applied, _, err := s.cas(ctx, q, args...)
	if err != nil {
		return dbErr(op, err)
	}
	if !applied {
		return guildhall.E(op, guildhall.Conflict, "token exists")
	}
	return nil
}

// tokenTTL is the TTL in seconds of a token expiring at expires, 0 for
// none.
func (s *Store) tokenTTL(expires time.Time) int {
	if expires.IsZero() {
		return 0
	}
	end := expires.Add(tokenGrace)
	if end.After(ttlHorizon) {
		return 0
	}
	ttl := max(end.Sub(s.now()), time.Second)
	if ttl > maxTTL {
		return 0
	}
	return int(math.Ceil(ttl.Seconds()))
}

// Token implements member.Store.
func (s *Store) Token(ctx context.Context, hash [32]byte) (member.Token, error) {
	const op = "member/cql.Token"
	var r tokenRow
	ok, err := s.get(ctx, &r, `SELECT user_id, created_at, expires_at FROM tokens WHERE hash = ?`, hash[:])
	if err != nil {
		return member.Token{}, dbErr(op, err)
	}
	if !ok {
		return member.Token{}, guildhall.E(op, guildhall.NotFound, "unknown token")
	}
	return member.Token{Hash: hash, UserID: uint64(r.UserID), CreatedAt: utc(r.CreatedAt), ExpiresAt: utc(r.ExpiresAt)}, nil
}

// DeleteToken implements member.Store. An unknown hash is NotFound.
func (s *Store) DeleteToken(ctx context.Context, hash [32]byte) error {
	const op = "member/cql.DeleteToken"
	applied, _, err := s.cas(ctx, `DELETE FROM tokens WHERE hash = ? IF EXISTS`, hash[:])
	if err != nil {
		return dbErr(op, err)
	}
	if !applied {
		return guildhall.E(op, guildhall.NotFound, "unknown token")
	}
	return nil
}
