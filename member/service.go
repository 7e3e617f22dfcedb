package member

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/audit"
	"github.com/guildhall/guildhall/role"
)

// Limits on every input of the service. Documented in docs/api.md.
const (
	MinUsername       = 2
	MaxUsername       = 32
	MinPassword       = 8
	MaxPassword       = 128
	MaxName           = 100 // server and channel names, in characters
	MaxServersPerUser = 200
	MaxChannels       = 500
	MaxInviteUses     = 100_000
	MaxInviteAge      = 30 * 24 * time.Hour
	DefaultMemberPage = 100
	MaxMemberPage     = 1000
	tokenPrefix       = "gh_"
)

// Config of a Service. Zero values mean the documented defaults.
type Config struct {
	TokenTTL time.Duration  // default 30 days
	Password PasswordParams // default OWASP's argon2id minimum
	Audit    Recorder       // where administrative actions are recorded; nil for nowhere
}

// Roles is what the member service needs of the role domain: the inputs
// of the permission computation, and the role state that membership and
// channel changes must update (role.Service).
type Roles interface {
	ServerInput(ctx context.Context, userID, serverID uint64) (role.Input, error)
	ChannelInput(ctx context.Context, userID, channelID uint64) (role.Input, error)
	ChannelsPermissions(ctx context.Context, userID, serverID uint64, chans []role.ChannelRef) ([]role.Permissions, error)
	ClearMember(ctx context.Context, serverID, userID uint64) error
	DeleteChannel(ctx context.Context, serverID, channelID uint64) error
	CopyOverwrites(ctx context.Context, serverID, from, to uint64) error
	Bump(ctx context.Context, serverID uint64) error
}

// Recorder keeps the audit log (audit.Log).
type Recorder interface {
	Record(ctx context.Context, e audit.Entry)
}

// IDs makes new snowflake IDs.
type IDs interface{ Next() uint64 }

// Service applies the member rules on top of a Store.
type Service struct {
	store Store
	roles Roles
	ids   IDs
	now   func() time.Time
	cfg   Config
}

// NewService returns a Service. now may be nil for time.Now.
func NewService(store Store, roles Roles, ids IDs, now func() time.Time, cfg Config) *Service {
	if now == nil {
		now = time.Now
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = 30 * 24 * time.Hour
	}
	cfg.Password = cfg.Password.withDefaults()
	return &Service{store: store, roles: roles, ids: ids, now: now, cfg: cfg}
}

// Register creates an account and logs it in.
func (s *Service) Register(ctx context.Context, username, password string) (User, string, error) {
	const op = "member.Register"
	if err := validUsername(username); err != nil {
		return User{}, "", guildhall.Wrap(op, err)
	}
	if n := len(password); n < MinPassword || n > MaxPassword {
		return User{}, "", guildhall.E(op, guildhall.Invalid, "password must be %d to %d bytes", MinPassword, MaxPassword)
	}
	hash, err := hashPassword(password, s.cfg.Password)
	if err != nil {
		return User{}, "", guildhall.Wrap(op, err)
	}
	u := User{ID: s.ids.Next(), Username: username, CreatedAt: s.now().UTC()}
	if err := s.store.CreateUser(ctx, u, hash); err != nil {
		return User{}, "", guildhall.Wrap(op, err)
	}
	token, err := s.newToken(ctx, u.ID)
	if err != nil {
		return User{}, "", guildhall.Wrap(op, err)
	}
	return u, token, nil
}

// Login checks a password and returns a new token. A wrong username and a
// wrong password get the same error.
func (s *Service) Login(ctx context.Context, username, password string) (User, string, error) {
	const op = "member.Login"
	if len(username) > MaxUsername || len(password) > MaxPassword {
		return User{}, "", guildhall.E(op, guildhall.Unauthenticated, "wrong username or password")
	}
	u, hash, err := s.store.UserByName(ctx, username)
	if guildhall.KindOf(err) == guildhall.NotFound {
		return User{}, "", guildhall.E(op, guildhall.Unauthenticated, "wrong username or password")
	}
	if err != nil {
		return User{}, "", guildhall.Wrap(op, err)
	}
	if !checkPassword(hash, password) {
		return User{}, "", guildhall.E(op, guildhall.Unauthenticated, "wrong username or password")
	}
	token, err := s.newToken(ctx, u.ID)
	if err != nil {
		return User{}, "", guildhall.Wrap(op, err)
	}
	return u, token, nil
}

func (s *Service) newToken(ctx context.Context, userID uint64) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	now := s.now().UTC()
	t := Token{Hash: sha256.Sum256([]byte(token)), UserID: userID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.TokenTTL)}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return "", err
	}
	return token, nil
}

// Authenticate returns the user a bearer token belongs to.
func (s *Service) Authenticate(ctx context.Context, token string) (User, error) {
	const op = "member.Authenticate"
	if !strings.HasPrefix(token, tokenPrefix) || len(token) > 100 {
		return User{}, guildhall.E(op, guildhall.Unauthenticated, "invalid token")
	}
	t, err := s.store.Token(ctx, sha256.Sum256([]byte(token)))
	if guildhall.KindOf(err) == guildhall.NotFound {
		return User{}, guildhall.E(op, guildhall.Unauthenticated, "invalid or revoked token")
	}
	if err != nil {
		return User{}, guildhall.Wrap(op, err)
	}
	if !s.now().Before(t.ExpiresAt) {
		return User{}, guildhall.E(op, guildhall.Unauthenticated, "token expired")
	}
	u, err := s.store.User(ctx, t.UserID)
	return u, guildhall.Wrap(op, err)
}

// Logout revokes a token.
func (s *Service) Logout(ctx context.Context, token string) error {
	return guildhall.Wrap("member.Logout", s.store.DeleteToken(ctx, sha256.Sum256([]byte(token))))
}

// CreateServer makes a server owned by actor, with a text channel "general".
func (s *Service) CreateServer(ctx context.Context, actor User, name string) (Server, error) {
	const op = "member.CreateServer"
	name, err := validName("server name", name)
	if err != nil {
		return Server{}, guildhall.Wrap(op, err)
	}
	mine, err := s.store.ServersOf(ctx, actor.ID)
	if err != nil {
		return Server{}, guildhall.Wrap(op, err)
	}
	if len(mine) >= MaxServersPerUser {
		return Server{}, guildhall.E(op, guildhall.Forbidden, "you are in %d servers, the most allowed", MaxServersPerUser)
	}
	now := s.now().UTC()
	srv := Server{ID: s.ids.Next(), Name: name, OwnerID: actor.ID, CreatedAt: now}
	general := Channel{ID: s.ids.Next(), ServerID: srv.ID, Name: "general", Type: ChannelText, CreatedAt: now}
	owner := Member{ServerID: srv.ID, UserID: actor.ID, Username: actor.Username, JoinedAt: now}
	if err := s.store.CreateServer(ctx, srv, []Channel{general}, owner); err != nil {
		return Server{}, guildhall.Wrap(op, err)
	}
	return srv, nil
}

// Servers lists the servers actor is in.
func (s *Service) Servers(ctx context.Context, actor User) ([]Server, error) {
	list, err := s.store.ServersOf(ctx, actor.ID)
	return list, guildhall.Wrap("member.Servers", err)
}

// Server returns a server actor is a member of. To a non-member an
// existing server is as unknown as a missing one.
func (s *Service) Server(ctx context.Context, actor User, serverID uint64) (Server, error) {
	const op = "member.Server"
	srv, err := s.store.Server(ctx, serverID)
	if err != nil {
		return Server{}, guildhall.Wrap(op, err)
	}
	if _, err := s.store.Member(ctx, serverID, actor.ID); err != nil {
		if guildhall.KindOf(err) == guildhall.NotFound {
			return Server{}, guildhall.E(op, guildhall.NotFound, "unknown server")
		}
		return Server{}, guildhall.Wrap(op, err)
	}
	return srv, nil
}

// RenameServer renames a server; actor needs MANAGE_SERVER. The name has
// the limits of CreateServer. A non-member gets NotFound, as for a missing
// server. Renaming to the current name changes and records nothing.
func (s *Service) RenameServer(ctx context.Context, actor User, serverID uint64, name string) (Server, error) {
	const op = "member.RenameServer"
	name, err := validName("server name", name)
	if err != nil {
		return Server{}, guildhall.Wrap(op, err)
	}
	if _, err := s.need(ctx, op, actor, serverID, role.ManageServer); err != nil {
		return Server{}, err
	}
	srv, err := s.store.Server(ctx, serverID)
	if err != nil {
		return Server{}, guildhall.Wrap(op, err)
	}
	if srv.Name == name {
		return srv, nil
	}
	old := srv.Name
	srv.Name = name
	if err := s.store.UpdateServer(ctx, srv); err != nil {
		return Server{}, guildhall.Wrap(op, err)
	}
	s.record(ctx, audit.Entry{ServerID: serverID, ActorID: actor.ID, Action: audit.ServerUpdate, TargetID: serverID, Changes: []audit.Change{{Key: "name", Old: old, New: name}}})
	return srv, nil
}

// CreateInvite makes an invite to a server actor is in. maxUses 0 means
// unlimited, maxAge 0 means it never expires.
func (s *Service) CreateInvite(ctx context.Context, actor User, serverID uint64, maxUses int, maxAge time.Duration) (Invite, error) {
	const op = "member.CreateInvite"
	if maxUses < 0 || maxUses > MaxInviteUses {
		return Invite{}, guildhall.E(op, guildhall.Invalid, "max_uses must be 0 (unlimited) to %d", MaxInviteUses)
	}
	if maxAge < 0 || maxAge > MaxInviteAge {
		return Invite{}, guildhall.E(op, guildhall.Invalid, "max_age must be 0 (never expires) to %d seconds", int(MaxInviteAge.Seconds()))
	}
	if _, err := s.need(ctx, op, actor, serverID, role.CreateInvite); err != nil {
		return Invite{}, err
	}
	raw := make([]byte, 9)
	if _, err := rand.Read(raw); err != nil {
		return Invite{}, guildhall.Wrap(op, err)
	}
	now := s.now().UTC()
	inv := Invite{Code: base64.RawURLEncoding.EncodeToString(raw), ServerID: serverID, CreatorID: actor.ID, MaxUses: maxUses, CreatedAt: now}
	if maxAge > 0 {
		inv.ExpiresAt = now.Add(maxAge)
	}
	if err := s.store.CreateInvite(ctx, inv); err != nil {
		return Invite{}, guildhall.Wrap(op, err)
	}
	s.record(ctx, audit.Entry{ServerID: serverID, ActorID: actor.ID, Action: audit.InviteCreate, Changes: []audit.Change{
		{Key: "code", New: inv.Code}, {Key: "max_uses", New: strconv.Itoa(maxUses)}, {Key: "max_age", New: strconv.Itoa(int(maxAge.Seconds()))},
	}})
	return inv, nil
}

// Join makes actor a member of the invite's server.
func (s *Service) Join(ctx context.Context, actor User, code string) (Server, Member, error) {
	const op = "member.Join"
	if code == "" || len(code) > 64 {
		return Server{}, Member{}, guildhall.E(op, guildhall.NotFound, "unknown invite")
	}
	inv, err := s.store.Invite(ctx, code)
	if err != nil {
		return Server{}, Member{}, guildhall.Wrap(op, err)
	}
	if _, err := s.store.Member(ctx, inv.ServerID, actor.ID); guildhall.KindOf(err) == guildhall.NotFound {
		mine, err := s.store.ServersOf(ctx, actor.ID)
		if err != nil {
			return Server{}, Member{}, guildhall.Wrap(op, err)
		}
		if len(mine) >= MaxServersPerUser {
			return Server{}, Member{}, guildhall.E(op, guildhall.Forbidden, "you are in %d servers, the most allowed", MaxServersPerUser)
		}
	}
	m, err := s.store.JoinByInvite(ctx, code, Member{ServerID: inv.ServerID, UserID: actor.ID, Username: actor.Username, JoinedAt: s.now().UTC()})
	if err != nil {
		return Server{}, Member{}, guildhall.Wrap(op, err)
	}
	srv, err := s.store.Server(ctx, inv.ServerID)
	return srv, m, guildhall.Wrap(op, err)
}

// Leave removes actor from a server. The owner cannot leave.
func (s *Service) Leave(ctx context.Context, actor User, serverID uint64) error {
	const op = "member.Leave"
	srv, err := s.Server(ctx, actor, serverID)
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	if srv.OwnerID == actor.ID {
		return guildhall.E(op, guildhall.Forbidden, "the owner cannot leave their own server")
	}
	if err := s.store.RemoveMember(ctx, serverID, actor.ID); err != nil {
		return guildhall.Wrap(op, err)
	}
	return guildhall.Wrap(op, s.roles.ClearMember(ctx, serverID, actor.ID))
}

// MemberCount is how many members a server has (no permission check: the
// link node uses it to decide whether to follow a server in full).
func (s *Service) MemberCount(ctx context.Context, serverID uint64) (int, error) {
	n, err := s.store.MemberCount(ctx, serverID)
	return n, guildhall.Wrap("member.MemberCount", err)
}

// Members pages through a server's members. q.Prefix is matched
// case-insensitively against usernames.
func (s *Service) Members(ctx context.Context, actor User, serverID uint64, q MemberQuery) ([]Member, error) {
	const op = "member.Members"
	if q.Limit == 0 {
		q.Limit = DefaultMemberPage
	}
	if q.Limit < 1 || q.Limit > MaxMemberPage {
		return nil, guildhall.E(op, guildhall.Invalid, "limit must be 1 to %d", MaxMemberPage)
	}
	if len(q.Prefix) > MaxUsername {
		return nil, guildhall.E(op, guildhall.Invalid, "q must be at most %d bytes", MaxUsername)
	}
	q.Prefix = strings.ToLower(q.Prefix)
	if _, err := s.Server(ctx, actor, serverID); err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	list, err := s.store.Members(ctx, serverID, q)
	return list, guildhall.Wrap(op, err)
}

func validUsername(name string) error {
	const op = "member.validUsername"
	if n := len(name); n < MinUsername || n > MaxUsername {
		return guildhall.E(op, guildhall.Invalid, "username must be %d to %d characters", MinUsername, MaxUsername)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return guildhall.E(op, guildhall.Invalid, "username may hold only letters a-z, digits, '_', '.' and '-'")
		}
	}
	return nil
}

// validName trims a display name and checks its length and characters.
func validName(what, name string) (string, error) {
	const op = "member.validName"
	name = strings.TrimSpace(name)
	if !utf8.ValidString(name) {
		return "", guildhall.E(op, guildhall.Invalid, "%s must be valid UTF-8", what)
	}
	if n := utf8.RuneCountInString(name); n < 1 || n > MaxName {
		return "", guildhall.E(op, guildhall.Invalid, "%s must be 1 to %d characters", what, MaxName)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", guildhall.E(op, guildhall.Invalid, "%s may not hold control characters", what)
		}
	}
	return name, nil
}
