package message

import (
	"context"
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
}

// EventKind says what happened to a message.
type EventKind uint8

const (
	Created EventKind = iota + 1
	Updated
	Deleted
	Typing // Message holds only ChannelID, ServerID, AuthorID and CreatedAt
)

// Event is what the service hands to fan-out after a change is stored.
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

// Service sends, edits and deletes messages and reads history. Sends to
// one channel are serialized inside the process; across processes the
// Store's seq check refuses a second writer (see package doc).
type Service struct {
	*Reader // history

	store  Store
	access Access
	pub    Publisher
	ids    IDs
	now    func() time.Time
	log    *slog.Logger

	seed  maphash.Seed
	locks [256]sync.Mutex
}

// NewService returns a Service; now may be nil for time.Now, log nil to
// discard.
func NewService(store Store, access Access, pub Publisher, ids IDs, now func() time.Time, log *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{Reader: NewReader(store, access), store: store, access: access, pub: pub, ids: ids, now: now, log: log, seed: maphash.MakeSeed()}
}

func (s *Service) lock(channelID uint64) *sync.Mutex {
	return &s.locks[maphash.Comparable(s.seed, channelID)%uint64(len(s.locks))]
}

// Send stores a new message and fans it out. A retry with the same nonce
// returns the message the first attempt made, unchanged.
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
	mu := s.lock(channelID)
	mu.Lock()
	defer mu.Unlock()
	m, fresh, err := s.insert(ctx, serverID, actorID, channelID, content, nonce)
	if err != nil {
		return Message{}, guildhall.Wrap(op, err)
	}
	if fresh { // under the lock, so events leave in seq order
		s.publish(ctx, Event{Kind: Created, Message: m})
	}
	return m, nil
}

// insert runs under the channel's lock.
// insertAttempts bounds the retries when another writer (another message
// service process) took the seq this one read.
const insertAttempts = 8

func (s *Service) insert(ctx context.Context, serverID, actorID, channelID uint64, content, nonce string) (Message, bool, error) {
	for range insertAttempts {
		if nonce != "" {
			if m, ok, err := s.store.ByNonce(ctx, channelID, actorID, nonce); err != nil || ok {
				return m, false, err
			}
		}
		last, lastID, err := s.store.Last(ctx, channelID)
		if err != nil {
			return Message{}, false, err
		}
		// IDs grow with seq even across message-service processes whose
		// clocks or node numbers would order them otherwise.
		m := Message{
			ID: max(s.ids.Next(), lastID+1), ChannelID: channelID, ServerID: serverID, AuthorID: actorID,
			Content: content, Seq: last + 1, Nonce: nonce, CreatedAt: s.now().UTC().Truncate(time.Millisecond),
		}
		err = s.store.Insert(ctx, m)
		if err == nil {
			return m, true, nil
		}
		if guildhall.KindOf(err) != guildhall.Conflict {
			return Message{}, false, err
		}
		// Another writer took this seq (or, with a nonce, this very
		// message): look again.
	}
	return Message{}, false, guildhall.E("message.insert", guildhall.Unavailable, "the channel is too busy, retry")
}

// Edit replaces the content of a message; only its author may.
func (s *Service) Edit(ctx context.Context, actorID, channelID, messageID uint64, content string) (Message, error) {
	const op = "message.Edit"
	if err := validContent(content); err != nil {
		return Message{}, guildhall.Wrap(op, err)
	}
	m, err := s.own(ctx, op, actorID, channelID, messageID)
	if err != nil {
		return Message{}, err
	}
	m.Content = content
	m.EditedAt = s.now().UTC().Truncate(time.Millisecond)
	mu := s.lock(channelID)
	mu.Lock()
	defer mu.Unlock()
	if err := s.store.Update(ctx, m); err != nil {
		return Message{}, guildhall.Wrap(op, err)
	}
	s.publish(ctx, Event{Kind: Updated, Message: m})
	return m, nil
}

// Delete removes a message: its author may, and so may members with
// MANAGE_MESSAGES in the channel.
func (s *Service) Delete(ctx context.Context, actorID, channelID, messageID uint64) error {
	const op = "message.Delete"
	if _, _, err := s.access.CanView(ctx, actorID, channelID); err != nil {
		return guildhall.Wrap(op, err)
	}
	m, err := s.store.Get(ctx, channelID, messageID)
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
	mu := s.lock(channelID)
	mu.Lock()
	defer mu.Unlock()
	if err := s.store.Delete(ctx, channelID, messageID); err != nil {
		return guildhall.Wrap(op, err)
	}
	s.publish(ctx, Event{Kind: Deleted, Message: Message{ID: m.ID, ChannelID: m.ChannelID, ServerID: m.ServerID, Seq: m.Seq}})
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

// own returns a message actor wrote, in a channel actor can still send in.
func (s *Service) own(ctx context.Context, op string, actorID, channelID, messageID uint64) (Message, error) {
	if _, err := s.access.CanSend(ctx, actorID, channelID); err != nil {
		return Message{}, guildhall.Wrap(op, err)
	}
	m, err := s.store.Get(ctx, channelID, messageID)
	if err != nil {
		return Message{}, guildhall.Wrap(op, err)
	}
	if m.AuthorID != actorID {
		return Message{}, guildhall.E(op, guildhall.Forbidden, "only the author may change a message")
	}
	return m, nil
}

// publish hands an event to fan-out. The change is already stored, so a
// failure here costs only live delivery: clients catch up from history.
func (s *Service) publish(ctx context.Context, ev Event) {
	if err := s.pub.Publish(ctx, ev); err != nil {
		s.log.WarnContext(ctx, "fan-out failed", "channel", ev.Message.ChannelID, "message", ev.Message.ID, "err", err)
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
