// Package cqltest gives tests a fresh keyspace on the real CQL server that
// deploy/test.sh starts (deploy/testdeps/cql.sh), found through CQL_HOSTS.
// Without CQL_HOSTS a test is skipped, except under CI=true, where it
// fails: CI must run every store against the real server.
package cqltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/scylladb/gocqlx/v2"

	"github.com/guildhall/guildhall/internal/cqldb"
)

// Hosts returns the CQL hosts of the test server, skipping (or, under CI,
// failing) the test when there is none.
func Hosts(tb testing.TB) []string {
	tb.Helper()
	env := os.Getenv("CQL_HOSTS")
	if env == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("CQL_HOSTS is not set: CI runs the CQL stores against a real server (deploy/test.sh starts one)")
		}
		tb.Skip("CQL_HOSTS not set; run deploy/test.sh, or eval \"$(deploy/testdeps/cql.sh start)\"")
	}
	return strings.Split(env, ",")
}

// MustSession opens a session on a new keyspace, applies migrations
// under component, and drops the keyspace when the test ends.
func MustSession(tb testing.TB, component string, migrations []cqldb.Migration) gocqlx.Session {
	tb.Helper()
	hosts := Hosts(tb)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	keyspace := "t_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := cqldb.Open(ctx, cqldb.Config{Hosts: hosts, Keyspace: keyspace, Timeout: 30 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = s.ContextQuery(context.Background(), "DROP KEYSPACE IF EXISTS "+keyspace, nil).ExecRelease()
		s.Close()
	})
	if err := cqldb.Migrate(ctx, s, component, migrations); err != nil {
		tb.Fatal(err)
	}
	return s
}
