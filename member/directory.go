package member

import (
	"context"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/role"
)

// Directory answers the role resolver's questions about servers, channels
// and membership straight from a Store.
type Directory struct{ store Store }

// NewDirectory returns a Directory over store.
func NewDirectory(store Store) Directory { return Directory{store: store} }

var _ role.Directory = Directory{}

// ServerOwner implements role.Directory.
func (d Directory) ServerOwner(ctx context.Context, serverID uint64) (uint64, error) {
	s, err := d.store.Server(ctx, serverID)
	return s.OwnerID, err
}

// ChannelRef implements role.Directory.
func (d Directory) ChannelRef(ctx context.Context, channelID uint64) (role.ChannelRef, error) {
	c, err := d.store.Channel(ctx, channelID)
	if err != nil {
		return role.ChannelRef{}, err
	}
	return role.ChannelRef{ID: c.ID, ServerID: c.ServerID, ParentID: c.ParentID, Synced: c.Synced, Category: c.Type == ChannelCategory}, nil
}

// IsMember implements role.Directory.
func (d Directory) IsMember(ctx context.Context, serverID, userID uint64) (bool, error) {
	_, err := d.store.Member(ctx, serverID, userID)
	switch {
	case err == nil:
		return true, nil
	case guildhall.KindOf(err) == guildhall.NotFound:
		return false, nil
	default:
		return false, err
	}
}
