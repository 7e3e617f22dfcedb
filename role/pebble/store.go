package pebble

import (
	"cmp"
	"context"
	"slices"
	"sync"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/internal/pebblekv"
	"github.com/guildhall/guildhall/role"
)

// Limits, checked on every write that adds a row. Replacing a role or an
// overwrite, or adding a role a member already holds, is always allowed.
const (
	maxRoles       = 250 // roles per server, @everyone included
	maxOverwrites  = 500 // overwrites per channel, both types together
	maxMemberRoles = 250 // role IDs per member, stale ones included
)

// Store is a role.Store on a Pebble database.
type Store struct {
	db *pebbledb.DB

	// mu serializes writes, each from its first read (existence, limit,
	// version) to its commit.
	mu sync.Mutex
}

var _ role.Store = (*Store)(nil)

// New returns a Store that keeps its data in db under the "r/" prefix. The
// caller opens and closes db.
func New(db *pebbledb.DB) *Store {
	return &Store{db: db}
}

// Roles implements role.Store. A server with no stored role has none, not
// NotFound.
func (s *Store) Roles(_ context.Context, serverID uint64) ([]role.Role, error) {
	const op = "role/pebble.Roles"
	lower := dir(pRole, serverID)
	roles := []role.Role{}
	err := pebblekv.Scan(s.db, lower, nil, func(k, v []byte) (bool, error) {
		r, err := decodeRole(pebblekv.LastID(k), v)
		roles = append(roles, r)
		return true, err
	})
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	slices.SortFunc(roles, func(a, b role.Role) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.ID, b.ID))
	})
	return roles, nil
}

// PutRole implements role.Store. A new role beyond the server's 250th is
// Invalid.
func (s *Store) PutRole(_ context.Context, serverID uint64, r role.Role) error {
	const op = "role/pebble.PutRole"
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(pRole, serverID, r.ID)
	if err := s.checkLimit(k, dir(pRole, serverID), maxRoles, "a server may have at most %d roles"); err != nil {
		return guildhall.Wrap(op, err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	set(b, k, encodeRole(r))
	return guildhall.Wrap(op, s.commit(b, serverID))
}

// DeleteRole implements role.Store. Member role lists and channel
// overwrites that name the role are left as they are.
func (s *Store) DeleteRole(_ context.Context, serverID, roleID uint64) error {
	const op = "role/pebble.DeleteRole"
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(pRole, serverID, roleID)
	if ok, err := pebblekv.Has(s.db, k); err != nil {
		return guildhall.Wrap(op, err)
	} else if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown role")
	}
	b := s.db.NewBatch()
	defer b.Close()
	del(b, k)
	return guildhall.Wrap(op, s.commit(b, serverID))
}

// MemberRoles implements role.Store, in role ID order. A member with no
// role, or no member at all, has none.
func (s *Store) MemberRoles(_ context.Context, serverID, userID uint64) ([]uint64, error) {
	const op = "role/pebble.MemberRoles"
	ids := []uint64{}
	err := pebblekv.Scan(s.db, dir(pMemberRole, serverID, userID), nil, func(k, _ []byte) (bool, error) {
		ids = append(ids, pebblekv.LastID(k))
		return true, nil
	})
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	return ids, nil
}

// AddMemberRole implements role.Store. Adding a role the member holds
// changes nothing but the version. The role is not checked: a role ID that
// was never stored is kept like a stale one. A member who holds 250 role
// IDs first loses the stale ones (roles no longer stored), in the same
// batch; if 250 remain, the new one is Invalid.
func (s *Store) AddMemberRole(_ context.Context, serverID, userID, roleID uint64) error {
	const op = "role/pebble.AddMemberRole"
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(pMemberRole, serverID, userID, roleID)
	held, err := pebblekv.Has(s.db, k)
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if !held {
		if err := s.makeRoom(b, serverID, userID); err != nil {
			return guildhall.Wrap(op, err)
		}
		set(b, k, nil)
	}
	return guildhall.Wrap(op, s.commit(b, serverID))
}

// makeRoom adds to b the deletion of a member's stale role IDs if they
// hold maxMemberRoles or more, and fails if that does not bring them under.
func (s *Store) makeRoom(b *pebbledb.Batch, serverID, userID uint64) error {
	lower := dir(pMemberRole, serverID, userID)
	n, err := pebblekv.Count(s.db, lower, maxMemberRoles)
	if err != nil || n < maxMemberRoles {
		return err
	}
	err = pebblekv.Scan(s.db, lower, nil, func(k, _ []byte) (bool, error) {
		ok, err := pebblekv.Has(s.db, key(pRole, serverID, pebblekv.LastID(k)))
		if err == nil && !ok {
			del(b, k)
			n--
		}
		return true, err
	})
	if err != nil {
		return err
	}
	if n >= maxMemberRoles {
		return guildhall.E("", guildhall.Invalid, "a member may hold at most %d roles", maxMemberRoles)
	}
	return nil
}

// RemoveMemberRole implements role.Store.
func (s *Store) RemoveMemberRole(_ context.Context, serverID, userID, roleID uint64) error {
	const op = "role/pebble.RemoveMemberRole"
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	del(b, key(pMemberRole, serverID, userID, roleID))
	return guildhall.Wrap(op, s.commit(b, serverID))
}

// Overwrites implements role.Store, in (type, ID) order: role overwrites
// first. A channel with none, or no channel at all, has none.
func (s *Store) Overwrites(_ context.Context, channelID uint64) ([]role.Overwrite, error) {
	const op = "role/pebble.Overwrites"
	ows := []role.Overwrite{}
	err := pebblekv.Scan(s.db, dir(pOverwrite, channelID), nil, func(k, v []byte) (bool, error) {
		typ, id, err := parseOverwriteKey(k)
		if err != nil {
			return false, err
		}
		ow, err := decodeOverwrite(typ, id, v)
		ows = append(ows, ow)
		return true, err
	})
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	return ows, nil
}

// PutOverwrite implements role.Store. A type other than role or member is
// Invalid, and so is a new overwrite beyond the channel's 500th.
func (s *Store) PutOverwrite(_ context.Context, serverID, channelID uint64, ow role.Overwrite) error {
	const op = "role/pebble.PutOverwrite"
	if !validType(ow.Type) {
		return guildhall.E(op, guildhall.Invalid, "unknown overwrite type %d", ow.Type)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := overwriteKey(channelID, ow.Type, ow.ID)
	if err := s.checkLimit(k, dir(pOverwrite, channelID), maxOverwrites, "a channel may have at most %d overwrites"); err != nil {
		return guildhall.Wrap(op, err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	set(b, k, encodeOverwrite(ow))
	return guildhall.Wrap(op, s.commit(b, serverID))
}

// DeleteOverwrite implements role.Store. It removes the overwrites of
// targetID of both types: role and user IDs are snowflakes from one
// generator, so in practice there is only one.
func (s *Store) DeleteOverwrite(_ context.Context, serverID, channelID, targetID uint64) error {
	const op = "role/pebble.DeleteOverwrite"
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	found := false
	for _, typ := range []role.OverwriteType{role.OverwriteRole, role.OverwriteMember} {
		k := overwriteKey(channelID, typ, targetID)
		ok, err := pebblekv.Has(s.db, k)
		if err != nil {
			return guildhall.Wrap(op, err)
		}
		if ok {
			del(b, k)
			found = true
		}
	}
	if !found {
		return guildhall.E(op, guildhall.NotFound, "unknown overwrite")
	}
	return guildhall.Wrap(op, s.commit(b, serverID))
}

// ClearMember implements role.Store.
func (s *Store) ClearMember(_ context.Context, serverID, userID uint64) error {
	const op = "role/pebble.ClearMember"
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	if err := pebblekv.Scan(s.db, dir(pMemberRole, serverID, userID), nil, func(k, _ []byte) (bool, error) {
		del(b, append([]byte(nil), k...))
		return true, nil
	}); err != nil {
		return guildhall.Wrap(op, err)
	}
	return guildhall.Wrap(op, s.commit(b, serverID))
}

// DeleteChannel implements role.Store.
func (s *Store) DeleteChannel(_ context.Context, serverID, channelID uint64) error {
	const op = "role/pebble.DeleteChannel"
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	if err := pebblekv.Scan(s.db, dir(pOverwrite, channelID), nil, func(k, _ []byte) (bool, error) {
		del(b, append([]byte(nil), k...))
		return true, nil
	}); err != nil {
		return guildhall.Wrap(op, err)
	}
	return guildhall.Wrap(op, s.commit(b, serverID))
}

// Bump implements role.Store.
func (s *Store) Bump(_ context.Context, serverID uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	return guildhall.Wrap("role/pebble.Bump", s.commit(b, serverID))
}

// Version implements role.Store. A server never written to is at 0.
func (s *Store) Version(_ context.Context, serverID uint64) (uint64, error) {
	const op = "role/pebble.Version"
	v, _, err := pebblekv.Get(s.db, key(pVersion, serverID), pebblekv.DecodeUint64)
	if err != nil {
		return 0, guildhall.Wrap(op, err)
	}
	return v, nil
}

// checkLimit fails with Invalid, saying msg of limit, if k is not stored
// and the keys under lower number limit or more. The caller holds s.mu.
func (s *Store) checkLimit(k, lower []byte, limit int, msg string) error {
	if ok, err := pebblekv.Has(s.db, k); err != nil || ok {
		return err
	}
	n, err := pebblekv.Count(s.db, lower, limit)
	if err != nil {
		return err
	}
	if n >= limit {
		return guildhall.E("", guildhall.Invalid, msg, limit)
	}
	return nil
}

// commit adds the bump of the server's version to b and commits it with
// Sync. The caller holds s.mu, so no other write reads the same version.
func (s *Store) commit(b *pebbledb.Batch, serverID uint64) error {
	k := key(pVersion, serverID)
	v, _, err := pebblekv.Get(s.db, k, pebblekv.DecodeUint64)
	if err != nil {
		return err
	}
	set(b, k, pebblekv.EncodeUint64(v+1))
	return b.Commit(pebbledb.Sync)
}

// set and del add to a batch. On a batch that is not indexed they cannot
// fail.
func set(b *pebbledb.Batch, k, v []byte) { _ = b.Set(k, v, nil) }
func del(b *pebbledb.Batch, k []byte)    { _ = b.Delete(k, nil) }
