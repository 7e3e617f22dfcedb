// Package cluster holds tests that run Guildhall's roles as several nodes on
// a real NATS cluster; no production code. Each test starts several embedded
// nats-server instances joined by cluster routes, then link nodes (behind
// httptest servers, with real WebSocket clients), message-service instances
// and subscription services, each on its own NATS connection to a different
// server of the cluster, wired the way cmd/guildhall/run.go wires them. The
// roles share one in-process Pebble store (the member, role, message and
// audit stores on one database): that stands in for the distributed storage,
// which is a separate piece still to be built, so these tests exercise the
// bus, routing and fan-out across processes, not storage across machines.
package cluster
