package natsrpc

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/message"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// Client asks the message service, wherever it runs, over the bus.
type Client struct{ nc *nats.Conn }

// NewClient returns a Client on nc.
func NewClient(nc *nats.Conn) *Client { return &Client{nc: nc} }

// Send posts a message as actorID.
func (c *Client) Send(ctx context.Context, actorID, channelID uint64, content, nonce string) (message.Message, error) {
	if err := validUTF8("message.Send", content, nonce); err != nil {
		return message.Message{}, err
	}
	return c.do(ctx, "message.Send", bus.MessageSend, &pb.SendMessageRequest{ActorId: actorID, ChannelId: channelID, Content: content, Nonce: nonce})
}

// Edit changes a message's content.
func (c *Client) Edit(ctx context.Context, actorID, channelID, messageID uint64, content string) (message.Message, error) {
	if err := validUTF8("message.Edit", content, ""); err != nil {
		return message.Message{}, err
	}
	return c.do(ctx, "message.Edit", bus.MessageEdit, &pb.EditMessageRequest{ActorId: actorID, ChannelId: channelID, MessageId: messageID, Content: content})
}

// Delete removes a message.
func (c *Client) Delete(ctx context.Context, actorID, channelID, messageID uint64) error {
	_, err := c.do(ctx, "message.Delete", bus.MessageDelete, &pb.DeleteMessageRequest{ActorId: actorID, ChannelId: channelID, MessageId: messageID})
	return err
}

// validUTF8 refuses what protobuf cannot carry in a string field with the
// error the service gives for it, instead of an Internal marshal error.
func validUTF8(op, content, nonce string) error {
	if !utf8.ValidString(content) {
		return guildhall.E(op, guildhall.Invalid, "content must be valid UTF-8")
	}
	if !utf8.ValidString(nonce) {
		return guildhall.E(op, guildhall.Invalid, "nonce must be valid UTF-8")
	}
	return nil
}

// DefaultTimeout bounds a request whose context has no deadline, so a
// message service that dies mid-request never hangs the caller.
const DefaultTimeout = 10 * time.Second

// Typing announces that actorID is typing in channelID.
func (c *Client) Typing(ctx context.Context, actorID, channelID uint64) error {
	_, err := c.do(ctx, "message.Typing", bus.MessageTyping, &pb.TypingRequest{ActorId: actorID, ChannelId: channelID})
	return err
}

func (c *Client) do(ctx context.Context, op, subject string, req proto.Message) (message.Message, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	var r pb.MessageReply
	if err := bus.Request(ctx, c.nc, subject, req, &r); err != nil {
		return message.Message{}, err
	}
	if r.Error != nil {
		return message.Message{}, bus.ErrorFromProto(op, r.Error)
	}
	if r.Message == nil {
		return message.Message{}, nil
	}
	return FromProto(r.Message), nil
}
