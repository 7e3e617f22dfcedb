package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/scylladb/gocqlx/v2"

	"github.com/guildhall/guildhall/audit"
	auditcql "github.com/guildhall/guildhall/audit/cql"
	auditpebble "github.com/guildhall/guildhall/audit/pebble"
	"github.com/guildhall/guildhall/internal/cqldb"
	"github.com/guildhall/guildhall/internal/redisdb"
	"github.com/guildhall/guildhall/member"
	membercql "github.com/guildhall/guildhall/member/cql"
	memberpebble "github.com/guildhall/guildhall/member/pebble"
	"github.com/guildhall/guildhall/message"
	messagecql "github.com/guildhall/guildhall/message/cql"
	"github.com/guildhall/guildhall/message/hotcache"
	messageinmem "github.com/guildhall/guildhall/message/inmem"
	messagepebble "github.com/guildhall/guildhall/message/pebble"
	messageredis "github.com/guildhall/guildhall/message/redis"
	"github.com/guildhall/guildhall/role"
	rolecql "github.com/guildhall/guildhall/role/cql"
	rolepebble "github.com/guildhall/guildhall/role/pebble"
)

// stores is what the api, link and message roles run on. openEmbedded
// builds it on one Pebble database (one process); openDistributed on a
// CQL keyspace and Redis that many processes share. Run builds the
// services from it the same way in both modes.
type stores struct {
	members  member.Store
	roles    role.Store
	audit    audit.Store
	messages message.Store
	// cache is the central cache of recent history: message/inmem, or
	// message/redis behind the message/hotcache layer. The message service
	// writes it once a change is durable; history reads merge it with the
	// store.
	cache message.Cache
	// counters are the unread heads, positions and mention sets:
	// message/inmem or message/redis.
	counters message.UnreadCounters
	// readStates holds read positions durably: message/pebble or
	// message/cql.
	readStates message.ReadStateStore

	// What the implementations above sit on; nil/zero when unused.
	db    *pebbledb.DB                  // embedded
	cql   *gocqlx.Session               // distributed
	redis *redis.Client                 // distributed
	close []func(context.Context) error // run in reverse by Close
}

// Close releases what open* opened, last opened first.
func (s *stores) Close(ctx context.Context) error {
	var errs []error
	for i := len(s.close) - 1; i >= 0; i-- {
		errs = append(errs, s.close[i](ctx))
	}
	s.close = nil
	return errors.Join(errs...)
}

// openEmbedded opens the Pebble database under --data-dir.
func (m *Main) openEmbedded() (*stores, error) {
	c := m.Config
	db, err := pebbledb.Open(filepath.Join(c.DataDir, "store"), &pebbledb.Options{Logger: pebbleLog{m.Log.With("component", "pebble")}})
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w (is another guildhall using this --data-dir?)", c.DataDir, err)
	}
	s := &stores{
		db:       db,
		members:  memberpebble.New(db),
		roles:    rolepebble.New(db),
		audit:    auditpebble.New(db),
		messages: messagepebble.New(db),
		// One process: the cache and counters live in its memory.
		cache:      messageinmem.New(messageinmem.Config{}),
		counters:   messageinmem.NewCounters(messageinmem.CountersConfig{}),
		readStates: messagepebble.NewReadStates(db),
		close:      []func(context.Context) error{func(context.Context) error { return db.Close() }},
	}
	return s, nil
}

// openDistributed connects to the CQL keyspace and to Redis. The keyspace
// must carry every component's migrations: --migrate applies them first,
// otherwise a missing one is an error that says to run guildhall migrate.
//
// The Redis cache gets the hot-key layer (message/hotcache) in front,
// whose copies stay coherent over nc.
func (m *Main) openDistributed(ctx context.Context, nc *nats.Conn) (*stores, error) {
	c := m.Config
	s := &stores{}
	if c.Migrate {
		if err := m.migrate(ctx, logWriter{m}); err != nil {
			return nil, err
		}
	}
	session, err := cqldb.Open(ctx, m.cqlConfig(true))
	if err != nil {
		return nil, err
	}
	s.cql = &session
	s.close = append(s.close, func(context.Context) error { session.Close(); return nil })
	if err := checkMigrated(ctx, session, c.CQL.Keyspace); err != nil {
		_ = s.Close(ctx)
		return nil, err
	}
	s.redis, err = redisdb.Open(ctx, redisdb.Config{Addr: c.Redis.Addr, Password: c.Redis.Password, DB: c.Redis.DB})
	if err != nil {
		_ = s.Close(ctx)
		return nil, err
	}
	s.close = append(s.close, func(context.Context) error { return s.redis.Close() })
	s.members = membercql.New(session)
	s.roles = rolecql.New(session)
	s.audit = auditcql.New(session)
	s.messages = messagecql.New(session)
	hot, err := hotcache.New(messageredis.NewCache(s.redis, messageredis.CacheConfig{Prefix: c.Redis.Prefix}), nc,
		hotcache.Config{Logger: m.Log.With("component", "hotcache"), Registerer: m.metrics})
	if err != nil {
		_ = s.Close(ctx)
		return nil, fmt.Errorf("message cache: %w", err)
	}
	s.cache = hot
	s.close = append(s.close, hot.Shutdown)
	s.counters = messageredis.NewCounters(s.redis, messageredis.CountersConfig{Prefix: c.Redis.Prefix})
	s.readStates = messagecql.NewReadStates(session)
	return s, nil
}

// cqlComponents are the CQL schemas guildhall migrate applies, in order.
// A new CQL store adds its line here.
var cqlComponents = []struct {
	name       string
	migrations []cqldb.Migration
}{
	{membercql.Component, membercql.Migrations},
	{rolecql.Component, rolecql.Migrations},
	{auditcql.Component, auditcql.Migrations},
	{messagecql.Component, messagecql.Migrations},
	{messagecql.ReadStatesComponent, messagecql.ReadStatesMigrations},
}

func (m *Main) cqlConfig(mustExist bool) cqldb.Config {
	c := m.Config.CQL
	return cqldb.Config{
		Hosts:             c.Hosts,
		Keyspace:          c.Keyspace,
		ReplicationFactor: c.ReplicationFactor,
		DataCenters:       c.DataCenters,
		MustExist:         mustExist,
		Username:          c.Username,
		Password:          c.Password,
		Timeout:           c.Timeout,
		Consistency:       c.Consistency,
	}
}

// migrate creates the keyspace if it is missing and applies every
// component's pending migrations, writing one line per migration applied
// (or one saying there was nothing to do) to w. Running it again is a
// no-op, and one cut short is finished by the next run. Run one migrator
// at a time: concurrent DDL on one table can confuse a multi-node
// Cassandra.
func (m *Main) migrate(ctx context.Context, w io.Writer) error {
	cfg := m.cqlConfig(false)
	session, err := cqldb.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer session.Close()
	n := 0
	var versions []string
	for _, comp := range cqlComponents {
		applied, err := cqldb.Apply(ctx, session, comp.name, comp.migrations)
		for _, a := range applied {
			fmt.Fprintf(w, "applied %s %d: %s\n", comp.name, a.Version, a.Name)
		}
		n += len(applied)
		if err != nil {
			return fmt.Errorf("migrate keyspace %s: %w", cfg.Keyspace, err)
		}
		versions = append(versions, fmt.Sprintf("%s %d", comp.name, len(comp.migrations)))
	}
	if n == 0 {
		fmt.Fprintf(w, "keyspace %s is up to date (%s): nothing to apply\n", cfg.Keyspace, strings.Join(versions, ", "))
	} else {
		fmt.Fprintf(w, "keyspace %s: applied %d migrations, now at %s\n", cfg.Keyspace, n, strings.Join(versions, ", "))
	}
	return nil
}

// checkMigrated fails, saying what to do, when the keyspace lacks a
// migration this binary's stores need.
func checkMigrated(ctx context.Context, s gocqlx.Session, keyspace string) error {
	var missing []string
	for _, comp := range cqlComponents {
		pending, err := cqldb.Pending(ctx, s, comp.name, comp.migrations)
		if err != nil {
			return err
		}
		for _, p := range pending {
			missing = append(missing, fmt.Sprintf("%s %d (%s)", comp.name, p.Version, p.Name))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("keyspace %s lacks migrations %s: run `guildhall migrate` with the same --cql-* flags, or start with --migrate", keyspace, strings.Join(missing, ", "))
	}
	return nil
}

// logWriter turns migrate's report lines into log records (--migrate).
type logWriter struct{ m *Main }

func (l logWriter) Write(p []byte) (int, error) {
	l.m.Log.Info("migrate: " + strings.TrimSpace(string(p)))
	return len(p), nil
}
