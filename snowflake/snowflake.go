// Package snowflake makes 64-bit, time-ordered IDs without a central
// service: 41 bits of milliseconds since Epoch, 10 bits of node, 12 bits of
// sequence within the millisecond. Each process takes its own node number.
package snowflake

import (
	"fmt"
	"sync"
	"time"
)

// Epoch is 2026-01-01T00:00:00Z; IDs are good for ~69 years after it.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	nodeBits = 10
	seqBits  = 12
	// MaxNode is the largest node number.
	MaxNode = 1<<nodeBits - 1
	maxSeq  = 1<<seqBits - 1
)

// Generator makes IDs for one node. It is safe for concurrent use.
type Generator struct {
	node uint64
	now  func() time.Time

	mu     sync.Mutex
	lastMS int64
	seq    uint64
}

// New returns a generator for node (0..MaxNode). now may be nil for time.Now.
func New(node int, now func() time.Time) (*Generator, error) {
	if node < 0 || node > MaxNode {
		return nil, fmt.Errorf("snowflake: node %d out of range 0..%d", node, MaxNode)
	}
	if now == nil {
		now = time.Now
	}
	return &Generator{node: uint64(node), now: now}, nil
}

// Next returns a new ID, greater than every ID this generator returned
// before. If the clock goes backwards it keeps counting from the last
// millisecond it saw, so IDs never repeat.
func (g *Generator) Next() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := g.now().Sub(Epoch).Milliseconds()
	if ms <= g.lastMS {
		ms = g.lastMS
		g.seq++
		if g.seq > maxSeq { // sequence exhausted: borrow the next millisecond
			g.lastMS++
			ms = g.lastMS
			g.seq = 0
		}
	} else {
		g.lastMS = ms
		g.seq = 0
	}
	return uint64(ms)<<(nodeBits+seqBits) | g.node<<seqBits | g.seq
}

// Time returns when id was made (to the millisecond).
func Time(id uint64) time.Time {
	return Epoch.Add(time.Duration(id>>(nodeBits+seqBits)) * time.Millisecond)
}

// FromTime returns the smallest ID that can be made at t; history queries
// use it to turn a time into a cursor.
func FromTime(t time.Time) uint64 {
	ms := t.Sub(Epoch).Milliseconds()
	if ms < 0 {
		return 0
	}
	return uint64(ms) << (nodeBits + seqBits)
}
