package api

import (
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/audit"
	"github.com/guildhall/guildhall/member"
	"github.com/guildhall/guildhall/message"
	"github.com/guildhall/guildhall/role"
)

// MaxBody is the largest request body accepted, in bytes.
const MaxBody = 64 << 10

// Members is what the API needs of the member service.
type Members interface {
	Register(ctx context.Context, username, password string) (member.User, string, error)
	Login(ctx context.Context, username, password string) (member.User, string, error)
	Authenticate(ctx context.Context, token string) (member.User, error)
	Logout(ctx context.Context, token string) error
	CreateServer(ctx context.Context, actor member.User, name string) (member.Server, error)
	Servers(ctx context.Context, actor member.User) ([]member.Server, error)
	Server(ctx context.Context, actor member.User, serverID uint64) (member.Server, error)
	RenameServer(ctx context.Context, actor member.User, serverID uint64, name string) (member.Server, error)
	Channels(ctx context.Context, actor member.User, serverID uint64) ([]member.Channel, error)
	Channel(ctx context.Context, actor member.User, channelID uint64) (member.Channel, member.Server, error)
	CreateChannel(ctx context.Context, actor member.User, serverID uint64, name string) (member.Channel, error)
	RenameChannel(ctx context.Context, actor member.User, channelID uint64, name string) (member.Channel, error)
	DeleteChannel(ctx context.Context, actor member.User, channelID uint64) (member.Channel, error)
	CreateInvite(ctx context.Context, actor member.User, serverID uint64, maxUses int, maxAge time.Duration) (member.Invite, error)
	Join(ctx context.Context, actor member.User, code string) (member.Server, member.Member, error)
	Leave(ctx context.Context, actor member.User, serverID uint64) error
	Members(ctx context.Context, actor member.User, serverID uint64, q member.MemberQuery) ([]member.Member, error)
	Member(ctx context.Context, actor member.User, serverID, userID uint64) (member.Member, error)
	CreateChannelSpec(ctx context.Context, actor member.User, serverID uint64, spec member.ChannelSpec) (member.Channel, error)
	UpdateChannel(ctx context.Context, actor member.User, channelID uint64, u member.ChannelUpdate) (member.Channel, error)
	Kick(ctx context.Context, actor member.User, serverID, userID uint64) error
	Ban(ctx context.Context, actor member.User, serverID, userID uint64, reason string) (member.Ban, error)
	Unban(ctx context.Context, actor member.User, serverID, userID uint64) error
	Bans(ctx context.Context, actor member.User, serverID, after uint64, limit int) ([]member.Ban, error)
	SetNick(ctx context.Context, actor member.User, serverID, userID uint64, nick string) (member.Member, error)
}

// Roles is what the API needs of the role service.
type Roles interface {
	Roles(ctx context.Context, actorID, serverID uint64) ([]role.Role, error)
	CreateRole(ctx context.Context, actorID, serverID uint64, u role.RoleUpdate) (role.Role, error)
	UpdateRole(ctx context.Context, actorID, serverID, roleID uint64, u role.RoleUpdate) (role.Role, error)
	DeleteRole(ctx context.Context, actorID, serverID, roleID uint64) error
	Reorder(ctx context.Context, actorID, serverID uint64, moves []role.Move) ([]role.Role, error)
	SetMemberRole(ctx context.Context, actorID, serverID, userID, roleID uint64, add bool) error
	MemberRoles(ctx context.Context, actorID, serverID, userID uint64) ([]role.Role, error)
	Overwrites(ctx context.Context, actorID, channelID uint64) ([]role.Overwrite, error)
	PutOverwrite(ctx context.Context, actorID, channelID uint64, ow role.Overwrite) error
	DeleteOverwrite(ctx context.Context, actorID, channelID, targetID uint64) error
	Visibility(ctx context.Context, actorID, channelID uint64) (role.Visibility, error)
	SetListed(ctx context.Context, actorID, channelID uint64, t role.Target, allow, listed bool) error
	Explain(ctx context.Context, actorID, userID, channelID uint64, p role.Permissions) (role.Explanation, error)
	Permissions(ctx context.Context, actorID, channelID uint64) (role.Permissions, error)
	Server(ctx context.Context, userID, serverID uint64) (role.Permissions, error)
}

// AuditLog reads a server's audit log.
type AuditLog interface {
	List(ctx context.Context, serverID uint64, q audit.Query) ([]audit.Entry, error)
}

// Messages is what the API needs of the message service (over the bus).
type Messages interface {
	Send(ctx context.Context, actorID, channelID uint64, content, nonce string) (message.Message, error)
	Edit(ctx context.Context, actorID, channelID, messageID uint64, content string) (message.Message, error)
	Delete(ctx context.Context, actorID, channelID, messageID uint64) error
}

// History reads message history.
type History interface {
	History(ctx context.Context, actorID, channelID uint64, q message.Query) ([]message.Message, error)
}

// Services are what the API serves.
type Services struct {
	Members  Members
	Messages Messages
	History  History
	Roles    Roles
	Audit    AuditLog
	// ReadStates serves acks and read states; nil answers them with 503.
	ReadStates ReadStates
}

// API serves the REST endpoints.
type API struct {
	members  Members
	messages Messages
	history  History
	roles    Roles
	audit    AuditLog
	log      *slog.Logger

	readStates ReadStates
}

// New returns the REST API; mount Handler at /api/v1/.
func New(s Services, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{members: s.Members, messages: s.Messages, history: s.History, roles: s.Roles, audit: s.Audit, log: log, readStates: s.ReadStates}
}

// Handler returns the routes, all under /api/v1.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
			if reason := r.Header.Get("X-Audit-Log-Reason"); reason != "" {
				// Percent-encoded, as Discord clients send it (headers
				// cannot carry UTF-8); a reason that does not decode is
				// kept as sent.
				if decoded, err := url.PathUnescape(reason); err == nil {
					reason = decoded
				}
				if len(reason) > audit.MaxReason {
					Error(w, r, a.log, guildhall.E("api.auditReason", guildhall.Invalid, "X-Audit-Log-Reason must be at most %d bytes", audit.MaxReason))
					return
				}
				r = r.WithContext(audit.WithReason(r.Context(), reason))
			}
			if err := h(w, r); err != nil {
				Error(w, r, a.log, err)
			}
		})
	}
	authed := func(pattern string, h func(http.ResponseWriter, *http.Request, member.User) error) {
		handle(pattern, func(w http.ResponseWriter, r *http.Request) error {
			u, err := a.authenticate(r)
			if err != nil {
				return err
			}
			return h(w, r, u)
		})
	}
	const p = "/api/v1"
	handle("POST "+p+"/auth/register", a.register)
	handle("POST "+p+"/auth/login", a.login)
	handle("POST "+p+"/auth/logout", a.logout)
	authed("GET "+p+"/users/@me", a.me)
	authed("GET "+p+"/users/@me/servers", a.myServers)
	authed("POST "+p+"/servers", a.createServer)
	authed("GET "+p+"/servers/{id}", a.getServer)
	authed("PATCH "+p+"/servers/{id}", a.renameServer)
	authed("GET "+p+"/servers/{id}/channels", a.listChannels)
	authed("POST "+p+"/servers/{id}/channels", a.createChannel)
	authed("GET "+p+"/channels/{id}", a.getChannel)
	authed("PATCH "+p+"/channels/{id}", a.renameChannel)
	authed("DELETE "+p+"/channels/{id}", a.deleteChannel)
	authed("POST "+p+"/servers/{id}/invites", a.createInvite)
	authed("POST "+p+"/invites/{code}", a.join)
	authed("GET "+p+"/servers/{id}/members", a.listMembers)
	authed("DELETE "+p+"/servers/{id}/members/@me", a.leave)
	authed("POST "+p+"/channels/{id}/messages", a.sendMessage)
	authed("GET "+p+"/channels/{id}/messages", a.listMessages)
	authed("PATCH "+p+"/channels/{id}/messages/{message_id}", a.editMessage)
	authed("DELETE "+p+"/channels/{id}/messages/{message_id}", a.deleteMessage)
	a.adminRoutes(authed)
	a.readStateRoutes(authed)
	handle(p+"/", func(w http.ResponseWriter, r *http.Request) error {
		var allowed []string
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != p+"/" && pattern != "" {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			return guildhall.E("api", guildhall.MethodNotAllowed, "%s is not allowed here; use %s", r.Method, strings.Join(allowed, ", "))
		}
		return guildhall.E("api", guildhall.NotFound, "no such endpoint")
	})
	return mux
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func (a *API) authenticate(r *http.Request) (member.User, error) {
	token := bearer(r)
	if token == "" {
		return member.User{}, guildhall.E("api.auth", guildhall.Unauthenticated, "missing Authorization: Bearer <token>")
	}
	return a.members.Authenticate(r.Context(), token)
}

// decode reads a JSON body into v: one object, nothing after it.
func decode(r *http.Request, v any) error {
	const op = "api.decode"
	dec := json.NewDecoder(r.Body)
	var tooBig *http.MaxBytesError
	if err := dec.Decode(v); err != nil {
		switch {
		case errors.As(err, &tooBig):
			return guildhall.E(op, guildhall.TooLarge, "request body is larger than %d bytes", MaxBody)
		case errors.Is(err, io.EOF):
			return guildhall.E(op, guildhall.Invalid, "request body must be a JSON object")
		default:
			return guildhall.E(op, guildhall.Invalid, "%s", jsonProblem(err))
		}
	}
	// Read to the end: dec.More would take a stray '}' or ']' for the end
	// of the object, and would not notice a body over MaxBody after it.
	switch _, err := dec.Token(); {
	case errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &tooBig):
		return guildhall.E(op, guildhall.TooLarge, "request body is larger than %d bytes", MaxBody)
	default:
		return guildhall.E(op, guildhall.Invalid, "invalid JSON: data after the object")
	}
}

// jsonProblem says what is wrong with a body in the API's terms, without
// the Go type names encoding/json puts in its errors.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	var ours *guildhall.Error
	switch {
	case errors.As(err, &ours): // a field's own decoder said what is wrong
		return guildhall.Message(err)
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Sprintf("field %s must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
	case errors.As(err, &typeErr):
		return fmt.Sprintf("request body must be a JSON object, not %s", typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("invalid JSON at byte %d", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "invalid JSON: the body ends too early"
	default:
		return "invalid JSON"
	}
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "a string" // e.g. permissions: "1024"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return "a number"
	}
}

func pathID(r *http.Request, name string) (uint64, error) {
	return parseID(name, r.PathValue(name))
}

func parseID(name, s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, guildhall.E("api.parseID", guildhall.Invalid, "%s must be a snowflake ID (a decimal string)", name)
	}
	return id, nil
}

// queryID parses an optional ID query parameter (0 if absent).
func queryID(r *http.Request, name string) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	return parseID(name, s)
}

func queryInt(r *http.Request, name string) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, guildhall.E("api.queryInt", guildhall.Invalid, "%s must be an integer", name)
	}
	return n, nil
}

func formatID(id uint64) string { return strconv.FormatUint(id, 10) }
