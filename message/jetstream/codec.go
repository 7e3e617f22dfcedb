package jetstream

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/guildhall/guildhall/message"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// encode is the stream payload of c: a pb.MessageLogRecord.
func encode(c message.Change) ([]byte, error) {
	m := c.Message
	p := &pb.Message{
		Id: m.ID, ChannelId: m.ChannelID, ServerId: m.ServerID, AuthorId: m.AuthorID,
		Content: m.Content, Seq: m.Seq, Nonce: m.Nonce,
		MentionUserIds: m.Mentions.Users, MentionRoleIds: m.Mentions.Roles, MentionEveryone: m.Mentions.Everyone,
	}
	if !m.CreatedAt.IsZero() {
		p.CreatedAt = timestamppb.New(m.CreatedAt)
	}
	if !m.EditedAt.IsZero() {
		p.EditedAt = timestamppb.New(m.EditedAt)
	}
	var kind pb.MessageLogKind
	switch c.Kind {
	case message.ChangeCreate:
		kind = pb.MessageLogKind_MESSAGE_LOG_KIND_CREATE
	case message.ChangeEdit:
		kind = pb.MessageLogKind_MESSAGE_LOG_KIND_EDIT
	case message.ChangeDelete:
		kind = pb.MessageLogKind_MESSAGE_LOG_KIND_DELETE
	default:
		return nil, fmt.Errorf("unknown change kind %d", c.Kind)
	}
	return proto.Marshal(&pb.MessageLogRecord{Kind: kind, Message: p})
}

// decode is the inverse of encode.
func decode(data []byte) (message.Change, error) {
	var r pb.MessageLogRecord
	if err := proto.Unmarshal(data, &r); err != nil {
		return message.Change{}, fmt.Errorf("decode message log record: %w", err)
	}
	var c message.Change
	switch r.GetKind() {
	case pb.MessageLogKind_MESSAGE_LOG_KIND_CREATE:
		c.Kind = message.ChangeCreate
	case pb.MessageLogKind_MESSAGE_LOG_KIND_EDIT:
		c.Kind = message.ChangeEdit
	case pb.MessageLogKind_MESSAGE_LOG_KIND_DELETE:
		c.Kind = message.ChangeDelete
	default:
		return message.Change{}, fmt.Errorf("message log record of unknown kind %d", r.GetKind())
	}
	p := r.GetMessage()
	c.Message = message.Message{
		ID: p.GetId(), ChannelID: p.GetChannelId(), ServerID: p.GetServerId(), AuthorID: p.GetAuthorId(),
		Content: p.GetContent(), Seq: p.GetSeq(), Nonce: p.GetNonce(),
		Mentions: message.Mentions{Users: p.GetMentionUserIds(), Roles: p.GetMentionRoleIds(), Everyone: p.GetMentionEveryone()},
	}
	if p.CreatedAt != nil {
		c.Message.CreatedAt = p.CreatedAt.AsTime()
	}
	if p.EditedAt != nil {
		c.Message.EditedAt = p.EditedAt.AsTime()
	}
	return c, nil
}
