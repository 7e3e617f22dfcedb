package cqldb_test

import (
	"context"
	"slices"
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
	// Gaps in numbering are refused.
	bad := []cqldb.Migration{{Version: 1}, {Version: 3}}
	if err := cqldb.Migrate(ctx, s, "other", bad); err == nil {
		t.Fatal("gap accepted")
	}
}
