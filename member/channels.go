package member

import (
	"context"
	"strconv"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/audit"
	"github.com/guildhall/guildhall/role"
)

// need returns actor's input in a server after checking they hold p there.
// A non-member gets NotFound.
func (s *Service) need(ctx context.Context, op string, actor User, serverID uint64, p role.Permissions) (role.Input, error) {
	in, err := s.roles.ServerInput(ctx, actor.ID, serverID)
	if err != nil {
		return role.Input{}, guildhall.Wrap(op, err)
	}
	if have := role.Base(in); !have.Has(p) {
		return role.Input{}, guildhall.E(op, guildhall.Forbidden, "missing permission %s", joinNames(p&^have))
	}
	return in, nil
}

// needIn returns a channel after checking actor can see it and holds p in
// it. A channel actor cannot see is NotFound, like a missing one.
func (s *Service) needIn(ctx context.Context, op string, actor User, channelID uint64, p role.Permissions) (Channel, role.Input, error) {
	ch, err := s.store.Channel(ctx, channelID)
	if err != nil {
		return Channel{}, role.Input{}, guildhall.Wrap(op, err)
	}
	in, err := s.roles.ChannelInput(ctx, actor.ID, channelID)
	if err != nil {
		return Channel{}, role.Input{}, guildhall.Wrap(op, err)
	}
	have := role.Compute(in)
	if !have.Has(role.ViewChannel) {
		return Channel{}, role.Input{}, guildhall.E(op, guildhall.NotFound, "unknown channel")
	}
	if !have.Has(p) {
		return Channel{}, role.Input{}, guildhall.E(op, guildhall.Forbidden, "missing permission %s", joinNames(p&^have))
	}
	return ch, in, nil
}

func joinNames(p role.Permissions) string {
	names := p.Names()
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}

func (s *Service) record(ctx context.Context, e audit.Entry) {
	if s.cfg.Audit != nil {
		s.cfg.Audit.Record(ctx, e)
	}
}

// Channels lists the channels of a server that actor can see.
func (s *Service) Channels(ctx context.Context, actor User, serverID uint64) ([]Channel, error) {
	const op = "member.Channels"
	list, err := s.store.Channels(ctx, serverID)
	if guildhall.KindOf(err) == guildhall.NotFound {
		return nil, guildhall.E(op, guildhall.NotFound, "unknown server")
	}
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	refs := make([]role.ChannelRef, len(list))
	for i, c := range list {
		refs[i] = role.ChannelRef{ID: c.ID, ServerID: c.ServerID, ParentID: c.ParentID, Synced: c.Synced}
	}
	perms, err := s.roles.ChannelsPermissions(ctx, actor.ID, serverID, refs)
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	visible := list[:0]
	for i, c := range list {
		if perms[i].Has(role.ViewChannel) {
			visible = append(visible, c)
		}
	}
	return visible, nil
}

// Channel returns a channel actor can see, and its server.
func (s *Service) Channel(ctx context.Context, actor User, channelID uint64) (Channel, Server, error) {
	const op = "member.Channel"
	ch, _, err := s.needIn(ctx, op, actor, channelID, role.ViewChannel)
	if err != nil {
		return Channel{}, Server{}, err
	}
	srv, err := s.store.Server(ctx, ch.ServerID)
	return ch, srv, guildhall.Wrap(op, err)
}

// ChannelSpec describes a new channel.
type ChannelSpec struct {
	Name     string
	Type     ChannelType
	ParentID uint64 // a category of the same server, 0 for none
	Synced   bool   // take the category's overwrites
}

// CreateChannel adds a text channel; actor needs MANAGE_CHANNELS.
func (s *Service) CreateChannel(ctx context.Context, actor User, serverID uint64, name string) (Channel, error) {
	return s.CreateChannelSpec(ctx, actor, serverID, ChannelSpec{Name: name})
}

// CreateChannelSpec adds a channel or category; actor needs MANAGE_CHANNELS.
func (s *Service) CreateChannelSpec(ctx context.Context, actor User, serverID uint64, spec ChannelSpec) (Channel, error) {
	const op = "member.CreateChannel"
	name, err := validName("channel name", spec.Name)
	if err != nil {
		return Channel{}, guildhall.Wrap(op, err)
	}
	if spec.Type != ChannelText && spec.Type != ChannelCategory {
		return Channel{}, guildhall.E(op, guildhall.Invalid, "type must be text or category")
	}
	if _, err := s.need(ctx, op, actor, serverID, role.ManageChannels); err != nil {
		return Channel{}, err
	}
	list, err := s.store.Channels(ctx, serverID)
	if err != nil {
		return Channel{}, guildhall.Wrap(op, err)
	}
	if len(list) >= MaxChannels {
		return Channel{}, guildhall.E(op, guildhall.Forbidden, "a server has at most %d channels", MaxChannels)
	}
	ch := Channel{ID: s.ids.Next(), ServerID: serverID, Name: name, Type: spec.Type, CreatedAt: s.now().UTC()}
	for _, c := range list {
		ch.Position = max(ch.Position, c.Position+1)
	}
	if err := s.setParent(ctx, op, &ch, list, spec.ParentID, spec.Synced); err != nil {
		return Channel{}, err
	}
	if err := s.store.CreateChannel(ctx, ch); err != nil {
		return Channel{}, guildhall.Wrap(op, err)
	}
	s.record(ctx, audit.Entry{ServerID: serverID, ActorID: actor.ID, Action: audit.ChannelCreate, TargetID: ch.ID, Changes: []audit.Change{{Key: "name", New: ch.Name}}})
	return ch, nil
}

// setParent checks and sets a channel's category.
func (s *Service) setParent(ctx context.Context, op string, ch *Channel, list []Channel, parentID uint64, synced bool) error {
	if parentID == 0 {
		if synced {
			return guildhall.E(op, guildhall.Invalid, "only a channel in a category can be synced to it")
		}
		ch.ParentID, ch.Synced = 0, false
		return nil
	}
	if ch.Type == ChannelCategory {
		return guildhall.E(op, guildhall.Invalid, "a category cannot sit in a category")
	}
	for _, c := range list {
		if c.ID == parentID && c.Type == ChannelCategory {
			ch.ParentID, ch.Synced = parentID, synced
			return nil
		}
	}
	return guildhall.E(op, guildhall.Invalid, "parent_id must be a category of the same server")
}

// ChannelUpdate holds the fields to change; nil means unchanged.
type ChannelUpdate struct {
	Name     *string
	ParentID *uint64 // 0 takes the channel out of its category
	Synced   *bool
	Position *int
}

// RenameChannel renames a channel; actor needs MANAGE_CHANNELS in it.
func (s *Service) RenameChannel(ctx context.Context, actor User, channelID uint64, name string) (Channel, error) {
	return s.UpdateChannel(ctx, actor, channelID, ChannelUpdate{Name: &name})
}

// UpdateChannel changes a channel; actor needs MANAGE_CHANNELS in it.
// Moving or (un)syncing a channel changes who may see it, so it bumps the
// server's permission version.
func (s *Service) UpdateChannel(ctx context.Context, actor User, channelID uint64, u ChannelUpdate) (Channel, error) {
	const op = "member.UpdateChannel"
	var name string
	if u.Name != nil {
		var err error
		if name, err = validName("channel name", *u.Name); err != nil {
			return Channel{}, guildhall.Wrap(op, err)
		}
	}
	if u.Position != nil && (*u.Position < 0 || *u.Position > MaxChannels*10) {
		return Channel{}, guildhall.E(op, guildhall.Invalid, "position must be 0 to %d", MaxChannels*10)
	}
	need := role.ManageChannels
	if u.ParentID != nil || u.Synced != nil {
		// Moving or (un)syncing swaps the overwrites that decide who sees
		// the channel: that is managing permissions.
		need |= role.ManageRoles
	}
	ch, _, err := s.needIn(ctx, op, actor, channelID, need)
	if err != nil {
		return Channel{}, err
	}
	before := ch
	var changes []audit.Change
	if u.Name != nil && name != ch.Name {
		changes = append(changes, audit.Change{Key: "name", Old: ch.Name, New: name})
		ch.Name = name
	}
	if u.Position != nil && *u.Position != ch.Position {
		changes = append(changes, audit.Change{Key: "position", Old: strconv.Itoa(ch.Position), New: strconv.Itoa(*u.Position)})
		ch.Position = *u.Position
	}
	if u.ParentID != nil || u.Synced != nil {
		parent, synced := ch.ParentID, ch.Synced
		if u.ParentID != nil {
			parent = *u.ParentID
			if parent == 0 {
				synced = false
			}
		}
		if u.Synced != nil {
			synced = *u.Synced
		}
		list, err := s.store.Channels(ctx, ch.ServerID)
		if err != nil {
			return Channel{}, guildhall.Wrap(op, err)
		}
		if err := s.setParent(ctx, op, &ch, list, parent, synced); err != nil {
			return Channel{}, err
		}
		if ch.ParentID != before.ParentID {
			changes = append(changes, audit.Change{Key: "parent_id", Old: strconv.FormatUint(before.ParentID, 10), New: strconv.FormatUint(ch.ParentID, 10)})
		}
		if ch.Synced != before.Synced {
			changes = append(changes, audit.Change{Key: "synced", Old: strconv.FormatBool(before.Synced), New: strconv.FormatBool(ch.Synced)})
		}
	}
	// A channel that stops following its category keeps the category's
	// overwrites as its own, so it stays exactly as visible as it was.
	if before.Synced && before.ParentID != 0 && (!ch.Synced || ch.ParentID != before.ParentID) {
		if err := s.roles.CopyOverwrites(ctx, ch.ServerID, before.ParentID, ch.ID); err != nil {
			return Channel{}, guildhall.Wrap(op, err)
		}
	}
	if err := s.store.UpdateChannel(ctx, ch); err != nil {
		return Channel{}, guildhall.Wrap(op, err)
	}
	if ch.ParentID != before.ParentID || ch.Synced != before.Synced {
		if err := s.roles.Bump(ctx, ch.ServerID); err != nil {
			return Channel{}, guildhall.Wrap(op, err)
		}
	}
	if len(changes) > 0 {
		s.record(ctx, audit.Entry{ServerID: ch.ServerID, ActorID: actor.ID, Action: audit.ChannelUpdate, TargetID: ch.ID, Changes: changes})
	}
	return ch, nil
}

// DeleteChannel deletes a channel; actor needs MANAGE_CHANNELS in it.
func (s *Service) DeleteChannel(ctx context.Context, actor User, channelID uint64) (Channel, error) {
	const op = "member.DeleteChannel"
	ch, _, err := s.needIn(ctx, op, actor, channelID, role.ManageChannels)
	if err != nil {
		return Channel{}, err
	}
	var orphans []Channel // synced children of a deleted category
	if ch.Type == ChannelCategory {
		list, err := s.store.Channels(ctx, ch.ServerID)
		if err != nil {
			return Channel{}, guildhall.Wrap(op, err)
		}
		for _, c := range list {
			if c.ParentID == ch.ID && c.Synced {
				// They keep the category's visibility as their own.
				if err := s.roles.CopyOverwrites(ctx, ch.ServerID, ch.ID, c.ID); err != nil {
					return Channel{}, guildhall.Wrap(op, err)
				}
				orphans = append(orphans, c)
			}
		}
	}
	if err := s.store.DeleteChannel(ctx, channelID); err != nil {
		return Channel{}, guildhall.Wrap(op, err)
	}
	for _, c := range orphans {
		c.ParentID, c.Synced = 0, false
		if err := s.store.UpdateChannel(ctx, c); err != nil {
			return Channel{}, guildhall.Wrap(op, err)
		}
	}
	if err := s.roles.DeleteChannel(ctx, ch.ServerID, channelID); err != nil {
		return Channel{}, guildhall.Wrap(op, err)
	}
	s.record(ctx, audit.Entry{ServerID: ch.ServerID, ActorID: actor.ID, Action: audit.ChannelDelete, TargetID: ch.ID, Changes: []audit.Change{{Key: "name", Old: ch.Name}}})
	return ch, nil
}
