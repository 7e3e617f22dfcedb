// Package natsrpc puts the message service on the NATS bus: Server answers
// send/edit/delete requests for a message.Service, Client makes them from
// the edges (REST, link nodes), and Fanout delivers events to the link
// nodes that follow a channel, one bus message per node.
//
// Ordering: Server hands requests of one channel to one worker, in the
// order they arrived, so a client's pipelined sends to a channel are
// accepted in order.
package natsrpc

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/guildhall/guildhall/message"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// ToProto converts a message to its wire form.
func ToProto(m message.Message) *pb.Message {
	out := &pb.Message{
		Id: m.ID, ChannelId: m.ChannelID, ServerId: m.ServerID, AuthorId: m.AuthorID,
		Content: m.Content, Seq: m.Seq, Nonce: m.Nonce, CreatedAt: timestamppb.New(m.CreatedAt),
		MentionUserIds: m.Mentions.Users, MentionRoleIds: m.Mentions.Roles, MentionEveryone: m.Mentions.Everyone,
	}
	if !m.EditedAt.IsZero() {
		out.EditedAt = timestamppb.New(m.EditedAt)
	}
	return out
}

// FromProto converts a wire message back.
func FromProto(p *pb.Message) message.Message {
	m := message.Message{
		ID: p.GetId(), ChannelID: p.GetChannelId(), ServerID: p.GetServerId(), AuthorID: p.GetAuthorId(),
		Content: p.GetContent(), Seq: p.GetSeq(), Nonce: p.GetNonce(), CreatedAt: p.GetCreatedAt().AsTime(),
		Mentions: message.Mentions{Users: p.GetMentionUserIds(), Roles: p.GetMentionRoleIds(), Everyone: p.GetMentionEveryone()},
	}
	if p.EditedAt != nil {
		m.EditedAt = p.EditedAt.AsTime()
	}
	return m
}

// EventToProto converts a message event to a gateway event.
func EventToProto(ev message.Event) *pb.Event {
	m := ev.Message
	out := &pb.Event{ServerId: m.ServerID, ChannelId: m.ChannelID}
	switch ev.Kind {
	case message.Created:
		out.Kind = &pb.Event_MessageCreate{MessageCreate: ToProto(m)}
	case message.Updated:
		out.Kind = &pb.Event_MessageUpdate{MessageUpdate: ToProto(m)}
	case message.Deleted:
		out.Kind = &pb.Event_MessageDelete{MessageDelete: &pb.MessageDelete{Id: m.ID, ChannelId: m.ChannelID, ServerId: m.ServerID, Seq: m.Seq}}
	case message.Typing:
		out.Kind = &pb.Event_TypingStart{TypingStart: &pb.TypingStart{UserId: m.AuthorID, At: timestamppb.New(m.CreatedAt)}}
	}
	return out
}
