package link

import (
	"context"
	"log/slog"
	"slices"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/message"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// Subscription types other than MESSAGES: the session gets compact unread
// updates computed here, per session, from each message event's channel
// seq and the session's read position (READY's read states, then acks) —
// never a store lookup per message.

// ReadState is a user's position in one channel and what is unread after
// it.
type ReadState = message.ReadState

// ReadStates is the read-state service (message.ReadStates).
type ReadStates interface {
	// Ack moves userID's read position in channelID up to messageID.
	Ack(ctx context.Context, userID, channelID, messageID uint64) (ReadState, error)
	// List returns userID's read states of the channels.
	List(ctx context.Context, userID uint64, channelIDs []uint64) ([]ReadState, error)
}

// MemberRoles lists the roles a member holds in a server (role.Store).
type MemberRoles interface {
	MemberRoles(ctx context.Context, serverID, userID uint64) ([]uint64, error)
}

var (
	_ ReadStates           = (*message.ReadStates)(nil)
	_ message.ReadNotifier = (*Notifier)(nil)
)

// maxReadStatesPerCall bounds the channels of one ReadStates.List call.
const maxReadStatesPerCall = message.MaxReadStates

// unread is one session's bookkeeping of one channel.
type unread struct {
	server   uint64
	readSeq  uint64 // the user's read position
	lastSeq  uint64 // the channel's newest seq seen
	mentions uint64 // messages after readSeq that mention the user
	capped   bool   // UNREAD_COUNT: passed the cap, silent until read
	notified bool   // UNREAD_STATUS: the unread signal was sent
}

func (r *unread) count() uint64 {
	if r.lastSeq > r.readSeq {
		return r.lastSeq - r.readSeq
	}
	return 0
}

// roleSet is the roles a user holds in a server, as of a permission
// version.
type roleSet struct {
	version uint64
	ids     []uint64
}

func (s *session) readLocked(ch, srv uint64) *unread {
	r := s.reads[ch]
	if r == nil {
		if s.reads == nil {
			s.reads = make(map[uint64]*unread)
		}
		r = &unread{server: srv}
		s.reads[ch] = r
	}
	if r.server == 0 {
		r.server = srv
	}
	return r
}

// seenLocked keeps a MESSAGES channel's position current, so a switch to
// an unread type later starts from the truth.
func (s *session) seenLocked(ch, srv uint64, m *pb.Message) {
	r := s.reads[ch]
	if r == nil {
		return // no read state known: nothing to keep current
	}
	r.lastSeq = max(r.lastSeq, m.Seq)
	if m.AuthorId == s.user.ID {
		r.readSeq = max(r.readSeq, m.Seq)
		r.mentions = 0
	}
}

// countLocked folds a message event into an unread-type channel's state
// and schedules the update the type calls for. full reports that the
// message mentions the user and goes out in full too; known is false when
// the user's roles in the server must be (re)loaded first.
func (s *session) countLocked(ev *pb.Event, typ pb.SubscriptionType, v uint64) (full, known bool) {
	m := ev.GetMessageCreate()
	if m == nil {
		return false, true // edits, deletes and typing are for MESSAGES followers only
	}
	mentioned := false
	if m.AuthorId != s.user.ID {
		mentioned = m.MentionEveryone || slices.Contains(m.MentionUserIds, s.user.ID)
		if !mentioned && len(m.MentionRoleIds) > 0 && s.n.cfg.Roles != nil {
			rs, ok := s.roles[ev.ServerId]
			if !ok || rs.version < v {
				return false, false
			}
			for _, id := range m.MentionRoleIds {
				if slices.Contains(rs.ids, id) {
					mentioned = true
					break
				}
			}
		}
	}
	r := s.readLocked(ev.ChannelId, ev.ServerId)
	before := *r
	r.lastSeq = max(r.lastSeq, m.Seq)
	if m.AuthorId == s.user.ID { // sending is reading
		r.readSeq = max(r.readSeq, m.Seq)
		r.mentions, r.capped, r.notified = 0, false, false
		if before.count() > 0 || before.mentions > 0 {
			s.markUnreadLocked(ev.ChannelId)
		}
		return false, true
	}
	if mentioned && m.Seq > r.readSeq {
		r.mentions++
		s.markUnreadLocked(ev.ChannelId)
	}
	n := r.count()
	switch typ {
	case pb.SubscriptionType_SUBSCRIPTION_TYPE_UNREAD_COUNT:
		if n != before.count() && !r.capped {
			r.capped = n > uint64(s.n.cfg.UnreadCap)
			s.markUnreadLocked(ev.ChannelId)
		}
	case pb.SubscriptionType_SUBSCRIPTION_TYPE_UNREAD_STATUS:
		if n > 0 && !r.notified {
			r.notified = true
			s.markUnreadLocked(ev.ChannelId)
		}
	}
	return mentioned, true
}

// markUnreadLocked schedules an unread update of ch. Updates are
// coalesced: one marker frame waits in the queue (kickUnreadLocked puts
// it there), and the writer turns it into the newest state of every
// channel marked by then.
func (s *session) markUnreadLocked(ch uint64) {
	if s.dirty == nil {
		s.dirty = make(map[uint64]struct{})
	}
	s.dirty[ch] = struct{}{}
}

// kickUnreadLocked queues the marker if updates wait and none is queued.
func (s *session) kickUnreadLocked() {
	if len(s.dirty) > 0 && !s.markerQueued && !s.detached && !s.closed {
		s.markerQueued = true
		s.enqueueLocked(outFrame{unread: true})
	}
}

// expandUnread replaces the unread marker in pending by the updates of the
// channels marked so far.
func (s *session) expandUnread(pending []outFrame) []outFrame {
	if !slices.ContainsFunc(pending, func(f outFrame) bool { return f.unread }) {
		return pending
	}
	out := make([]outFrame, 0, len(pending)+4)
	for _, f := range pending {
		if !f.unread {
			out = append(out, f)
			continue
		}
		for _, u := range s.takeUnread() {
			data, err := s.codec.marshal(&pb.Frame{Body: &pb.Frame_UnreadUpdate{UnreadUpdate: u}})
			if err != nil {
				s.n.log.Error("encode unread update", "err", err)
				continue
			}
			out = append(out, outFrame{data: data})
		}
	}
	return out
}

// takeUnread builds the updates of the marked channels and unmarks them.
func (s *session) takeUnread() []*pb.UnreadUpdate {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*pb.UnreadUpdate, 0, len(s.dirty))
	for ch := range s.dirty {
		r := s.reads[ch]
		typ, followed := s.types[ch]
		if r == nil || !followed {
			continue // unsubscribed or switched to MESSAGES meanwhile
		}
		u := &pb.UnreadUpdate{ChannelId: ch, ServerId: r.server, LastSeq: r.lastSeq, MentionCount: r.mentions, Unread: r.count() > 0}
		if typ == pb.SubscriptionType_SUBSCRIPTION_TYPE_UNREAD_COUNT {
			u.UnreadCount = r.count()
			u.Capped = r.capped
		}
		out = append(out, u)
	}
	clear(s.dirty)
	s.markerQueued = false
	slices.SortFunc(out, func(a, b *pb.UnreadUpdate) int { return cmpUint(a.ChannelId, b.ChannelId) })
	return out
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// remarkUnreadLocked marks every unread-type channel with something
// unread, so a resumed connection gets their state again (updates taken
// by the old connection's writer may not have reached the client).
func (s *session) remarkUnreadLocked() {
	s.markerQueued = false // it left with the old connection
	for ch := range s.types {
		if r := s.reads[ch]; r != nil && (r.count() > 0 || r.mentions > 0) {
			s.markUnreadLocked(ch)
		}
	}
	s.kickUnreadLocked()
}

// loadRoles makes sure the session knows its roles in the event's server
// as of version v when the event mentions roles; it reports false if they
// could not be loaded.
func (s *session) loadRoles(ctx context.Context, ev *pb.Event, v uint64) bool {
	m := ev.GetMessageCreate()
	if m == nil || len(m.MentionRoleIds) == 0 || s.n.cfg.Roles == nil {
		return true
	}
	s.mu.Lock()
	rs, ok := s.roles[ev.ServerId]
	s.mu.Unlock()
	if ok && rs.version >= v {
		return true
	}
	ids, err := s.n.cfg.Roles.MemberRoles(ctx, ev.ServerId, s.user.ID)
	if err != nil {
		s.n.log.Warn("member roles", "server", ev.ServerId, "err", err)
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roles == nil {
		s.roles = make(map[uint64]roleSet)
	}
	if len(s.roles) >= 256 { // bounded: forget old servers
		clear(s.roles)
	}
	s.roles[ev.ServerId] = roleSet{version: v, ids: ids}
	return true
}

type originKey struct{}

// ack handles an Ack frame.
func (s *session) ack(ctx context.Context, a *pb.Ack) (*pb.ReadState, error) {
	const op = "link.Ack"
	if s.n.cfg.ReadStates == nil {
		return nil, guildhall.E(op, guildhall.Unavailable, "read states are not enabled on this server")
	}
	if a.ChannelId == 0 || a.MessageId == 0 {
		return nil, guildhall.E(op, guildhall.Invalid, "ack needs a channel_id and a message_id")
	}
	rctx, cancel := context.WithTimeout(context.WithValue(ctx, originKey{}, s.id), requestTimeout)
	defer cancel()
	rs, err := s.n.cfg.ReadStates.Ack(rctx, s.user.ID, a.ChannelId, a.MessageId)
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	s.applyRead(rs, false)
	return readStateProto(rs), nil
}

// applyRead moves the session's read position in a channel; notify sends
// the client a ReadStateUpdate (the read happened elsewhere).
func (s *session) applyRead(rs ReadState, notify bool) {
	s = s.current()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, visible := s.subs[rs.ChannelID]; !visible && !s.sees(rs.ChannelID) {
		return // nothing about a channel the session may not see
	}
	r := s.readLocked(rs.ChannelID, rs.ServerID)
	if rs.LastReadSeq >= r.readSeq {
		r.readSeq = rs.LastReadSeq
		r.lastSeq = max(r.lastSeq, rs.LastSeq)
		r.mentions = rs.Mentions
		r.capped = r.count() > uint64(s.n.cfg.UnreadCap)
		r.notified = r.count() > 0
		delete(s.dirty, rs.ChannelID) // the read state says it all
	}
	if !notify || s.detached || s.closed {
		return
	}
	data, err := s.codec.marshal(&pb.Frame{Body: &pb.Frame_ReadStateUpdate{ReadStateUpdate: &pb.ReadStateUpdate{ReadState: readStateProto(rs)}}})
	if err != nil {
		s.n.log.Error("encode read state", "err", err)
		return
	}
	s.enqueueLocked(outFrame{data: data})
}

// sees reports whether READY (or a later server subscription) listed ch
// as visible. s.mu is held.
func (s *session) sees(ch uint64) bool {
	for _, chans := range s.visible {
		if slices.Contains(chans, ch) {
			return true
		}
	}
	return false
}

func readStateProto(rs ReadState) *pb.ReadState {
	return &pb.ReadState{
		ChannelId: rs.ChannelID, ServerId: rs.ServerID, LastReadId: rs.LastReadID, LastReadSeq: rs.LastReadSeq,
		LastSeq: rs.LastSeq, UnreadCount: rs.Unread, MentionCount: rs.Mentions,
	}
}

func readStateFromProto(p *pb.ReadState) ReadState {
	return ReadState{
		ChannelID: p.GetChannelId(), ServerID: p.GetServerId(), LastReadID: p.GetLastReadId(), LastReadSeq: p.GetLastReadSeq(),
		LastSeq: p.GetLastSeq(), Unread: p.GetUnreadCount(), Mentions: p.GetMentionCount(),
	}
}

// loadReadStates fetches the user's read states of the channels for READY
// and keeps them as the session's positions.
func (s *session) loadReadStates(ctx context.Context, userID uint64, visible map[uint64][]uint64) ([]*pb.ReadState, error) {
	if s.n.cfg.ReadStates == nil {
		return nil, nil
	}
	var ids []uint64
	for _, chans := range visible {
		ids = append(ids, chans...)
	}
	slices.Sort(ids)
	var out []*pb.ReadState
	reads := make(map[uint64]*unread, len(ids))
	for len(ids) > 0 {
		part := ids[:min(len(ids), maxReadStatesPerCall)]
		ids = ids[len(part):]
		list, err := s.n.cfg.ReadStates.List(ctx, userID, part)
		if err != nil {
			return nil, err
		}
		for _, rs := range list {
			out = append(out, readStateProto(rs))
			r := &unread{server: rs.ServerID, readSeq: rs.LastReadSeq, lastSeq: rs.LastSeq, mentions: rs.Mentions}
			r.capped = r.count() > uint64(s.n.cfg.UnreadCap)
			r.notified = r.count() > 0
			reads[rs.ChannelID] = r
		}
	}
	s.mu.Lock()
	s.reads = reads
	s.mu.Unlock()
	return out, nil
}

// Users index: read-state notices reach every session of the user.

func (n *Node) rememberUser(s *session) {
	sh := &n.users[s.user.ID%shards]
	sh.Lock()
	defer sh.Unlock()
	set := sh.m[s.user.ID]
	if set == nil {
		set = make(map[*session]struct{})
		sh.m[s.user.ID] = set
	}
	set[s] = struct{}{}
}

func (n *Node) forgetUser(s *session) {
	if s.user.ID == 0 {
		return
	}
	sh := &n.users[s.user.ID%shards]
	sh.Lock()
	defer sh.Unlock()
	if set := sh.m[s.user.ID]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(sh.m, s.user.ID)
		}
	}
}

// swapUser replaces old by s among the user's sessions (a resume).
func (n *Node) swapUser(old, s *session) {
	sh := &n.users[s.user.ID%shards]
	sh.Lock()
	defer sh.Unlock()
	set := sh.m[s.user.ID]
	if set == nil {
		set = make(map[*session]struct{})
		sh.m[s.user.ID] = set
	}
	delete(set, old)
	set[s] = struct{}{}
}

func (n *Node) userSessions(userID uint64) []*session {
	sh := &n.users[userID%shards]
	sh.Lock()
	defer sh.Unlock()
	out := make([]*session, 0, len(sh.m[userID]))
	for s := range sh.m[userID] {
		out = append(out, s)
	}
	return out
}

// onReadState passes a read-state notice on to the user's sessions here,
// except the one that acked (it has its Acked reply).
func (n *Node) onReadState(msg *nats.Msg) {
	var notice pb.ReadStateNotice
	if err := proto.Unmarshal(msg.Data, &notice); err != nil || notice.State == nil {
		n.log.Warn("bad read-state notice", "err", err)
		return
	}
	rs := readStateFromProto(notice.State)
	for _, s := range n.userSessions(notice.UserId) {
		if s.ID() == notice.OriginSession {
			continue
		}
		s.applyRead(rs, true)
	}
}

// Notifier tells a user's sessions on every link node that the user read
// a channel (message.ReadNotifier): wire it into the read-state service,
// so an ack through REST or any gateway reaches them all. Publishing never
// blocks.
type Notifier struct {
	nc  *nats.Conn
	log *slog.Logger
}

// NewNotifier returns a Notifier publishing on nc.
func NewNotifier(nc *nats.Conn, log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{nc: nc, log: log}
}

// Acked implements message.ReadNotifier.
func (n *Notifier) Acked(ctx context.Context, userID uint64, rs ReadState) {
	origin, _ := ctx.Value(originKey{}).(string)
	notice := &pb.ReadStateNotice{UserId: userID, State: readStateProto(rs), OriginSession: origin}
	if err := bus.Publish(n.nc, bus.UserReadState(userID), notice); err != nil {
		n.log.Warn("read-state notice", "user", userID, "err", err)
	}
}
