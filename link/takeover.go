package link

import (
	"github.com/nats-io/nats.go"

	"github.com/guildhall/guildhall/bus"
)

func (n *Node) startTakeover() (*nats.Subscription, error) {
	return n.nc.Subscribe(bus.LinkSession(n.cfg.NodeID), n.onTakeover)
}

func (n *Node) onTakeover(msg *nats.Msg) {}
