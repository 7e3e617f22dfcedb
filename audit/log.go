package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/guildhall/guildhall"
)

// PruneEvery is how often Run deletes expired entries.
const PruneEvery = time.Hour

// Log records administrative actions in a Store and lists them. See the
// package documentation for why Record never fails.
type Log struct {
	store     Store
	ids       interface{ Next() uint64 }
	now       func() time.Time
	log       *slog.Logger
	retention time.Duration // < 0: keep forever
}

// NewLog returns a Log on store. ids makes entry IDs (a
// *snowflake.Generator). now may be nil for time.Now, log nil to discard.
// Entries are kept for retention: 0 means DefaultRetention, a negative
// retention keeps them forever.
func NewLog(store Store, ids interface{ Next() uint64 }, now func() time.Time, log *slog.Logger, retention time.Duration) *Log {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if retention == 0 {
		retention = DefaultRetention
	}
	return &Log{store: store, ids: ids, now: now, log: log, retention: retention}
}

// Record appends e to the log after setting its ID and CreatedAt. Its
// reason is e.Reason if set, else the reason in ctx (see WithReason); either
// is cut to MaxReason bytes. Call it after the action has been committed.
//
// Record never fails: an entry the store refuses, or one without a server
// or with an unknown action (a bug in the caller), is logged at Error
// level and dropped. It appends even if ctx has been cancelled. On a nil
// *Log it does nothing.
func (l *Log) Record(ctx context.Context, e Entry) {
	if l == nil {
		return
	}
	if e.ServerID == 0 || !e.Action.Valid() {
		l.log.ErrorContext(ctx, "audit: entry dropped: no server or unknown action", entryAttrs(e)...)
		return
	}
	e.ID = l.ids.Next()
	e.CreatedAt = l.now().UTC()
	if e.Reason == "" {
		e.Reason = ReasonFrom(ctx)
	}
	e.Reason = truncateReason(e.Reason)
	// The action happened whether or not the client is still waiting.
	if err := l.store.Append(context.WithoutCancel(ctx), e); err != nil {
		attrs := append(entryAttrs(e), slog.Any("err", err))
		l.log.ErrorContext(ctx, "audit: entry lost: append failed", attrs...)
	}
}

// entryAttrs is e for the process log, complete so that an operator can
// restore a lost entry.
func entryAttrs(e Entry) []any {
	changes := make([]any, 0, len(e.Changes))
	for _, c := range e.Changes {
		changes = append(changes, slog.Group(c.Key, "old", c.Old, "new", c.New))
	}
	return []any{
		slog.Uint64("id", e.ID),
		slog.Uint64("server", e.ServerID),
		slog.Uint64("actor", e.ActorID),
		slog.String("action", string(e.Action)),
		slog.Uint64("target", e.TargetID),
		slog.Group("changes", changes...),
		slog.String("reason", e.Reason),
		slog.Time("created", e.CreatedAt),
	}
}

// List returns a page of serverID's log, newest first. A Limit of 0 means
// DefaultLimit; a negative Limit, one over MaxLimit, an unknown Action or a
// server ID of 0 is Invalid. The caller checks that the reader may view
// the log. A nil *Log lists nothing.
func (l *Log) List(ctx context.Context, serverID uint64, q Query) ([]Entry, error) {
	const op = "audit.List"
	switch {
	case serverID == 0:
		return nil, guildhall.E(op, guildhall.Invalid, "no server")
	case q.Limit < 0 || q.Limit > MaxLimit:
		return nil, guildhall.E(op, guildhall.Invalid, "limit must be 1 to %d", MaxLimit)
	case q.Action != "" && !q.Action.Valid():
		return nil, guildhall.E(op, guildhall.Invalid, "unknown action %q", q.Action)
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if l == nil {
		return []Entry{}, nil
	}
	entries, err := l.store.List(ctx, serverID, q)
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	return entries, nil
}

// Run deletes entries older than the retention, once at start and then
// every PruneEvery, until ctx is done; it returns only then, also when
// the retention is negative (nothing to delete) or l is nil. The caller
// runs it on a goroutine it owns and stops it by cancelling ctx. A failed
// prune is logged and retried at the next tick.
func (l *Log) Run(ctx context.Context) {
	if l == nil || l.retention < 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(PruneEvery)
	defer t.Stop()
	for {
		l.prune(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *Log) prune(ctx context.Context) {
	cutoff := l.now().Add(-l.retention)
	n, err := l.store.Prune(ctx, cutoff)
	switch {
	case err != nil && ctx.Err() != nil:
		// Shutting down; the next start prunes again.
	case err != nil:
		l.log.ErrorContext(ctx, "audit: prune failed", slog.Time("older_than", cutoff), slog.Int("deleted", n), slog.Any("err", err))
	case n > 0:
		l.log.InfoContext(ctx, "audit: pruned", slog.Time("older_than", cutoff), slog.Int("deleted", n))
	}
}
