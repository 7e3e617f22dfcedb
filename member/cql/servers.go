package cql

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/member"
)

type serverRow struct {
	ID        int64     `db:"id"`
	Name      string    `db:"name"`
	OwnerID   int64     `db:"owner_id"`
	CreatedAt time.Time `db:"created_at"`
	Pending   bool      `db:"pending"`
}

func (r serverRow) server() member.Server {
	return member.Server{ID: uint64(r.ID), Name: r.Name, OwnerID: uint64(r.OwnerID), CreatedAt: utc(r.CreatedAt)}
}

const serverCols = `id, name, owner_id, created_at, pending`

// server reads a server that CreateServer has finished.
func (s *Store) server(ctx context.Context, id uint64) (serverRow, bool, error) {
	var r serverRow
	ok, err := s.get(ctx, &r, `SELECT `+serverCols+` FROM servers WHERE id = ?`, int64(id))
	return r, ok && !r.Pending, err
}

// serverExists reports whether CreateServer has finished server id.
func (s *Store) serverExists(ctx context.Context, id uint64) (bool, error) {
	_, ok, err := s.server(ctx, id)
	return ok, err
}

type channelRow struct {
	ID        int64     `db:"id"`
	ServerID  int64     `db:"server_id"`
	Name      string    `db:"name"`
	Type      int       `db:"type"`
	Position  int64     `db:"position"`
	ParentID  int64     `db:"parent_id"`
	Synced    bool      `db:"synced"`
	CreatedAt time.Time `db:"created_at"`
	Version   int64     `db:"version"`
	Pending   bool      `db:"pending"`
}

func (r channelRow) channel() member.Channel {
	return member.Channel{
		ID: uint64(r.ID), ServerID: uint64(r.ServerID), Name: r.Name, Type: member.ChannelType(r.Type),
		Position: int(r.Position), ParentID: uint64(r.ParentID), Synced: r.Synced, CreatedAt: utc(r.CreatedAt),
	}
}

const (
	channelCols = `id, server_id, name, type, position, parent_id, synced, created_at, version, pending`
	listingCols = `id, server_id, name, type, position, parent_id, synced, created_at, version`
)

// insertChannel claims c.ID in channels, at version v.
func (s *Store) insertChannel(ctx context.Context, c member.Channel, v int64, pending bool) (bool, error) {
	applied, _, err := s.cas(ctx, `INSERT INTO channels (`+channelCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
		int64(c.ID), int64(c.ServerID), c.Name, int(c.Type), int64(c.Position), int64(c.ParentID), c.Synced, c.CreatedAt, v, pending)
	return applied, err
}

// listChannel writes c, at version v, to its server's channel list. The
// write carries v as its timestamp, so of two listings of one channel the
// newer version wins whichever lands last.
func listChannel(c member.Channel, v int64) stmt {
	return st(`INSERT INTO channels_by_server (`+listingCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?`,
		int64(c.ID), int64(c.ServerID), c.Name, int(c.Type), int64(c.Position), int64(c.ParentID), c.Synced, c.CreatedAt, v, v)
}

// CreateServer implements member.Store. Every channel and the owner must
// belong to srv (Invalid otherwise) and the owner must be srv.OwnerID; a
// server or channel ID that is already stored is a Conflict.
//
// The server row is claimed first, marked pending, then each channel row
// (pending too); a taken channel ID deletes the claims made so far. Then
// the indexes, the owner's membership with the count, the channels made
// visible, and last the server. A pending server or channel reads as
// unknown, so a crash midway leaves nothing that Server, ServersOf or
// Channel show.
func (s *Store) CreateServer(ctx context.Context, srv member.Server, channels []member.Channel, owner member.Member) error {
	const op = "member/cql.CreateServer"
	if owner.ServerID != srv.ID || owner.UserID != srv.OwnerID {
		return guildhall.E(op, guildhall.Invalid, "owner membership does not match the server")
	}
	if err := checkIDs(op, srv.ID, owner.UserID); err != nil {
		return err
	}
	if err := checkText(op, srv.Name, owner.Username, owner.Nick); err != nil {
		return err
	}
	seen := make(map[uint64]bool, len(channels))
	for _, c := range channels {
		if c.ServerID != srv.ID {
			return guildhall.E(op, guildhall.Invalid, "channel %d belongs to another server", c.ID)
		}
		if seen[c.ID] {
			return guildhall.E(op, guildhall.Invalid, "channel ID %d given twice", c.ID)
		}
		seen[c.ID] = true
		if err := checkIDs(op, c.ID); err != nil {
			return err
		}
		if err := checkText(op, c.Name); err != nil {
			return err
		}
	}

	applied, _, err := s.cas(ctx, `INSERT INTO servers (`+serverCols+`) VALUES (?, ?, ?, ?, true) IF NOT EXISTS`,
		int64(srv.ID), srv.Name, int64(srv.OwnerID), srv.CreatedAt)
	if err != nil {
		return dbErr(op, err)
	}
	if !applied {
		return guildhall.E(op, guildhall.Conflict, "server ID taken")
	}
	v := s.micros()
	var claimed []member.Channel
	for _, c := range channels {
		applied, err := s.insertChannel(ctx, c, v, true)
		if err != nil {
			return dbErr(op, err)
		}
		if !applied {
			if err := s.undoServer(ctx, srv.ID, claimed); err != nil {
				return dbErr(op, err)
			}
			return guildhall.E(op, guildhall.Conflict, "channel ID %d taken", c.ID)
		}
		claimed = append(claimed, c)
	}

	index := memberIndex(owner.ServerID, owner.UserID, owner.Username, v)
	for _, c := range channels {
		index = append(index, listChannel(c, v))
	}
	if err := s.loggedBatch(ctx, index...); err != nil {
		return dbErr(op, err)
	}
	applied, _, err = s.cas(ctx,
		`INSERT INTO members (server_id, user_id, member_count, banned, version, username, nick, joined_at) VALUES (?, ?, 1, false, ?, ?, ?, ?) IF NOT EXISTS`,
		int64(srv.ID), int64(owner.UserID), v, owner.Username, owner.Nick, owner.JoinedAt)
	if err != nil {
		return dbErr(op, err)
	}
	if !applied { // only CreateServer writes a new server's first member, and the server claim was ours
		return guildhall.E(op, guildhall.Internal, "members of a new server already exist")
	}
	for _, c := range channels {
		if _, _, err := s.cas(ctx, `UPDATE channels SET pending = false WHERE id = ? IF pending = true`, int64(c.ID)); err != nil {
			return dbErr(op, err)
		}
	}
	if _, _, err := s.cas(ctx, `UPDATE servers SET pending = false WHERE id = ? IF pending = true`, int64(srv.ID)); err != nil {
		return dbErr(op, err)
	}
	return nil
}

// undoServer deletes the pending claims of a CreateServer that found a
// channel ID taken.
func (s *Store) undoServer(ctx context.Context, serverID uint64, claimed []member.Channel) error {
	for _, c := range claimed {
		if _, _, err := s.cas(ctx, `DELETE FROM channels WHERE id = ? IF pending = true AND server_id = ?`, int64(c.ID), int64(serverID)); err != nil {
			return err
		}
	}
	_, _, err := s.cas(ctx, `DELETE FROM servers WHERE id = ? IF pending = true`, int64(serverID))
	return err
}

// Server implements member.Store.
func (s *Store) Server(ctx context.Context, id uint64) (member.Server, error) {
	const op = "member/cql.Server"
	r, ok, err := s.server(ctx, id)
	if err != nil {
		return member.Server{}, dbErr(op, err)
	}
	if !ok {
		return member.Server{}, guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	return r.server(), nil
}

// UpdateServer implements member.Store. Only the name changes; the owner
// and creation time stay as stored. It is one compare-and-set on a
// finished server row, so a server that CreateServer has not finished (or
// that does not exist) is NotFound and is left as it is.
func (s *Store) UpdateServer(ctx context.Context, srv member.Server) error {
	const op = "member/cql.UpdateServer"
	if err := checkText(op, srv.Name); err != nil {
		return err
	}
	applied, _, err := s.cas(ctx, `UPDATE servers SET name = ? WHERE id = ? IF pending = false`, srv.Name, int64(srv.ID))
	if err != nil {
		return dbErr(op, err)
	}
	if !applied {
		return guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	return nil
}

// ServersOf implements member.Store. An unknown user is NotFound. The
// servers_by_user index is checked against each membership row, so an
// index row left by a crash, or by a join that lost, is skipped.
func (s *Store) ServersOf(ctx context.Context, userID uint64) ([]member.Server, error) {
	const op = "member/cql.ServersOf"
	if _, ok, err := s.userRow(ctx, int64(userID)); err != nil {
		return nil, dbErr(op, err)
	} else if !ok {
		return nil, guildhall.E(op, guildhall.NotFound, "unknown user")
	}
	var ids []int64
	if err := s.sel(ctx, &ids, `SELECT server_id FROM servers_by_user WHERE user_id = ?`, int64(userID)); err != nil {
		return nil, dbErr(op, err)
	}
	servers := make([]member.Server, 0, len(ids))
	for _, chunk := range chunks(ids) {
		var ms []struct {
			ServerID int64 `db:"server_id"`
			Banned   bool  `db:"banned"`
		}
		if err := s.sel(ctx, &ms, `SELECT server_id, banned FROM members WHERE server_id IN ? AND user_id = ?`, chunk, int64(userID)); err != nil {
			return nil, dbErr(op, err)
		}
		var in []int64
		for _, m := range ms {
			if !m.Banned {
				in = append(in, m.ServerID)
			}
		}
		if len(in) == 0 {
			continue
		}
		var rows []serverRow
		if err := s.sel(ctx, &rows, `SELECT `+serverCols+` FROM servers WHERE id IN ?`, in); err != nil {
			return nil, dbErr(op, err)
		}
		for _, r := range rows {
			if !r.Pending {
				servers = append(servers, r.server())
			}
		}
	}
	slices.SortFunc(servers, func(a, b member.Server) int { return cmp.Compare(a.ID, b.ID) })
	return servers, nil
}

// channelRow reads a channel that CreateServer has finished.
func (s *Store) channelRow(ctx context.Context, id uint64) (channelRow, bool, error) {
	var r channelRow
	ok, err := s.get(ctx, &r, `SELECT `+channelCols+` FROM channels WHERE id = ?`, int64(id))
	return r, ok && !r.Pending, err
}

// CreateChannel implements member.Store. An unknown server is NotFound; a
// channel ID that is already stored is a Conflict. The channel row is
// claimed first and listed in its server after: a crash between the two
// leaves a channel that Channel finds and Channels does not list until
// its next UpdateChannel.
func (s *Store) CreateChannel(ctx context.Context, c member.Channel) error {
	const op = "member/cql.CreateChannel"
	if err := checkIDs(op, c.ID); err != nil {
		return err
	}
	if err := checkText(op, c.Name); err != nil {
		return err
	}
	if ok, err := s.serverExists(ctx, c.ServerID); err != nil {
		return dbErr(op, err)
	} else if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	v := s.micros()
	applied, err := s.insertChannel(ctx, c, v, false)
	if err != nil {
		return dbErr(op, err)
	}
	if !applied {
		return guildhall.E(op, guildhall.Conflict, "channel ID taken")
	}
	l := listChannel(c, v)
	return dbErr(op, s.exec(ctx, l.cql, l.args...))
}

// Channel implements member.Store.
func (s *Store) Channel(ctx context.Context, id uint64) (member.Channel, error) {
	const op = "member/cql.Channel"
	r, ok, err := s.channelRow(ctx, id)
	if err != nil {
		return member.Channel{}, dbErr(op, err)
	}
	if !ok {
		return member.Channel{}, guildhall.E(op, guildhall.NotFound, "unknown channel")
	}
	return r.channel(), nil
}

// Channels implements member.Store. An unknown server is NotFound. The
// list is one partition of channels_by_server, sorted here by (position,
// ID).
func (s *Store) Channels(ctx context.Context, serverID uint64) ([]member.Channel, error) {
	const op = "member/cql.Channels"
	channels, err := s.listing(ctx, serverID)
	if err != nil {
		return nil, dbErr(op, err)
	}
	if len(channels) == 0 { // a server may have no channels left; tell that from no server
		if ok, err := s.serverExists(ctx, serverID); err != nil {
			return nil, dbErr(op, err)
		} else if !ok {
			return nil, guildhall.E(op, guildhall.NotFound, "unknown server")
		}
	}
	slices.SortFunc(channels, func(a, b member.Channel) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.ID, b.ID))
	})
	return channels, nil
}

// listing is a server's channel list in ID order.
func (s *Store) listing(ctx context.Context, serverID uint64) ([]member.Channel, error) {
	var rows []channelRow
	if err := s.sel(ctx, &rows, `SELECT `+listingCols+` FROM channels_by_server WHERE server_id = ?`, int64(serverID)); err != nil {
		return nil, err
	}
	channels := make([]member.Channel, 0, len(rows))
	for _, r := range rows {
		channels = append(channels, r.channel())
	}
	return channels, nil
}

// UpdateChannel implements member.Store. It replaces the name, type,
// position, parent and synced; the server and creation time stay as
// stored. The channel row is compare-and-set on its version, then the
// listing is rewritten at the new version: a crash between the two leaves
// the listing showing the channel as it was until its next update.
func (s *Store) UpdateChannel(ctx context.Context, c member.Channel) error {
	const op = "member/cql.UpdateChannel"
	if err := checkText(op, c.Name); err != nil {
		return err
	}
	return s.updateChannel(ctx, op, c.ID, func(old *member.Channel) {
		old.Name, old.Type, old.Position, old.ParentID, old.Synced = c.Name, c.Type, c.Position, c.ParentID, c.Synced
	})
}

func (s *Store) updateChannel(ctx context.Context, op string, id uint64, change func(*member.Channel)) error {
	return retry(ctx, op, func() (bool, error) {
		r, ok, err := s.channelRow(ctx, id)
		if err != nil {
			return false, dbErr(op, err)
		}
		if !ok {
			return false, guildhall.E(op, guildhall.NotFound, "unknown channel")
		}
		c := r.channel()
		change(&c)
		v := s.nextVersion(r.Version)
		applied, _, err := s.cas(ctx,
			`UPDATE channels SET name = ?, type = ?, position = ?, parent_id = ?, synced = ?, version = ? WHERE id = ? IF version = ?`,
			c.Name, int(c.Type), int64(c.Position), int64(c.ParentID), c.Synced, v, int64(id), r.Version)
		if err != nil {
			return false, dbErr(op, err)
		}
		if !applied {
			return false, nil
		}
		l := listChannel(c, v)
		return true, dbErr(op, s.exec(ctx, l.cql, l.args...))
	})
}

// DeleteChannel implements member.Store. Channels that had the deleted one
// as their parent are first left without a parent, each on its own, so a
// crash midway leaves some of them moved out of a category that still
// exists. The channel is then taken out of the listing at a version past
// its own and its row deleted if that version is still current: a crash
// between the two leaves a channel that Channel finds and Channels does
// not list; DeleteChannel again finishes it.
func (s *Store) DeleteChannel(ctx context.Context, id uint64) error {
	const op = "member/cql.DeleteChannel"
	r, ok, err := s.channelRow(ctx, id)
	if err != nil {
		return dbErr(op, err)
	}
	if !ok {
		return guildhall.E(op, guildhall.NotFound, "unknown channel")
	}
	siblings, err := s.listing(ctx, uint64(r.ServerID))
	if err != nil {
		return dbErr(op, err)
	}
	for _, child := range siblings {
		if child.ParentID != id || child.ID == id {
			continue
		}
		err := s.updateChannel(ctx, op, child.ID, func(c *member.Channel) {
			if c.ParentID == id {
				c.ParentID = 0
			}
		})
		if err != nil && guildhall.KindOf(err) != guildhall.NotFound {
			return err
		}
	}
	return retry(ctx, op, func() (bool, error) {
		r, ok, err := s.channelRow(ctx, id)
		if err != nil {
			return false, dbErr(op, err)
		}
		if !ok {
			return false, guildhall.E(op, guildhall.NotFound, "unknown channel")
		}
		v := s.nextVersion(r.Version)
		if err := s.exec(ctx, `DELETE FROM channels_by_server USING TIMESTAMP ? WHERE server_id = ? AND id = ?`, v, r.ServerID, r.ID); err != nil {
			return false, dbErr(op, err)
		}
		applied, _, err := s.cas(ctx, `DELETE FROM channels WHERE id = ? IF version = ?`, r.ID, r.Version)
		if err != nil {
			return false, dbErr(op, err)
		}
		return applied, nil
	})
}
