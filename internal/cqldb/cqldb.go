// Package cqldb connects Guildhall's CQL stores (ScyllaDB in production,
// Cassandra in tests) and applies their versioned schema migrations.
//
// Every store package (member/cql, message/cql, ...) owns its migrations
// as a list of Migration under one component name; Migrate applies, in
// version order, those the keyspace has not recorded yet, and records each
// in the schema_migrations table. Statements must be idempotent (CREATE
// TABLE IF NOT EXISTS, ...) so that two processes migrating at once, or a
// crash between a statement and its record, do no harm.
package cqldb

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"
)

// Config says where the CQL cluster is.
type Config struct {
	Hosts    []string // host:port of one or more nodes
	Keyspace string   // created if missing
	// ReplicationFactor for a keyspace this package creates (default 1,
	// fine for a single node; production creates its keyspace itself).
	ReplicationFactor int
	Timeout           time.Duration // per query, default 10s
	// Consistency of reads and writes, default LOCAL_QUORUM.
	Consistency gocql.Consistency
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)

func (c Config) cluster(keyspace string) *gocql.ClusterConfig {
	cl := gocql.NewCluster(c.Hosts...)
	cl.Keyspace = keyspace
	cl.Timeout = c.Timeout
	cl.ConnectTimeout = c.Timeout
	cl.Consistency = c.Consistency
	// Loopback test servers and containers advertise addresses the client
	// cannot always reach; the given hosts are the ones to use.
	cl.DisableInitialHostLookup = true
	return cl
}

// Open connects, creating the keyspace if needed. Close the session when
// done.
func Open(ctx context.Context, c Config) (gocqlx.Session, error) {
	if len(c.Hosts) == 0 {
		return gocqlx.Session{}, fmt.Errorf("cqldb: no hosts")
	}
	if !validName.MatchString(c.Keyspace) {
		return gocqlx.Session{}, fmt.Errorf("cqldb: keyspace %q: want lower-case letters, digits and _", c.Keyspace)
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 1
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Consistency == 0 {
		c.Consistency = gocql.LocalQuorum
	}
	admin, err := gocqlx.WrapSession(c.cluster("").CreateSession())
	if err != nil {
		return gocqlx.Session{}, fmt.Errorf("cqldb: connect to %v: %w", c.Hosts, err)
	}
	err = admin.ContextQuery(ctx, fmt.Sprintf(
		`CREATE KEYSPACE IF NOT EXISTS %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': %d}`,
		c.Keyspace, c.ReplicationFactor), nil).ExecRelease()
	admin.Close()
	if err != nil {
		return gocqlx.Session{}, fmt.Errorf("cqldb: create keyspace %s: %w", c.Keyspace, err)
	}
	s, err := gocqlx.WrapSession(c.cluster(c.Keyspace).CreateSession())
	if err != nil {
		return gocqlx.Session{}, fmt.Errorf("cqldb: connect to keyspace %s: %w", c.Keyspace, err)
	}
	return s, nil
}

// Migration is one step of a component's schema.
type Migration struct {
	Version    int // 1, 2, 3, ... per component
	Name       string
	Statements []string // each idempotent
}

// Migrate applies the migrations of component that the keyspace has not
// recorded yet, in version order.
func Migrate(ctx context.Context, s gocqlx.Session, component string, ms []Migration) error {
	if err := s.ContextQuery(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component text, version int, name text, applied_at timestamp,
		PRIMARY KEY (component, version))`, nil).ExecRelease(); err != nil {
		return fmt.Errorf("cqldb: schema_migrations: %w", err)
	}
	var done []int
	if err := s.ContextQuery(ctx, `SELECT version FROM schema_migrations WHERE component = ?`, nil).
		Bind(component).SelectRelease(&done); err != nil {
		return fmt.Errorf("cqldb: read applied migrations of %s: %w", component, err)
	}
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return fmt.Errorf("cqldb: %s migrations must be numbered 1, 2, 3...: found %d at position %d", component, m.Version, i+1)
		}
		if slices.Contains(done, m.Version) {
			continue
		}
		for _, stmt := range m.Statements {
			if err := s.ContextQuery(ctx, stmt, nil).ExecRelease(); err != nil {
				return fmt.Errorf("cqldb: %s migration %d (%s): %w", component, m.Version, m.Name, err)
			}
		}
		if err := s.ContextQuery(ctx, `INSERT INTO schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)`, nil).
			Bind(component, m.Version, m.Name, time.Now().UTC()).ExecRelease(); err != nil {
			return fmt.Errorf("cqldb: record %s migration %d: %w", component, m.Version, err)
		}
	}
	return nil
}

// Applied lists the versions of component recorded in the keyspace.
func Applied(ctx context.Context, s gocqlx.Session, component string) ([]int, error) {
	var done []int
	err := s.ContextQuery(ctx, `SELECT version FROM schema_migrations WHERE component = ?`, nil).
		Bind(component).SelectRelease(&done)
	slices.Sort(done)
	return done, err
}
