package cql_test

import (
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
