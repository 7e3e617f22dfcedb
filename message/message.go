// Package message is the message domain: types, the Store that keeps
// history, and the Service that sends, edits and deletes messages and reads
// history with permission checks.
//
// Durability: a send, edit or delete is acknowledged once appended to the
// Log (JetStream, message/jetstream); then the service writes the Cache,
// the Counters and fans the event out. A Persister copies the log into the
// Store in batches, in log order, acknowledging a batch only once stored,
// so nothing acknowledged is lost if any process dies. While the persister
// is more than Config.MaxLag changes behind, changes fail with Unavailable.
//
// Ordering: within a channel, messages carry a gapless sequence number
// (1, 2, 3, ...) in the order they were accepted; IDs are snowflakes and grow
// with seq. Service serializes a channel's changes per process (a striped
// lock) and, across processes, appends a create only if the channel's
// newest create in the log is still the one it saw (Log.Append's expect),
// so two writers can never both take a seq. One process publishes a
// channel's events in seq order; events of different processes may
// interleave.
//
// Read-your-writes: Reader merges the Cache with the Store and, before a
// store read, waits for the persister to reach the channel's newest change,
// so an acknowledged change is visible to the next read in any process.
package message

import (
	"context"
	"time"
)

// Message is one message in a channel.
type Message struct {
	ID        uint64
	ChannelID uint64
	ServerID  uint64
	AuthorID  uint64
	Content   string
	Seq       uint64
	Nonce     string
	CreatedAt time.Time
	EditedAt  time.Time // zero if never edited
	Mentions  Mentions
}

// Query selects a page of history. At most one of Before, After and Around
// is set; none means the latest messages. Pages are newest first.
type Query struct {
	Before uint64 // messages with ID < Before
	After  uint64 // messages with ID > After (the oldest ones after it)
	// Around selects the Limit/2 nearest messages with ID >= Around and the
	// Limit - Limit/2 nearest with ID < Around (a side that runs short is
	// not filled from the other).
	Around uint64
	Limit  int // 1..MaxPage
}

// Store keeps messages. Implementations make each method atomic.
type Store interface {
	// Insert stores m. It fails with Conflict if m.Seq is already used in
	// the channel, or if m.ID is not greater than the ID of the message
	// with seq m.Seq-1 (IDs grow with seq, so history paged by ID and by
	// seq agree), and stores the nonce index (channel, author, nonce) when
	// m.Nonce is set.
	Insert(ctx context.Context, m Message) error
	// LastSeq is the highest seq stored in the channel, 0 if none.
	LastSeq(ctx context.Context, channelID uint64) (uint64, error)
	// Last is LastSeq with the ID of the message that took it (0 if none),
	// even if that message was deleted since.
	Last(ctx context.Context, channelID uint64) (seq, id uint64, err error)
	// ByNonce finds the message an author sent with nonce in a channel; ok
	// is false if there is none.
	ByNonce(ctx context.Context, channelID, authorID uint64, nonce string) (m Message, ok bool, err error)
	// Get fails with NotFound for an unknown or deleted message.
	Get(ctx context.Context, channelID, id uint64) (Message, error)
	// Update replaces the content and edited time of a stored message.
	Update(ctx context.Context, m Message) error
	// Delete removes a message; NotFound if it does not exist.
	Delete(ctx context.Context, channelID, id uint64) error
	// List returns a page of history, newest first. q is already validated.
	List(ctx context.Context, channelID uint64, q Query) ([]Message, error)
	// Persist applies changes read from the message log, in order. It is
	// idempotent, so that a batch replayed after a crash (all of it, or
	// the part after what landed) ends in the same state:
	//   - a Create writes the whole message, its seq claim, the channel's
	//     last seq (never lowered) and its nonce entry; a Create of a
	//     message already stored rewrites it as given, and is not an
	//     error;
	//   - an Edit sets Content and EditedAt of a stored message;
	//   - a Delete removes a stored message and frees its nonce, keeping
	//     its seq taken;
	//   - an Edit or Delete of a message that is not stored (deleted
	//     already, or edited after its deletion) is skipped.
	// Later changes see earlier ones of the same call, so a batch may
	// create, edit and delete one message. Persist trusts the log: it does
	// not check that a seq is free (the log assigned it once). It need not
	// be atomic: on error, any prefix of changes may have been applied.
	Persist(ctx context.Context, changes []Change) error
}

// ChangeKind says what a Change does.
type ChangeKind uint8

const (
	ChangeCreate ChangeKind = iota + 1 // a new message, whole
	ChangeEdit                         // the message as edited: Content and EditedAt count
	ChangeDelete                       // ChannelID and ID count (ServerID and Seq ride along for fan-out)
)

// Change is one record of the message log: an accepted create, edit or
// delete, in the order the service accepted it.
type Change struct {
	Kind    ChangeKind
	Message Message
}

// Mentions is who a message mentions, parsed from its content when it is
// sent: <@user_id>, <@&role_id> and @everyone. Everyone is set only when
// the author may mention everyone in the channel.
type Mentions struct {
	Users    []uint64
	Roles    []uint64
	Everyone bool
}
