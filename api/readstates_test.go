package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"

	"github.com/guildhall/guildhall/api"
	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/message/inmem"
	messagepebble "github.com/guildhall/guildhall/message/pebble"
	"github.com/guildhall/guildhall/role"
)

// rsEnv is the REST API of one process with read states: Pebble stores,
// the role resolver, in-process counters.
type rsEnv struct {
	*env
	durable message.ReadStateStore
}

func newRSEnv(t *testing.T, withReadStates bool) *rsEnv {
	t.Helper()
	st := newStack(t)
	db, ids, rstore, res, roles, members, store, mlog := st.db, st.ids, st.rstore, st.res, st.roles, st.members, st.store, st.mlog
	counters := inmem.NewCounters(inmem.CountersConfig{})
	durable := messagepebble.NewReadStates(db)
	svc := message.NewService(message.Config{Store: store, Access: res, Log: mlog, Publisher: &rsNopPublisher{}, IDs: ids, Counters: counters})
	recent := message.NewReader(store, res, nil, mlog)
	s := api.Services{
		Members:  members,
		Messages: svc,
		History:  recent,
		Roles:    roles,
	}
	if withReadStates {
		rs, err := message.NewReadStates(message.ReadStatesConfig{
			Access: res, Messages: recent.Recent(), Roles: rstore, Counters: counters, Store: durable,
		})
		if err != nil {
			t.Fatal(err)
		}
		s.ReadStates = rs
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api.New(s, nil).Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &rsEnv{env: &env{url: hs.URL + "/api/v1", hc: hs.Client(), messages: store}, durable: durable}
}

type rsNopPublisher struct{}

func (*rsNopPublisher) Publish(context.Context, message.Event) error { return nil }

type readStateJSON struct {
	ChannelID    string  `json:"channel_id"`
	ServerID     string  `json:"server_id"`
	LastReadID   *string `json:"last_read_id"`
	LastReadSeq  uint64  `json:"last_read_seq"`
	LastSeq      uint64  `json:"last_seq"`
	UnreadCount  uint64  `json:"unread_count"`
	MentionCount uint64  `json:"mention_count"`
}

type readStatePage struct {
	ReadStates []readStateJSON `json:"read_states"`
	Next       *string         `json:"next"`
}

func (e *rsEnv) ack(t *testing.T, u user, channel, messageID string) response {
	t.Helper()
	return e.do(t, "POST", "/channels/"+channel+"/ack", u.Token, map[string]string{"message_id": messageID})
}

// hide denies VIEW_CHANNEL to @everyone in a new channel of the server.
func (e *rsEnv) hide(t *testing.T, owner user, serverID, name string) string {
	t.Helper()
	ch := want[channelJSON](t, "create channel", e.do(t, "POST", "/servers/"+serverID+"/channels", owner.Token, map[string]string{"name": name}), http.StatusCreated)
	r := e.do(t, "PUT", "/channels/"+ch.ID+"/permissions/"+serverID, owner.Token,
		map[string]string{"type": "role", "deny": strconv.FormatUint(uint64(role.ViewChannel), 10)})
	wantStatus(t, "deny @everyone VIEW_CHANNEL", r, http.StatusOK)
	return ch.ID
}

func TestAck(t *testing.T) {
	e := newRSEnv(t, true)
	w := e.world(t)
	var ms []messageJSON
	for _, c := range []string{"one", "two <@" + w.plain.ID + ">", "three"} {
		ms = append(ms, e.send(t, w.owner, w.channel, c))
	}

	r := e.ack(t, w.plain, w.channel, ms[0].ID)
	var obj map[string]any
	if err := json.Unmarshal(want[json.RawMessage](t, "ack", r, http.StatusOK), &obj); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, "read state", obj, "channel_id", "server_id", "last_read_id", "last_read_seq", "last_seq", "unread_count", "mention_count")
	wantStringIDs(t, "read state", obj, "channel_id", "server_id", "last_read_id")
	got := want[readStateJSON](t, "ack seq 1", r, http.StatusOK)
	first := ms[0].ID
	wantRS := readStateJSON{ChannelID: w.channel, ServerID: w.server.ID, LastReadID: &first, LastReadSeq: 1, LastSeq: 3, UnreadCount: 2, MentionCount: 1}
	if !equalRS(got, wantRS) {
		t.Errorf("ack seq 1 = %+v, want %+v", got, wantRS)
	}
	// Idempotent, and never backwards.
	third := ms[2].ID
	wantRS = readStateJSON{ChannelID: w.channel, ServerID: w.server.ID, LastReadID: &third, LastReadSeq: 3, LastSeq: 3}
	for _, id := range []string{ms[2].ID, ms[2].ID, ms[1].ID} {
		if got := want[readStateJSON](t, "ack", e.ack(t, w.plain, w.channel, id), http.StatusOK); !equalRS(got, wantRS) {
			t.Errorf("ack %s = %+v, want %+v", id, got, wantRS)
		}
	}

	// Bad requests change nothing.
	wantError(t, "no token", e.ack(t, user{}, w.channel, ms[0].ID), http.StatusUnauthorized, "unauthenticated")
	wantError(t, "outsider", e.ack(t, w.outsider, w.channel, ms[0].ID), http.StatusNotFound, "not_found")
	wantError(t, "unknown message", e.ack(t, w.plain, w.channel, "12345"), http.StatusNotFound, "not_found")
	wantError(t, "bad message id", e.ack(t, w.plain, w.channel, "abc"), http.StatusBadRequest, "invalid_argument")
	wantError(t, "bad channel id", e.ack(t, w.plain, "x", ms[0].ID), http.StatusBadRequest, "invalid_argument")
	wantError(t, "no message_id", e.do(t, "POST", "/channels/"+w.channel+"/ack", w.plain.Token, map[string]string{}), http.StatusBadRequest, "invalid_argument")
	wantError(t, "numeric message_id", e.do(t, "POST", "/channels/"+w.channel+"/ack", w.plain.Token, raw(`{"message_id": 5}`)), http.StatusBadRequest, "invalid_argument")
	wantError(t, "not JSON", e.do(t, "POST", "/channels/"+w.channel+"/ack", w.plain.Token, raw(`{`)), http.StatusBadRequest, "invalid_argument")
	wantError(t, "GET ack", e.do(t, "GET", "/channels/"+w.channel+"/ack", w.plain.Token, nil), http.StatusMethodNotAllowed, "method_not_allowed")

	secret := e.hide(t, w.owner, w.server.ID, "secret")
	hidden := e.send(t, w.owner, secret, "psst")
	wantError(t, "ack in a hidden channel", e.ack(t, w.plain, secret, hidden.ID), http.StatusNotFound, "not_found")
	wantError(t, "outsider acks a hidden channel", e.ack(t, w.outsider, secret, hidden.ID), http.StatusNotFound, "not_found")
	wantError(t, "ack a hidden message in a visible channel", e.ack(t, w.plain, w.channel, hidden.ID), http.StatusNotFound, "not_found")
	for _, u := range []user{w.plain, w.outsider} {
		ps, err := e.durable.ReadPositions(t.Context(), mustID(t, u.ID))
		if err != nil {
			t.Fatal(err)
		}
		if want := []message.ReadPosition{{ChannelID: mustID(t, w.channel), Seq: 3, ID: mustID(t, ms[2].ID)}}; u == w.outsider {
			if len(ps) != 0 {
				t.Errorf("outsider has positions %+v", ps)
			}
		} else if !slices.Equal(ps, want) {
			t.Errorf("plain's positions %+v, want %+v", ps, want)
		}
	}
}

func equalRS(a, b readStateJSON) bool {
	if (a.LastReadID == nil) != (b.LastReadID == nil) || a.LastReadID != nil && *a.LastReadID != *b.LastReadID {
		return false
	}
	a.LastReadID, b.LastReadID = nil, nil
	return a == b
}

func TestListReadStates(t *testing.T) {
	e := newRSEnv(t, true)
	w := e.world(t)
	secret := e.hide(t, w.owner, w.server.ID, "secret")
	e.send(t, w.owner, secret, "hidden")
	category := want[channelJSON](t, "create category", e.do(t, "POST", "/servers/"+w.server.ID+"/channels", w.owner.Token,
		map[string]string{"name": "cat", "type": "category"}), http.StatusCreated)
	e.send(t, w.owner, w.channel, "a")
	e.send(t, w.owner, w.channel, "b")
	// A second server, with a higher ID.
	other := e.createServer(t, w.plain, "other")
	otherCh := e.channels(t, w.plain, other.ID)[0].ID
	m := e.send(t, w.plain, otherCh, "mine")

	list := func(u user, query string) readStatePage {
		t.Helper()
		return want[readStatePage](t, "read states"+query, e.do(t, "GET", "/users/@me/read-states"+query, u.Token, nil), http.StatusOK)
	}
	page := list(w.plain, "")
	mine := m.ID
	wantAll := []readStateJSON{
		{ChannelID: w.channel, ServerID: w.server.ID, LastSeq: 2, UnreadCount: 2},
		{ChannelID: otherCh, ServerID: other.ID, LastReadID: &mine, LastReadSeq: 1, LastSeq: 1},
	}
	wantPage := func(what string, got readStatePage, want []readStateJSON, next *string) {
		t.Helper()
		if !slices.EqualFunc(got.ReadStates, want, equalRS) {
			t.Errorf("%s: %+v, want %+v", what, got.ReadStates, want)
		}
		if (got.Next == nil) != (next == nil) || next != nil && *got.Next != *next {
			t.Errorf("%s: next %v, want %v", what, got.Next, next)
		}
	}
	wantPage("all", page, wantAll, nil)
	for _, rs := range page.ReadStates {
		if rs.ChannelID == secret || rs.ChannelID == category.ID {
			t.Errorf("listed channel %s (hidden or a category)", rs.ChannelID)
		}
	}
	first := w.server.ID
	wantPage("limit=1", list(w.plain, "?limit=1"), wantAll[:1], &first)
	wantPage("after", list(w.plain, "?limit=1&after="+first), wantAll[1:], nil)
	wantPage("server_id", list(w.plain, "?server_id="+other.ID), wantAll[1:], nil)
	ownerPage := list(w.owner, "")
	if len(ownerPage.ReadStates) != 2 { // general and secret
		t.Errorf("owner sees %+v", ownerPage.ReadStates)
	}
	wantPage("outsider", list(w.outsider, ""), []readStateJSON{}, nil)

	wantError(t, "outsider's server_id", e.do(t, "GET", "/users/@me/read-states?server_id="+w.server.ID, w.outsider.Token, nil), http.StatusNotFound, "not_found")
	for _, q := range []string{"?limit=0", "?limit=26", "?limit=x", "?after=x", "?server_id=0"} {
		wantError(t, q, e.do(t, "GET", "/users/@me/read-states"+q, w.plain.Token, nil), http.StatusBadRequest, "invalid_argument")
	}
	wantError(t, "no token", e.do(t, "GET", "/users/@me/read-states", "", nil), http.StatusUnauthorized, "unauthenticated")
}

func TestReadStatesDisabled(t *testing.T) {
	e := newRSEnv(t, false)
	w := e.world(t)
	m := e.send(t, w.owner, w.channel, "x")
	wantError(t, "ack", e.ack(t, w.plain, w.channel, m.ID), http.StatusServiceUnavailable, "unavailable")
	wantError(t, "list", e.do(t, "GET", "/users/@me/read-states", w.plain.Token, nil), http.StatusServiceUnavailable, "unavailable")
}
