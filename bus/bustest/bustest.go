// Package bustest gives tests a real, embedded NATS server.
package bustest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/guildhall/guildhall/bus"
)

// MustServer starts an embedded NATS server (JetStream in memory) that
// stops when the test ends.
func MustServer(tb testing.TB) *server.Server {
	tb.Helper()
	ns, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: -1, StoreDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// MustConnect connects to ns; the connection closes when the test ends.
func MustConnect(tb testing.TB, ns *server.Server) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}
