package cql

import "github.com/guildhall/guildhall/internal/cqldb"

// Component is the name this package's migrations are recorded under in
// schema_migrations.
const Component = "role"

// Migrations is the schema of this package, applied by cqldb.Migrate. See
// doc.go for what each table holds.
var Migrations = []cqldb.Migration{
	{Version: 1, Name: "roles, member roles, overwrites, versions", Statements: []string{
		`CREATE TABLE IF NOT EXISTS roles (
			server_id   bigint,
			role_id     bigint,
			position    bigint,
			permissions bigint,
			name        text,
			color       bigint,
			hoist       boolean,
			mentionable boolean,
			PRIMARY KEY (server_id, role_id))`,
		`CREATE TABLE IF NOT EXISTS member_roles (
			server_id bigint,
			user_id   bigint,
			role_id   bigint,
			PRIMARY KEY ((server_id, user_id), role_id))`,
		`CREATE TABLE IF NOT EXISTS overwrites (
			channel_id bigint,
			type       tinyint,
			target_id  bigint,
			allow_bits bigint,
			deny_bits  bigint,
			PRIMARY KEY (channel_id, type, target_id))`,
		`CREATE TABLE IF NOT EXISTS role_versions (
			server_id bigint PRIMARY KEY,
			version   counter)`,
	}},
}
