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
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"
)

// Config says where the CQL cluster is.
type Config struct {
	Hosts    []string // host:port of one or more nodes
	Keyspace string   // created if missing
	// ReplicationFactor for a keyspace this package creates with
	// SimpleStrategy (default 1, fine for a single node).
	ReplicationFactor int
	// DataCenters, when not empty, creates the keyspace with
	// NetworkTopologyStrategy instead: data center name → replicas.
	DataCenters map[string]int
	// MustExist refuses to create the keyspace: Open fails when it is
	// missing (processes that only serve; migrations create it).
	MustExist bool
	// Username and Password log in with PasswordAuthenticator when
	// Username is set.
	Username, Password string
	Timeout            time.Duration // per query, default 10s
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
	if c.Username != "" {
		cl.Authenticator = gocql.PasswordAuthenticator{Username: c.Username, Password: c.Password}
	}
	return cl
}

// Open connects, creating the keyspace with c.Replication() if it is
// missing (unless c.MustExist). Close the session when done.
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
	if !c.MustExist {
		if err := createKeyspace(ctx, c); err != nil {
			return gocqlx.Session{}, err
		}
	}
	s, err := gocqlx.WrapSession(c.cluster(c.Keyspace).CreateSession())
	if err != nil {
		if c.MustExist {
			return gocqlx.Session{}, fmt.Errorf("cqldb: connect to keyspace %s (does it exist? migrations create it): %w", c.Keyspace, err)
		}
		return gocqlx.Session{}, fmt.Errorf("cqldb: connect to keyspace %s: %w", c.Keyspace, err)
	}
	return s, nil
}

// Replication is the replication map of CREATE KEYSPACE for c.
func (c Config) Replication() string {
	if len(c.DataCenters) == 0 {
		rf := c.ReplicationFactor
		if rf == 0 {
			rf = 1
		}
		return fmt.Sprintf("{'class': 'SimpleStrategy', 'replication_factor': %d}", rf)
	}
	dcs := slices.Sorted(maps.Keys(c.DataCenters))
	var b strings.Builder
	b.WriteString("{'class': 'NetworkTopologyStrategy'")
	for _, dc := range dcs {
		fmt.Fprintf(&b, ", '%s': %d", strings.ReplaceAll(dc, "'", "''"), c.DataCenters[dc])
	}
	b.WriteString("}")
	return b.String()
}

func createKeyspace(ctx context.Context, c Config) error {
	for dc, n := range c.DataCenters {
		if dc == "" || n < 1 {
			return fmt.Errorf("cqldb: replication %q: %d: want a data center name and at least 1 replica", dc, n)
		}
	}
	if c.ReplicationFactor < 0 {
		return fmt.Errorf("cqldb: replication factor %d: want at least 1", c.ReplicationFactor)
	}
	admin, err := gocqlx.WrapSession(c.cluster("").CreateSession())
	if err != nil {
		return fmt.Errorf("cqldb: connect to %v: %w", c.Hosts, err)
	}
	defer admin.Close()
	err = admin.ContextQuery(ctx, fmt.Sprintf(`CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s`,
		c.Keyspace, c.Replication()), nil).ExecRelease()
	if err != nil {
		return fmt.Errorf("cqldb: create keyspace %s: %w", c.Keyspace, err)
	}
	return nil
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
	_, err := Apply(ctx, s, component, ms)
	return err
}

// Apply is Migrate that also returns the migrations it applied (none when
// the keyspace had them all).
func Apply(ctx context.Context, s gocqlx.Session, component string, ms []Migration) ([]Migration, error) {
	if err := s.ContextQuery(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		component text, version int, name text, applied_at timestamp,
		PRIMARY KEY (component, version))`, nil).ExecRelease(); err != nil {
		return nil, fmt.Errorf("cqldb: schema_migrations: %w", err)
	}
	var done []int
	if err := s.ContextQuery(ctx, `SELECT version FROM schema_migrations WHERE component = ?`, nil).
		Bind(component).SelectRelease(&done); err != nil {
		return nil, fmt.Errorf("cqldb: read applied migrations of %s: %w", component, err)
	}
	ms, err := ordered(component, ms)
	if err != nil {
		return nil, err
	}
	var applied []Migration
	for _, m := range ms {
		if slices.Contains(done, m.Version) {
			continue
		}
		for _, stmt := range m.Statements {
			if err := s.ContextQuery(ctx, stmt, nil).ExecRelease(); err != nil {
				return applied, fmt.Errorf("cqldb: %s migration %d (%s): %w", component, m.Version, m.Name, err)
			}
		}
		if err := s.ContextQuery(ctx, `INSERT INTO schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)`, nil).
			Bind(component, m.Version, m.Name, time.Now().UTC()).ExecRelease(); err != nil {
			return applied, fmt.Errorf("cqldb: record %s migration %d: %w", component, m.Version, err)
		}
		applied = append(applied, m)
	}
	return applied, nil
}

func ordered(component string, ms []Migration) ([]Migration, error) {
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("cqldb: %s migrations must be numbered 1, 2, 3...: found %d at position %d", component, m.Version, i+1)
		}
	}
	return ms, nil
}

// Pending returns the migrations of component that the keyspace has not
// recorded, without applying anything: all of them when the keyspace was
// never migrated.
func Pending(ctx context.Context, s gocqlx.Session, component string, ms []Migration) ([]Migration, error) {
	ms, err := ordered(component, ms)
	if err != nil {
		return nil, err
	}
	done, err := Applied(ctx, s, component)
	var rerr gocql.RequestError
	if errors.As(err, &rerr) && rerr.Code() == gocql.ErrCodeInvalid {
		return ms, nil // no schema_migrations table: never migrated
	}
	if err != nil {
		return nil, fmt.Errorf("cqldb: read applied migrations of %s: %w", component, err)
	}
	return slices.DeleteFunc(ms, func(m Migration) bool { return slices.Contains(done, m.Version) }), nil
}

// Applied lists the versions of component recorded in the keyspace.
func Applied(ctx context.Context, s gocqlx.Session, component string) ([]int, error) {
	var done []int
	err := s.ContextQuery(ctx, `SELECT version FROM schema_migrations WHERE component = ?`, nil).
		Bind(component).SelectRelease(&done)
	slices.Sort(done)
	return done, err
}
