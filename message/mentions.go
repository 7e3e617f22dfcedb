package message

import (
	"slices"
	"strconv"
	"strings"
)

// MaxMentions bounds the distinct users plus roles one message may
// mention; Send refuses more (an anti-spam limit, as on Discord).
const MaxMentions = 50

// ParseMentions finds who content mentions: <@id> (or <@!id>) for users,
// <@&id> for roles, and @everyone or @here for everyone. IDs come back
// sorted and without duplicates. Whether Everyone may stand is the
// caller's decision (it needs MENTION_EVERYONE).
func ParseMentions(content string) Mentions {
	var m Mentions
	if strings.Contains(content, "@everyone") || strings.Contains(content, "@here") {
		m.Everyone = true
	}
	for rest := content; ; {
		i := strings.Index(rest, "<@")
		if i < 0 {
			break
		}
		rest = rest[i+2:]
		role := false
		switch {
		case strings.HasPrefix(rest, "&"):
			role, rest = true, rest[1:]
		case strings.HasPrefix(rest, "!"):
			rest = rest[1:]
		}
		end := strings.IndexByte(rest, '>')
		if end <= 0 || end > 20 {
			continue
		}
		id, err := strconv.ParseUint(rest[:end], 10, 64)
		if err != nil || id == 0 {
			continue
		}
		if role {
			m.Roles = append(m.Roles, id)
		} else {
			m.Users = append(m.Users, id)
		}
		rest = rest[end+1:]
	}
	slices.Sort(m.Users)
	m.Users = slices.Compact(m.Users)
	slices.Sort(m.Roles)
	m.Roles = slices.Compact(m.Roles)
	return m
}
