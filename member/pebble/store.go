package pebble

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"sync"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/internal/pebblekv"
	"github.com/guildhall/guildhall/member"
)

// maxPage caps a member or ban page whatever the caller asked for.
const maxPage = 1000

// Store is a member.Store on a Pebble database.
type Store struct {
	db *pebbledb.DB

	// mu serializes writes, each from its first check to its commit.
	mu sync.Mutex
}

var _ member.Store = (*Store)(nil)

// New returns a Store that keeps its data in db under the "m/" prefix. The
// caller opens and closes db.
func New(db *pebbledb.DB) *Store {
	return &Store{db: db}
}

// CreateUser implements member.Store.
func (s *Store) CreateUser(_ context.Context, u member.User, passwordHash []byte) error {
	const op = "member/pebble.CreateUser"
	s.mu.Lock()
	defer s.mu.Unlock()
	nameKey := strKey(pUsername, fold(u.Username))
	if ok, err := pebblekv.Has(s.db, nameKey); err != nil {
		return guildhall.Wrap(op, err)
	} else if ok {
		return guildhall.E(op, guildhall.Conflict, "username taken")
	}
	userKey := key(pUser, u.ID)
	if ok, err := pebblekv.Has(s.db, userKey); err != nil {
		return guildhall.Wrap(op, err)
	} else if ok {
		return guildhall.E(op, guildhall.Conflict, "user ID taken")
	}
	b := s.db.NewBatch()
	defer b.Close()
	set(b, userKey, encodeUser(u, passwordHash))
	set(b, nameKey, key("", u.ID))
	return guildhall.Wrap(op, b.Commit(pebbledb.Sync))
}

// User implements member.Store.
func (s *Store) User(_ context.Context, id uint64) (member.User, error) {
	const op = "member/pebble.User"
	r, ok, err := pebblekv.Get(s.db, key(pUser, id), decodeUser(id))
	if err != nil {
		return member.User{}, guildhall.Wrap(op, err)
	}
	if !ok {
		return member.User{}, guildhall.E(op, guildhall.NotFound, "unknown user")
	}
	return r.user, nil
}

// UserByName implements member.Store.
func (s *Store) UserByName(_ context.Context, username string) (member.User, []byte, error) {
	const op = "member/pebble.UserByName"
	snap := s.db.NewSnapshot()
	defer snap.Close()
	id, ok, err := pebblekv.Get(snap, strKey(pUsername, fold(username)), pebblekv.DecodeUint64)
	if err != nil {
		return member.User{}, nil, guildhall.Wrap(op, err)
	}
	if !ok {
		return member.User{}, nil, guildhall.E(op, guildhall.NotFound, "unknown user")
	}
	r, ok, err := pebblekv.Get(snap, key(pUser, id), decodeUser(id))
	if err != nil {
		return member.User{}, nil, guildhall.Wrap(op, err)
	}
	if !ok {
		return member.User{}, nil, guildhall.Wrap(op, errors.New("username index points at a missing user"))
	}
	return r.user, r.passwordHash, nil
}

// CreateToken implements member.Store. A hash that is already stored is a
// Conflict.
func (s *Store) CreateToken(_ context.Context, t member.Token) error {
	const op = "member/pebble.CreateToken"
	s.mu.Lock()
	defer s.mu.Unlock()
	k := append([]byte(pToken), t.Hash[:]...)
	if ok, err := pebblekv.Has(s.db, k); err != nil {
		return guildhall.Wrap(op, err)
	} else if ok {
		return guildhall.E(op, guildhall.Conflict, "token exists")
	}
	return guildhall.Wrap(op, s.db.Set(k, encodeToken(t), pebbledb.Sync))
}

// Token implements member.Store.
func (s *Store) Token(_ context.Context, hash [32]byte) (member.Token, error) {
	const op = "member/pebble.Token"
	t, ok, err := pebblekv.Get(s.db, append([]byte(pToken), hash[:]...), decodeToken(hash))
	if err != nil {
		return member.Token{}, guildhall.Wrap(op, err)
	}
	if !ok {
		return member.Token{}, guildhall.E(op, guildhall.NotFound, "unknown token")
	}
	return t, nil
}

// DeleteToken implements member.Store. An unknown hash is NotFound.
func (s *Store) DeleteToken(_ context.Context, hash [32]byte) error {
	const op = "member/pebble.DeleteToken"
	s.mu.Lock()
	defer s.mu.Unlock()
	k := append([]byte(pToken), hash[:]...)
	if ok, err := pebblekv.Has(s.db, k); err != nil {
		return guildhall.Wrap(op, err)
	} else if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown token")
	}
	return guildhall.Wrap(op, s.db.Delete(k, pebbledb.Sync))
}

// CreateServer implements member.Store. Every channel and the owner must
// belong to s (Invalid otherwise) and the owner must be s.OwnerID; a server
// or channel ID that is already stored is a Conflict.
func (s *Store) CreateServer(_ context.Context, srv member.Server, channels []member.Channel, owner member.Member) error {
	const op = "member/pebble.CreateServer"
	if owner.ServerID != srv.ID || owner.UserID != srv.OwnerID {
		return guildhall.E(op, guildhall.Invalid, "owner membership does not match the server")
	}
	seen := make(map[uint64]bool, len(channels))
	for _, c := range channels {
		if c.ServerID != srv.ID {
			return guildhall.E(op, guildhall.Invalid, "channel %d belongs to another server", c.ID)
		}
		if seen[c.ID] {
			return guildhall.E(op, guildhall.Invalid, "channel ID %d given twice", c.ID)
		}
		seen[c.ID] = true
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, err := pebblekv.Has(s.db, key(pServer, srv.ID)); err != nil {
		return guildhall.Wrap(op, err)
	} else if ok {
		return guildhall.E(op, guildhall.Conflict, "server ID taken")
	}
	for _, c := range channels {
		if ok, err := pebblekv.Has(s.db, key(pChannel, c.ID)); err != nil {
			return guildhall.Wrap(op, err)
		} else if ok {
			return guildhall.E(op, guildhall.Conflict, "channel ID %d taken", c.ID)
		}
	}
	b := s.db.NewBatch()
	defer b.Close()
	set(b, key(pServer, srv.ID), encodeServer(srv))
	for _, c := range channels {
		putChannel(b, c)
	}
	putMember(b, owner)
	set(b, key(pMemberCount, srv.ID), encodeCount(1))
	return guildhall.Wrap(op, b.Commit(pebbledb.Sync))
}

// Server implements member.Store.
func (s *Store) Server(_ context.Context, id uint64) (member.Server, error) {
	const op = "member/pebble.Server"
	srv, ok, err := pebblekv.Get(s.db, key(pServer, id), decodeServer(id))
	if err != nil {
		return member.Server{}, guildhall.Wrap(op, err)
	}
	if !ok {
		return member.Server{}, guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	return srv, nil
}

// UpdateServer implements member.Store. Only the name changes; the owner
// and creation time stay as stored.
func (s *Store) UpdateServer(_ context.Context, srv member.Server) error {
	const op = "member/pebble.UpdateServer"
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok, err := pebblekv.Get(s.db, key(pServer, srv.ID), decodeServer(srv.ID))
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	old.Name = srv.Name
	return guildhall.Wrap(op, s.db.Set(key(pServer, srv.ID), encodeServer(old), pebbledb.Sync))
}

// ServersOf implements member.Store. An unknown user is NotFound.
func (s *Store) ServersOf(_ context.Context, userID uint64) ([]member.Server, error) {
	const op = "member/pebble.ServersOf"
	snap := s.db.NewSnapshot()
	defer snap.Close()
	if ok, err := pebblekv.Has(snap, key(pUser, userID)); err != nil {
		return nil, guildhall.Wrap(op, err)
	} else if !ok {
		return nil, guildhall.E(op, guildhall.NotFound, "unknown user")
	}
	lower := key(pUserServer, userID)
	var ids []uint64
	err := pebblekv.Scan(snap, lower, nil, func(k, _ []byte) (bool, error) {
		ids = append(ids, pebblekv.LastID(k))
		return true, nil
	})
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	servers := make([]member.Server, 0, len(ids))
	for _, id := range ids {
		srv, ok, err := pebblekv.Get(snap, key(pServer, id), decodeServer(id))
		if err != nil {
			return nil, guildhall.Wrap(op, err)
		}
		if ok { // the index and the record go together; skip rather than fail the whole list
			servers = append(servers, srv)
		}
	}
	return servers, nil
}

// CreateChannel implements member.Store. An unknown server is NotFound; a
// channel ID that is already stored is a Conflict.
func (s *Store) CreateChannel(_ context.Context, c member.Channel) error {
	const op = "member/pebble.CreateChannel"
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, err := pebblekv.Has(s.db, key(pServer, c.ServerID)); err != nil {
		return guildhall.Wrap(op, err)
	} else if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	if ok, err := pebblekv.Has(s.db, key(pChannel, c.ID)); err != nil {
		return guildhall.Wrap(op, err)
	} else if ok {
		return guildhall.E(op, guildhall.Conflict, "channel ID taken")
	}
	b := s.db.NewBatch()
	defer b.Close()
	putChannel(b, c)
	return guildhall.Wrap(op, b.Commit(pebbledb.Sync))
}

// Channel implements member.Store.
func (s *Store) Channel(_ context.Context, id uint64) (member.Channel, error) {
	const op = "member/pebble.Channel"
	c, ok, err := pebblekv.Get(s.db, key(pChannel, id), decodeChannel(id))
	if err != nil {
		return member.Channel{}, guildhall.Wrap(op, err)
	}
	if !ok {
		return member.Channel{}, guildhall.E(op, guildhall.NotFound, "unknown channel")
	}
	return c, nil
}

// Channels implements member.Store. An unknown server is NotFound.
func (s *Store) Channels(_ context.Context, serverID uint64) ([]member.Channel, error) {
	const op = "member/pebble.Channels"
	snap := s.db.NewSnapshot()
	defer snap.Close()
	channels, err := serverChannels(snap, serverID)
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	if len(channels) == 0 { // a server may have no channels left; tell that from no server
		if ok, err := pebblekv.Has(snap, key(pServer, serverID)); err != nil {
			return nil, guildhall.Wrap(op, err)
		} else if !ok {
			return nil, guildhall.E(op, guildhall.NotFound, "unknown server")
		}
	}
	slices.SortFunc(channels, func(a, b member.Channel) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.ID, b.ID))
	})
	return channels, nil
}

// UpdateChannel implements member.Store. It replaces the name, type,
// position, parent and synced; the server and creation time stay as stored.
func (s *Store) UpdateChannel(_ context.Context, c member.Channel) error {
	const op = "member/pebble.UpdateChannel"
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok, err := pebblekv.Get(s.db, key(pChannel, c.ID), decodeChannel(c.ID))
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown channel")
	}
	c.ServerID, c.CreatedAt = old.ServerID, old.CreatedAt
	b := s.db.NewBatch()
	defer b.Close()
	putChannel(b, c)
	return guildhall.Wrap(op, b.Commit(pebbledb.Sync))
}

// DeleteChannel implements member.Store. Channels that had the deleted one
// as their parent are left without a parent, in the same step.
func (s *Store) DeleteChannel(_ context.Context, id uint64) error {
	const op = "member/pebble.DeleteChannel"
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok, err := pebblekv.Get(s.db, key(pChannel, id), decodeChannel(id))
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown channel")
	}
	siblings, err := serverChannels(s.db, c.ServerID)
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	del(b, key(pChannel, id))
	del(b, key(pServerChan, c.ServerID, id))
	for _, child := range siblings {
		if child.ParentID == id && child.ID != id {
			child.ParentID = 0
			putChannel(b, child)
		}
	}
	return guildhall.Wrap(op, b.Commit(pebbledb.Sync))
}

// Member implements member.Store.
func (s *Store) Member(_ context.Context, serverID, userID uint64) (member.Member, error) {
	const op = "member/pebble.Member"
	m, ok, err := pebblekv.Get(s.db, key(pMember, serverID, userID), decodeMember(serverID, userID))
	if err != nil {
		return member.Member{}, guildhall.Wrap(op, err)
	}
	if !ok {
		return member.Member{}, guildhall.E(op, guildhall.NotFound, "unknown member")
	}
	return m, nil
}

// Members implements member.Store. An unknown server is NotFound. With a
// prefix, the After member's place in (name, ID) order is found from their
// membership or, if they left since, from their user record; an After
// that is neither is Invalid. Limit is clamped to 1..1000.
func (s *Store) Members(_ context.Context, serverID uint64, q member.MemberQuery) ([]member.Member, error) {
	const op = "member/pebble.Members"
	limit := min(max(q.Limit, 1), maxPage)
	snap := s.db.NewSnapshot()
	defer snap.Close()
	if ok, err := pebblekv.Has(snap, key(pServer, serverID)); err != nil {
		return nil, guildhall.Wrap(op, err)
	} else if !ok {
		return nil, guildhall.E(op, guildhall.NotFound, "unknown server")
	}

	var lower, start []byte
	switch {
	case q.Prefix == "":
		lower = key(pMember, serverID)
		if q.After == math.MaxUint64 {
			return []member.Member{}, nil
		}
		if q.After != 0 {
			start = key(pMember, serverID, q.After+1)
		}
	default:
		lower = appendEscaped(key(pMemberName, serverID), fold(q.Prefix))
		if q.After != 0 {
			name, err := cursorName(snap, serverID, q.After)
			if err != nil {
				return nil, guildhall.Wrap(op, err)
			}
			start = append(memberNameKey(serverID, name, q.After), 0) // just past the cursor
		}
	}
	members := make([]member.Member, 0, min(limit, 100))
	err := pebblekv.Scan(snap, lower, start, func(k, v []byte) (bool, error) {
		userID := pebblekv.LastID(k)
		m, err := decodeMember(serverID, userID)(v)
		if err != nil {
			return false, err
		}
		members = append(members, m)
		return len(members) < limit, nil
	})
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	return members, nil
}

// cursorName is the username that places userID in a name-ordered page.
func cursorName(r pebbledb.Reader, serverID, userID uint64) (string, error) {
	m, ok, err := pebblekv.Get(r, key(pMember, serverID, userID), decodeMember(serverID, userID))
	if err != nil {
		return "", err
	}
	if ok {
		return m.Username, nil
	}
	u, ok, err := pebblekv.Get(r, key(pUser, userID), decodeUser(userID))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", guildhall.E("", guildhall.Invalid, "unknown member cursor")
	}
	return u.user.Username, nil
}

// MemberCount implements member.Store. An unknown server is NotFound.
func (s *Store) MemberCount(_ context.Context, serverID uint64) (int, error) {
	const op = "member/pebble.MemberCount"
	n, ok, err := pebblekv.Get(s.db, key(pMemberCount, serverID), pebblekv.DecodeUint64)
	if err != nil {
		return 0, guildhall.Wrap(op, err)
	}
	if !ok {
		return 0, guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	return int(n), nil
}

// RemoveMember implements member.Store.
func (s *Store) RemoveMember(_ context.Context, serverID, userID uint64) error {
	const op = "member/pebble.RemoveMember"
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok, err := pebblekv.Get(s.db, key(pMember, serverID, userID), decodeMember(serverID, userID))
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown member")
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.dropMember(b, m); err != nil {
		return guildhall.Wrap(op, err)
	}
	return guildhall.Wrap(op, b.Commit(pebbledb.Sync))
}

// UpdateMember implements member.Store. Only the nickname changes; the
// username (and so the member's place in prefix search) and the join time
// stay as stored.
func (s *Store) UpdateMember(_ context.Context, m member.Member) error {
	const op = "member/pebble.UpdateMember"
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok, err := pebblekv.Get(s.db, key(pMember, m.ServerID, m.UserID), decodeMember(m.ServerID, m.UserID))
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown member")
	}
	old.Nick = m.Nick
	b := s.db.NewBatch()
	defer b.Close()
	putMember(b, old)
	return guildhall.Wrap(op, b.Commit(pebbledb.Sync))
}

// Ban implements member.Store. An unknown server is NotFound; the user is
// not looked up, so a user who never joined (or does not exist) can be
// banned. If the user is a member, the membership goes exactly as with
// RemoveMember, in the same batch as the ban record; that includes the
// owner, whose protection is the service's rule.
func (s *Store) Ban(_ context.Context, ban member.Ban) error {
	const op = "member/pebble.Ban"
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, err := pebblekv.Has(s.db, key(pServer, ban.ServerID)); err != nil {
		return guildhall.Wrap(op, err)
	} else if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	m, isMember, err := pebblekv.Get(s.db, key(pMember, ban.ServerID, ban.UserID), decodeMember(ban.ServerID, ban.UserID))
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	set(b, key(pBan, ban.ServerID, ban.UserID), encodeBan(ban))
	if isMember {
		if err := s.dropMember(b, m); err != nil {
			return guildhall.Wrap(op, err)
		}
	}
	return guildhall.Wrap(op, b.Commit(pebbledb.Sync))
}

// Unban implements member.Store. It only deletes the ban record: the user
// is not made a member again.
func (s *Store) Unban(_ context.Context, serverID, userID uint64) error {
	const op = "member/pebble.Unban"
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(pBan, serverID, userID)
	if ok, err := pebblekv.Has(s.db, k); err != nil {
		return guildhall.Wrap(op, err)
	} else if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown ban")
	}
	return guildhall.Wrap(op, s.db.Delete(k, pebbledb.Sync))
}

// BanOf implements member.Store.
func (s *Store) BanOf(_ context.Context, serverID, userID uint64) (member.Ban, error) {
	const op = "member/pebble.BanOf"
	ban, ok, err := pebblekv.Get(s.db, key(pBan, serverID, userID), decodeBan(serverID, userID))
	if err != nil {
		return member.Ban{}, guildhall.Wrap(op, err)
	}
	if !ok {
		return member.Ban{}, guildhall.E(op, guildhall.NotFound, "unknown ban")
	}
	return ban, nil
}

// Bans implements member.Store. An unknown server is NotFound. Limit is
// clamped to 1..1000.
func (s *Store) Bans(_ context.Context, serverID, after uint64, limit int) ([]member.Ban, error) {
	const op = "member/pebble.Bans"
	limit = min(max(limit, 1), maxPage)
	snap := s.db.NewSnapshot()
	defer snap.Close()
	if ok, err := pebblekv.Has(snap, key(pServer, serverID)); err != nil {
		return nil, guildhall.Wrap(op, err)
	} else if !ok {
		return nil, guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	if after == math.MaxUint64 {
		return []member.Ban{}, nil
	}
	lower := key(pBan, serverID)
	var start []byte
	if after != 0 {
		start = key(pBan, serverID, after+1)
	}
	bans := make([]member.Ban, 0, min(limit, 100))
	err := pebblekv.Scan(snap, lower, start, func(k, v []byte) (bool, error) {
		ban, err := decodeBan(serverID, pebblekv.LastID(k))(v)
		if err != nil {
			return false, err
		}
		bans = append(bans, ban)
		return len(bans) < limit, nil
	})
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	return bans, nil
}

// CreateInvite implements member.Store. An unknown server is NotFound; a
// code that is already stored is a Conflict.
func (s *Store) CreateInvite(_ context.Context, inv member.Invite) error {
	const op = "member/pebble.CreateInvite"
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, err := pebblekv.Has(s.db, key(pServer, inv.ServerID)); err != nil {
		return guildhall.Wrap(op, err)
	} else if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	k := strKey(pInvite, inv.Code)
	if ok, err := pebblekv.Has(s.db, k); err != nil {
		return guildhall.Wrap(op, err)
	} else if ok {
		return guildhall.E(op, guildhall.Conflict, "invite code taken")
	}
	return guildhall.Wrap(op, s.db.Set(k, encodeInvite(inv), pebbledb.Sync))
}

// Invite implements member.Store.
func (s *Store) Invite(_ context.Context, code string) (member.Invite, error) {
	const op = "member/pebble.Invite"
	inv, ok, err := pebblekv.Get(s.db, strKey(pInvite, code), decodeInvite(code))
	if err != nil {
		return member.Invite{}, guildhall.Wrap(op, err)
	}
	if !ok {
		return member.Invite{}, guildhall.E(op, guildhall.NotFound, "unknown invite")
	}
	return inv, nil
}

// JoinByInvite implements member.Store. m joins the invite's server
// whatever m.ServerID says. A banned user is refused before anything else
// is looked at, so the ban wins even over an existing membership (which
// Ban never leaves behind). A user who is already a member gets their
// membership back even if the invite has expired or is used up.
func (s *Store) JoinByInvite(_ context.Context, code string, m member.Member) (member.Member, error) {
	const op = "member/pebble.JoinByInvite"
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok, err := pebblekv.Get(s.db, strKey(pInvite, code), decodeInvite(code))
	if err != nil {
		return member.Member{}, guildhall.Wrap(op, err)
	}
	if !ok {
		return member.Member{}, guildhall.E(op, guildhall.NotFound, "unknown invite")
	}
	m.ServerID = inv.ServerID
	n, ok, err := pebblekv.Get(s.db, key(pMemberCount, m.ServerID), pebblekv.DecodeUint64)
	if err != nil {
		return member.Member{}, guildhall.Wrap(op, err)
	}
	if !ok {
		return member.Member{}, guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	if banned, err := pebblekv.Has(s.db, key(pBan, m.ServerID, m.UserID)); err != nil {
		return member.Member{}, guildhall.Wrap(op, err)
	} else if banned {
		return member.Member{}, guildhall.E(op, guildhall.Forbidden, "you are banned from this server")
	}
	old, ok, err := pebblekv.Get(s.db, key(pMember, m.ServerID, m.UserID), decodeMember(m.ServerID, m.UserID))
	if err != nil {
		return member.Member{}, guildhall.Wrap(op, err)
	}
	if ok {
		return old, nil
	}
	if inv.Expired(m.JoinedAt) {
		return member.Member{}, guildhall.E(op, guildhall.Forbidden, "invite expired")
	}
	inv.Uses++
	b := s.db.NewBatch()
	defer b.Close()
	putMember(b, m)
	set(b, key(pMemberCount, m.ServerID), encodeCount(n+1))
	set(b, strKey(pInvite, code), encodeInvite(inv))
	if err := b.Commit(pebbledb.Sync); err != nil {
		return member.Member{}, guildhall.Wrap(op, err)
	}
	return m, nil
}

// putChannel writes a channel record and its place in its server's list.
func putChannel(b *pebbledb.Batch, c member.Channel) {
	v := encodeChannel(c)
	set(b, key(pChannel, c.ID), v)
	set(b, key(pServerChan, c.ServerID, c.ID), v)
}

// putMember writes a membership and its indexes; the caller counts it.
func putMember(b *pebbledb.Batch, m member.Member) {
	v := encodeMember(m)
	set(b, key(pMember, m.ServerID, m.UserID), v)
	set(b, memberNameKey(m.ServerID, m.Username, m.UserID), v)
	set(b, key(pUserServer, m.UserID, m.ServerID), nil)
}

// dropMember adds to b the removal of m's membership, its indexes and its
// place in the member count. The caller holds s.mu.
func (s *Store) dropMember(b *pebbledb.Batch, m member.Member) error {
	n, _, err := pebblekv.Get(s.db, key(pMemberCount, m.ServerID), pebblekv.DecodeUint64)
	if err != nil {
		return err
	}
	del(b, key(pMember, m.ServerID, m.UserID))
	del(b, memberNameKey(m.ServerID, m.Username, m.UserID))
	del(b, key(pUserServer, m.UserID, m.ServerID))
	set(b, key(pMemberCount, m.ServerID), encodeCount(max(n, 1)-1))
	return nil
}

// serverChannels is a server's channels in ID order.
func serverChannels(r pebbledb.Reader, serverID uint64) ([]member.Channel, error) {
	lower := key(pServerChan, serverID)
	var channels []member.Channel
	err := pebblekv.Scan(r, lower, nil, func(k, v []byte) (bool, error) {
		c, err := decodeChannel(pebblekv.LastID(k))(v)
		channels = append(channels, c)
		return true, err
	})
	return channels, err
}

// set and del add to a batch. On a batch that is not indexed they cannot
// fail.
func set(b *pebbledb.Batch, k, v []byte) { _ = b.Set(k, v, nil) }
func del(b *pebbledb.Batch, k []byte)    { _ = b.Delete(k, nil) }
