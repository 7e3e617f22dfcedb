package cqldb_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/guildhall/guildhall/internal/cqldb"
	"github.com/guildhall/guildhall/internal/cqldb/cqltest"
)

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	v1 := []cqldb.Migration{{Version: 1, Name: "things", Statements: []string{
		`CREATE TABLE IF NOT EXISTS things (id bigint PRIMARY KEY, name text)`,
	}}}
	s := cqltest.MustSession(t, "test", v1)
	if got, err := cqldb.Applied(ctx, s, "test"); err != nil || !slices.Equal(got, []int{1}) {
		t.Fatalf("applied %v, %v", got, err)
	}
	v2 := append(v1, cqldb.Migration{Version: 2, Name: "more", Statements: []string{
		`ALTER TABLE things ADD size int`,
	}})
	if err := cqldb.Migrate(ctx, s, "test", v2); err != nil {
		t.Fatal(err)
	}
	// Applying again changes nothing (v2's ALTER would fail if re-run).
	if err := cqldb.Migrate(ctx, s, "test", v2); err != nil {
		t.Fatal(err)
	}
	if err := s.ContextQuery(ctx, `INSERT INTO things (id, name, size) VALUES (1, 'a', 2)`, nil).ExecRelease(); err != nil {
		t.Fatal(err)
	}
	if got, _ := cqldb.Applied(ctx, s, "test"); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("applied %v", got)
	}
	// Apply reports what it applied; Pending what is left.
	v3 := append(v2, cqldb.Migration{Version: 3, Name: "yet more", Statements: []string{
		`ALTER TABLE things ADD colour text`,
	}})
	if p, err := cqldb.Pending(ctx, s, "test", v3); err != nil || len(p) != 1 || p[0].Version != 3 {
		t.Fatalf("pending %v, %v", p, err)
	}
	if got, err := cqldb.Apply(ctx, s, "test", v3); err != nil || len(got) != 1 || got[0].Name != "yet more" {
		t.Fatalf("apply %v, %v", got, err)
	}
	if got, err := cqldb.Apply(ctx, s, "test", v3); err != nil || len(got) != 0 {
		t.Fatalf("apply again %v, %v", got, err)
	}
	if p, err := cqldb.Pending(ctx, s, "never", v1); err != nil || len(p) != 1 {
		t.Fatalf("pending of an unknown component %v, %v", p, err)
	}
	// Gaps in numbering are refused.
	bad := []cqldb.Migration{{Version: 1}, {Version: 3}}
	if err := cqldb.Migrate(ctx, s, "other", bad); err == nil {
		t.Fatal("gap accepted")
	}
}

func TestReplication(t *testing.T) {
	for _, tc := range []struct {
		c    cqldb.Config
		want string
	}{
		{cqldb.Config{}, "{'class': 'SimpleStrategy', 'replication_factor': 1}"},
		{cqldb.Config{ReplicationFactor: 3}, "{'class': 'SimpleStrategy', 'replication_factor': 3}"},
		{cqldb.Config{DataCenters: map[string]int{"eu": 3, "us": 2}}, "{'class': 'NetworkTopologyStrategy', 'eu': 3, 'us': 2}"},
	} {
		if got := tc.c.Replication(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.c, got, tc.want)
		}
	}
}

func TestOpenMustExist(t *testing.T) {
	hosts := cqltest.Hosts(t)
	_, err := cqldb.Open(context.Background(), cqldb.Config{Hosts: hosts, Keyspace: "no_such_keyspace_here", MustExist: true})
	if err == nil || !strings.Contains(err.Error(), "no_such_keyspace_here") {
		t.Fatalf("open of a missing keyspace: %v", err)
	}
}
