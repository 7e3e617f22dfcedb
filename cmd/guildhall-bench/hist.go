package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// A log-linear histogram in the style of HdrHistogram: values (nanoseconds)
// below 64 have a bucket each; above, every power of two is split into 64
// buckets, so a bucket is at most 1/64 (1.6 %) wide relative to its
// values. Memory is fixed whatever the number of samples.
const (
	subBits    = 6
	subBuckets = 1 << subBits
	histLen    = (64 - subBits + 1) * subBuckets
)

func bucketOf(v int64) int {
	if v < subBuckets {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - subBits - 1
	return (e+1)*subBuckets + int(uint64(v)>>e) - subBuckets
}

// bucketMid is the value a bucket stands for: the middle of its range.
func bucketMid(i int) int64 {
	if i < subBuckets {
		return int64(i)
	}
	e := i/subBuckets - 1
	lo := int64(i%subBuckets+subBuckets) << e
	return lo + (int64(1)<<e)/2
}

// atomicHist is recorded into by many goroutines at once.
type atomicHist struct {
	counts [histLen]atomic.Uint64
}

func (h *atomicHist) record(v int64) { h.counts[bucketOf(v)].Add(1) }

func (h *atomicHist) reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
}

// addTo adds h's counts to out.
func (h *atomicHist) addTo(out *Hist) {
	for i := range h.counts {
		if n := h.counts[i].Load(); n != 0 {
			out.add(i, n)
		}
	}
}

// Hist is a snapshot of a histogram: sparse (bucket, count) pairs, small
// enough to travel from a worker as JSON and merge in the parent.
type Hist struct {
	Buckets map[int]uint64 `json:"b,omitempty"`
}

func (h *Hist) add(bucket int, n uint64) {
	if h.Buckets == nil {
		h.Buckets = make(map[int]uint64)
	}
	h.Buckets[bucket] += n
}

// Record adds one value.
func (h *Hist) Record(v int64) { h.add(bucketOf(v), 1) }

// Merge adds o's counts to h.
func (h *Hist) Merge(o Hist) {
	for b, n := range o.Buckets {
		h.add(b, n)
	}
}

// Count is the number of values recorded.
func (h Hist) Count() uint64 {
	var n uint64
	for _, c := range h.Buckets {
		n += c
	}
	return n
}

// Quantile returns the value below which a fraction q of the values lie.
func (h Hist) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	if rank >= total {
		rank = total - 1
	}
	var seen uint64
	for i := 0; i < histLen; i++ {
		seen += h.Buckets[i]
		if seen > rank {
			return time.Duration(bucketMid(i))
		}
	}
	return 0
}

// Max is the largest value recorded (to bucket precision).
func (h Hist) Max() time.Duration {
	best := -1
	for b := range h.Buckets {
		best = max(best, b)
	}
	if best < 0 {
		return 0
	}
	return time.Duration(bucketMid(best))
}
