package natsrpc

import (
	"context"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	guildhall "github.com/guildhall/guildhall"
	"github.com/guildhall/guildhall/bus"
	"github.com/guildhall/guildhall/message"
	pb "github.com/guildhall/guildhall/proto/guildhallpb"
)

// Router says which link nodes follow a channel (subscribe.View).
type Router interface {
	Nodes(channelID uint64) []string
}

// Fanout publishes each event once to every link node that follows its
// channel: the cost grows with the number of interested nodes, never with
// the number of members.
type Fanout struct {
	nc     *nats.Conn
	router Router
}

// NewFanout returns a Fanout publishing on nc.
func NewFanout(nc *nats.Conn, router Router) *Fanout { return &Fanout{nc: nc, router: router} }

var _ message.Publisher = (*Fanout)(nil)

// Publish implements message.Publisher.
func (f *Fanout) Publish(ctx context.Context, ev message.Event) error {
	nodes := f.router.Nodes(ev.Message.ChannelID)
	if len(nodes) == 0 {
		return nil
	}
	data, err := proto.Marshal(&pb.Delivery{Events: []*pb.Event{EventToProto(ev)}})
	if err != nil {
		return guildhall.Wrap("message.Fanout", err)
	}
	for _, node := range nodes {
		if err := f.nc.Publish(bus.LinkDeliver(node), data); err != nil {
			return guildhall.Wrap("message.Fanout", err)
		}
	}
	return nil
}
