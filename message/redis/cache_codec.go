package redis

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/guildhall/guildhall/message"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// member is how a message ID is kept in a window's sorted set: 16
// lowercase hex digits, so that byte order is numeric order (scores are
// float64 and cannot hold a snowflake exactly).
func member(id uint64) string { return fmt.Sprintf("%016x", id) }

// encode is a cached message's body: pb.Message in protobuf.
func encode(m message.Message) ([]byte, error) {
	p := &pb.Message{
		Id:              m.ID,
		ChannelId:       m.ChannelID,
		ServerId:        m.ServerID,
		AuthorId:        m.AuthorID,
		Content:         m.Content,
		Seq:             m.Seq,
		Nonce:           m.Nonce,
		MentionUserIds:  m.Mentions.Users,
		MentionRoleIds:  m.Mentions.Roles,
		MentionEveryone: m.Mentions.Everyone,
	}
	if !m.CreatedAt.IsZero() {
		p.CreatedAt = timestamppb.New(m.CreatedAt)
	}
	if !m.EditedAt.IsZero() {
		p.EditedAt = timestamppb.New(m.EditedAt)
	}
	return proto.Marshal(p)
}

func decode(b []byte) (message.Message, error) {
	var p pb.Message
	if err := proto.Unmarshal(b, &p); err != nil {
		return message.Message{}, fmt.Errorf("decode cached message: %w", err)
	}
	m := message.Message{
		ID:        p.GetId(),
		ChannelID: p.GetChannelId(),
		ServerID:  p.GetServerId(),
		AuthorID:  p.GetAuthorId(),
		Content:   p.GetContent(),
		Seq:       p.GetSeq(),
		Nonce:     p.GetNonce(),
		Mentions: message.Mentions{
			Users:    p.GetMentionUserIds(),
			Roles:    p.GetMentionRoleIds(),
			Everyone: p.GetMentionEveryone(),
		},
	}
	if p.CreatedAt != nil {
		m.CreatedAt = p.GetCreatedAt().AsTime()
	}
	if p.EditedAt != nil {
		m.EditedAt = p.GetEditedAt().AsTime()
	}
	if m.ID == 0 {
		return message.Message{}, fmt.Errorf("decode cached message: no ID")
	}
	return m, nil
}

func ms(d time.Duration) int64 { return max(d.Milliseconds(), 1) }
