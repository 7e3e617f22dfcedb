package role

import (
	"context"

	guildhall "github.com/guildhall/guildhall"
)

// Visibility is a channel's allow list and deny list, read off its
// overwrites. A channel is private when @everyone is denied VIEW_CHANNEL;
// then only the allow list (and administrators and the owner) see it. The
// deny list names roles and members denied VIEW_CHANNEL.
type Visibility struct {
	Private bool
	Allow   []Target
	Deny    []Target
}

// Target is a role or a member named by an overwrite.
type Target struct {
	Type OverwriteType `json:"type"`
	ID   uint64        `json:"id,string"`
}

// Visibility returns a channel's lists; any member who can see the
// channel may read them.
func (s *Service) Visibility(ctx context.Context, actorID, channelID uint64) (Visibility, error) {
	const op = "role.Visibility"
	in, err := s.res.ChannelInput(ctx, actorID, channelID)
	if err != nil {
		return Visibility{}, guildhall.Wrap(op, err)
	}
	if !Compute(in).Has(ViewChannel) {
		return Visibility{}, guildhall.E(op, guildhall.NotFound, "unknown channel")
	}
	v := Visibility{Allow: []Target{}, Deny: []Target{}}
	for _, ow := range in.Overwrites {
		if ow.Type == OverwriteRole && ow.ID == in.ServerID {
			v.Private = ow.Deny.Has(ViewChannel)
			continue
		}
		switch {
		case ow.Allow.Has(ViewChannel):
			v.Allow = append(v.Allow, Target{Type: ow.Type, ID: ow.ID})
		case ow.Deny.Has(ViewChannel):
			v.Deny = append(v.Deny, Target{Type: ow.Type, ID: ow.ID})
		}
	}
	return v, nil
}

// SetListed adds (listed) or removes a target from a channel's allow list
// (allow=true) or deny list. Adding to the allow list makes the channel
// private. The lists are overwrites underneath, so the same rights apply
// as to PutOverwrite.
func (s *Service) SetListed(ctx context.Context, actorID, channelID uint64, t Target, allow, listed bool) error {
	const op = "role.SetListed"
	in, err := s.res.ChannelInput(ctx, actorID, channelID)
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	if !Compute(in).Has(ViewChannel) {
		return guildhall.E(op, guildhall.NotFound, "unknown channel")
	}
	current := func(typ OverwriteType, id uint64) Overwrite {
		for _, ow := range in.Overwrites {
			if ow.Type == typ && ow.ID == id {
				return ow
			}
		}
		return Overwrite{Type: typ, ID: id}
	}
	if t.Type == OverwriteRole && t.ID == in.ServerID {
		return guildhall.E(op, guildhall.Invalid, "list roles and members, not @everyone: listing someone on the allow list makes the channel private; to make it public again, remove the @everyone overwrite")
	}
	ow := current(t.Type, t.ID)
	switch {
	case allow && listed:
		ow.Allow |= ViewChannel
		ow.Deny &^= ViewChannel
	case !allow && listed:
		ow.Deny |= ViewChannel
		ow.Allow &^= ViewChannel
	case allow:
		ow.Allow &^= ViewChannel
	default:
		ow.Deny &^= ViewChannel
	}
	if err := s.PutOverwrite(ctx, actorID, channelID, ow); err != nil {
		return err
	}
	if allow && listed { // the allow list only means something on a private channel
		everyone := current(OverwriteRole, in.ServerID)
		if !everyone.Deny.Has(ViewChannel) {
			everyone.Deny |= ViewChannel
			everyone.Allow &^= ViewChannel
			return s.PutOverwrite(ctx, actorID, channelID, everyone)
		}
	}
	return nil
}

// Explain tells why userID can or cannot do p in channelID. A member may
// ask about themselves; asking about others needs MANAGE_ROLES.
func (s *Service) Explain(ctx context.Context, actorID, userID, channelID uint64, p Permissions) (Explanation, error) {
	const op = "role.Explain"
	if p == 0 || p&^All != 0 {
		return Explanation{}, guildhall.E(op, guildhall.Invalid, "name one or more known permissions")
	}
	actor, err := s.res.ChannelInput(ctx, actorID, channelID)
	if err != nil {
		return Explanation{}, guildhall.Wrap(op, err)
	}
	if !Compute(actor).Has(ViewChannel) {
		return Explanation{}, guildhall.E(op, guildhall.NotFound, "unknown channel")
	}
	if userID != actorID && !Base(actor).Has(ManageRoles) {
		return Explanation{}, guildhall.E(op, guildhall.Forbidden, "missing permission MANAGE_ROLES to explain another member's permissions")
	}
	in, err := s.res.ChannelInput(ctx, userID, channelID)
	if guildhall.KindOf(err) == guildhall.NotFound {
		return Explanation{}, guildhall.E(op, guildhall.NotFound, "unknown member")
	}
	if err != nil {
		return Explanation{}, guildhall.Wrap(op, err)
	}
	return Explain(in, p), nil
}

// Permissions returns actor's own permissions in a channel.
func (s *Service) Permissions(ctx context.Context, actorID, channelID uint64) (Permissions, error) {
	p, _, err := s.res.Channel(ctx, actorID, channelID)
	if err != nil {
		return 0, err
	}
	if !p.Has(ViewChannel) {
		return 0, guildhall.E("role.Permissions", guildhall.NotFound, "unknown channel")
	}
	return p, nil
}

// Overwrites lists a channel's overwrites to anyone who can see it.
func (s *Service) Overwrites(ctx context.Context, actorID, channelID uint64) ([]Overwrite, error) {
	in, err := s.res.ChannelInput(ctx, actorID, channelID)
	if err != nil {
		return nil, err
	}
	if !Compute(in).Has(ViewChannel) {
		return nil, guildhall.E("role.Overwrites", guildhall.NotFound, "unknown channel")
	}
	return in.Overwrites, nil
}

// MemberRoles lists the roles a member of a server holds (not @everyone).
func (s *Service) MemberRoles(ctx context.Context, actorID, serverID, userID uint64) ([]Role, error) {
	const op = "role.MemberRoles"
	if _, err := s.res.ServerInput(ctx, actorID, serverID); err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	in, err := s.res.ServerInput(ctx, userID, serverID)
	if guildhall.KindOf(err) == guildhall.NotFound {
		return nil, guildhall.E(op, guildhall.NotFound, "unknown member")
	}
	if err != nil {
		return nil, guildhall.Wrap(op, err)
	}
	if in.Roles == nil {
		return []Role{}, nil
	}
	return in.Roles, nil
}
