package role

// The sources of an explanation step, in the order Compute applies them.
const (
	SourceOwner             = "owner"                      // the member owns the server: All
	SourceAdministrator     = "administrator"              // a role grants Administrator: All, overwrites skipped
	SourceEveryoneRole      = "@everyone role"             // the @everyone role allows p
	SourceRole              = "role"                       // the role Step.RoleID allows p
	SourceEveryoneOverwrite = "@everyone overwrite"        // the channel's @everyone overwrite
	SourceRoleOverwrites    = "role overwrites"            // the merged overwrites of the member's roles
	SourceMemberOverwrite   = "member overwrite"           // the member's own overwrite
	SourceNoViewChannel     = "implicit: no VIEW_CHANNEL"  // no ViewChannel: nothing else applies
	SourceNoSendMessages    = "implicit: no SEND_MESSAGES" // no SendMessages: no mention, embed or attach
)

// Explanation says why a member has or lacks a permission in a channel.
// Allowed always equals Compute(in).Has(Permission).
type Explanation struct {
	Permission Permissions `json:"permission"` // what was asked about, usually one bit
	Names      []string    `json:"names"`      // Permission's names
	Steps      []Step      `json:"steps"`      // in the order applied; never nil
	Allowed    bool        `json:"allowed"`
}

// Step is one step of the computation that touched the permission asked
// about: a source granting it, or an overwrite or rule allowing or removing
// it. A step is listed even when it does not change the outcome (an allow of
// a permission already held), because it would if earlier steps changed.
type Step struct {
	Source string `json:"source"` // one of the Source constants
	// RoleID is the role for SourceRole, the server ID for
	// SourceEveryoneRole, and for SourceAdministrator the role that grants
	// Administrator (the server ID if @everyone does).
	RoleID uint64 `json:"role_id,string,omitempty"`
	// Roles lists, for SourceRoleOverwrites, each held role whose overwrite
	// allows or denies the permission.
	Roles []RoleEffect `json:"roles,omitempty"`
	Allow bool         `json:"allow"` // the step adds the permission
	Deny  bool         `json:"deny"`  // the step removes the permission (applied before Allow)
	Has   bool         `json:"has"`   // whether the member has the permission after this step
}

// RoleEffect is what one role's channel overwrite does to the permission.
type RoleEffect struct {
	RoleID uint64 `json:"role_id,string"`
	Allow  bool   `json:"allow"`
	Deny   bool   `json:"deny"`
}

// Explain tells why the member described by in has or lacks p in the
// channel whose overwrites are in.Overwrites. p is usually a single bit; for
// several, a step is listed when it touches any of them and Has means all of
// them. Explain follows Compute step by step; unlike Compute it allocates.
func Explain(in Input, p Permissions) Explanation {
	e := Explanation{Permission: p, Names: p.Names(), Steps: make([]Step, 0, 4)}
	add := func(s Step, cur Permissions) {
		s.Has = cur.Has(p)
		e.Steps = append(e.Steps, s)
	}

	if in.isOwner() {
		add(Step{Source: SourceOwner, Allow: true}, All)
		e.Allowed = All.Has(p)
		return e
	}

	cur := in.Everyone & All
	if cur&p != 0 {
		add(Step{Source: SourceEveryoneRole, RoleID: in.ServerID, Allow: true}, cur)
	}
	for _, r := range in.Roles {
		cur |= r.Permissions & All
		if r.Permissions&All&p != 0 {
			add(Step{Source: SourceRole, RoleID: r.ID, Allow: true}, cur)
		}
	}
	if cur&Administrator != 0 {
		admin := in.ServerID
		if in.Everyone&Administrator == 0 {
			for _, r := range in.Roles {
				if r.Permissions&Administrator != 0 {
					admin = r.ID
					break
				}
			}
		}
		add(Step{Source: SourceAdministrator, RoleID: admin, Allow: true}, All)
		e.Allowed = All.Has(p)
		return e
	}

	// The @everyone overwrite.
	var deny, allow Permissions
	for _, o := range in.Overwrites {
		if o.Type == OverwriteRole && o.ID == in.ServerID {
			deny |= o.Deny
			allow |= o.Allow & overwritable
		}
	}
	cur = apply(&e, SourceEveryoneOverwrite, nil, cur, deny, allow, p)

	// The overwrites of the member's roles, merged.
	var effects []RoleEffect
	deny, allow = 0, 0
	for _, o := range in.Overwrites {
		if o.Type != OverwriteRole || !in.holds(o.ID) {
			continue
		}
		deny |= o.Deny
		allow |= o.Allow & overwritable
		if (o.Deny|o.Allow&overwritable)&All&p != 0 {
			effects = append(effects, RoleEffect{
				RoleID: o.ID,
				Allow:  o.Allow&overwritable&p != 0,
				Deny:   o.Deny&All&p != 0,
			})
		}
	}
	cur = apply(&e, SourceRoleOverwrites, effects, cur, deny, allow, p)

	// The member's overwrite.
	deny, allow = 0, 0
	for _, o := range in.Overwrites {
		if o.Type == OverwriteMember && o.ID == in.UserID {
			deny |= o.Deny
			allow |= o.Allow & overwritable
		}
	}
	cur = apply(&e, SourceMemberOverwrite, nil, cur, deny, allow, p)

	// Implicit rules.
	switch {
	case cur&ViewChannel == 0:
		if p&All&^ViewChannel != 0 {
			add(Step{Source: SourceNoViewChannel, Deny: true}, 0)
		}
		cur = 0
	case cur&SendMessages == 0:
		cur &^= sendImplied
		if p&sendImplied != 0 {
			add(Step{Source: SourceNoSendMessages, Deny: true}, cur)
		}
	}
	e.Allowed = cur.Has(p)
	return e
}

// apply applies one overwrite step (deny, then allow) to cur and, if the
// step touches p, records it in e.
func apply(e *Explanation, source string, roles []RoleEffect, cur, deny, allow, p Permissions) Permissions {
	cur = cur&^deny | allow
	if t := p & All; (deny|allow)&t != 0 {
		e.Steps = append(e.Steps, Step{
			Source: source,
			Roles:  roles,
			Allow:  allow&t != 0,
			Deny:   deny&t != 0,
			Has:    cur.Has(p),
		})
	}
	return cur
}
