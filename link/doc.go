// Package link is a link node: it holds WebSocket gateway sessions
// (docs/gateway.md), keeps each session's channel subscriptions in memory,
// reports per-channel subscriber counts to the subscription service and
// writes the events the message service routes to this node onto its
// sockets.
//
// Concurrency: each connection has a reader goroutine that owns it and runs
// the writer under an errgroup; the outbound queue is bounded and a session
// that cannot keep up is closed (CloseSlowConsumer), never waited for. The
// subscription index is sharded by channel. Deliveries are handled one at
// a time (orderMu), and a channel's message creates reach sessions in seq
// order even when several message-service instances published them out of
// order: one that comes ahead of a missing seq waits for it, with the
// channel's later events, for at most ReorderWait / ReorderMax
// (reorder.go); past that it goes out and the missing one is delivered
// late, never dropped. Every dispatch carries the session's next sequence
// number. Unread updates and read-state updates are state notices, not
// dispatches: unnumbered, coalesced per flush, not replayed (a resume sends
// the current state instead). A session can move to another node
// (takeover.go) with its subscriptions, types and positions.
package link
