package cql

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/role"
)

// Limits, checked on every write that adds a row. Replacing a role or an
// overwrite, or adding a role a member already holds, is always allowed.
// Writers in several processes can overshoot them a little; see doc.go.
const (
	maxRoles       = 250 // roles per server, @everyone included
	maxOverwrites  = 500 // overwrites per channel, both types together
	maxMemberRoles = 250 // role IDs per member, stale ones included
)

// How a write bumps the version once its data write is done: up to
// bumpAttempts tries, bumpBackoff apart, doubling. The bump is not
// idempotent, and a retry after a timeout may count twice, which is
// harmless (see doc.go).
const (
	bumpAttempts = 4
	bumpBackoff  = 50 * time.Millisecond
)

// Statements. Every ID is a bigint holding the uint64's bits; permission
// bits likewise.
const (
	stmtRoles      = `SELECT role_id, position, permissions, name, color, hoist, mentionable FROM roles WHERE server_id = ?`
	stmtRoleIDs    = `SELECT role_id FROM roles WHERE server_id = ?`
	stmtRoleExists = `SELECT role_id FROM roles WHERE server_id = ? AND role_id = ?`
	stmtPutRole    = `INSERT INTO roles (server_id, role_id, position, permissions, name, color, hoist, mentionable) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	stmtDeleteRole = `DELETE FROM roles WHERE server_id = ? AND role_id = ?`

	stmtMemberRoles      = `SELECT role_id FROM member_roles WHERE server_id = ? AND user_id = ?`
	stmtAddMemberRole    = `INSERT INTO member_roles (server_id, user_id, role_id) VALUES (?, ?, ?)`
	stmtRemoveMemberRole = `DELETE FROM member_roles WHERE server_id = ? AND user_id = ? AND role_id = ?`
	stmtClearMember      = `DELETE FROM member_roles WHERE server_id = ? AND user_id = ?`

	stmtOverwrites       = `SELECT type, target_id, allow_bits, deny_bits FROM overwrites WHERE channel_id = ?`
	stmtOverwriteKeys    = `SELECT type, target_id FROM overwrites WHERE channel_id = ?`
	stmtOverwriteTypes   = `SELECT type FROM overwrites WHERE channel_id = ? AND type IN (0, 1) AND target_id = ?`
	stmtPutOverwrite     = `INSERT INTO overwrites (channel_id, type, target_id, allow_bits, deny_bits) VALUES (?, ?, ?, ?, ?)`
	stmtDeleteOverwrite  = `DELETE FROM overwrites WHERE channel_id = ? AND type IN (0, 1) AND target_id = ?`
	stmtDeleteOverwrites = `DELETE FROM overwrites WHERE channel_id = ?`

	stmtVersion = `SELECT version FROM role_versions WHERE server_id = ?`
	stmtBump    = `UPDATE role_versions SET version = version + 1 WHERE server_id = ?`
)

// Store is a role.Store on a CQL keyspace migrated with Migrations. It
// keeps no state of its own: any number of Stores, in any number of
// processes, may share the keyspace.
type Store struct {
	session gocqlx.Session
}

var _ role.Store = (*Store)(nil)

// New returns a Store on s, whose keyspace has Migrations applied under
// Component. The caller closes s.
func New(s gocqlx.Session) *Store {
	return &Store{session: s}
}

// Roles implements role.Store, sorted by (position, ID). A server with no
// stored role has none, not NotFound.
func (s *Store) Roles(ctx context.Context, serverID uint64) ([]role.Role, error) {
	const op = "role/cql.Roles"
	iter := s.session.ContextQuery(ctx, stmtRoles, nil).Bind(serverID).Iter()
	roles := []role.Role{}
	var r role.Role
	var perms uint64
	for iter.Scan(&r.ID, &r.Position, &perms, &r.Name, &r.Color, &r.Hoist, &r.Mentionable) {
		r.Permissions = role.Permissions(perms)
		roles = append(roles, r)
	}
	if err := iter.Close(); err != nil {
		return nil, wrap(op, err)
	}
	slices.SortFunc(roles, func(a, b role.Role) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.ID, b.ID))
	})
	return roles, nil
}

// PutRole implements role.Store. A new role beyond the server's 250th is
// Invalid.
func (s *Store) PutRole(ctx context.Context, serverID uint64, r role.Role) error {
	const op = "role/cql.PutRole"
	ids, err := s.ids(ctx, maxRoles+1, stmtRoleIDs, serverID)
	if err != nil {
		return wrap(op, err)
	}
	if !slices.Contains(ids, r.ID) && len(ids) >= maxRoles {
		return guildhall.E(op, guildhall.Invalid, "a server may have at most %d roles", maxRoles)
	}
	return wrap(op, s.write(ctx, serverID, stmtPutRole,
		serverID, r.ID, r.Position, uint64(r.Permissions), r.Name, r.Color, r.Hoist, r.Mentionable))
}

// DeleteRole implements role.Store. Member role lists and channel
// overwrites that name the role are left as they are.
func (s *Store) DeleteRole(ctx context.Context, serverID, roleID uint64) error {
	const op = "role/cql.DeleteRole"
	ids, err := s.ids(ctx, 1, stmtRoleExists, serverID, roleID)
	if err != nil {
		return wrap(op, err)
	}
	if len(ids) == 0 {
		return guildhall.E(op, guildhall.NotFound, "unknown role")
	}
	return wrap(op, s.write(ctx, serverID, stmtDeleteRole, serverID, roleID))
}

// MemberRoles implements role.Store, in clustering order (see doc.go). A
// member with no role, or no member at all, has none.
func (s *Store) MemberRoles(ctx context.Context, serverID, userID uint64) ([]uint64, error) {
	const op = "role/cql.MemberRoles"
	ids, err := s.ids(ctx, 0, stmtMemberRoles, serverID, userID)
	if err != nil {
		return nil, wrap(op, err)
	}
	return ids, nil
}

// AddMemberRole implements role.Store. Adding a role the member holds
// writes nothing but still bumps the version. The role is not checked: a
// role ID that was never stored is kept like a stale one. A member who
// holds 250 role IDs first loses the stale ones (roles no longer stored);
// if 250 remain, the new one is Invalid and nothing is deleted.
func (s *Store) AddMemberRole(ctx context.Context, serverID, userID, roleID uint64) error {
	const op = "role/cql.AddMemberRole"
	held, err := s.ids(ctx, 0, stmtMemberRoles, serverID, userID)
	if err != nil {
		return wrap(op, err)
	}
	if slices.Contains(held, roleID) {
		return wrap(op, s.bump(ctx, serverID))
	}
	var stale []uint64
	if len(held) >= maxMemberRoles {
		roles, err := s.ids(ctx, 0, stmtRoleIDs, serverID)
		if err != nil {
			return wrap(op, err)
		}
		for _, id := range held {
			if !slices.Contains(roles, id) {
				stale = append(stale, id)
			}
		}
		if len(held)-len(stale) >= maxMemberRoles {
			return guildhall.E(op, guildhall.Invalid, "a member may hold at most %d roles", maxMemberRoles)
		}
	}
	if err := ctx.Err(); err != nil {
		return wrap(op, err)
	}
	// The stale IDs go with the new one in one batch: one partition, so
	// it applies atomically.
	b := s.session.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
	for _, id := range stale {
		b.Query(stmtRemoveMemberRole, serverID, userID, id)
	}
	b.Query(stmtAddMemberRole, serverID, userID, roleID)
	return wrap(op, s.bumpAfter(ctx, serverID, s.session.ExecuteBatch(b)))
}

// RemoveMemberRole implements role.Store. Removing a role the member does
// not hold bumps the version all the same.
func (s *Store) RemoveMemberRole(ctx context.Context, serverID, userID, roleID uint64) error {
	const op = "role/cql.RemoveMemberRole"
	return wrap(op, s.write(ctx, serverID, stmtRemoveMemberRole, serverID, userID, roleID))
}

// Overwrites implements role.Store, in clustering order: role overwrites
// first. A channel with none, or no channel at all, has none.
func (s *Store) Overwrites(ctx context.Context, channelID uint64) ([]role.Overwrite, error) {
	const op = "role/cql.Overwrites"
	iter := s.session.ContextQuery(ctx, stmtOverwrites, nil).Bind(channelID).Iter()
	ows := []role.Overwrite{}
	var ow role.Overwrite
	var allow, deny uint64
	for iter.Scan(&ow.Type, &ow.ID, &allow, &deny) {
		ow.Allow, ow.Deny = role.Permissions(allow), role.Permissions(deny)
		ows = append(ows, ow)
	}
	if err := iter.Close(); err != nil {
		return nil, wrap(op, err)
	}
	return ows, nil
}

// PutOverwrite implements role.Store. A type other than role or member is
// Invalid, and so is a new overwrite beyond the channel's 500th.
func (s *Store) PutOverwrite(ctx context.Context, serverID, channelID uint64, ow role.Overwrite) error {
	const op = "role/cql.PutOverwrite"
	if ow.Type != role.OverwriteRole && ow.Type != role.OverwriteMember {
		return guildhall.E(op, guildhall.Invalid, "unknown overwrite type %d", ow.Type)
	}
	q := s.session.ContextQuery(ctx, stmtOverwriteKeys, nil).Bind(channelID)
	q.PageSize(maxOverwrites + 1)
	iter := q.Iter()
	n, exists := 0, false
	var typ role.OverwriteType
	var id uint64
	for n <= maxOverwrites && iter.Scan(&typ, &id) {
		n++
		exists = exists || (typ == ow.Type && id == ow.ID)
	}
	if err := iter.Close(); err != nil {
		return wrap(op, err)
	}
	if !exists && n >= maxOverwrites {
		return guildhall.E(op, guildhall.Invalid, "a channel may have at most %d overwrites", maxOverwrites)
	}
	return wrap(op, s.write(ctx, serverID, stmtPutOverwrite,
		channelID, ow.Type, ow.ID, uint64(ow.Allow), uint64(ow.Deny)))
}

// DeleteOverwrite implements role.Store. It removes the overwrites of
// targetID of both types: role and user IDs are snowflakes from one
// generator, so in practice there is only one.
func (s *Store) DeleteOverwrite(ctx context.Context, serverID, channelID, targetID uint64) error {
	const op = "role/cql.DeleteOverwrite"
	types, err := s.ids(ctx, 2, stmtOverwriteTypes, channelID, targetID)
	if err != nil {
		return wrap(op, err)
	}
	if len(types) == 0 {
		return guildhall.E(op, guildhall.NotFound, "unknown overwrite")
	}
	return wrap(op, s.write(ctx, serverID, stmtDeleteOverwrite, channelID, targetID))
}

// ClearMember implements role.Store: one partition deletion.
func (s *Store) ClearMember(ctx context.Context, serverID, userID uint64) error {
	const op = "role/cql.ClearMember"
	return wrap(op, s.write(ctx, serverID, stmtClearMember, serverID, userID))
}

// DeleteChannel implements role.Store: one partition deletion.
func (s *Store) DeleteChannel(ctx context.Context, serverID, channelID uint64) error {
	const op = "role/cql.DeleteChannel"
	return wrap(op, s.write(ctx, serverID, stmtDeleteOverwrites, channelID))
}

// Bump implements role.Store.
func (s *Store) Bump(ctx context.Context, serverID uint64) error {
	const op = "role/cql.Bump"
	if err := ctx.Err(); err != nil {
		return wrap(op, err)
	}
	return wrap(op, s.bump(ctx, serverID))
}

// Version implements role.Store. A server never written to is at 0.
func (s *Store) Version(ctx context.Context, serverID uint64) (uint64, error) {
	const op = "role/cql.Version"
	var v int64
	err := s.session.ContextQuery(ctx, stmtVersion, nil).Bind(serverID).GetRelease(&v)
	switch {
	case errors.Is(err, gocql.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, wrap(op, err)
	}
	return uint64(v), nil
}

// ids runs a query whose rows are one bigint (or tinyint) column and
// returns them, at most limit of them if limit > 0.
func (s *Store) ids(ctx context.Context, limit int, stmt string, args ...any) ([]uint64, error) {
	q := s.session.ContextQuery(ctx, stmt, nil).Bind(args...)
	if limit > 0 {
		q.PageSize(limit)
	}
	iter := q.Iter()
	ids := []uint64{}
	var id uint64
	for (limit <= 0 || len(ids) < limit) && iter.Scan(&id) {
		ids = append(ids, id)
	}
	return ids, iter.Close()
}

// write runs one idempotent data statement, then bumps the server's
// version. A write whose context is already done sends nothing.
func (s *Store) write(ctx context.Context, serverID uint64, stmt string, args ...any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q := s.session.ContextQuery(ctx, stmt, nil).Bind(args...)
	q.Idempotent(true)
	return s.bumpAfter(ctx, serverID, q.ExecRelease())
}

// bumpAfter bumps the server's version after a data write that returned
// err, and returns err joined with the bump's error. It bumps even when
// err is not nil: a write that timed out may have been applied, and a
// change without a bump would leave caches stale.
func (s *Store) bumpAfter(ctx context.Context, serverID uint64, err error) error {
	return errors.Join(err, s.bump(ctx, serverID))
}

// bump adds one to the server's version. It goes on if ctx is cancelled,
// since the data write it follows is done, and retries: a counter update
// that timed out may have been counted, and counting it twice is harmless,
// while not counting it at all would leave caches stale.
func (s *Store) bump(ctx context.Context, serverID uint64) error {
	ctx = context.WithoutCancel(ctx)
	var err error
	backoff := bumpBackoff
	for attempt := range bumpAttempts {
		if attempt > 0 {
			time.Sleep(backoff)
			backoff *= 2
		}
		err = s.session.ContextQuery(ctx, stmtBump, nil).Bind(serverID).ExecRelease()
		if err == nil {
			return nil
		}
	}
	return err
}
