// Package link is a link node: it holds WebSocket gateway sessions
// (docs/gateway.md), keeps each session's channel subscriptions in memory,
// reports per-channel subscriber counts to the subscription service and
// writes the events the message service routes to this node onto its
// sockets.
//
// Concurrency: each connection has a reader goroutine that owns it and runs
// the writer under an errgroup; the outbound queue is bounded and a session
// that cannot keep up is closed (CloseSlowConsumer), never waited for. The
// subscription index is sharded by channel. Events of one channel reach a
// session in the order the message service published them, and every
// dispatch carries the session's next sequence number.
package link
