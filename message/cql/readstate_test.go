package cql_test

import (
	"sync"
	"testing"

	"github.com/guildhall/guildhall/internal/cqldb/cqltest"
	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/cql"
	"github.com/guildhall/guildhall/message/unreadtest"
)

func TestReadStateStore(t *testing.T) {
	unreadtest.RunStore(t, func(t *testing.T) message.ReadStateStore {
		return cql.NewReadStates(cqltest.MustSession(t, cql.ReadStatesComponent, cql.ReadStatesMigrations))
	})
}

// TestReadStatesPaging: a user with more positions than one page of the
// query gets them all, in channel order.
func TestReadStatesPaging(t *testing.T) {
	s := cql.NewReadStates(cqltest.MustSession(t, cql.ReadStatesComponent, cql.ReadStatesMigrations))
	const n, workers = 5100, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for ch := uint64(w + 1); ch <= n; ch += workers {
				if err := s.PutReadPosition(t.Context(), 9, message.ReadPosition{ChannelID: ch, Seq: ch, ID: ch * 10}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ps, err := s.ReadPositions(t.Context(), 9)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != n {
		t.Fatalf("%d positions, want %d", len(ps), n)
	}
	for i, p := range ps {
		if ch := uint64(i + 1); p != (message.ReadPosition{ChannelID: ch, Seq: ch, ID: ch * 10}) {
			t.Fatalf("position %d = %+v", i, p)
		}
	}
}
