package cql

import (
	"context"
	"errors"
	"math"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/message"
)

// Statements; doc.go describes the tables. IDs are bound as uint64, which
// gocql stores as the bigint with the same bits, and read back the same way.
const (
	msgColumns = `id, server_id, author_id, seq, nonce, content, created_at, edited_at, mention_users, mention_roles, mention_everyone`

	stmtSeqID         = `SELECT id FROM message_seqs WHERE channel_id = ? AND block = ? AND seq = ?`
	stmtClaimSeq      = `INSERT INTO message_seqs (channel_id, block, seq, id) VALUES (?, ?, ?, ?) IF NOT EXISTS`
	stmtInsertMessage = `INSERT INTO messages (channel_id, bucket, id, server_id, author_id, seq, nonce, content, created_at, edited_at, mention_users, mention_roles, mention_everyone) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	stmtAddBucket     = `INSERT INTO message_buckets (channel_id, bucket) VALUES (?, ?)`
	stmtRaiseLast     = `UPDATE message_channel_meta USING TIMESTAMP ? SET last_seq = ?, last_id = ? WHERE channel_id = ?`
	stmtPutNonce      = `INSERT INTO message_nonces (channel_id, author_id, nonce, id) VALUES (?, ?, ?, ?)`

	stmtLastHint = `SELECT last_seq, last_id FROM message_channel_meta WHERE channel_id = ?`
	stmtTopSeq   = `SELECT seq, id FROM message_seqs WHERE channel_id = ? AND block = ? AND seq > ? LIMIT 1`
	stmtNonce    = `SELECT id FROM message_nonces WHERE channel_id = ? AND author_id = ? AND nonce = ?`
	stmtGet      = `SELECT ` + msgColumns + ` FROM messages WHERE channel_id = ? AND bucket = ? AND id = ?`

	stmtUpdate    = `UPDATE messages SET content = ?, edited_at = ? WHERE channel_id = ? AND bucket = ? AND id = ? IF EXISTS`
	stmtDelete    = `DELETE FROM messages WHERE channel_id = ? AND bucket = ? AND id = ? IF EXISTS`
	stmtFreeNonce = `DELETE FROM message_nonces WHERE channel_id = ? AND author_id = ? AND nonce = ? IF id = ?`
)

// Store is a message.Store on a CQL keyspace migrated with Migrations. It
// keeps no state of its own: any number of Stores, in any number of
// processes, may share the keyspace; the seq claim (see doc.go) is what
// keeps two writers from both taking a seq.
type Store struct {
	session gocqlx.Session
}

var _ message.Store = (*Store)(nil)

// New returns a Store on s, whose keyspace has Migrations applied under
// Component. The caller closes s.
func New(s gocqlx.Session) *Store {
	return &Store{session: s}
}

// Insert implements message.Store. It reads the ID of seq m.Seq-1 and
// fails with Conflict if m.ID is not above it; then it claims
// (channel, seq) with a lightweight transaction, and fails with Conflict
// if the seq is taken. Either way a refused Insert writes nothing. Then it
// writes the message, its bucket, the channel's last-seq hint and its
// nonce in one logged batch. A zero ID or seq, or one above 2^63-1 (a
// snowflake never is), is Invalid.
//
// Inserting the very message that already holds the seq (a replay) is a
// Conflict too, with its own message; see doc.go.
func (s *Store) Insert(ctx context.Context, m message.Message) error {
	const op = "message/cql.Insert"
	switch {
	case m.ID == 0 || m.Seq == 0:
		return guildhall.E(op, guildhall.Invalid, "message needs an ID and a seq")
	case m.ID > math.MaxInt64 || m.Seq > math.MaxInt64:
		return guildhall.E(op, guildhall.Invalid, "message ID and seq must fit in 63 bits")
	}

	if m.Seq > 1 {
		var prev uint64
		err := s.session.ContextQuery(ctx, stmtSeqID, nil).Bind(m.ChannelID, seqBlock(m.Seq-1), m.Seq-1).GetRelease(&prev)
		switch {
		case err != nil && !errors.Is(err, gocql.ErrNotFound):
			return wrap(op, err)
		case err == nil && m.ID <= prev:
			return guildhall.E(op, guildhall.Conflict, "message ID %d is not above the ID of seq %d", m.ID, m.Seq-1)
		}
	}

	holder := map[string]any{}
	q := s.session.ContextQuery(ctx, stmtClaimSeq, nil).Bind(m.ChannelID, seqBlock(m.Seq), m.Seq, m.ID)
	applied, err := q.MapScanCAS(holder)
	q.Release()
	if err != nil {
		return wrap(op, err)
	}
	if !applied {
		if id, _ := holder["id"].(int64); uint64(id) == m.ID {
			return guildhall.E(op, guildhall.Conflict, "seq %d already holds this message", m.Seq)
		}
		return guildhall.E(op, guildhall.Conflict, "seq %d already taken", m.Seq)
	}

	// The seq is ours. If this batch fails, the seq stays taken with no
	// message, like the seq of a deleted message.
	b := s.session.NewBatch(gocql.LoggedBatch).WithContext(ctx)
	b.Query(stmtInsertMessage, insertArgs(m)...)
	b.Query(stmtAddBucket, m.ChannelID, Bucket(m.ID))
	// The write time of last_seq and last_id is the seq itself, so the
	// largest seq wins whatever order the writes land in.
	b.Query(stmtRaiseLast, int64(m.Seq), m.Seq, m.ID, m.ChannelID)
	if m.Nonce != "" {
		b.Query(stmtPutNonce, m.ChannelID, m.AuthorID, m.Nonce, m.ID)
	}
	return wrap(op, s.session.ExecuteBatch(b))
}

// insertArgs are the arguments of stmtInsertMessage for m.
func insertArgs(m message.Message) []any {
	return []any{m.ChannelID, Bucket(m.ID), m.ID, m.ServerID, m.AuthorID, m.Seq,
		unsetIf(m.Nonce == "", m.Nonce), m.Content, unsetIf(m.CreatedAt.IsZero(), m.CreatedAt), unsetIf(m.EditedAt.IsZero(), m.EditedAt),
		unsetIf(len(m.Mentions.Users) == 0, m.Mentions.Users), unsetIf(len(m.Mentions.Roles) == 0, m.Mentions.Roles),
		unsetIf(!m.Mentions.Everyone, m.Mentions.Everyone)}
}

// unsetIf leaves a column out of an INSERT when empty, rather than
// writing a null, which is a tombstone.
func unsetIf(empty bool, v any) any {
	if empty {
		return gocql.UnsetValue
	}
	return v
}

// LastSeq implements message.Store: the largest seq ever claimed in the
// channel; see Last.
func (s *Store) LastSeq(ctx context.Context, channelID uint64) (uint64, error) {
	seq, _, err := s.last(ctx, "message/cql.LastSeq", channelID)
	return seq, err
}

// Last implements message.Store: the largest seq ever claimed in the
// channel and the ID that claimed it. It starts from the channel's hint in
// message_channel_meta and looks past it for claims whose batch has not
// landed (or never will, the writer having died in between); normally
// that is one empty read.
func (s *Store) Last(ctx context.Context, channelID uint64) (seq, id uint64, err error) {
	return s.last(ctx, "message/cql.Last", channelID)
}

func (s *Store) last(ctx context.Context, op string, channelID uint64) (seq, id uint64, err error) {
	if _, err := s.scanOne(ctx, stmtLastHint, []any{channelID}, &seq, &id); err != nil {
		return 0, 0, wrap(op, err)
	}
	for {
		var top, topID uint64
		found, err := s.scanOne(ctx, stmtTopSeq, []any{channelID, seqBlock(seq + 1), seq}, &top, &topID)
		if err != nil {
			return 0, 0, wrap(op, err)
		}
		if !found {
			return seq, id, nil
		}
		seq, id = top, topID
	}
}

// scanOne runs stmt with args and scans its first row into dest; found
// is false, and dest untouched, if there is none.
func (s *Store) scanOne(ctx context.Context, stmt string, args []any, dest ...any) (found bool, err error) {
	q := s.session.ContextQuery(ctx, stmt, nil).Bind(args...)
	defer q.Release()
	iter := q.Iter()
	found = iter.Scan(dest...)
	return found, iter.Close()
}

// ByNonce implements message.Store.
func (s *Store) ByNonce(ctx context.Context, channelID, authorID uint64, nonce string) (message.Message, bool, error) {
	const op = "message/cql.ByNonce"
	if nonce == "" {
		return message.Message{}, false, nil
	}
	var id uint64
	err := s.session.ContextQuery(ctx, stmtNonce, nil).Bind(channelID, authorID, nonce).GetRelease(&id)
	if errors.Is(err, gocql.ErrNotFound) {
		return message.Message{}, false, nil
	}
	if err != nil {
		return message.Message{}, false, wrap(op, err)
	}
	// An entry whose message is gone (a Delete that stopped between its
	// two steps) or is another's does not count.
	m, ok, err := s.get(ctx, channelID, id)
	if err != nil || !ok || m.AuthorID != authorID || m.Nonce != nonce {
		return message.Message{}, false, wrap(op, err)
	}
	return m, true, nil
}

// Get implements message.Store.
func (s *Store) Get(ctx context.Context, channelID, id uint64) (message.Message, error) {
	const op = "message/cql.Get"
	m, ok, err := s.get(ctx, channelID, id)
	if err != nil {
		return message.Message{}, wrap(op, err)
	}
	if !ok {
		return message.Message{}, guildhall.E(op, guildhall.NotFound, "unknown message")
	}
	return m, nil
}

func (s *Store) get(ctx context.Context, channelID, id uint64) (message.Message, bool, error) {
	if !storable(id) {
		return message.Message{}, false, nil
	}
	q := s.session.ContextQuery(ctx, stmtGet, nil).Bind(channelID, Bucket(id), id)
	defer q.Release()
	page, err := scan(q.Iter(), channelID, nil)
	if err != nil || len(page) == 0 {
		return message.Message{}, false, err
	}
	return page[0], true, nil
}

// storable says whether id can be a stored message's ID.
func storable(id uint64) bool { return id != 0 && id <= math.MaxInt64 }

// scan appends the rows of iter, columns msgColumns, to page as messages
// of channelID, and closes iter.
func scan(iter *gocqlx.Iterx, channelID uint64, page []message.Message) ([]message.Message, error) {
	for {
		m := message.Message{ChannelID: channelID}
		if !iter.Scan(&m.ID, &m.ServerID, &m.AuthorID, &m.Seq, &m.Nonce, &m.Content, &m.CreatedAt, &m.EditedAt,
			&m.Mentions.Users, &m.Mentions.Roles, &m.Mentions.Everyone) {
			break
		}
		page = append(page, m)
	}
	return page, iter.Close()
}

// Update implements message.Store: only Content and EditedAt change. It is
// a lightweight transaction (UPDATE ... IF EXISTS), so an edit racing a
// Delete can never bring back a half message.
func (s *Store) Update(ctx context.Context, m message.Message) error {
	const op = "message/cql.Update"
	if !storable(m.ID) {
		return guildhall.E(op, guildhall.NotFound, "unknown message")
	}
	applied, err := s.session.ContextQuery(ctx, stmtUpdate, nil).
		Bind(m.Content, m.EditedAt, m.ChannelID, Bucket(m.ID), m.ID).ExecCASRelease()
	if err != nil {
		return wrap(op, err)
	}
	if !applied {
		return guildhall.E(op, guildhall.NotFound, "unknown message")
	}
	return nil
}

// Delete implements message.Store. The message's seq stays taken and the
// channel's last seq stays; its nonce is freed. Both steps are lightweight
// transactions: of two Deletes of one message exactly one succeeds, and
// freeing the nonce never removes an entry a newer message made.
func (s *Store) Delete(ctx context.Context, channelID, id uint64) error {
	const op = "message/cql.Delete"
	m, ok, err := s.get(ctx, channelID, id)
	if err != nil {
		return wrap(op, err)
	}
	if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown message")
	}
	applied, err := s.session.ContextQuery(ctx, stmtDelete, nil).Bind(channelID, Bucket(id), id).ExecCASRelease()
	if err != nil {
		return wrap(op, err)
	}
	if !applied {
		return guildhall.E(op, guildhall.NotFound, "unknown message")
	}
	if m.Nonce == "" {
		return nil
	}
	_, err = s.session.ContextQuery(ctx, stmtFreeNonce, nil).Bind(channelID, m.AuthorID, m.Nonce, id).ExecCASRelease()
	return wrap(op, err)
}
