// Package hotcache is the hot-key layer of the history caches (DESIGN.md
// §4: "keys that get hot are detected and served from each node's
// memory"). Cache wraps any message.Cache, normally the central Redis one,
// so that a spike of reads of one busy channel costs Redis almost nothing.
//
// Detection: every Latest counts a read of its channel in a sliding window
// (two buckets of Config.Period). A channel read at least Threshold times
// in the last Period is hot: its next read loads a local copy (the inner
// cache's Latest with limit Depth) and later reads are served from it for
// TTL (1 s by default). Concurrent readers of a channel being loaded wait
// for that one load. At most MaxHot copies and MaxTracked counters are
// held; a sweeper goroutine drops idle counters and expired copies every
// Period.
//
// Coherence: a node reads its own writes (its copy is dropped before the
// write returns). Writes go through (Add, Replace, Remove, Fill, Invalidate
// call the inner cache), then drop this node's copy and publish a
// pb.CacheInvalidation on bus.MessageCacheInvalidate; every other node's
// layer drops its copy when it arrives. A load that started before an
// invalidation is not kept (each copy carries a generation). So a write
// through one node is seen by another node's next read once the
// invalidation has crossed NATS (sub-millisecond on a LAN), and in any
// case within TTL — also when the publish fails, the bus is down, or a
// writer does not go through a hot layer.
//
// Lifecycle: New subscribes and starts the sweeper; Shutdown(ctx) stops
// both and is idempotent. Metrics (reads by tier and result, invalidations,
// hot channels) go to Config.Registerer.
package hotcache
