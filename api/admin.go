package api

import (
	"net/http"
	"strconv"
	"time"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/audit"
	"github.com/guildhall/guildhall/member"
	"github.com/guildhall/guildhall/role"
)

// adminRoutes mounts roles, permissions, moderation and the audit log.
func (a *API) adminRoutes(authed func(string, func(http.ResponseWriter, *http.Request, member.User) error)) {
	const p = "/api/v1"
	authed("GET "+p+"/servers/{id}/roles", a.listRoles)
	authed("POST "+p+"/servers/{id}/roles", a.createRole)
	authed("PATCH "+p+"/servers/{id}/roles", a.reorderRoles)
	authed("PATCH "+p+"/servers/{id}/roles/{role_id}", a.updateRole)
	authed("DELETE "+p+"/servers/{id}/roles/{role_id}", a.deleteRole)
	authed("GET "+p+"/servers/{id}/members/{user_id}", a.getMember)
	authed("PATCH "+p+"/servers/{id}/members/{user_id}", a.updateMember)
	authed("DELETE "+p+"/servers/{id}/members/{user_id}", a.kick)
	authed("PUT "+p+"/servers/{id}/members/{user_id}/roles/{role_id}", a.addMemberRole)
	authed("DELETE "+p+"/servers/{id}/members/{user_id}/roles/{role_id}", a.removeMemberRole)
	authed("GET "+p+"/servers/{id}/bans", a.listBans)
	authed("PUT "+p+"/servers/{id}/bans/{user_id}", a.ban)
	authed("DELETE "+p+"/servers/{id}/bans/{user_id}", a.unban)
	authed("GET "+p+"/servers/{id}/audit-log", a.auditLog)
	authed("GET "+p+"/servers/{id}/permissions/@me", a.myServerPermissions)
	authed("GET "+p+"/channels/{id}/permissions", a.listOverwrites)
	authed("GET "+p+"/channels/{id}/permissions/@me", a.myPermissions)
	authed("GET "+p+"/channels/{id}/permissions/explain", a.explain)
	authed("PUT "+p+"/channels/{id}/permissions/{target_id}", a.putOverwrite)
	authed("DELETE "+p+"/channels/{id}/permissions/{target_id}", a.deleteOverwrite)
	authed("GET "+p+"/channels/{id}/visibility", a.visibility)
	authed("PUT "+p+"/channels/{id}/visibility/{list}/{target_id}", a.listTarget)
	authed("DELETE "+p+"/channels/{id}/visibility/{list}/{target_id}", a.unlistTarget)
}

type roleJSON struct {
	ID          uint64           `json:"id,string"`
	Name        string           `json:"name"`
	Permissions role.Permissions `json:"permissions"`
	Position    int              `json:"position"`
	Color       int              `json:"color"`
	Hoist       bool             `json:"hoist"`
	Mentionable bool             `json:"mentionable"`
}

func toRole(r role.Role) roleJSON {
	return roleJSON{ID: r.ID, Name: r.Name, Permissions: r.Permissions, Position: r.Position, Color: r.Color, Hoist: r.Hoist, Mentionable: r.Mentionable}
}

func toRoles(list []role.Role) []roleJSON { return each(list, toRole) }

type roleBody struct {
	Name        *string           `json:"name"`
	Permissions *role.Permissions `json:"permissions"`
	Color       *int              `json:"color"`
	Hoist       *bool             `json:"hoist"`
	Mentionable *bool             `json:"mentionable"`
	Position    *int              `json:"position"`
}

func (b roleBody) update() role.RoleUpdate {
	return role.RoleUpdate{Name: b.Name, Permissions: b.Permissions, Color: b.Color, Hoist: b.Hoist, Mentionable: b.Mentionable, Position: b.Position}
}

func (a *API) listRoles(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	list, err := a.roles.Roles(r.Context(), u.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRoles(list))
	return nil
}

func (a *API) createRole(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in roleBody
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	created, err := a.roles.CreateRole(r.Context(), u.ID, id, in.update())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toRole(created))
	return nil
}

func (a *API) updateRole(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	roleID, err := pathID(r, "role_id")
	if err != nil {
		return err
	}
	var in roleBody
	if err := decode(r, &in); err != nil {
		return err
	}
	updated, err := a.roles.UpdateRole(r.Context(), u.ID, id, roleID, in.update())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRole(updated))
	return nil
}

// reorderRoles moves several roles at once: [{id, position}, ...]. All
// moves are checked before any is applied.
func (a *API) reorderRoles(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in []struct {
		ID       string `json:"id"`
		Position *int   `json:"position"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	moves := make([]role.Move, 0, len(in))
	for _, mv := range in {
		roleID, err := parseID("id", mv.ID)
		if err != nil {
			return err
		}
		if mv.Position == nil {
			return guildhall.E("api.reorderRoles", guildhall.Invalid, "every entry needs a position")
		}
		moves = append(moves, role.Move{RoleID: roleID, Position: *mv.Position})
	}
	list, err := a.roles.Reorder(r.Context(), u.ID, id, moves)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRoles(list))
	return nil
}

func (a *API) deleteRole(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	roleID, err := pathID(r, "role_id")
	if err != nil {
		return err
	}
	if err := a.roles.DeleteRole(r.Context(), u.ID, id, roleID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type memberDetailJSON struct {
	memberJSON
	Roles []string `json:"roles"`
}

// userPath reads {user_id}, where @me means the caller.
func userPath(r *http.Request, u member.User) (uint64, error) {
	if r.PathValue("user_id") == "@me" {
		return u.ID, nil
	}
	return pathID(r, "user_id")
}

func (a *API) getMember(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	userID, err := userPath(r, u)
	if err != nil {
		return err
	}
	m, err := a.members.Member(r.Context(), u, id, userID)
	if err != nil {
		return err
	}
	roles, err := a.roles.MemberRoles(r.Context(), u.ID, id, userID)
	if err != nil {
		return err
	}
	out := memberDetailJSON{memberJSON: toMember(m), Roles: make([]string, 0, len(roles))}
	for _, ro := range roles {
		out.Roles = append(out.Roles, strconv.FormatUint(ro.ID, 10))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) updateMember(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	userID, err := userPath(r, u)
	if err != nil {
		return err
	}
	var in struct {
		Nick *string `json:"nick"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Nick == nil {
		return guildhall.E("api.updateMember", guildhall.Invalid, "nick is required (empty string clears it)")
	}
	m, err := a.members.SetNick(r.Context(), u, id, userID, *in.Nick)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toMember(m))
	return nil
}

func (a *API) kick(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	userID, err := pathID(r, "user_id")
	if err != nil {
		return err
	}
	if err := a.members.Kick(r.Context(), u, id, userID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) setMemberRole(w http.ResponseWriter, r *http.Request, u member.User, add bool) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	userID, err := userPath(r, u)
	if err != nil {
		return err
	}
	roleID, err := pathID(r, "role_id")
	if err != nil {
		return err
	}
	if err := a.roles.SetMemberRole(r.Context(), u.ID, id, userID, roleID, add); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) addMemberRole(w http.ResponseWriter, r *http.Request, u member.User) error {
	return a.setMemberRole(w, r, u, true)
}

func (a *API) removeMemberRole(w http.ResponseWriter, r *http.Request, u member.User) error {
	return a.setMemberRole(w, r, u, false)
}

type banJSON struct {
	UserID    uint64    `json:"user_id,string"`
	Username  string    `json:"username"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"created_at"`
}

func (a *API) listBans(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	after, err := queryID(r, "after")
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit")
	if err != nil {
		return err
	}
	if r.URL.Query().Has("limit") && limit == 0 {
		return guildhall.E("api.listBans", guildhall.Invalid, "limit must be 1 to %d", member.MaxBanPage)
	}
	list, err := a.members.Bans(r.Context(), u, id, after, limit)
	if err != nil {
		return err
	}
	out := make([]banJSON, 0, len(list))
	for _, b := range list {
		out = append(out, banJSON{UserID: b.UserID, Username: b.Username, Reason: b.Reason, CreatedAt: b.CreatedAt})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) ban(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	userID, err := pathID(r, "user_id")
	if err != nil {
		return err
	}
	var in struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	if in.Reason == "" {
		in.Reason = audit.ReasonFrom(r.Context())
	}
	b, err := a.members.Ban(r.Context(), u, id, userID, in.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, banJSON{UserID: b.UserID, Username: b.Username, Reason: b.Reason, CreatedAt: b.CreatedAt})
	return nil
}

func (a *API) unban(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	userID, err := pathID(r, "user_id")
	if err != nil {
		return err
	}
	if err := a.members.Unban(r.Context(), u, id, userID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type changeJSON struct {
	Key string `json:"key"`
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
}

type auditJSON struct {
	ID        uint64       `json:"id,string"`
	ActorID   uint64       `json:"actor_id,string"`
	Action    audit.Action `json:"action"`
	TargetID  *string      `json:"target_id"`
	Changes   []changeJSON `json:"changes"`
	Reason    string       `json:"reason,omitempty"`
	CreatedAt time.Time    `json:"created_at"`
}

func (a *API) auditLog(w http.ResponseWriter, r *http.Request, u member.User) error {
	const op = "api.auditLog"
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var q audit.Query
	if q.Before, err = queryID(r, "before"); err != nil {
		return err
	}
	if q.ActorID, err = queryID(r, "actor_id"); err != nil {
		return err
	}
	if q.Limit, err = queryInt(r, "limit"); err != nil {
		return err
	}
	if r.URL.Query().Has("limit") && q.Limit == 0 {
		return guildhall.E(op, guildhall.Invalid, "limit must be 1 to %d", audit.MaxLimit)
	}
	q.Action = audit.Action(r.URL.Query().Get("action"))
	if q.Action != "" && !q.Action.Valid() {
		return guildhall.E(op, guildhall.Invalid, "unknown action %q", q.Action)
	}
	perms, err := a.roles.Server(r.Context(), u.ID, id)
	if err != nil {
		return err
	}
	if !perms.Has(role.ViewAuditLog) {
		return guildhall.E(op, guildhall.Forbidden, "missing permission VIEW_AUDIT_LOG")
	}
	list, err := a.audit.List(r.Context(), id, q)
	if err != nil {
		return err
	}
	out := make([]auditJSON, 0, len(list))
	for _, e := range list {
		j := auditJSON{ID: e.ID, ActorID: e.ActorID, Action: e.Action, Reason: e.Reason, CreatedAt: e.CreatedAt, Changes: make([]changeJSON, 0, len(e.Changes))}
		if e.TargetID != 0 {
			t := formatID(e.TargetID)
			j.TargetID = &t
		}
		for _, c := range e.Changes {
			j.Changes = append(j.Changes, changeJSON{Key: c.Key, Old: c.Old, New: c.New})
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type permissionsJSON struct {
	Permissions role.Permissions `json:"permissions"`
	Names       []string         `json:"names"`
}

func (a *API) myServerPermissions(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	p, err := a.roles.Server(r.Context(), u.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, permissionsJSON{Permissions: p, Names: p.Names()})
	return nil
}

func (a *API) myPermissions(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	p, err := a.roles.Permissions(r.Context(), u.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, permissionsJSON{Permissions: p, Names: p.Names()})
	return nil
}

type overwriteJSON struct {
	ID    uint64           `json:"id,string"`
	Type  string           `json:"type"`
	Allow role.Permissions `json:"allow"`
	Deny  role.Permissions `json:"deny"`
}

func parseTargetType(s string) (role.OverwriteType, error) {
	switch s {
	case "role":
		return role.OverwriteRole, nil
	case "member":
		return role.OverwriteMember, nil
	}
	return 0, guildhall.E("api", guildhall.Invalid, "type must be role or member")
}

func (a *API) listOverwrites(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	list, err := a.roles.Overwrites(r.Context(), u.ID, id)
	if err != nil {
		return err
	}
	out := make([]overwriteJSON, 0, len(list))
	for _, ow := range list {
		out = append(out, overwriteJSON{ID: ow.ID, Type: ow.Type.String(), Allow: ow.Allow, Deny: ow.Deny})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) putOverwrite(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	target, err := pathID(r, "target_id")
	if err != nil {
		return err
	}
	var in struct {
		Type  string           `json:"type"`
		Allow role.Permissions `json:"allow"`
		Deny  role.Permissions `json:"deny"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	typ, err := parseTargetType(in.Type)
	if err != nil {
		return err
	}
	if in.Allow&in.Deny != 0 {
		return guildhall.E("api.putOverwrite", guildhall.Invalid, "a permission cannot be both allowed and denied")
	}
	ow := role.Overwrite{ID: target, Type: typ, Allow: in.Allow, Deny: in.Deny}
	if err := a.roles.PutOverwrite(r.Context(), u.ID, id, ow); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, overwriteJSON{ID: ow.ID, Type: ow.Type.String(), Allow: ow.Allow, Deny: ow.Deny})
	return nil
}

func (a *API) deleteOverwrite(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	target, err := pathID(r, "target_id")
	if err != nil {
		return err
	}
	if err := a.roles.DeleteOverwrite(r.Context(), u.ID, id, target); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type targetJSON struct {
	Type string `json:"type"`
	ID   uint64 `json:"id,string"`
}

type visibilityJSON struct {
	Private bool         `json:"private"`
	Allow   []targetJSON `json:"allow"`
	Deny    []targetJSON `json:"deny"`
}

func toTargets(list []role.Target) []targetJSON {
	return each(list, func(t role.Target) targetJSON { return targetJSON{Type: t.Type.String(), ID: t.ID} })
}

func (a *API) visibility(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	v, err := a.roles.Visibility(r.Context(), u.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, visibilityJSON{Private: v.Private, Allow: toTargets(v.Allow), Deny: toTargets(v.Deny)})
	return nil
}

// listTarget: PUT /channels/{id}/visibility/{allow|deny}/{target_id}?type=role|member
func (a *API) listTarget(w http.ResponseWriter, r *http.Request, u member.User) error {
	return a.setListed(w, r, u, true)
}

func (a *API) unlistTarget(w http.ResponseWriter, r *http.Request, u member.User) error {
	return a.setListed(w, r, u, false)
}

func (a *API) setListed(w http.ResponseWriter, r *http.Request, u member.User, listed bool) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	target, err := pathID(r, "target_id")
	if err != nil {
		return err
	}
	var allow bool
	switch r.PathValue("list") {
	case "allow":
		allow = true
	case "deny":
	default:
		return guildhall.E("api.setListed", guildhall.NotFound, "no such list: use allow or deny")
	}
	typ, err := parseTargetType(r.URL.Query().Get("type"))
	if err != nil {
		return err
	}
	if err := a.roles.SetListed(r.Context(), u.ID, id, role.Target{Type: typ, ID: target}, allow, listed); err != nil {
		return err
	}
	return a.visibility(w, r, u)
}

func (a *API) explain(w http.ResponseWriter, r *http.Request, u member.User) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	userID := u.ID
	if s := r.URL.Query().Get("user_id"); s != "" && s != "@me" {
		if userID, err = parseID("user_id", s); err != nil {
			return err
		}
	}
	name := r.URL.Query().Get("permission")
	p, ok := role.Named(name)
	if !ok {
		return guildhall.E("api.explain", guildhall.Invalid, "permission must be a permission name such as SEND_MESSAGES")
	}
	e, err := a.roles.Explain(r.Context(), u.ID, userID, id, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}
