package cql

import "github.com/guildhall/guildhall/internal/cqldb"

// Component names this package's migrations in schema_migrations.
const Component = "member"

// Migrations is the schema of the member tables, applied by cqldb.Migrate.
// Every statement is idempotent. A released migration is never edited: a
// change of schema is a new version appended here.
//
// Which table is the truth and which is an index, and how they are kept
// in step, is in doc.go.
var Migrations = []cqldb.Migration{
	{Version: 1, Name: "member tables", Statements: []string{
		// Written only with lightweight transactions.
		`CREATE TABLE IF NOT EXISTS users (
			id bigint PRIMARY KEY,
			username text,
			password_hash blob,
			created_at timestamp)`,
		`CREATE TABLE IF NOT EXISTS users_by_name (
			name_lower text PRIMARY KEY,
			user_id bigint,
			claimed_at timestamp)`,
		`CREATE TABLE IF NOT EXISTS tokens (
			hash blob PRIMARY KEY,
			user_id bigint,
			created_at timestamp,
			expires_at timestamp)`,
		`CREATE TABLE IF NOT EXISTS servers (
			id bigint PRIMARY KEY,
			name text,
			owner_id bigint,
			created_at timestamp,
			pending boolean)`,
		`CREATE TABLE IF NOT EXISTS channels (
			id bigint PRIMARY KEY,
			server_id bigint,
			name text,
			type int,
			position bigint,
			parent_id bigint,
			synced boolean,
			created_at timestamp,
			version bigint,
			pending boolean)`,
		`CREATE TABLE IF NOT EXISTS invites (
			code text PRIMARY KEY,
			server_id bigint,
			creator_id bigint,
			max_uses int,
			uses int,
			expires_at timestamp,
			created_at timestamp)`,
		// One row per (server, user) that is a member or banned; the
		// static member_count is the server's member count.
		`CREATE TABLE IF NOT EXISTS members (
			server_id bigint,
			user_id bigint,
			member_count bigint STATIC,
			banned boolean,
			version bigint,
			username text,
			nick text,
			joined_at timestamp,
			ban_username text,
			ban_actor_id bigint,
			ban_reason text,
			ban_created_at timestamp,
			PRIMARY KEY (server_id, user_id))`,

		// Written without lightweight transactions, each write at an
		// explicit timestamp (USING TIMESTAMP) taken from the version of
		// the row it follows.
		`CREATE TABLE IF NOT EXISTS channels_by_server (
			server_id bigint,
			id bigint,
			name text,
			type int,
			position bigint,
			parent_id bigint,
			synced boolean,
			created_at timestamp,
			version bigint,
			PRIMARY KEY (server_id, id))`,
		`CREATE TABLE IF NOT EXISTS servers_by_user (
			user_id bigint,
			server_id bigint,
			PRIMARY KEY (user_id, server_id))`,
		`CREATE TABLE IF NOT EXISTS members_by_name (
			server_id bigint,
			name_lower text,
			user_id bigint,
			PRIMARY KEY (server_id, name_lower, user_id))`,
		`CREATE TABLE IF NOT EXISTS bans (
			server_id bigint,
			user_id bigint,
			PRIMARY KEY (server_id, user_id))`,
	}},
}
