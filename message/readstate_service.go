package message

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	guildhall "github.com/guildhall/guildhall"
)

// ReadStates acks messages and reports read states with unread and mention
// counts, checking that the user sees each channel. Safe for concurrent
// use; it keeps no state of its own, so any number of processes may run
// one over the same counters and store.
type ReadStates struct {
	access   Access
	msgs     ReadMessages
	roles    MemberRoles
	counters UnreadCounters
	store    ReadStateStore
	notify   ReadNotifier
	log      *slog.Logger

	acks         *prometheus.CounterVec // by result: moved, unchanged
	fills        prometheus.Counter
	headRebuilds prometheus.Counter
}

// NewReadStates returns the read-state service. It panics if a required
// field of cfg is nil (a wiring mistake). With cfg.Registerer it registers:
//
//	guildhall_readstate_acks_total{result="moved"|"unchanged"}
//	guildhall_readstate_fills_total          users' positions loaded from the durable store into the counters
//	guildhall_readstate_head_rebuilds_total  channel heads rebuilt from the message store
//
// Many fills or rebuilds mean the counters lost data (a Redis restart or
// eviction) or hold too little (TTL, bounds).
func NewReadStates(cfg ReadStatesConfig) (*ReadStates, error) {
	if cfg.Access == nil || cfg.Messages == nil || cfg.Roles == nil || cfg.Counters == nil || cfg.Store == nil {
		panic("message.NewReadStates: Access, Messages, Roles, Counters and Store are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	r := &ReadStates{
		access: cfg.Access, msgs: cfg.Messages, roles: cfg.Roles, counters: cfg.Counters,
		store: cfg.Store, notify: cfg.Notifier, log: cfg.Log,
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "guildhall_readstate_acks_total", Help: "Acks that succeeded, by whether the read position moved.",
		}, []string{"result"}),
		fills: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "guildhall_readstate_fills_total", Help: "Users whose read positions were loaded from the durable store into the counters.",
		}),
		headRebuilds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "guildhall_readstate_head_rebuilds_total", Help: "Channel heads rebuilt from the message store.",
		}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{r.acks, r.fills, r.headRebuilds} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// Ack marks channelID read up to messageID for userID and returns the
// read state after it. The user needs VIEW_CHANNEL (a channel hidden from
// them is NotFound); an unknown or deleted message is NotFound. Acking a
// message older than the current position changes nothing and returns
// the current state; acking twice is the same as once. The position is
// durable (ReadStateStore) before Ack returns. When the position moved,
// the Notifier hears about it.
func (r *ReadStates) Ack(ctx context.Context, userID, channelID, messageID uint64) (ReadState, error) {
	const op = "message.Ack"
	if messageID == 0 {
		return ReadState{}, guildhall.E(op, guildhall.Invalid, "message_id is required")
	}
	serverID, _, err := r.access.CanView(ctx, userID, channelID)
	if err != nil {
		return ReadState{}, guildhall.Wrap(op, err)
	}
	m, err := r.msgs.Get(ctx, channelID, messageID)
	if guildhall.KindOf(err) == guildhall.NotFound {
		return ReadState{}, guildhall.E(op, guildhall.NotFound, "unknown message")
	}
	if err != nil {
		return ReadState{}, guildhall.Wrap(op, err)
	}
	p := ReadPosition{ChannelID: channelID, Seq: m.Seq, ID: m.ID}
	if err := r.store.PutReadPosition(ctx, userID, p); err != nil {
		return ReadState{}, guildhall.Wrap(op, err)
	}
	_, moved, err := r.counters.Ack(ctx, userID, p)
	if err != nil {
		return ReadState{}, guildhall.Wrap(op, err)
	}
	states, err := r.load(ctx, userID, []visible{{channelID, serverID}})
	if err != nil {
		return ReadState{}, guildhall.Wrap(op, err)
	}
	if !moved {
		r.acks.WithLabelValues("unchanged").Inc()
	} else {
		r.acks.WithLabelValues("moved").Inc()
		if r.notify != nil {
			r.notify.Acked(ctx, userID, states[0])
		}
	}
	return states[0], nil
}

// Get returns userID's read state in channelID; NotFound if the channel
// is hidden from them.
func (r *ReadStates) Get(ctx context.Context, userID, channelID uint64) (ReadState, error) {
	const op = "message.ReadState"
	serverID, _, err := r.access.CanView(ctx, userID, channelID)
	if err != nil {
		return ReadState{}, guildhall.Wrap(op, err)
	}
	states, err := r.load(ctx, userID, []visible{{channelID, serverID}})
	if err != nil {
		return ReadState{}, guildhall.Wrap(op, err)
	}
	return states[0], nil
}

// List returns userID's read states in the given channels, in the order
// asked, leaving out the channels hidden from them (or unknown) and
// repeats. At most MaxReadStates channels may be asked for at once.
func (r *ReadStates) List(ctx context.Context, userID uint64, channelIDs []uint64) ([]ReadState, error) {
	const op = "message.ReadStates"
	if len(channelIDs) > MaxReadStates {
		return nil, guildhall.E(op, guildhall.Invalid, "at most %d channels at once", MaxReadStates)
	}
	seen := make(map[uint64]bool, len(channelIDs))
	vis := make([]visible, 0, len(channelIDs))
	for _, id := range channelIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		serverID, _, err := r.access.CanView(ctx, userID, id)
		switch guildhall.KindOf(err) {
		case guildhall.NotFound, guildhall.Forbidden, guildhall.Invalid:
			continue // hidden or unknown: say nothing about it
		}
		if err != nil {
			return nil, guildhall.Wrap(op, err)
		}
		vis = append(vis, visible{id, serverID})
	}
	if len(vis) == 0 {
		return []ReadState{}, nil
	}
	states, err := r.load(ctx, userID, vis)
	return states, guildhall.Wrap(op, err)
}

// visible is a channel the user was checked to see, with its server.
type visible struct{ channelID, serverID uint64 }

// load computes the read states of channels the user sees, filling the
// counters from the durable store and the message store where they lost
// something.
func (r *ReadStates) load(ctx context.Context, userID uint64, chans []visible) ([]ReadState, error) {
	roles := make(map[uint64][]uint64) // by server
	qs := make([]CounterQuery, len(chans))
	for i, c := range chans {
		ids, ok := roles[c.serverID]
		if !ok {
			held, err := r.roles.MemberRoles(ctx, c.serverID, userID)
			if err != nil {
				return nil, err
			}
			// <@&server_id> mentions the @everyone role: count it too.
			ids = append(append(make([]uint64, 0, len(held)+1), c.serverID), held...)
			roles[c.serverID] = ids
		}
		qs[i] = CounterQuery{ChannelID: c.channelID, Roles: ids}
	}
	cs, err := r.counters.Load(ctx, userID, qs)
	if err != nil {
		return nil, err
	}
	var missing []int
	for i := range cs {
		if !cs[i].ReadKnown {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 { // the cache lost (or never had) this user's positions
		ps, err := r.store.ReadPositions(ctx, userID)
		if err != nil {
			return nil, err
		}
		if err := r.counters.Fill(ctx, userID, ps); err != nil {
			return nil, err
		}
		r.fills.Inc()
		r.log.DebugContext(ctx, "read positions filled from the durable store", "user", userID, "positions", len(ps))
		sub := make([]CounterQuery, len(missing))
		for j, i := range missing {
			sub[j] = qs[i]
		}
		again, err := r.counters.Load(ctx, userID, sub)
		if err != nil {
			return nil, err
		}
		durable := make(map[uint64]ReadPosition, len(ps))
		for _, p := range ps {
			durable[p.ChannelID] = p
		}
		for j, i := range missing {
			if !again[j].ReadKnown { // forgotten again at once: trust the store
				again[j].Read, again[j].ReadKnown = durable[qs[i].ChannelID], true
			}
			cs[i] = again[j]
		}
	}
	out := make([]ReadState, len(chans))
	for i, c := range chans {
		st := cs[i]
		if !st.HeadKnown {
			seq, _, err := r.msgs.Last(ctx, c.channelID)
			if err != nil {
				return nil, err
			}
			if err := r.counters.RaiseHead(ctx, c.channelID, seq); err != nil {
				return nil, err
			}
			r.headRebuilds.Inc()
			st.Head = seq
		}
		last := max(st.Head, st.Read.Seq)
		out[i] = ReadState{
			ChannelID: c.channelID, ServerID: c.serverID,
			LastReadID: st.Read.ID, LastReadSeq: st.Read.Seq,
			LastSeq: last, Unread: last - st.Read.Seq, Mentions: st.Mentions,
		}
	}
	return out, nil
}
