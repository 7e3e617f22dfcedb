package cql

import (
	"time"

	"github.com/guildhall/guildhall/audit"
	"github.com/guildhall/guildhall/internal/cqldb"
)

// Component is the name this package's migrations are recorded under in
// schema_migrations.
const Component = "audit"

// Migrations is the schema of this package, applied by cqldb.Migrate. See
// doc.go for what each table holds. Every table expires its rows after
// audit.DefaultRetention (default_time_to_live, 7,776,000 s); a deployment
// with another retention alters the four tables (see doc.go).
var Migrations = []cqldb.Migration{
	{Version: 1, Name: "entries, buckets, creation-time index", Statements: []string{
		`CREATE TABLE IF NOT EXISTS audit_entries (
			server_id  bigint,
			bucket     int,
			id         bigint,
			actor_id   bigint,
			action     text,
			target_id  bigint,
			changes    list<frozen<tuple<blob, blob, blob>>>,
			reason     blob,
			created_at timestamp,
			PRIMARY KEY ((server_id, bucket), id))
		WITH CLUSTERING ORDER BY (id DESC)
			AND default_time_to_live = ` + ttl + `
			AND compaction = ` + twcs,
		`CREATE TABLE IF NOT EXISTS audit_buckets (
			server_id bigint,
			bucket    int,
			PRIMARY KEY (server_id, bucket))
		WITH CLUSTERING ORDER BY (bucket DESC)
			AND default_time_to_live = ` + ttl,
		`CREATE TABLE IF NOT EXISTS audit_by_time (
			hour       bigint,
			shard      int,
			created_at timestamp,
			server_id  bigint,
			id         bigint,
			PRIMARY KEY ((hour, shard), created_at, server_id, id))
		WITH default_time_to_live = ` + ttl + `
			AND compaction = ` + twcs,
		`CREATE TABLE IF NOT EXISTS audit_hours (
			part int,
			hour bigint,
			PRIMARY KEY (part, hour))
		WITH default_time_to_live = ` + ttl,
	}},
}

// ttl is audit.DefaultRetention in seconds, as CQL wants it.
const ttl = "7776000"

// twcs groups the SSTables of the tables written once and expired by TTL
// by the 3-day window they were written in, so that a window's files are
// dropped whole once all of it has expired, without compacting it.
const twcs = `{'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', 'compaction_window_size': 3}`

// ttl is pinned, not computed, because an applied migration must not
// change; this fails to compile if audit.DefaultRetention moves away from
// it, which then needs a migration that alters the tables.
var _ = [1]struct{}{}[audit.DefaultRetention/time.Second-7776000]
