// Package inmem holds the embedded-mode implementations of the message
// service's central state in process memory: the history Cache (files
// cache*.go, described here) and the unread Counters (counters*.go).
//
// The Cache keeps recent history of each channel.
// Each channel has a window of its newest messages (Config.Window), kept
// oldest first in a slice under the lock of one of Config.Shards shards
// (channels are spread over shards by a seeded hash). Bounds:
//   - length: a window holds at most Window messages; an Add past it drops
//     the oldest;
//   - age: a window is dropped TTL after its last write, and a Fill's
//     complete mark lasts CompleteTTL whatever is written after it;
//   - memory: all windows together stay under MaxBytes (estimated with
//     message.CachedSize, budgeted per shard); past it the least recently
//     used channels (read or written) are evicted, and expired windows are
//     dropped from the cold end of each shard on every write. There is no
//     background goroutine.
//
// Every method holds its channel's shard lock for its whole run, so each
// is atomic per channel and the cache is safe for concurrent use. Messages
// are copied in; the Mentions slices of what Latest returns are shared and
// must not be modified.
//
// Fill races: a reader that missed reads the store, then calls Fill. A
// Remove or Replace that reached the cache in between would be undone by
// the older copies in the fill, so each channel remembers its last
// MaxChanges Removes and Replaces for ChangeTTL, and Fill applies them over
// what it stores.
package inmem
