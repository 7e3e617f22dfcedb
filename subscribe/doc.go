// Package subscribe is the subscription service of DESIGN.md: it learns
// from link-node heartbeats how many sessions on each node follow each
// channel (counts only, never user lists), keeps "channel → link nodes",
// expires nodes that stop heartbeating, and answers routing look-ups.
//
// Service is the service itself. View is the replica of the routing table
// that a message-service instance keeps in memory, fed by the changes the
// service publishes and resynchronised with a full table periodically.
//
// Guarantees: every instance of Service consumes every heartbeat, so any
// number of instances hold the same table and any may answer a table
// request. A restarted Service asks all link nodes for a full snapshot and
// has its table back within one round trip. Change notices carry the full
// node set of each changed channel, so applying one twice is harmless; the
// service publishes them in the order its table changed. A resync never
// undoes a change notice that arrived while the table was fetched or
// installed.
package subscribe
