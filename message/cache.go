package message

import "context"

// Cache is the central cache of recent history (DESIGN.md §4): per
// channel, the newest messages, bounded in length and age. Redis in
// distributed mode (message/redis), process memory in embedded mode
// (message/inmem). The message service writes it right after a send is
// durable (before the store has it: until persisted, a message is readable
// from here); readers fill it from the Store on a miss.
//
// Implementations are safe for concurrent use; every method is atomic per
// channel. A Cache may lose anything at any time (eviction, restart): it is
// never the only copy of an acked message for longer than the persister's
// lag, and readers treat a miss as "ask the store".
type Cache interface {
	// Add puts a newly accepted message into its channel's window, keeping
	// the window ordered by ID and trimmed to its bound (oldest out).
	// Adding a message that is already there replaces it.
	Add(ctx context.Context, m Message) error
	// Replace updates a cached message after an edit; a message that is
	// not cached is ignored.
	Replace(ctx context.Context, m Message) error
	// Remove drops a deleted message from the window.
	Remove(ctx context.Context, channelID, id uint64) error
	// Latest returns up to limit of the channel's newest messages, newest
	// first. complete is true when the window was filled from the store
	// (Fill) and not invalidated since, so it holds every message newer
	// than its oldest entry; otherwise msgs holds only what was Added
	// (possibly not yet persisted) and the caller must merge it with a
	// store read.
	Latest(ctx context.Context, channelID uint64, limit int) (msgs []Message, complete bool, err error)
	// Fill stores the channel's newest messages read from the store (newest
	// first), merging with what was Added meanwhile, and marks the window
	// complete.
	Fill(ctx context.Context, channelID uint64, msgs []Message) error
	// Invalidate forgets the channel's window.
	Invalidate(ctx context.Context, channelID uint64) error
}

// Counters keeps what unread and mention counts are computed from
// (DESIGN.md §4 "History and unread"): each channel's newest seq and the
// mentions in it. Work per message is O(1) in the channel's member count.
type Counters interface {
	// Accepted records a message that was just made durable: it raises the
	// channel's last seq to m.Seq and counts m's mentions. Recording the
	// same message twice changes nothing.
	Accepted(ctx context.Context, m Message) error
}
