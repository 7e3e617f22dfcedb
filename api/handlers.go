package api

import (
	"net/http"
	"time"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/member"
	"github.com/guildhall/guildhall/message"
)

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (a *API) register(w http.ResponseWriter, r *http.Request) error {
	var in credentials
	if err := decode(r, &in); err != nil {
		return err
	}
	u, token, err := a.members.Register(r.Context(), in.Username, in.Password)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, authJSON{User: toUser(u), Token: token})
	return nil
}

func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	var in credentials
	if err := decode(r, &in); err != nil {
		return err
	}
	u, token, err := a.members.Login(r.Context(), in.Username, in.Password)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, authJSON{User: toUser(u), Token: token})
	return nil
}

func (a *API) logout(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.authenticate(r); err != nil {
		return err
	}
	if err := a.members.Logout(r.Context(), bearer(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) me(w http.ResponseWriter, r *http.Request, u member.User) error {
	writeJSON(w, http.StatusOK, toUser(u))
	return nil
}

func (a *API) myServers(w http.ResponseWriter, r *http.Request, u member.User) error {
	list, err := a.members.Servers(r.Context(), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, each(list, toServer))
	return nil
}

type nameBody struct {
	Name *string `json:"name"`
}

func (nb nameBody) get() (string, error) {
	if nb.Name == nil {
		return "", guildhall.E("api", guildhall.Invalid, "name is required")
	}
	return *nb.Name, nil
}

func (a *API) createServer(w http.ResponseWriter, r *http.Request, u member.User) error {
	var in nameBody
	if err := decode(r, &in); err != nil {
		return err
	}
	name, err := in.get()
	if err != nil {
		return err
	}
	s, err := a.members.CreateServer(r.Context(), u, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toServer(s))
	return nil
}

func (a *API) getServer(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	s, err := a.members.Server(r.Context(), u, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toServer(s))
	return nil
}

func (a *API) renameServer(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in nameBody
	if err := decode(r, &in); err != nil {
		return err
	}
	name, err := in.get()
	if err != nil {
		return err
	}
	s, err := a.members.RenameServer(r.Context(), u, id, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toServer(s))
	return nil
}

func (a *API) listChannels(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	list, err := a.members.Channels(r.Context(), u, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, each(list, toChannel))
	return nil
}

type channelBody struct {
	Name     *string `json:"name"`
	Type     string  `json:"type"` // text (default) or category
	ParentID *string `json:"parent_id"`
	Sync     *bool   `json:"sync"`
	Position *int    `json:"position"`
}

// parent reads parent_id: null or "" means none.
func (cb channelBody) parent() (*uint64, error) {
	if cb.ParentID == nil {
		return nil, nil
	}
	var id uint64
	if *cb.ParentID != "" {
		var err error
		if id, err = parseID("parent_id", *cb.ParentID); err != nil {
			return nil, err
		}
	}
	return &id, nil
}

func (a *API) createChannel(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in channelBody
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return guildhall.E("api.createChannel", guildhall.Invalid, "name is required")
	}
	spec := member.ChannelSpec{Name: *in.Name}
	switch in.Type {
	case "", "text":
	case "category":
		spec.Type = member.ChannelCategory
	default:
		return guildhall.E("api.createChannel", guildhall.Invalid, "type must be text or category")
	}
	parent, err := in.parent()
	if err != nil {
		return err
	}
	if parent != nil {
		spec.ParentID = *parent
	}
	if in.Sync != nil {
		spec.Synced = *in.Sync
	}
	c, err := a.members.CreateChannelSpec(r.Context(), u, id, spec)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toChannel(c))
	return nil
}

func (a *API) getChannel(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	c, _, err := a.members.Channel(r.Context(), u, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toChannel(c))
	return nil
}

func (a *API) renameChannel(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in channelBody
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Type != "" {
		return guildhall.E("api.updateChannel", guildhall.Invalid, "a channel's type cannot change")
	}
	parent, err := in.parent()
	if err != nil {
		return err
	}
	if in.Name == nil && parent == nil && in.Sync == nil && in.Position == nil {
		return guildhall.E("api.updateChannel", guildhall.Invalid, "give at least one of name, parent_id, sync, position")
	}
	c, err := a.members.UpdateChannel(r.Context(), u, id, member.ChannelUpdate{Name: in.Name, ParentID: parent, Synced: in.Sync, Position: in.Position})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toChannel(c))
	return nil
}

func (a *API) deleteChannel(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	c, err := a.members.DeleteChannel(r.Context(), u, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toChannel(c))
	return nil
}

type inviteBody struct {
	MaxUses int `json:"max_uses"` // 0: unlimited
	MaxAge  int `json:"max_age"`  // seconds, 0: never expires
}

func (a *API) createInvite(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in inviteBody
	if r.ContentLength != 0 { // an empty body means the defaults
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	if in.MaxAge < 0 || in.MaxAge > int(member.MaxInviteAge.Seconds()) {
		return guildhall.E("api.createInvite", guildhall.Invalid, "max_age must be 0 (never expires) to %d seconds", int(member.MaxInviteAge.Seconds()))
	}
	inv, err := a.members.CreateInvite(r.Context(), u, id, in.MaxUses, time.Duration(in.MaxAge)*time.Second)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toInvite(inv))
	return nil
}

func (a *API) join(w http.ResponseWriter, r *http.Request, u member.User) error {
	s, _, err := a.members.Join(r.Context(), u, r.PathValue("code"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toServer(s))
	return nil
}

func (a *API) listMembers(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var q member.MemberQuery
	if q.After, err = queryID(r, "after"); err != nil {
		return err
	}
	if q.Limit, err = queryInt(r, "limit"); err != nil {
		return err
	}
	if r.URL.Query().Has("limit") && q.Limit == 0 {
		return guildhall.E("api.listMembers", guildhall.Invalid, "limit must be 1 to %d", member.MaxMemberPage)
	}
	q.Prefix = r.URL.Query().Get("q")
	list, err := a.members.Members(r.Context(), u, id, q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, each(list, toMember))
	return nil
}

func (a *API) leave(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.members.Leave(r.Context(), u, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type messageBody struct {
	Content *string `json:"content"`
	Nonce   string  `json:"nonce"`
}

func (mb messageBody) content() (string, error) {
	if mb.Content == nil {
		return "", guildhall.E("api", guildhall.Invalid, "content is required")
	}
	return *mb.Content, nil
}

func (a *API) sendMessage(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in messageBody
	if err := decode(r, &in); err != nil {
		return err
	}
	content, err := in.content()
	if err != nil {
		return err
	}
	m, err := a.messages.Send(r.Context(), u.ID, id, content, in.Nonce)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toMessage(m))
	return nil
}

func (a *API) listMessages(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var q message.Query
	if q.Before, err = queryID(r, "before"); err != nil {
		return err
	}
	if q.After, err = queryID(r, "after"); err != nil {
		return err
	}
	if q.Around, err = queryID(r, "around"); err != nil {
		return err
	}
	if q.Limit, err = queryInt(r, "limit"); err != nil {
		return err
	}
	if r.URL.Query().Has("limit") && q.Limit == 0 {
		return guildhall.E("api.listMessages", guildhall.Invalid, "limit must be 1 to %d", message.MaxPage)
	}
	list, err := a.history.History(r.Context(), u.ID, id, q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, each(list, toMessage))
	return nil
}

func (a *API) editMessage(w http.ResponseWriter, r *http.Request, u member.User) error {
	ch, err := pathID(r, "id")
	if err != nil {
		return err
	}
	id, err := pathID(r, "message_id")
	if err != nil {
		return err
	}
	var in messageBody
	if err := decode(r, &in); err != nil {
		return err
	}
	content, err := in.content()
	if err != nil {
		return err
	}
	m, err := a.messages.Edit(r.Context(), u.ID, ch, id, content)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toMessage(m))
	return nil
}

func (a *API) deleteMessage(w http.ResponseWriter, r *http.Request, u member.User) error {
	ch, err := pathID(r, "id")
	if err != nil {
		return err
	}
	id, err := pathID(r, "message_id")
	if err != nil {
		return err
	}
	if err := a.messages.Delete(r.Context(), u.ID, ch, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
