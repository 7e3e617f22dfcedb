package api

import (
	"context"
	"net/http"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/member"
	"github.com/guildhall/guildhall/message"
)

// ReadStates is what the API needs of the read-state service
// (message.ReadStates).
type ReadStates interface {
	Ack(ctx context.Context, userID, channelID, messageID uint64) (message.ReadState, error)
	List(ctx context.Context, userID uint64, channelIDs []uint64) ([]message.ReadState, error)
}

// Paging of GET /users/@me/read-states, documented in docs/api.md: a page
// holds the read states of up to this many servers (each has at most
// member.MaxChannels channels).
const (
	DefaultReadStateServers = 10
	MaxReadStateServers     = 25
)

func (a *API) readStateRoutes(authed func(string, func(http.ResponseWriter, *http.Request, member.User) error)) {
	const p = "/api/v1"
	authed("POST "+p+"/channels/{id}/ack", a.ack)
	authed("GET "+p+"/users/@me/read-states", a.listReadStates)
}

type readStateJSON struct {
	ChannelID    uint64  `json:"channel_id,string"`
	ServerID     uint64  `json:"server_id,string"`
	LastReadID   *string `json:"last_read_id"` // null: never acked
	LastReadSeq  uint64  `json:"last_read_seq"`
	LastSeq      uint64  `json:"last_seq"`
	UnreadCount  uint64  `json:"unread_count"`
	MentionCount uint64  `json:"mention_count"`
}

func toReadState(rs message.ReadState) readStateJSON {
	out := readStateJSON{
		ChannelID: rs.ChannelID, ServerID: rs.ServerID, LastReadSeq: rs.LastReadSeq,
		LastSeq: rs.LastSeq, UnreadCount: rs.Unread, MentionCount: rs.Mentions,
	}
	if rs.LastReadID != 0 {
		id := formatID(rs.LastReadID)
		out.LastReadID = &id
	}
	return out
}

func (a *API) readStatesEnabled() error {
	if a.readStates == nil {
		return guildhall.E("api", guildhall.Unavailable, "read states are not enabled on this server")
	}
	return nil
}

func (a *API) ack(w http.ResponseWriter, r *http.Request, u member.User) error {
	if err := a.readStatesEnabled(); err != nil {
		return err
	}
	ch, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		MessageID *string `json:"message_id"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.MessageID == nil {
		return guildhall.E("api.ack", guildhall.Invalid, "message_id is required")
	}
	id, err := parseID("message_id", *in.MessageID)
	if err != nil {
		return err
	}
	rs, err := a.readStates.Ack(r.Context(), u.ID, ch, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toReadState(rs))
	return nil
}

type readStatePageJSON struct {
	ReadStates []readStateJSON `json:"read_states"`
	// Next is the after= of the next page; null on the last page.
	Next *string `json:"next"`
}

func (a *API) listReadStates(w http.ResponseWriter, r *http.Request, u member.User) error {
	const op = "api.listReadStates"
	if err := a.readStatesEnabled(); err != nil {
		return err
	}
	serverID, err := queryID(r, "server_id")
	if err != nil {
		return err
	}
	after, err := queryID(r, "after")
	if err != nil {
		return err
	}
	limit := DefaultReadStateServers
	if r.URL.Query().Has("limit") {
		if limit, err = queryInt(r, "limit"); err != nil || limit < 1 || limit > MaxReadStateServers {
			return guildhall.E(op, guildhall.Invalid, "limit must be 1 to %d (servers per page)", MaxReadStateServers)
		}
	}
	var servers []uint64
	var next *string
	if serverID != 0 {
		servers = []uint64{serverID}
	} else {
		list, err := a.members.Servers(r.Context(), u)
		if err != nil {
			return err
		}
		for _, s := range list { // by server ID
			if s.ID <= after {
				continue
			}
			if len(servers) == limit {
				n := formatID(servers[len(servers)-1])
				next = &n
				break
			}
			servers = append(servers, s.ID)
		}
	}
	out := readStatePageJSON{ReadStates: []readStateJSON{}, Next: next}
	var ids []uint64
	flush := func() error {
		if len(ids) == 0 {
			return nil
		}
		list, err := a.readStates.List(r.Context(), u.ID, ids)
		if err != nil {
			return err
		}
		for _, rs := range list {
			out.ReadStates = append(out.ReadStates, toReadState(rs))
		}
		ids = ids[:0]
		return nil
	}
	for _, sid := range servers {
		chans, err := a.members.Channels(r.Context(), u, sid) // the visible ones
		if err != nil {
			return err
		}
		for _, c := range chans {
			if c.Type != member.ChannelText {
				continue
			}
			if len(ids) == message.MaxReadStates {
				if err := flush(); err != nil {
					return err
				}
			}
			ids = append(ids, c.ID)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
