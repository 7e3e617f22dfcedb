package role

import (
	"context"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/audit"
)

// Limits on role input, documented in docs/api.md.
const (
	MaxRoleName = 100
	MaxRoles    = 250
)

// IDs makes new snowflake IDs.
type IDs interface{ Next() uint64 }

// Service manages roles, role assignments and channel overwrites, with
// Discord's hierarchy rules: an actor manages only roles below their
// highest role, grants only permissions they hold, and the owner is above
// everyone.
type Service struct {
	store Store
	res   *Resolver
	ids   IDs
	audit Recorder
}

// Recorder keeps the audit log (audit.Log); nil records nothing.
type Recorder interface {
	Record(ctx context.Context, e audit.Entry)
}

// NewService returns a Service. rec may be nil.
func NewService(store Store, res *Resolver, ids IDs, rec Recorder) *Service {
	return &Service{store: store, res: res, ids: ids, audit: rec}
}

func (s *Service) record(ctx context.Context, e audit.Entry) {
	if s.audit != nil {
		s.audit.Record(ctx, e)
	}
}

// createdRole lists a new role's fields, with no old values.
func createdRole(r Role) []audit.Change {
	return []audit.Change{
		{Key: "name", New: r.Name},
		{Key: "permissions", New: r.Permissions.String()},
		{Key: "color", New: strconv.Itoa(r.Color)},
		{Key: "hoist", New: strconv.FormatBool(r.Hoist)},
		{Key: "mentionable", New: strconv.FormatBool(r.Mentionable)},
		{Key: "position", New: strconv.Itoa(r.Position)},
	}
}

// roleChanges lists what differs between two versions of a role.
func roleChanges(old, cur Role) []audit.Change {
	var out []audit.Change
	add := func(key, o, n string) {
		if o != n {
			out = append(out, audit.Change{Key: key, Old: o, New: n})
		}
	}
	add("name", old.Name, cur.Name)
	add("permissions", old.Permissions.String(), cur.Permissions.String())
	add("color", strconv.Itoa(old.Color), strconv.Itoa(cur.Color))
	add("hoist", strconv.FormatBool(old.Hoist), strconv.FormatBool(cur.Hoist))
	add("mentionable", strconv.FormatBool(old.Mentionable), strconv.FormatBool(cur.Mentionable))
	add("position", strconv.Itoa(old.Position), strconv.Itoa(cur.Position))
	return out
}

// RoleUpdate holds the fields to set; nil fields are left alone.
type RoleUpdate struct {
	Name        *string
	Permissions *Permissions
	Color       *int
	Hoist       *bool
	Mentionable *bool
	Position    *int
}

// Roles lists a server's roles, @everyone first. Any member may list them.
func (s *Service) Roles(ctx context.Context, actorID, serverID uint64) ([]Role, error) {
	const op = "role.Roles"
	if _, err := s.res.ServerInput(ctx, actorID, serverID); err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	return s.all(ctx, op, serverID)
}

func (s *Service) all(ctx context.Context, op string, serverID uint64) ([]Role, error) {
	list, err := s.store.Roles(ctx, serverID)
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	for _, r := range list {
		if r.ID == serverID {
			return list, nil
		}
	}
	return append([]Role{Everyone(serverID)}, list...), nil
}

// manager returns the actor's input after checking they may manage roles.
func (s *Service) manager(ctx context.Context, op string, actorID, serverID uint64) (Input, error) {
	in, err := s.res.ServerInput(ctx, actorID, serverID)
	if err != nil {
		return Input{}, guildhall.Wrap(op, err)
	}
	if !Base(in).Has(ManageRoles) {
		return Input{}, guildhall.E(op, guildhall.Forbidden, "missing permission MANAGE_ROLES")
	}
	return in, nil
}

func checkFields(op string, actor Input, u RoleUpdate) error {
	if u.Name != nil {
		n := strings.TrimSpace(*u.Name)
		if c := utf8.RuneCountInString(n); c < 1 || c > MaxRoleName || !utf8.ValidString(n) {
			return guildhall.E(op, guildhall.Invalid, "role name must be 1 to %d characters", MaxRoleName)
		}
		if strings.IndexFunc(n, unicode.IsControl) >= 0 {
			return guildhall.E(op, guildhall.Invalid, "role name may not hold control characters")
		}
		*u.Name = n
	}
	if u.Color != nil && (*u.Color < 0 || *u.Color > 0xFFFFFF) {
		return guildhall.E(op, guildhall.Invalid, "color must be 0 to 16777215 (0xRRGGBB)")
	}
	if u.Permissions != nil && !CanGrant(actor, *u.Permissions) {
		return guildhall.E(op, guildhall.Forbidden, "you cannot grant permissions you do not have")
	}
	if u.Position != nil && !actor.isOwner() && *u.Position >= HighestPosition(actor.Roles) {
		return guildhall.E(op, guildhall.Forbidden, "a role can only be placed below your highest role")
	}
	if u.Position != nil && *u.Position < 1 {
		return guildhall.E(op, guildhall.Invalid, "position must be at least 1 (0 is @everyone's)")
	}
	return nil
}

func (u RoleUpdate) applyTo(r *Role) {
	if u.Name != nil {
		r.Name = *u.Name
	}
	if u.Permissions != nil {
		r.Permissions = *u.Permissions
	}
	if u.Color != nil {
		r.Color = *u.Color
	}
	if u.Hoist != nil {
		r.Hoist = *u.Hoist
	}
	if u.Mentionable != nil {
		r.Mentionable = *u.Mentionable
	}
	if u.Position != nil {
		r.Position = *u.Position
	}
}

// CreateRole adds a role at the bottom (position 1) — or, for the owner,
// at the top — unless a position is given. Positions may repeat; ties are
// ordered by ID.
func (s *Service) CreateRole(ctx context.Context, actorID, serverID uint64, u RoleUpdate) (Role, error) {
	const op = "role.CreateRole"
	actor, err := s.manager(ctx, op, actorID, serverID)
	if err != nil {
		return Role{}, err
	}
	if u.Name == nil {
		name := "new role"
		u.Name = &name
	}
	if err := checkFields(op, actor, u); err != nil {
		return Role{}, err
	}
	list, err := s.all(ctx, op, serverID)
	if err != nil {
		return Role{}, err
	}
	if len(list) >= MaxRoles {
		return Role{}, guildhall.E(op, guildhall.Forbidden, "a server has at most %d roles", MaxRoles)
	}
	r := Role{ID: s.ids.Next(), Position: 1}
	if actor.isOwner() {
		r.Position = HighestPosition(list) + 1
	}
	u.applyTo(&r)
	if err := s.store.PutRole(ctx, serverID, r); err != nil {
		return Role{}, guildhall.Wrap(op, err)
	}
	s.record(ctx, audit.Entry{ServerID: serverID, ActorID: actorID, Action: audit.RoleCreate, TargetID: r.ID, Changes: createdRole(r)})
	return r, nil
}

// find returns a server's role by ID.
func (s *Service) find(ctx context.Context, op string, serverID, roleID uint64) (Role, error) {
	list, err := s.all(ctx, op, serverID)
	if err != nil {
		return Role{}, err
	}
	for _, r := range list {
		if r.ID == roleID {
			return r, nil
		}
	}
	return Role{}, guildhall.E(op, guildhall.NotFound, "unknown role")
}

// UpdateRole edits a role below the actor's highest role.
func (s *Service) UpdateRole(ctx context.Context, actorID, serverID, roleID uint64, u RoleUpdate) (Role, error) {
	const op = "role.UpdateRole"
	actor, err := s.manager(ctx, op, actorID, serverID)
	if err != nil {
		return Role{}, err
	}
	r, err := s.find(ctx, op, serverID, roleID)
	if err != nil {
		return Role{}, err
	}
	if !CanManageRole(actor, r) {
		return Role{}, guildhall.E(op, guildhall.Forbidden, "you can only manage roles below your highest role")
	}
	if r.ID == serverID && u.Position != nil {
		return Role{}, guildhall.E(op, guildhall.Invalid, "@everyone always has position 0")
	}
	if r.ID == serverID && u.Name != nil {
		return Role{}, guildhall.E(op, guildhall.Invalid, "@everyone cannot be renamed")
	}
	if err := checkFields(op, actor, u); err != nil {
		return Role{}, err
	}
	old := r
	u.applyTo(&r)
	if err := s.store.PutRole(ctx, serverID, r); err != nil {
		return Role{}, guildhall.Wrap(op, err)
	}
	if changes := roleChanges(old, r); len(changes) > 0 {
		s.record(ctx, audit.Entry{ServerID: serverID, ActorID: actorID, Action: audit.RoleUpdate, TargetID: r.ID, Changes: changes})
	}
	return r, nil
}

// Move is one role's new position in a reorder.
type Move struct {
	RoleID   uint64
	Position int
}

// Reorder moves several roles at once. Every move is checked before any
// is applied: one refusal changes nothing.
func (s *Service) Reorder(ctx context.Context, actorID, serverID uint64, moves []Move) ([]Role, error) {
	const op = "role.Reorder"
	actor, err := s.manager(ctx, op, actorID, serverID)
	if err != nil {
		return nil, err
	}
	if len(moves) == 0 || len(moves) > MaxRoles {
		return nil, guildhall.E(op, guildhall.Invalid, "move 1 to %d roles", MaxRoles)
	}
	updated := make([]Role, 0, len(moves))
	for _, mv := range moves {
		r, err := s.find(ctx, op, serverID, mv.RoleID)
		if err != nil {
			return nil, err
		}
		if r.ID == serverID {
			return nil, guildhall.E(op, guildhall.Invalid, "@everyone always has position 0")
		}
		if !CanManageRole(actor, r) {
			return nil, guildhall.E(op, guildhall.Forbidden, "role %d: you can only manage roles below your highest role", r.ID)
		}
		pos := mv.Position
		if err := checkFields(op, actor, RoleUpdate{Position: &pos}); err != nil {
			return nil, guildhall.E(op, guildhall.KindOf(err), "role %d: %s", r.ID, guildhall.Message(err))
		}
		updated = append(updated, r)
	}
	for i, r := range updated {
		old := r
		r.Position = moves[i].Position
		if err := s.store.PutRole(ctx, serverID, r); err != nil {
			return nil, guildhall.Wrap(op, err)
		}
		if changes := roleChanges(old, r); len(changes) > 0 {
			s.record(ctx, audit.Entry{ServerID: serverID, ActorID: actorID, Action: audit.RoleUpdate, TargetID: r.ID, Changes: changes})
		}
	}
	return s.all(ctx, op, serverID)
}

// DeleteRole removes a role below the actor's highest role. @everyone
// cannot be deleted.
func (s *Service) DeleteRole(ctx context.Context, actorID, serverID, roleID uint64) error {
	const op = "role.DeleteRole"
	actor, err := s.manager(ctx, op, actorID, serverID)
	if err != nil {
		return err
	}
	if roleID == serverID {
		return guildhall.E(op, guildhall.Invalid, "@everyone cannot be deleted")
	}
	r, err := s.find(ctx, op, serverID, roleID)
	if err != nil {
		return err
	}
	if !CanManageRole(actor, r) {
		return guildhall.E(op, guildhall.Forbidden, "you can only manage roles below your highest role")
	}
	if err := s.store.DeleteRole(ctx, serverID, roleID); err != nil {
		return guildhall.Wrap(op, err)
	}
	s.record(ctx, audit.Entry{ServerID: serverID, ActorID: actorID, Action: audit.RoleDelete, TargetID: roleID, Changes: []audit.Change{{Key: "name", Old: r.Name}}})
	return nil
}

// SetMemberRole assigns (add) or removes a role of a member.
func (s *Service) SetMemberRole(ctx context.Context, actorID, serverID, userID, roleID uint64, add bool) error {
	const op = "role.SetMemberRole"
	actor, err := s.manager(ctx, op, actorID, serverID)
	if err != nil {
		return err
	}
	if roleID == serverID {
		return guildhall.E(op, guildhall.Invalid, "every member holds @everyone")
	}
	r, err := s.find(ctx, op, serverID, roleID)
	if err != nil {
		return err
	}
	if !CanManageRole(actor, r) {
		return guildhall.E(op, guildhall.Forbidden, "you can only assign roles below your highest role")
	}
	if _, err := s.res.ServerInput(ctx, userID, serverID); err != nil {
		return guildhall.E(op, guildhall.NotFound, "unknown member")
	}
	action, change := audit.MemberRoleAdd, audit.Change{Key: "role_id", New: strconv.FormatUint(roleID, 10)}
	if add {
		err = s.store.AddMemberRole(ctx, serverID, userID, roleID)
	} else {
		action, change = audit.MemberRoleRemove, audit.Change{Key: "role_id", Old: strconv.FormatUint(roleID, 10)}
		err = s.store.RemoveMemberRole(ctx, serverID, userID, roleID)
	}
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	s.record(ctx, audit.Entry{ServerID: serverID, ActorID: actorID, Action: action, TargetID: userID, Changes: []audit.Change{change}})
	return nil
}

// overwriteEditor checks that actor may edit channelID's overwrites and
// returns their input and channel permissions. Hidden channel: NotFound;
// no MANAGE_ROLES in the channel: Forbidden; a channel synced to its
// category: Conflict (its own overwrites would do nothing).
func (s *Service) overwriteEditor(ctx context.Context, op string, actorID, channelID uint64) (Input, Permissions, error) {
	in, err := s.res.ChannelInput(ctx, actorID, channelID)
	if err != nil {
		return Input{}, 0, guildhall.Wrap(op, err)
	}
	p := Compute(in)
	if !p.Has(ViewChannel) {
		return Input{}, 0, guildhall.E(op, guildhall.NotFound, "unknown channel")
	}
	if !p.Has(ManageRoles) {
		return Input{}, 0, guildhall.E(op, guildhall.Forbidden, "missing permission MANAGE_ROLES in this channel")
	}
	if err := s.notSynced(ctx, op, channelID); err != nil {
		return Input{}, 0, err
	}
	return in, p, nil
}

// mayTarget checks the hierarchy for an overwrite target: a role must sit
// below the actor's highest role (@everyone always does); a member must
// rank below the actor, or be the actor.
func (s *Service) mayTarget(ctx context.Context, op string, actor Input, typ OverwriteType, id uint64) error {
	if actor.isOwner() {
		if typ == OverwriteRole {
			_, err := s.find(ctx, op, actor.ServerID, id)
			return err
		}
		if _, err := s.res.ServerInput(ctx, id, actor.ServerID); err != nil {
			return guildhall.E(op, guildhall.NotFound, "unknown member")
		}
		return nil
	}
	switch typ {
	case OverwriteRole:
		r, err := s.find(ctx, op, actor.ServerID, id)
		if err != nil {
			return err
		}
		if r.ID != actor.ServerID && r.Position >= HighestPosition(actor.Roles) {
			return guildhall.E(op, guildhall.Forbidden, "you can only set permissions for roles below your highest role")
		}
	case OverwriteMember:
		target, err := s.res.ServerInput(ctx, id, actor.ServerID)
		if err != nil {
			return guildhall.E(op, guildhall.NotFound, "unknown member")
		}
		if id != actor.UserID && !CanModerate(actor, id, target.Roles) {
			return guildhall.E(op, guildhall.Forbidden, "you can only set permissions for members below you")
		}
	default:
		return guildhall.E(op, guildhall.Invalid, "type must be role or member")
	}
	return nil
}

// PutOverwrite sets a channel overwrite. The actor needs MANAGE_ROLES in
// the channel, may only allow or deny permissions they hold there, and
// only for roles and members below them. An overwrite that allows and
// denies nothing is removed instead of stored.
func (s *Service) PutOverwrite(ctx context.Context, actorID, channelID uint64, ow Overwrite) error {
	const op = "role.PutOverwrite"
	in, p, err := s.overwriteEditor(ctx, op, actorID, channelID)
	if err != nil {
		return err
	}
	if (ow.Allow|ow.Deny)&^All != 0 || (ow.Allow | ow.Deny).Has(Administrator) {
		return guildhall.E(op, guildhall.Invalid, "allow and deny may hold only channel permissions")
	}
	if !in.isOwner() && !Base(in).Has(Administrator) && !p.Has(ow.Allow|ow.Deny) {
		return guildhall.E(op, guildhall.Forbidden, "you cannot allow or deny permissions you do not have")
	}
	if err := s.mayTarget(ctx, op, in, ow.Type, ow.ID); err != nil {
		return err
	}
	if ow.Allow == 0 && ow.Deny == 0 {
		err := s.store.DeleteOverwrite(ctx, in.ServerID, channelID, ow.ID)
		if err != nil && guildhall.KindOf(err) != guildhall.NotFound {
			return guildhall.Wrap(op, err)
		}
		if err == nil {
			s.record(ctx, audit.Entry{ServerID: in.ServerID, ActorID: actorID, Action: audit.OverwriteDelete, TargetID: channelID, Changes: []audit.Change{{Key: "target", Old: ow.Type.String() + ":" + strconv.FormatUint(ow.ID, 10)}}})
		}
		return nil
	}
	if err := s.store.PutOverwrite(ctx, in.ServerID, channelID, ow); err != nil {
		return guildhall.Wrap(op, err)
	}
	s.record(ctx, audit.Entry{ServerID: in.ServerID, ActorID: actorID, Action: audit.OverwriteUpdate, TargetID: channelID, Changes: []audit.Change{
		{Key: "target", New: ow.Type.String() + ":" + strconv.FormatUint(ow.ID, 10)},
		{Key: "allow", New: ow.Allow.String()}, {Key: "deny", New: ow.Deny.String()},
	}})
	return nil
}

// DeleteOverwrite removes a channel overwrite (same rights as PutOverwrite).
func (s *Service) DeleteOverwrite(ctx context.Context, actorID, channelID, targetID uint64) error {
	const op = "role.DeleteOverwrite"
	in, _, err := s.overwriteEditor(ctx, op, actorID, channelID)
	if err != nil {
		return err
	}
	var target *Overwrite
	for i := range in.Overwrites {
		if in.Overwrites[i].ID == targetID {
			target = &in.Overwrites[i]
		}
	}
	if target == nil {
		return guildhall.E(op, guildhall.NotFound, "unknown overwrite")
	}
	if err := s.mayTarget(ctx, op, in, target.Type, targetID); err != nil {
		return err
	}
	if err := s.store.DeleteOverwrite(ctx, in.ServerID, channelID, targetID); err != nil {
		return guildhall.Wrap(op, err)
	}
	s.record(ctx, audit.Entry{ServerID: in.ServerID, ActorID: actorID, Action: audit.OverwriteDelete, TargetID: channelID, Changes: []audit.Change{{Key: "target", Old: target.Type.String() + ":" + strconv.FormatUint(targetID, 10)}}})
	return nil
}

// CopyOverwrites makes channel to's overwrites a copy of channel from's
// (used when a channel leaves or unsyncs from its category, so it keeps
// the visibility it had). No permission check: the caller did it.
func (s *Service) CopyOverwrites(ctx context.Context, serverID, from, to uint64) error {
	const op = "role.CopyOverwrites"
	list, err := s.store.Overwrites(ctx, from)
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	if err := s.store.DeleteChannel(ctx, serverID, to); err != nil {
		return guildhall.Wrap(op, err)
	}
	for _, ow := range list {
		if err := s.store.PutOverwrite(ctx, serverID, to, ow); err != nil {
			return guildhall.Wrap(op, err)
		}
	}
	return nil
}

// ServerInput is the resolver's; the member service checks with it.
func (s *Service) ServerInput(ctx context.Context, userID, serverID uint64) (Input, error) {
	return s.res.ServerInput(ctx, userID, serverID)
}

// ChannelInput is the resolver's.
func (s *Service) ChannelInput(ctx context.Context, userID, channelID uint64) (Input, error) {
	return s.res.ChannelInput(ctx, userID, channelID)
}

// ClearMember drops a departed member's roles (and bumps the version, so
// their sessions re-check what they follow).
func (s *Service) ClearMember(ctx context.Context, serverID, userID uint64) error {
	return s.store.ClearMember(ctx, serverID, userID)
}

// DeleteChannel drops a deleted channel's overwrites.
func (s *Service) DeleteChannel(ctx context.Context, serverID, channelID uint64) error {
	return s.store.DeleteChannel(ctx, serverID, channelID)
}

// Bump marks that something changed who sees what in a server.
func (s *Service) Bump(ctx context.Context, serverID uint64) error {
	return s.store.Bump(ctx, serverID)
}

// ChannelsPermissions is the resolver's.
func (s *Service) ChannelsPermissions(ctx context.Context, userID, serverID uint64, chans []ChannelRef) ([]Permissions, error) {
	return s.res.ChannelsPermissions(ctx, userID, serverID, chans)
}

// notSynced refuses to edit the overwrites of a channel synced to its
// category: they would have no effect.
func (s *Service) notSynced(ctx context.Context, op string, channelID uint64) error {
	ref, err := s.res.dir.ChannelRef(ctx, channelID)
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	if ref.Synced && ref.ParentID != 0 {
		return guildhall.E(op, guildhall.Conflict, "the channel is synced to its category: change the category's permissions, or unsync the channel first")
	}
	return nil
}

// Server returns userID's server-level permissions (NotFound for a
// non-member).
func (s *Service) Server(ctx context.Context, userID, serverID uint64) (Permissions, error) {
	return s.res.Server(ctx, userID, serverID)
}
