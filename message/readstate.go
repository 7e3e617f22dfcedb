package message

import (
	"context"
	"log/slog"
	"math"

	"github.com/prometheus/client_golang/prometheus"

	guildhall "github.com/guildhall/guildhall"
)

// Read states and unread counters (DESIGN.md §4 "History and unread").
//
// A user's read state in a channel is a position: the seq (and ID) of the
// newest message they acked. Because a channel's seqs have no gaps, the
// unread count is the channel's last seq minus that position, so a new
// message costs one counter update (the channel's head) whatever the
// channel's size, and reading costs one update for the reader. Mentions are
// kept as sets of seqs: per (user, channel) for direct mentions, per
// channel for @everyone and per (channel, role) for role mentions, so a
// mention of @everyone or of a role costs one set insert and never touches
// a member. A user's mention count in a channel is the number of distinct
// seqs above their position in their own set, the @everyone set and the
// sets of the roles they hold.
//
// Positions are kept twice: durably (ReadStateStore: message/pebble,
// message/cql) and in the counters (UnreadCounters: message/redis,
// message/inmem), which are a cache: positions missing there are filled
// from the durable store, a missing head from Store.Last. Mention sets live
// in the counters only, bounded in size and age (see the implementations).

// Limits of the read-state API, documented in docs/api.md.
const (
	// MaxReadStates bounds the channels one List call may ask for.
	MaxReadStates = 1000
)

// ReadState is a user's position in one channel and what is unread after
// it.
type ReadState struct {
	ChannelID uint64
	ServerID  uint64
	// LastReadID and LastReadSeq are the newest message the user acked;
	// zero if they never acked one in the channel.
	LastReadID  uint64
	LastReadSeq uint64
	// LastSeq is the seq of the channel's newest message (0 if none).
	LastSeq uint64
	// Unread is LastSeq - LastReadSeq: messages after the position,
	// including deleted ones and the user's own.
	Unread uint64
	// Mentions counts the messages after the position that mention the
	// user, directly, through a role they hold, or with @everyone; a
	// message counts once however many of those it holds.
	Mentions uint64
}

// ReadPosition is where a user stands in one channel: the seq and ID of
// the newest message they acked.
type ReadPosition struct {
	ChannelID uint64
	Seq       uint64
	ID        uint64
}

// ReadStateStore keeps read positions durably. Implementations:
// message/pebble (embedded) and message/cql (distributed); the
// conformance suite is message/unreadtest.
type ReadStateStore interface {
	// PutReadPosition raises userID's position in p.ChannelID to p: a
	// position with a seq not above the stored one changes nothing (so a
	// late or repeated write never moves a user back). Seq and ID must be
	// non-zero.
	PutReadPosition(ctx context.Context, userID uint64, p ReadPosition) error
	// ReadPositions returns every stored position of userID, by channel ID.
	ReadPositions(ctx context.Context, userID uint64) ([]ReadPosition, error)
}

// UnreadCounters is the counters backend: each channel's head (last seq),
// users' read positions (a cache of the ReadStateStore) and the mention
// sets. Implementations: message/redis (distributed) and message/inmem
// (embedded); the conformance suite is message/unreadtest. Every method
// is atomic and safe for concurrent use, and its cost does not depend on
// how many members the channel's server has: nothing enumerates members.
type UnreadCounters interface {
	// Counters is Accepted, called by Send for every durable message: it
	// raises the channel's head to m.Seq, adds m.Seq to the mention set of
	// every user, role and @everyone m mentions, and raises the author's
	// own read position to the message (sending a message means having
	// read the channel up to it; that raise is not written to the durable
	// store). Idempotent.
	Counters
	// RaiseHead raises the channel's head to at least seq; it is how a
	// head lost by the cache is rebuilt from Store.Last.
	RaiseHead(ctx context.Context, channelID, seq uint64) error
	// Ack raises userID's position in p.ChannelID to p (a lower or equal
	// seq changes nothing) and returns the position held afterwards and
	// whether this call moved it.
	Ack(ctx context.Context, userID uint64, p ReadPosition) (ReadPosition, bool, error)
	// Fill merges positions read from the ReadStateStore (every position
	// of userID there is) into the cache, keeping the higher of the two
	// for each channel, and marks the user's positions complete: from
	// then on a channel with no position reads as never acked
	// (ReadKnown with a zero position) until the cache forgets the user.
	Fill(ctx context.Context, userID uint64, ps []ReadPosition) error
	// Load reads, for each query, the channel's head, userID's position
	// and the number of distinct seqs above that position in the mention
	// sets of userID, of @everyone and of the query's roles. The result
	// has one entry per query, in order.
	Load(ctx context.Context, userID uint64, qs []CounterQuery) ([]CounterState, error)
}

// CounterQuery asks UnreadCounters.Load about one channel.
type CounterQuery struct {
	ChannelID uint64
	// Roles the user holds in the channel's server, whose mention sets
	// count for them.
	Roles []uint64
}

// CounterState is what UnreadCounters.Load knows of one channel.
type CounterState struct {
	// Head is the channel's last seq; HeadKnown is false when the cache
	// does not have it (rebuild it from Store.Last).
	Head      uint64
	HeadKnown bool
	// Read is the user's position; ReadKnown is false when the cache has
	// no position for the channel and the user's positions were not
	// filled (call Fill from the ReadStateStore, then Load again).
	Read      ReadPosition
	ReadKnown bool
	// Mentions counts distinct mentioning seqs above Read.Seq (above 0
	// when the position is not known).
	Mentions uint64
}

// ReadMessages is what read states need of the message store: a message's
// seq by ID, and a channel's last seq to rebuild a lost head. Store has
// both, but messages reach it after a delay: wire Reader.Recent, which
// also looks in the log and the cache, so a just-sent message can be
// acked.
type ReadMessages interface {
	Get(ctx context.Context, channelID, id uint64) (Message, error)
	Last(ctx context.Context, channelID uint64) (seq, id uint64, err error)
}

// MemberRoles lists the role IDs a member holds in a server, for
// role-mention counts (role.Store has it). IDs of deleted roles may be
// listed; they do no harm.
type MemberRoles interface {
	MemberRoles(ctx context.Context, serverID, userID uint64) ([]uint64, error)
}

// ReadNotifier hears about a user's read position moving, so the gateway
// can tell the user's other sessions. Concurrent acks may be heard in
// either order: a receiver keeps the state with the highest LastReadSeq.
type ReadNotifier interface {
	Acked(ctx context.Context, userID uint64, rs ReadState)
}

// ReadStatesConfig holds what ReadStates needs. Access, Messages, Roles,
// Counters and Store are required; the rest have defaults.
type ReadStatesConfig struct {
	Access   Access         // CanView decides who sees a channel
	Messages ReadMessages   // message seqs and channel heads
	Roles    MemberRoles    // member role IDs
	Counters UnreadCounters // heads, cached positions, mention sets
	Store    ReadStateStore // durable positions
	// Notifier hears about moved positions; nil for nobody. It is called
	// synchronously after a successful Ack, so it must not block: hand
	// the state off to a queue.
	Notifier ReadNotifier
	// Log receives what goes wrong off the request path; nil discards.
	Log *slog.Logger
	// Registerer receives the service's metrics (see NewReadStates); nil
	// registers none.
	Registerer prometheus.Registerer
}

// CheckReadPosition is the validation every ReadStateStore applies before
// writing: user, channel, seq and ID non-zero and below 2^63 (as every
// snowflake and seq is), so every backend stores them exactly. It returns
// an Invalid error.
func CheckReadPosition(userID uint64, p ReadPosition) error {
	const op = "message.CheckReadPosition"
	for _, v := range []uint64{userID, p.ChannelID, p.Seq, p.ID} {
		if v == 0 || v > math.MaxInt64 {
			return guildhall.E(op, guildhall.Invalid, "a read position needs a user, channel, seq and message ID in 1..2^63-1")
		}
	}
	return nil
}

// CheckCounted validates a message given to UnreadCounters.Accepted: a
// channel and a seq are needed (Invalid otherwise), and only the first
// MaxMentions users and roles it mentions are counted (Send refuses more;
// this keeps the counters' work bounded whatever they are given). It
// returns the mentions to count.
func CheckCounted(op string, m Message) (Mentions, error) {
	if m.ChannelID == 0 || m.Seq == 0 {
		return Mentions{}, guildhall.E(op, guildhall.Invalid, "a counted message needs a channel and a seq")
	}
	mn := m.Mentions
	if len(mn.Users) > MaxMentions {
		mn.Users = mn.Users[:MaxMentions]
	}
	if len(mn.Users)+len(mn.Roles) > MaxMentions {
		mn.Roles = mn.Roles[:MaxMentions-len(mn.Users)]
	}
	return mn, nil
}

// CheckAck validates a position given to UnreadCounters.Ack: channel,
// seq and ID non-zero.
func CheckAck(op string, p ReadPosition) error {
	if p.ChannelID == 0 || p.Seq == 0 || p.ID == 0 {
		return guildhall.E(op, guildhall.Invalid, "a read position needs a channel, a seq and a message ID")
	}
	return nil
}
