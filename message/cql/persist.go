package cql

import (
	"context"

	"github.com/gocql/gocql"
	"golang.org/x/sync/errgroup"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/message"
)

// Statements of Persist: plain writes, no lightweight transaction except
// freeing a nonce (see doc.go, "Persist").
const (
	stmtPutSeq   = `INSERT INTO message_seqs (channel_id, block, seq, id) VALUES (?, ?, ?, ?)`
	stmtSetEdit  = `UPDATE messages SET content = ?, edited_at = ? WHERE channel_id = ? AND bucket = ? AND id = ?`
	stmtDropMsg  = `DELETE FROM messages WHERE channel_id = ? AND bucket = ? AND id = ?`
	persistConns = 32 // messages written at once
)

// Persist implements message.Store. Changes to different messages are
// written in parallel (up to 32 at once); the changes of one message in
// order. See doc.go.
func (s *Store) Persist(ctx context.Context, changes []message.Change) error {
	const op = "message/cql.Persist"
	// Changes run in groups, one after another within a group, groups in
	// parallel: a message's changes form a group, joined with the other
	// creates that set the same nonce entry (plain writes, whose order
	// decides which message the entry names).
	type key struct {
		ch, id uint64
		author uint64
		nonce  string
	}
	var order []key
	groups := make(map[key][]message.Change)
	groupOf := make(map[[2]uint64]key) // (channel, message) → its group
	for _, c := range changes {
		m := c.Message
		switch {
		case !storable(m.ID) || (c.Kind == message.ChangeCreate && (m.Seq == 0 || m.Seq > 1<<63-1)):
			return guildhall.E(op, guildhall.Invalid, "change of message %d: ID and seq must be 1 to 2^63-1", m.ID)
		case c.Kind < message.ChangeCreate || c.Kind > message.ChangeDelete:
			return guildhall.E(op, guildhall.Invalid, "unknown change kind %d", c.Kind)
		}
		k, ok := groupOf[[2]uint64{m.ChannelID, m.ID}]
		switch {
		case ok:
		case c.Kind == message.ChangeCreate && m.Nonce != "":
			k = key{ch: m.ChannelID, author: m.AuthorID, nonce: m.Nonce}
		default:
			k = key{ch: m.ChannelID, id: m.ID}
		}
		groupOf[[2]uint64{m.ChannelID, m.ID}] = k
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], c)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(persistConns)
	for _, k := range order {
		g.Go(func() error {
			for _, c := range groups[k] {
				if err := s.apply(gctx, c); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return wrap(op, g.Wait())
}

// apply writes one change.
func (s *Store) apply(ctx context.Context, c message.Change) error {
	m := c.Message
	switch c.Kind {
	case message.ChangeCreate:
		// One unlogged batch: one round trip, not atomic; a replay
		// finishes what a failure left half done.
		b := s.session.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
		b.Query(stmtInsertMessage, insertArgs(m)...)
		b.Query(stmtAddBucket, m.ChannelID, Bucket(m.ID))
		b.Query(stmtPutSeq, m.ChannelID, seqBlock(m.Seq), m.Seq, m.ID)
		b.Query(stmtRaiseLast, int64(m.Seq), m.Seq, m.ID, m.ChannelID)
		if m.Nonce != "" {
			b.Query(stmtPutNonce, m.ChannelID, m.AuthorID, m.Nonce, m.ID)
		}
		return s.session.ExecuteBatch(b)
	case message.ChangeEdit:
		if _, ok, err := s.get(ctx, m.ChannelID, m.ID); err != nil || !ok {
			return err // not stored (deleted since): nothing to edit
		}
		return s.session.ContextQuery(ctx, stmtSetEdit, nil).
			Bind(m.Content, unsetIf(m.EditedAt.IsZero(), m.EditedAt), m.ChannelID, Bucket(m.ID), m.ID).ExecRelease()
	default: // message.ChangeDelete
		old, ok, err := s.get(ctx, m.ChannelID, m.ID)
		if err != nil || !ok {
			return err
		}
		if err := s.session.ContextQuery(ctx, stmtDropMsg, nil).Bind(m.ChannelID, Bucket(m.ID), m.ID).ExecRelease(); err != nil {
			return err
		}
		if old.Nonce == "" {
			return nil
		}
		// Conditional: a create later in the same Persist, written in
		// parallel, may have taken the nonce already.
		_, err = s.session.ContextQuery(ctx, stmtFreeNonce, nil).Bind(m.ChannelID, old.AuthorID, old.Nonce, m.ID).ExecCASRelease()
		return err
	}
}
