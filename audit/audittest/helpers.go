package audittest

import (
	"slices"
	"testing"
	"time"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/audit"
)

// MustAppend appends e to s.
func MustAppend(tb testing.TB, s audit.Store, e audit.Entry) {
	tb.Helper()
	if err := s.Append(tb.Context(), e); err != nil {
		tb.Fatalf("Append(%d in server %d): %v", e.ID, e.ServerID, err)
	}
}

// WantIDs checks the IDs of the page that q selects in serverID.
func WantIDs(tb testing.TB, s audit.Store, serverID uint64, q audit.Query, want ...uint64) {
	tb.Helper()
	es, err := s.List(tb.Context(), serverID, q)
	if err != nil {
		tb.Fatalf("List(%d, %+v): %v", serverID, q, err)
	}
	if got := ids(es); !slices.Equal(got, want) {
		tb.Errorf("List(%d, %+v) IDs = %v\nwant %v", serverID, q, got, want)
	}
}

// WantEntries checks the page that q selects in serverID, field by field.
// Times are compared with Equal; nil and empty Changes are the same.
func WantEntries(tb testing.TB, s audit.Store, serverID uint64, q audit.Query, want ...audit.Entry) {
	tb.Helper()
	es, err := s.List(tb.Context(), serverID, q)
	if err != nil {
		tb.Fatalf("List(%d, %+v): %v", serverID, q, err)
	}
	if len(es) != len(want) {
		tb.Fatalf("List(%d, %+v) IDs = %v\nwant %v", serverID, q, ids(es), ids(want))
	}
	for i := range es {
		if !Equal(es[i], want[i]) {
			tb.Errorf("List(%d, %+v)[%d] = %+v\nwant %+v", serverID, q, i, es[i], want[i])
		}
	}
}

// Equal reports whether two entries are the same: times are compared
// with Equal, and nil and empty Changes are the same.
func Equal(a, b audit.Entry) bool {
	return a.ID == b.ID && a.ServerID == b.ServerID && a.ActorID == b.ActorID &&
		a.Action == b.Action && a.TargetID == b.TargetID && a.Reason == b.Reason &&
		a.CreatedAt.Equal(b.CreatedAt) && slices.Equal(a.Changes, b.Changes)
}

// entry is an entry without changes or reason.
func entry(serverID, id, actorID uint64, action audit.Action, created time.Time) audit.Entry {
	return audit.Entry{ID: id, ServerID: serverID, ActorID: actorID, Action: action, TargetID: id + 1, CreatedAt: created}
}

func ids(es []audit.Entry) []uint64 {
	out := make([]uint64, 0, len(es))
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func wantKind(tb testing.TB, what string, err error, kind guildhall.Kind) {
	tb.Helper()
	if err == nil {
		tb.Errorf("%s: no error, want %s", what, kind.Code())
		return
	}
	if got := guildhall.KindOf(err); got != kind {
		tb.Errorf("%s: error %q is %s, want %s", what, err, got.Code(), kind.Code())
	}
}
