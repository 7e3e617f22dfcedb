package api

import (
	"time"

	"github.com/guildhall/guildhall/member"
	"github.com/guildhall/guildhall/message"
)

// JSON shapes of the REST API. IDs are strings; times are RFC 3339 in UTC.

type userJSON struct {
	ID       uint64 `json:"id,string"`
	Username string `json:"username"`
}

type authJSON struct {
	User  userJSON `json:"user"`
	Token string   `json:"token"`
}

type serverJSON struct {
	ID      uint64 `json:"id,string"`
	Name    string `json:"name"`
	OwnerID uint64 `json:"owner_id,string"`
}

type channelJSON struct {
	ID       uint64  `json:"id,string"`
	ServerID uint64  `json:"server_id,string"`
	Name     string  `json:"name"`
	Type     string  `json:"type"`
	Position int     `json:"position"`
	ParentID *string `json:"parent_id"`
	Synced   bool    `json:"synced"`
}

type memberJSON struct {
	UserID   uint64    `json:"user_id,string"`
	Username string    `json:"username"`
	Nick     string    `json:"nick"`
	JoinedAt time.Time `json:"joined_at"`
}

type inviteJSON struct {
	Code      string     `json:"code"`
	ServerID  uint64     `json:"server_id,string"`
	MaxUses   int        `json:"max_uses"`
	Uses      int        `json:"uses"`
	ExpiresAt *time.Time `json:"expires_at"`
}

type messageJSON struct {
	ID        uint64     `json:"id,string"`
	ChannelID uint64     `json:"channel_id,string"`
	ServerID  uint64     `json:"server_id,string"`
	AuthorID  uint64     `json:"author_id,string"`
	Content   string     `json:"content"`
	Seq       uint64     `json:"seq"`
	Nonce     string     `json:"nonce,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	EditedAt  *time.Time `json:"edited_at"`
	// Who the message mentions, parsed when it was sent.
	MentionUserIDs  []string `json:"mention_user_ids"`
	MentionRoleIDs  []string `json:"mention_role_ids"`
	MentionEveryone bool     `json:"mention_everyone"`
}

func toUser(u member.User) userJSON { return userJSON{ID: u.ID, Username: u.Username} }

func toServer(s member.Server) serverJSON {
	return serverJSON{ID: s.ID, Name: s.Name, OwnerID: s.OwnerID}
}

func toChannel(c member.Channel) channelJSON {
	out := channelJSON{ID: c.ID, ServerID: c.ServerID, Name: c.Name, Type: "text", Position: c.Position, Synced: c.Synced}
	if c.Type == member.ChannelCategory {
		out.Type = "category"
	}
	if c.ParentID != 0 {
		p := formatID(c.ParentID)
		out.ParentID = &p
	}
	return out
}

func toMember(m member.Member) memberJSON {
	return memberJSON{UserID: m.UserID, Username: m.Username, Nick: m.Nick, JoinedAt: m.JoinedAt}
}

func toInvite(i member.Invite) inviteJSON {
	out := inviteJSON{Code: i.Code, ServerID: i.ServerID, MaxUses: i.MaxUses, Uses: i.Uses}
	if !i.ExpiresAt.IsZero() {
		t := i.ExpiresAt
		out.ExpiresAt = &t
	}
	return out
}

func toMessage(m message.Message) messageJSON {
	out := messageJSON{
		ID: m.ID, ChannelID: m.ChannelID, ServerID: m.ServerID, AuthorID: m.AuthorID,
		Content: m.Content, Seq: m.Seq, Nonce: m.Nonce, CreatedAt: m.CreatedAt,
	}
	if !m.EditedAt.IsZero() {
		t := m.EditedAt
		out.EditedAt = &t
	}
	out.MentionUserIDs = idStrings(m.Mentions.Users)
	out.MentionRoleIDs = idStrings(m.Mentions.Roles)
	out.MentionEveryone = m.Mentions.Everyone
	return out
}

// idStrings renders IDs as JSON strings, never null.
func idStrings(ids []uint64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = formatID(id)
	}
	return out
}

// each converts a list for the wire; never nil, so JSON gets [].
func each[T, J any](list []T, f func(T) J) []J {
	out := make([]J, 0, len(list))
	for _, v := range list {
		out = append(out, f(v))
	}
	return out
}
