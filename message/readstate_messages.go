package message

import (
	"context"

	guildhall "github.com/guildhall/guildhall"
)

// recentWindow is how many of a channel's newest cached messages
// CachedMessages looks through for one the store does not have yet.
const recentWindow = 200

// CachedMessages is ReadMessages over a Store whose writes lag behind
// sends (the persister moves them from the durable log) and the Cache
// that holds them meanwhile: a message the store does not have yet is
// looked for among the channel's newest cached ones, and a channel's last
// seq is the higher of the store's and the cache's. Wire it into
// ReadStatesConfig.Messages so a just-sent message can be acked at once.
type CachedMessages struct {
	Store interface {
		Get(ctx context.Context, channelID, id uint64) (Message, error)
		Last(ctx context.Context, channelID uint64) (seq, id uint64, err error)
	}
	Cache interface {
		Latest(ctx context.Context, channelID uint64, limit int) (msgs []Message, complete bool, err error)
	}
}

var _ ReadMessages = CachedMessages{}

// Get implements ReadMessages.
func (c CachedMessages) Get(ctx context.Context, channelID, id uint64) (Message, error) {
	m, err := c.Store.Get(ctx, channelID, id)
	if guildhall.KindOf(err) != guildhall.NotFound || c.Cache == nil {
		return m, err
	}
	recent, _, cerr := c.Cache.Latest(ctx, channelID, recentWindow)
	if cerr != nil {
		return Message{}, err // the store's NotFound stands
	}
	for _, r := range recent {
		if r.ID == id {
			return r, nil
		}
	}
	return Message{}, err
}

// Last implements ReadMessages.
func (c CachedMessages) Last(ctx context.Context, channelID uint64) (uint64, uint64, error) {
	seq, id, err := c.Store.Last(ctx, channelID)
	if err != nil || c.Cache == nil {
		return seq, id, err
	}
	if recent, _, cerr := c.Cache.Latest(ctx, channelID, 1); cerr == nil && len(recent) == 1 && recent[0].Seq > seq {
		return recent[0].Seq, recent[0].ID, nil
	}
	return seq, id, nil
}
