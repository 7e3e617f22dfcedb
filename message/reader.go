package message

import (
	"context"

	guildhall "github.com/guildhall/guildhall"
)

// Reader reads history with permission checks. It needs only the shared
// store, so any role that serves history (the REST edge) can have one
// without running the message service.
type Reader struct {
	store  Store
	access Access
}

// NewReader returns a Reader over store.
func NewReader(store Store, access Access) *Reader { return &Reader{store: store, access: access} }

// History returns a page of a channel's messages, newest first.
func (r *Reader) History(ctx context.Context, actorID, channelID uint64, q Query) ([]Message, error) {
	const op = "message.History"
	if q.Limit == 0 {
		q.Limit = DefaultPage
	}
	if q.Limit < 1 || q.Limit > MaxPage {
		return nil, guildhall.E(op, guildhall.Invalid, "limit must be 1 to %d", MaxPage)
	}
	set := 0
	for _, c := range []uint64{q.Before, q.After, q.Around} {
		if c != 0 {
			set++
		}
	}
	if set > 1 {
		return nil, guildhall.E(op, guildhall.Invalid, "give at most one of before, after and around")
	}
	if _, err := r.access.CanRead(ctx, actorID, channelID); err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	list, err := r.store.List(ctx, channelID, q)
	return list, guildhall.Wrap(op, err)
}
