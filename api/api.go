package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/member"
	"github.com/guildhall/guildhall/message"
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
	Channels(ctx context.Context, actor member.User, serverID uint64) ([]member.Channel, error)
	Channel(ctx context.Context, actor member.User, channelID uint64) (member.Channel, member.Server, error)
	CreateChannel(ctx context.Context, actor member.User, serverID uint64, name string) (member.Channel, error)
	RenameChannel(ctx context.Context, actor member.User, channelID uint64, name string) (member.Channel, error)
	DeleteChannel(ctx context.Context, actor member.User, channelID uint64) (member.Channel, error)
	CreateInvite(ctx context.Context, actor member.User, serverID uint64, maxUses int, maxAge time.Duration) (member.Invite, error)
	Join(ctx context.Context, actor member.User, code string) (member.Server, member.Member, error)
	Leave(ctx context.Context, actor member.User, serverID uint64) error
	Members(ctx context.Context, actor member.User, serverID uint64, q member.MemberQuery) ([]member.Member, error)
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

// API serves the REST endpoints.
type API struct {
	members  Members
	messages Messages
	history  History
	log      *slog.Logger
}

// New returns the REST API; mount Handler at /api/v1/.
func New(members Members, messages Messages, history History, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{members: members, messages: messages, history: history, log: log}
}

// Handler returns the routes, all under /api/v1.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
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
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Sprintf("field %s must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type.Kind()), typeErr.Value)
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

func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return "a value of another type"
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
