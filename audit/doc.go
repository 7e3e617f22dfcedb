// Package audit is the audit log of a server: who did which administrative
// action to what, with what changes and why (Discord's audit log).
//
// The package holds the domain types (Entry, Action, Change, Query), the
// Store they persist in, and Log, which the services call after each
// administrative action. Implementations of Store live in subpackages
// named after what they depend on (audit/pebble); audit/audittest is the
// conformance suite every implementation passes.
//
// Who may read the log (the VIEW_AUDIT_LOG permission) is decided by the
// caller of Log.List, not here.
//
// # Reasons
//
// The edge (the HTTP API) reads the optional X-Audit-Log-Reason header,
// decodes it and puts it in the request context with WithReason; the
// services pass the context on, and Log.Record takes the reason from it
// (ReasonFrom), so no service signature carries a reason. Record keeps at
// most MaxReason bytes, cut on a UTF-8 boundary.
//
// # Ordering
//
// Entry IDs are snowflakes from the Log's ID source, so they grow with
// time on one node; List returns entries newest (largest ID) first and
// pages backwards with Query.Before. Entries recorded on different nodes
// in the same millisecond are ordered by node, not by wall-clock time.
//
// # Failures
//
// Record never fails its caller. It runs after the administrative action
// has been committed, and the action cannot be undone because its log
// entry could not be written: failing the request would tell the client
// that the change did not happen when it did, and the retry would apply it
// twice. A failed Record is logged at Error level (with the whole entry, so
// an operator can restore it) and the entry is lost. Record also goes on
// if the request's context is cancelled after the action: it appends with
// the context's values but without its cancellation.
//
// # Concurrency
//
// Log is safe for concurrent use. Record is synchronous: it returns after
// the store has the entry (for audit/pebble, on disk), so an entry is
// listed by any List that starts after Record returned. Run is a loop the
// caller runs on a goroutine it owns and stops by cancelling Run's
// context. A nil *Log records nothing, lists nothing and runs nothing, so
// a service can be built without an audit log.
package audit
