package message

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	guildhall "github.com/guildhall/guildhall"
)

// Limits, documented in docs/api.md.
const (
	MaxContent  = 4000 // characters
	MaxNonce    = 64   // bytes
	DefaultPage = 50
	MaxPage     = 100
)

// Access decides who may read and send in a channel. It returns the
// channel's server ID, or NotFound/Forbidden.
type Access interface {
	CanRead(ctx context.Context, userID, channelID uint64) (serverID uint64, err error)
	CanSend(ctx context.Context, userID, channelID uint64) (serverID uint64, err error)
	// CanView: see the channel (enough to delete one's own messages).
	CanView(ctx context.Context, userID, channelID uint64) (serverID, version uint64, err error)
	// CanManageMessages: delete other people's messages.
	CanManageMessages(ctx context.Context, userID, channelID uint64) (serverID uint64, err error)
	// CanMentionEveryone: @everyone and @here count (MENTION_EVERYONE).
	CanMentionEveryone(ctx context.Context, userID, channelID uint64) (bool, error)
}

// EventKind says what happened to a message.
type EventKind uint8

const (
	Created EventKind = iota + 1
	Updated
	Deleted
	Typing // Message holds only ChannelID, ServerID, AuthorID and CreatedAt
)

// Event is what the service hands to fan-out after a change is durable.
type Event struct {
	Kind    EventKind
	Message Message // for Deleted, only IDs and Seq are set
}

// Publisher fans events out to whoever follows the channel.
type Publisher interface {
	Publish(ctx context.Context, ev Event) error
}

// IDs makes new snowflake IDs.
type IDs interface{ Next() uint64 }

// Config configures a Service. Store, Access, Log, Publisher and IDs are
// required; the rest may be left zero.
type Config struct {
	Store     Store     // history: read for nonces, edits and deletes
	Access    Access    // permissions
	Log       Log       // the durable log: a change is acked once appended here
	Publisher Publisher // fan-out
	IDs       IDs       // snowflakes
	// Cache gets each change right after it is durable, so that it is
	// readable before it is persisted; nil for none.
	Cache Cache
	// Counters records each accepted message; nil for none.
	Counters Counters
	// MaxLag is the back-pressure bound: while the persister is more
	// than MaxLag changes behind, Send, Edit and Delete fail with
	// Unavailable ("retry later") instead of letting the log outgrow
	// what it keeps. Default 50,000; see message/jetstream's doc.go for
	// how it relates to the log's size.
	MaxLag uint64
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default discards.
	Logger *slog.Logger
}

// DefaultMaxLag is Config.MaxLag's default.
const DefaultMaxLag = 50_000

// Service sends, edits and deletes messages and reads history. See the
// package doc for its ordering and durability guarantees.
type Service struct {
	*Reader // history

	store    Store
	access   Access
	log      Log
	pub      Publisher
	ids      IDs
	cache    Cache
	counters Counters
	maxLag   uint64
	now      func() time.Time
	logger   *slog.Logger

	seed    maphash.Seed
	stripes [256]stripe
}

// stripe is the lock of the channels that hash to it, and their heads as
// this process last appended them (only heads read back from the log,
// Pos > 0: see head).
type stripe struct {
	mu    sync.Mutex
	heads map[uint64]Head
	// dirty holds channels whose cache window missed a change and could
	// not be invalidated: it is invalidated before the next change.
	dirty map[uint64]bool
	// gone holds messages this process deleted lately, which the store
	// may still hold until the persister applies the deletion.
	gone map[uint64]bool
}

// maxHeads bounds the heads one stripe remembers.
const maxHeads = 4096

// NewService returns a Service.
func NewService(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxLag == 0 {
		cfg.MaxLag = DefaultMaxLag
	}
	return &Service{
		Reader: NewReader(cfg.Store, cfg.Access, cfg.Cache, cfg.Log),
		store:  cfg.Store, access: cfg.Access, log: cfg.Log, pub: cfg.Publisher, ids: cfg.IDs,
		cache: cfg.Cache, counters: cfg.Counters, maxLag: cfg.MaxLag, now: cfg.Now, logger: cfg.Logger,
		seed: maphash.MakeSeed(),
	}
}

func (s *Service) stripe(channelID uint64) *stripe {
	return &s.stripes[maphash.Comparable(s.seed, channelID)%uint64(len(s.stripes))]
}

// Send accepts a new message: once its create is in the log it is
// durable and acked; then it goes to the cache and the counters and is
// fanned out. A retry with the same nonce returns the message the first
// attempt made, unchanged, from any message service process.
func (s *Service) Send(ctx context.Context, actorID, channelID uint64, content, nonce string) (Message, error) {
	const op = "message.Send"
	if err := validContent(content); err != nil {
		return Message{}, guildhall.Wrap(op, err)
	}
	if len(nonce) > MaxNonce {
		return Message{}, guildhall.E(op, guildhall.Invalid, "nonce must be at most %d bytes", MaxNonce)
	}
	serverID, err := s.access.CanSend(ctx, actorID, channelID)
	if err != nil {
		return Message{}, guildhall.Wrap(op, err)
	}
	mentions := ParseMentions(content)
	if len(mentions.Users)+len(mentions.Roles) > MaxMentions {
		return Message{}, guildhall.E(op, guildhall.Invalid, "a message may mention at most %d users and roles", MaxMentions)
	}
	if mentions.Everyone {
		if mentions.Everyone, err = s.access.CanMentionEveryone(ctx, actorID, channelID); err != nil {
			return Message{}, guildhall.Wrap(op, err)
		}
	}
	if err := s.checkLag(ctx); err != nil {
		return Message{}, guildhall.Wrap(op, err)
	}

	st := s.stripe(channelID)
	st.mu.Lock()
	defer st.mu.Unlock()
	if nonce != "" { // beyond the log's duplicate window
		if m, ok, err := s.store.ByNonce(ctx, channelID, actorID, nonce); err != nil || ok {
			return m, guildhall.Wrap(op, err)
		}
	}
	m := Message{
		ChannelID: channelID, ServerID: serverID, AuthorID: actorID, Content: content, Nonce: nonce,
		CreatedAt: s.now().UTC().Truncate(time.Millisecond), Mentions: mentions,
	}
	var dedupe string
	if nonce != "" {
		dedupe = fmt.Sprintf("%d/%d/%s", channelID, actorID, nonce)
	}
	for range appendAttempts {
		h, err := s.head(ctx, st, channelID)
		if err != nil {
			return Message{}, guildhall.Wrap(op, err)
		}
		// IDs grow with seq even across message service processes whose
		// clocks or node numbers would order them otherwise.
		m.ID, m.Seq = max(s.ids.Next(), h.ID+1), h.Seq+1
		pos, orig, dup, err := s.log.Append(ctx, Change{Kind: ChangeCreate, Message: m}, h.Pos, dedupe)
		switch {
		case errors.Is(err, ErrStaleHead):
			delete(st.heads, channelID) // another process appended: look again
			continue
		case err != nil:
			return Message{}, guildhall.Wrap(op, err)
		case dup:
			if s.deleted(ctx, orig.Message) {
				dedupe = "" // a deleted message frees its nonce
				continue
			}
			// An earlier attempt (maybe through another process) made
			// it; it was fanned out then. Counting is idempotent, and
			// heals a process that died before it counted.
			s.count(ctx, orig.Message)
			return orig.Message, nil
		}
		if st.heads == nil || len(st.heads) >= maxHeads {
			st.heads = make(map[uint64]Head)
		}
		st.heads[channelID] = Head{Seq: m.Seq, ID: m.ID, Pos: pos}
		// Durable: the ack point. Under the lock, so events leave in seq
		// order.
		s.toCache(ctx, st, channelID, func() error { return s.cache.Add(ctx, m) })
		s.count(ctx, m)
		s.publish(ctx, Event{Kind: Created, Message: m})
		return m, nil
	}
	return Message{}, guildhall.E(op, guildhall.Unavailable, "the channel is too busy, retry")
}

// appendAttempts bounds the retries when other message service processes
// keep appending to the channel between this one's look and its append.
const appendAttempts = 16

// head returns where the channel stands, under its stripe's lock: the
// head this process appended last if it has one, else the log's, else the
// store's. A head read from the store (Pos 0: the log holds no create of
// the channel, so the store has every message) is used at once and not
// kept: "no create in the log" stays true only until another process
// appends, which Append's check would not notice if that create were
// trimmed again before this one's append; see message/jetstream's doc.go.
func (s *Service) head(ctx context.Context, st *stripe, channelID uint64) (Head, error) {
	if h, ok := st.heads[channelID]; ok {
		return h, nil
	}
	h, ok, err := s.log.Head(ctx, channelID)
	if err != nil || ok {
		return h, err
	}
	seq, id, err := s.store.Last(ctx, channelID)
	return Head{Seq: seq, ID: id}, err
}

// toCache applies a durable change to the cache, under the channel's
// lock. The cache is best effort: if write fails, the channel's window
// (which may claim to be complete) is invalidated, and if that fails too
// the channel is remembered and invalidated before its next change, so a
// window that missed a change is not served as complete for longer than
// the cache stays unwritable (or its own age bound).
func (s *Service) toCache(ctx context.Context, st *stripe, channelID uint64, write func() error) {
	if s.cache == nil {
		return
	}
	if st.dirty[channelID] {
		if err := s.cache.Invalidate(ctx, channelID); err != nil {
			return // still dirty
		}
		delete(st.dirty, channelID)
	}
	err := write()
	if err == nil {
		return
	}
	s.logger.WarnContext(ctx, "cache write failed", "channel", channelID, "err", err)
	if s.cache.Invalidate(ctx, channelID) == nil {
		return
	}
	if st.dirty == nil || len(st.dirty) >= maxHeads {
		st.dirty = make(map[uint64]bool) // dropping the set costs only staleness
	}
	st.dirty[channelID] = true
}

// find returns a message to edit or delete: from the cache or the store
// (Reader.get). A message acked moments ago may be in neither, if there
// is no cache (or it lost it) and the persister has not stored it yet; so
// on a miss find waits until the persister has stored the channel's
// newest change (Reader.awaitPersisted) and looks again.
//
// A message this process deleted is not found even while the store still
// has it (the deletion not yet persisted). Another process's deletion is
// seen once persisted; until then an edit there is accepted and then
// skipped by the persister (an edit of a deleted message).
func (s *Service) find(ctx context.Context, channelID, id uint64) (Message, error) {
	st := s.stripe(channelID)
	if st.gone[id] {
		return Message{}, guildhall.E("message.find", guildhall.NotFound, "unknown message")
	}
	m, err := s.Reader.get(ctx, channelID, id)
	if guildhall.KindOf(err) != guildhall.NotFound {
		return m, err
	}
	if werr := s.Reader.awaitPersisted(ctx, channelID); werr != nil {
		return m, err
	}
	return s.Reader.get(ctx, channelID, id)
}

// deleted reports whether m, which the log holds, is known to be deleted:
// it is neither in the cache nor in the store, and the store has
// persisted its seq. (A message deleted before the persister stored it
// looks alive here for as long as the persister's lag.)
func (s *Service) deleted(ctx context.Context, m Message) bool {
	if s.stripe(m.ChannelID).gone[m.ID] {
		return true
	}
	if _, err := s.Reader.get(ctx, m.ChannelID, m.ID); guildhall.KindOf(err) != guildhall.NotFound {
		return false
	}
	last, err := s.store.LastSeq(ctx, m.ChannelID)
	return err == nil && last >= m.Seq
}

// checkLag fails with Unavailable while the persister is more than
// MaxLag changes behind.
func (s *Service) checkLag(ctx context.Context) error {
	lag, err := s.log.Lag(ctx)
	if err != nil {
		return err
	}
	if lag > s.maxLag {
		return guildhall.E("message.checkLag", guildhall.Unavailable, "message history is behind, retry later")
	}
	return nil
}

// count records an accepted message in the counters; a failure is only
// logged (counts are rebuilt from seqs).
func (s *Service) count(ctx context.Context, m Message) {
	if s.counters == nil {
		return
	}
	if err := s.counters.Accepted(ctx, m); err != nil {
		s.logger.WarnContext(ctx, "counters failed", "channel", m.ChannelID, "message", m.ID, "err", err)
	}
}

// Edit replaces the content of a message; only its author may. The edit
// is durable once in the log, ordered after the message's create.
func (s *Service) Edit(ctx context.Context, actorID, channelID, messageID uint64, content string) (Message, error) {
	const op = "message.Edit"
	if err := validContent(content); err != nil {
		return Message{}, guildhall.Wrap(op, err)
	}
	if _, err := s.access.CanSend(ctx, actorID, channelID); err != nil {
		return Message{}, guildhall.Wrap(op, err)
	}
	if err := s.checkLag(ctx); err != nil {
		return Message{}, guildhall.Wrap(op, err)
	}
	st := s.stripe(channelID)
	st.mu.Lock()
	defer st.mu.Unlock()
	m, err := s.find(ctx, channelID, messageID)
	if err != nil {
		return Message{}, guildhall.Wrap(op, err)
	}
	if m.AuthorID != actorID {
		return Message{}, guildhall.E(op, guildhall.Forbidden, "only the author may change a message")
	}
	m.Content = content
	m.EditedAt = s.now().UTC().Truncate(time.Millisecond)
	if _, _, _, err := s.log.Append(ctx, Change{Kind: ChangeEdit, Message: m}, 0, ""); err != nil {
		return Message{}, guildhall.Wrap(op, err)
	}
	s.toCache(ctx, st, channelID, func() error { return s.cache.Replace(ctx, m) })
	s.publish(ctx, Event{Kind: Updated, Message: m})
	return m, nil
}

// Delete removes a message: its author may, and so may members with
// MANAGE_MESSAGES in the channel. The deletion is durable once in the
// log, ordered after the message's create.
func (s *Service) Delete(ctx context.Context, actorID, channelID, messageID uint64) error {
	const op = "message.Delete"
	if _, _, err := s.access.CanView(ctx, actorID, channelID); err != nil {
		return guildhall.Wrap(op, err)
	}
	if err := s.checkLag(ctx); err != nil {
		return guildhall.Wrap(op, err)
	}
	st := s.stripe(channelID)
	st.mu.Lock()
	defer st.mu.Unlock()
	m, err := s.find(ctx, channelID, messageID)
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	if m.AuthorID != actorID { // not the author: moderators may
		if _, err := s.access.CanManageMessages(ctx, actorID, channelID); err != nil {
			if guildhall.KindOf(err) == guildhall.Forbidden {
				return guildhall.E(op, guildhall.Forbidden, "only the author or a member with MANAGE_MESSAGES may delete a message")
			}
			return guildhall.Wrap(op, err)
		}
	}
	gone := Message{ID: m.ID, ChannelID: m.ChannelID, ServerID: m.ServerID, Seq: m.Seq}
	if _, _, _, err := s.log.Append(ctx, Change{Kind: ChangeDelete, Message: gone}, 0, ""); err != nil {
		return guildhall.Wrap(op, err)
	}
	if st.gone == nil || len(st.gone) >= maxHeads {
		st.gone = make(map[uint64]bool)
	}
	st.gone[m.ID] = true
	s.toCache(ctx, st, channelID, func() error { return s.cache.Remove(ctx, channelID, messageID) })
	s.publish(ctx, Event{Kind: Deleted, Message: gone})
	return nil
}

// Typing announces that actor is typing in a channel they may send in.
// Nothing is stored.
func (s *Service) Typing(ctx context.Context, actorID, channelID uint64) error {
	const op = "message.Typing"
	serverID, err := s.access.CanSend(ctx, actorID, channelID)
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	s.publish(ctx, Event{Kind: Typing, Message: Message{ChannelID: channelID, ServerID: serverID, AuthorID: actorID, CreatedAt: s.now().UTC()}})
	return nil
}

// publish hands an event to fan-out. The change is already durable, so a
// failure here costs only live delivery: clients catch up from history.
func (s *Service) publish(ctx context.Context, ev Event) {
	if err := s.pub.Publish(ctx, ev); err != nil {
		s.logger.WarnContext(ctx, "fan-out failed", "channel", ev.Message.ChannelID, "message", ev.Message.ID, "err", err)
	}
}

func validContent(content string) error {
	const op = "message.validContent"
	if !utf8.ValidString(content) {
		return guildhall.E(op, guildhall.Invalid, "content must be valid UTF-8")
	}
	if strings.TrimSpace(content) == "" {
		return guildhall.E(op, guildhall.Invalid, "content must not be empty")
	}
	if utf8.RuneCountInString(content) > MaxContent {
		return guildhall.E(op, guildhall.TooLarge, "content must be at most %d characters", MaxContent)
	}
	return nil
}
