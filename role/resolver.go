package role

import (
	"context"
	"strings"
	"sync"

	guildhall "github.com/guildhall/guildhall"
)

// Directory is what the resolver needs to know of servers, channels and
// membership (the member domain).
type Directory interface {
	// ServerOwner returns the owner of a server; NotFound if none.
	ServerOwner(ctx context.Context, serverID uint64) (uint64, error)
	// ChannelRef returns where a channel sits; NotFound if none.
	ChannelRef(ctx context.Context, channelID uint64) (ChannelRef, error)
	// IsMember reports whether userID is a member of serverID.
	IsMember(ctx context.Context, serverID, userID uint64) (bool, error)
}

// ChannelRef is what permissions need to know of a channel.
type ChannelRef struct {
	ID       uint64
	ServerID uint64
	ParentID uint64 // category, 0 for none
	// Synced channels take their category's overwrites instead of their own.
	Synced bool
	// Category channels hold other channels, never messages.
	Category bool
}

// maxCached bounds each cache; a full cache is emptied and refilled.
const maxCached = 1 << 16

// Resolver computes a member's permissions from the stores. Roles,
// overwrites and member role lists are cached per server version: any
// role or overwrite write bumps the version (Store contract), so a cached
// entry is used only while nothing it depends on changed. Membership is
// read every time, so a kicked member loses access at once.
type Resolver struct {
	store Store
	dir   Directory

	mu     sync.Mutex
	roles  map[uint64]cachedRoles      // by server
	over   map[uint64]cachedOverwrites // by channel
	mroles map[[2]uint64]cachedIDs     // by (server, user)
}

type cachedRoles struct {
	version uint64
	owner   uint64
	byID    map[uint64]Role
}

type cachedOverwrites struct {
	version uint64
	list    []Overwrite
}

type cachedIDs struct {
	version uint64
	ids     []uint64
}

// NewResolver returns a Resolver over store and dir.
func NewResolver(store Store, dir Directory) *Resolver {
	return &Resolver{
		store: store, dir: dir,
		roles:  make(map[uint64]cachedRoles),
		over:   make(map[uint64]cachedOverwrites),
		mroles: make(map[[2]uint64]cachedIDs),
	}
}

// Everyone is the @everyone role of a server that never stored one.
func Everyone(serverID uint64) Role {
	return Role{ID: serverID, Name: "@everyone", Permissions: DefaultEveryone}
}

// ServerInput returns the computation input of userID in serverID
// (without overwrites). A non-member gets NotFound, as if the server did
// not exist.
func (r *Resolver) ServerInput(ctx context.Context, userID, serverID uint64) (Input, error) {
	in, _, err := r.serverInput(ctx, userID, serverID)
	return in, err
}

func (r *Resolver) serverInput(ctx context.Context, userID, serverID uint64) (Input, uint64, error) {
	const op = "role.ServerInput"
	ok, err := r.dir.IsMember(ctx, serverID, userID)
	if err != nil {
		return Input{}, 0, guildhall.Wrap(op, err)
	}
	if !ok {
		return Input{}, 0, guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	version, err := r.store.Version(ctx, serverID)
	if err != nil {
		return Input{}, 0, guildhall.Wrap(op, err)
	}
	roles, err := r.serverRoles(ctx, serverID, version)
	if err != nil {
		return Input{}, 0, guildhall.Wrap(op, err)
	}
	ids, err := r.memberRoles(ctx, serverID, userID, version)
	if err != nil {
		return Input{}, 0, guildhall.Wrap(op, err)
	}
	in := Input{ServerID: serverID, OwnerID: roles.owner, UserID: userID, Everyone: roles.byID[serverID].Permissions}
	for _, id := range ids {
		if role, ok := roles.byID[id]; ok && id != serverID { // a deleted role is dropped here
			in.Roles = append(in.Roles, role)
		}
	}
	return in, version, nil
}

// ChannelInput returns the input of userID in channelID and its server.
// A channel of a server the user is not in is NotFound.
func (r *Resolver) ChannelInput(ctx context.Context, userID, channelID uint64) (Input, error) {
	in, _, _, err := r.channelInput(ctx, userID, channelID)
	return in, err
}

func (r *Resolver) channelInput(ctx context.Context, userID, channelID uint64) (Input, uint64, ChannelRef, error) {
	const op = "role.ChannelInput"
	ch, err := r.dir.ChannelRef(ctx, channelID)
	if err != nil {
		return Input{}, 0, ChannelRef{}, guildhall.Wrap(op, err)
	}
	in, version, err := r.serverInput(ctx, userID, ch.ServerID)
	if guildhall.KindOf(err) == guildhall.NotFound {
		return Input{}, 0, ChannelRef{}, guildhall.E(op, guildhall.NotFound, "unknown channel")
	}
	if err != nil {
		return Input{}, 0, ChannelRef{}, guildhall.Wrap(op, err)
	}
	source := channelID
	if ch.Synced && ch.ParentID != 0 {
		source = ch.ParentID
	}
	if in.Overwrites, err = r.overwrites(ctx, source, version); err != nil {
		return Input{}, 0, ChannelRef{}, guildhall.Wrap(op, err)
	}
	return in, version, ch, nil
}

// ChannelsPermissions computes userID's permissions in several channels of
// one server, reading membership and roles once. A non-member gets
// NotFound.
func (r *Resolver) ChannelsPermissions(ctx context.Context, userID, serverID uint64, chans []ChannelRef) ([]Permissions, error) {
	const op = "role.ChannelsPermissions"
	in, version, err := r.serverInput(ctx, userID, serverID)
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	out := make([]Permissions, len(chans))
	for i, ch := range chans {
		source := ch.ID
		if ch.Synced && ch.ParentID != 0 {
			source = ch.ParentID
		}
		if in.Overwrites, err = r.overwrites(ctx, source, version); err != nil {
			return nil, guildhall.Wrap(op, err)
		}
		out[i] = Compute(in)
	}
	return out, nil
}

// Server returns userID's server-level permissions.
func (r *Resolver) Server(ctx context.Context, userID, serverID uint64) (Permissions, error) {
	in, err := r.ServerInput(ctx, userID, serverID)
	if err != nil {
		return 0, err
	}
	return Base(in), nil
}

// Channel returns userID's permissions in channelID and the channel's server.
func (r *Resolver) Channel(ctx context.Context, userID, channelID uint64) (Permissions, uint64, error) {
	in, err := r.ChannelInput(ctx, userID, channelID)
	if err != nil {
		return 0, 0, err
	}
	return Compute(in), in.ServerID, nil
}

// Require checks that userID holds need in channelID and returns the
// channel's server. A channel the user cannot view is NotFound (its
// existence is not revealed); a missing permission is Forbidden.
func (r *Resolver) Require(ctx context.Context, userID, channelID uint64, need Permissions) (uint64, error) {
	serverID, _, err := r.RequireAt(ctx, userID, channelID, need)
	return serverID, err
}

// RequireAt is Require that also returns the server's permission version
// the decision was made at: the decision stays true until the version
// changes.
func (r *Resolver) RequireAt(ctx context.Context, userID, channelID uint64, need Permissions) (serverID, version uint64, err error) {
	const op = "role.Require"
	in, version, ref, err := r.channelInput(ctx, userID, channelID)
	if err != nil {
		return 0, 0, guildhall.Wrap(op, err)
	}
	p := Compute(in)
	if !p.Has(ViewChannel) {
		return 0, 0, guildhall.E(op, guildhall.NotFound, "unknown channel")
	}
	if ref.Category && need&(SendMessages|ReadMessageHistory|ManageMessages) != 0 {
		return 0, 0, guildhall.E(op, guildhall.Invalid, "a category holds channels, not messages")
	}
	if !p.Has(need) {
		return 0, 0, guildhall.E(op, guildhall.Forbidden, "missing permission %s", strings.Join((need&^p).Names(), ", "))
	}
	return in.ServerID, version, nil
}

// CanView reports whether userID may view channelID, at which version.
func (r *Resolver) CanView(ctx context.Context, userID, channelID uint64) (serverID, version uint64, err error) {
	return r.RequireAt(ctx, userID, channelID, ViewChannel)
}

// CanRead: view the channel and read its history.
func (r *Resolver) CanRead(ctx context.Context, userID, channelID uint64) (uint64, error) {
	return r.Require(ctx, userID, channelID, ViewChannel|ReadMessageHistory)
}

// CanManageMessages: view the channel and manage (delete) others' messages.
func (r *Resolver) CanManageMessages(ctx context.Context, userID, channelID uint64) (uint64, error) {
	return r.Require(ctx, userID, channelID, ViewChannel|ManageMessages)
}

// CanSend: view the channel and send messages in it.
func (r *Resolver) CanSend(ctx context.Context, userID, channelID uint64) (uint64, error) {
	return r.Require(ctx, userID, channelID, ViewChannel|SendMessages)
}

func (r *Resolver) overwrites(ctx context.Context, channelID, version uint64) ([]Overwrite, error) {
	r.mu.Lock()
	c, ok := r.over[channelID]
	r.mu.Unlock()
	if ok && c.version == version {
		return c.list, nil
	}
	list, err := r.store.Overwrites(ctx, channelID)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if len(r.over) >= maxCached {
		clear(r.over)
	}
	r.over[channelID] = cachedOverwrites{version: version, list: list}
	r.mu.Unlock()
	return list, nil
}

func (r *Resolver) serverRoles(ctx context.Context, serverID, version uint64) (cachedRoles, error) {
	r.mu.Lock()
	c, ok := r.roles[serverID]
	r.mu.Unlock()
	if ok && c.version == version {
		return c, nil
	}
	owner, err := r.dir.ServerOwner(ctx, serverID)
	if err != nil {
		return cachedRoles{}, err
	}
	list, err := r.store.Roles(ctx, serverID)
	if err != nil {
		return cachedRoles{}, err
	}
	c = cachedRoles{version: version, owner: owner, byID: make(map[uint64]Role, len(list)+1)}
	c.byID[serverID] = Everyone(serverID)
	for _, role := range list {
		c.byID[role.ID] = role
	}
	r.mu.Lock()
	if len(r.roles) >= maxCached {
		clear(r.roles)
	}
	r.roles[serverID] = c
	r.mu.Unlock()
	return c, nil
}

func (r *Resolver) memberRoles(ctx context.Context, serverID, userID, version uint64) ([]uint64, error) {
	key := [2]uint64{serverID, userID}
	r.mu.Lock()
	c, ok := r.mroles[key]
	r.mu.Unlock()
	if ok && c.version == version {
		return c.ids, nil
	}
	ids, err := r.store.MemberRoles(ctx, serverID, userID)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if len(r.mroles) >= maxCached {
		clear(r.mroles)
	}
	r.mroles[key] = cachedIDs{version: version, ids: ids}
	r.mu.Unlock()
	return ids, nil
}

// CanMentionEveryone reports whether userID may mention @everyone (and
// @here) in channelID: MENTION_EVERYONE there, besides what sending needs.
// A channel the user cannot view is NotFound.
func (r *Resolver) CanMentionEveryone(ctx context.Context, userID, channelID uint64) (bool, error) {
	_, err := r.Require(ctx, userID, channelID, ViewChannel|SendMessages|MentionEveryone)
	if err != nil && guildhall.KindOf(err) == guildhall.Forbidden {
		return false, nil
	}
	return err == nil, err
}
