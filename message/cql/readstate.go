package cql

import (
	"context"

	"github.com/scylladb/gocqlx/v2"

	"github.com/guildhall/guildhall/internal/cqldb"
	"github.com/guildhall/guildhall/message"
)

// ReadStatesComponent is the name the read-state migrations are recorded
// under in schema_migrations: a component of their own, so they number
// independently of the message tables' (Migrations).
const ReadStatesComponent = "message_readstates"

// ReadStatesMigrations is the schema of ReadStates, applied by
// cqldb.Migrate under ReadStatesComponent.
//
// message_read_states holds one row per (user, channel) a user acked in:
// the seq and ID of the newest message they read. A user's rows are one
// partition, read whole when a cache (message/redis) is filled. Both
// columns are written with the seq as the write timestamp (USING
// TIMESTAMP), so the highest seq wins whatever order writes land in and a
// raise needs no read or lightweight transaction; as for
// message_channel_meta, nothing may write these rows with ordinary
// timestamps (a delete must use USING TIMESTAMP above every seq).
var ReadStatesMigrations = []cqldb.Migration{
	{Version: 1, Name: "read states", Statements: []string{
		`CREATE TABLE IF NOT EXISTS message_read_states (
			user_id       bigint,
			channel_id    bigint,
			last_read_seq bigint,
			last_read_id  bigint,
			PRIMARY KEY (user_id, channel_id))`,
	}},
}

const (
	stmtPutReadState  = `UPDATE message_read_states USING TIMESTAMP ? SET last_read_seq = ?, last_read_id = ? WHERE user_id = ? AND channel_id = ?`
	stmtReadPositions = `SELECT channel_id, last_read_seq, last_read_id FROM message_read_states WHERE user_id = ?`
)

// readStatePage is the page size of ReadPositions' query.
const readStatePage = 5000

// ReadStates is message.ReadStateStore on a CQL keyspace migrated with
// ReadStatesMigrations (under ReadStatesComponent). Stateless: any number
// of processes may share the keyspace.
type ReadStates struct {
	session gocqlx.Session
}

var _ message.ReadStateStore = (*ReadStates)(nil)

// NewReadStates returns the read-state store on s. The caller closes s.
func NewReadStates(s gocqlx.Session) *ReadStates { return &ReadStates{session: s} }

// PutReadPosition implements message.ReadStateStore: one write, whose
// timestamp is the seq (see ReadStatesMigrations). Two positions with the
// same seq are the same message.
func (s *ReadStates) PutReadPosition(ctx context.Context, userID uint64, p message.ReadPosition) error {
	const op = "message/cql.PutReadPosition"
	if err := message.CheckReadPosition(userID, p); err != nil {
		return wrap(op, err)
	}
	err := s.session.ContextQuery(ctx, stmtPutReadState, nil).
		Bind(int64(p.Seq), p.Seq, p.ID, userID, p.ChannelID).ExecRelease()
	return wrap(op, err)
}

// ReadPositions implements message.ReadStateStore, reading the user's
// partition in pages.
func (s *ReadStates) ReadPositions(ctx context.Context, userID uint64) ([]message.ReadPosition, error) {
	const op = "message/cql.ReadPositions"
	q := s.session.ContextQuery(ctx, stmtReadPositions, nil).Bind(userID)
	defer q.Release()
	q.PageSize(readStatePage)
	iter := q.Iter()
	var out []message.ReadPosition
	var p message.ReadPosition
	for iter.Scan(&p.ChannelID, &p.Seq, &p.ID) {
		out = append(out, p)
	}
	return out, wrap(op, iter.Close())
}
