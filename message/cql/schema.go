package cql

import (
	"time"

	"github.com/guildhall/guildhall/internal/cqldb"
	"github.com/guildhall/guildhall/snowflake"
)

// Component is the name this package's migrations are recorded under in
// schema_migrations.
const Component = "message"

// Migrations is the schema of this package, applied by cqldb.Migrate. See
// doc.go for what each table holds and why it is keyed the way it is.
var Migrations = []cqldb.Migration{
	{Version: 1, Name: "messages, buckets, seqs, channel meta, nonces", Statements: []string{
		`CREATE TABLE IF NOT EXISTS messages (
			channel_id bigint,
			bucket     int,
			id         bigint,
			server_id  bigint,
			author_id  bigint,
			seq        bigint,
			nonce      text,
			content    text,
			created_at timestamp,
			edited_at  timestamp,
			PRIMARY KEY ((channel_id, bucket), id))
		WITH CLUSTERING ORDER BY (id DESC)`,
		`CREATE TABLE IF NOT EXISTS message_buckets (
			channel_id bigint,
			bucket     int,
			PRIMARY KEY (channel_id, bucket))
		WITH CLUSTERING ORDER BY (bucket DESC)`,
		`CREATE TABLE IF NOT EXISTS message_seqs (
			channel_id bigint,
			block      bigint,
			seq        bigint,
			id         bigint,
			PRIMARY KEY ((channel_id, block), seq))
		WITH CLUSTERING ORDER BY (seq DESC)`,
		`CREATE TABLE IF NOT EXISTS message_channel_meta (
			channel_id bigint PRIMARY KEY,
			last_seq   bigint,
			last_id    bigint)`,
		`CREATE TABLE IF NOT EXISTS message_nonces (
			channel_id bigint,
			author_id  bigint,
			nonce      text,
			id         bigint,
			PRIMARY KEY ((channel_id, author_id, nonce)))`,
	}},
	{Version: 2, Name: "message mentions", Statements: []string{
		`ALTER TABLE messages ADD IF NOT EXISTS (
			mention_users    frozen<list<bigint>>,
			mention_roles    frozen<list<bigint>>,
			mention_everyone boolean)`,
	}},
}

// BucketWidth is the span of snowflake time one history partition
// (channel, bucket) holds. It is part of the data format: changing it
// strands every message already stored.
const BucketWidth = 10 * 24 * time.Hour

// Bucket is the history bucket of a message ID: the number of whole
// BucketWidths between snowflake.Epoch and the time the ID was made.
// Bucket n holds IDs from BucketStart(n) up to BucketStart(n+1).
func Bucket(id uint64) int32 {
	return int32(snowflake.Time(id).Sub(snowflake.Epoch) / BucketWidth)
}

// BucketStart is the smallest ID of bucket n.
func BucketStart(n int32) uint64 {
	return snowflake.FromTime(snowflake.Epoch.Add(time.Duration(n) * BucketWidth))
}

// seqBlockBits sizes the partitions of message_seqs: one holds 1<<16 seqs
// of a channel (about a megabyte), so a busy channel's claims never make
// one huge partition.
const seqBlockBits = 16

func seqBlock(seq uint64) uint64 { return seq >> seqBlockBits }
