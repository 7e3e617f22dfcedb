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

// Versions tells a server's permission version (role.Store).
type Versions interface {
	Version(ctx context.Context, serverID uint64) (uint64, error)
}

// Fanout publishes each event once to every link node that follows its
// channel: the cost grows with the number of interested nodes, never with
// the number of members. Each event carries its server's permission
// version, so link nodes re-check access after a permission change before
// they deliver.
type Fanout struct {
	nc       *nats.Conn
	router   Router
	versions Versions
	batch    *batcher // nil: one bus message per event and node
}

// NewFanout returns a Fanout publishing on nc. versions may be nil, then
// events carry no version and link nodes never re-check.
func NewFanout(nc *nats.Conn, router Router, versions Versions) *Fanout {
	return &Fanout{nc: nc, router: router, versions: versions}
}

var _ message.Publisher = (*Fanout)(nil)

// Publish implements message.Publisher.
func (f *Fanout) Publish(ctx context.Context, ev message.Event) error {
	nodes := f.router.Nodes(ev.Message.ChannelID)
	if len(nodes) == 0 {
		return nil
	}
	if f.batch != nil {
		return f.publishBatched(ctx, nodes, ev)
	}
	d := &pb.Delivery{Events: []*pb.Event{EventToProto(ev)}}
	if f.versions != nil {
		v, err := f.versions.Version(ctx, ev.Message.ServerID)
		if err != nil {
			return guildhall.Wrap("message.Fanout", err)
		}
		d.PermVersions = []uint64{v}
	}
	data, err := proto.Marshal(d)
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
