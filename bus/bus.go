// Package bus is the contract between Guildhall roles on NATS: the subjects
// each role listens on, protobuf request/reply over them, and the embedded
// NATS server that a single process runs by default.
//
// Roles never call into each other directly; they meet here. A subject's
// payload is always one message of package guildhallpb.
package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	guildhall "github.com/guildhall/guildhall"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// Subjects. Requests are served by queue groups, so any number of
// instances of a role share the work.
const (
	// Message service requests: payload *Request, reply pb.MessageReply.
	MessageSend   = "gh.message.send"   // pb.SendMessageRequest
	MessageEdit   = "gh.message.edit"   // pb.EditMessageRequest
	MessageDelete = "gh.message.delete" // pb.DeleteMessageRequest
	MessageTyping = "gh.message.typing" // pb.TypingRequest
	MessageQueue  = "message"           // queue group of the message service

	// Link node → subscription service: pb.LinkHeartbeat.
	LinkHeartbeat = "gh.subscribe.heartbeat"
	// Anyone → subscription service: pb.RouteTableRequest, reply pb.RouteTable.
	RouteTableRequest = "gh.subscribe.table"
	// Subscription service → everyone who keeps a routing view: pb.RouteTable
	// holding only the routes that changed.
	RouteChanges = "gh.subscribe.changes"
	// Queue group of the subscription service for table requests.
	SubscribeQueue = "subscribe"
	// Subscription service → all link nodes (empty payload): send a full
	// heartbeat now. Sent by a subscription service that just started.
	LinkSnapshotRequest = "gh.link.snapshot"

	// Any node → every node's hot history layer (message/hotcache):
	// pb.CacheInvalidation, the channels whose cached history changed.
	MessageCacheInvalidate = "gh.message.cache.invalidate"
)

// The message log: one JetStream stream (message/jetstream) holds every
// accepted change to a message, in per-channel subjects under
// MessageLogSubjects. Creates and changes of a channel are apart so that
// the service can check "the channel's last create is still the one I
// saw" on the create subject alone (optimistic concurrency); both are in
// one stream, so the persister applies them in the order they were
// accepted. Payload: pb.MessageLogRecord.
const MessageLogSubjects = "gh.msglog.>"

// MessageLogCreate is the log subject of a channel's new messages.
func MessageLogCreate(channelID uint64) string {
	return "gh.msglog." + strconv.FormatUint(channelID, 10) + ".create"
}

// MessageLogChannel matches every log subject of a channel.
func MessageLogChannel(channelID uint64) string {
	return "gh.msglog." + strconv.FormatUint(channelID, 10) + ".*"
}

// MessageLogChange is the log subject of a channel's edits and deletions.
func MessageLogChange(channelID uint64) string {
	return "gh.msglog." + strconv.FormatUint(channelID, 10) + ".change"
}

// UserReadState is the subject of a user's read-state notices
// (pb.ReadStateNotice): every link node holding a session of the user
// passes them on. Link nodes listen on UserReadStateAll.
func UserReadState(userID uint64) string { return fmt.Sprintf("gh.user.%d.readstate", userID) }

// UserReadStateAll matches UserReadState of every user.
const UserReadStateAll = "gh.user.*.readstate"

// LinkSession is the subject a link node answers session takeovers on
// (pb.SessionTakeover, reply pb.SessionHandover): a node resuming a session
// asks the node that held it.
func LinkSession(nodeID string) string { return "gh.link." + nodeID + ".session" }

// LinkDeliver is the subject a link node receives its pb.Delivery on.
func LinkDeliver(nodeID string) string { return "gh.link." + nodeID + ".deliver" }

// Request sends req on subject and decodes the reply into resp. A missing
// responder is Unavailable, a timeout too: the caller may retry.
func Request(ctx context.Context, nc *nats.Conn, subject string, req, resp proto.Message) error {
	const op = "bus.Request"
	data, err := proto.Marshal(req)
	if err != nil {
		return guildhall.Wrap(op, err)
	}
	msg, err := nc.RequestWithContext(ctx, subject, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return guildhall.E(op, guildhall.Unavailable, "no %s service is running", subject)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return guildhall.E(op, guildhall.Unavailable, "%s timed out", subject)
	case err != nil:
		return guildhall.Wrap(op, err)
	}
	if err := proto.Unmarshal(msg.Data, resp); err != nil {
		return guildhall.Wrap(op, fmt.Errorf("decode reply of %s: %w", subject, err))
	}
	return nil
}

// Publish encodes m and publishes it on subject.
func Publish(nc *nats.Conn, subject string, m proto.Message) error {
	data, err := proto.Marshal(m)
	if err != nil {
		return guildhall.Wrap("bus.Publish", err)
	}
	return guildhall.Wrap("bus.Publish", nc.Publish(subject, data))
}

// ErrorProto converts err to its wire form.
func ErrorProto(err error) *pb.Error {
	return &pb.Error{Code: guildhall.KindOf(err).Code(), Message: guildhall.Message(err)}
}

// ErrorFromProto turns a wire error back into a guildhall error.
func ErrorFromProto(op string, e *pb.Error) error {
	return guildhall.E(op, guildhall.KindFromCode(e.GetCode()), "%s", e.GetMessage())
}
