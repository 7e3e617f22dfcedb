package snowflake

import (
	"sync"
	"testing"
	"time"
)

func TestNextIsIncreasingAndUnique(t *testing.T) {
	now := Epoch.Add(time.Hour)
	g, err := New(7, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i := 0; i < 3*maxSeq; i++ { // more than one millisecond's worth with a frozen clock
		id := g.Next()
		if id <= last {
			t.Fatalf("id %d not greater than %d", id, last)
		}
		last = id
	}
	now = now.Add(-time.Second) // clock goes backwards
	if id := g.Next(); id <= last {
		t.Fatalf("after clock went back: %d <= %d", id, last)
	}
}

func TestTimeRoundTrip(t *testing.T) {
	at := Epoch.Add(1234567 * time.Millisecond)
	g, _ := New(MaxNode, func() time.Time { return at })
	id := g.Next()
	if got := Time(id); !got.Equal(at) {
		t.Fatalf("Time = %v, want %v", got, at)
	}
	if FromTime(at) > id || FromTime(at.Add(time.Millisecond)) <= id {
		t.Fatalf("FromTime does not bound %d", id)
	}
}

func TestNewRejectsBadNode(t *testing.T) {
	for _, n := range []int{-1, MaxNode + 1} {
		if _, err := New(n, nil); err == nil {
			t.Errorf("New(%d) = nil error", n)
		}
	}
}

func TestConcurrentUnique(t *testing.T) {
	g, _ := New(1, nil)
	var mu sync.Mutex
	seen := make(map[uint64]bool)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				id := g.Next()
				mu.Lock()
				if seen[id] {
					t.Errorf("duplicate %d", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func BenchmarkNext(b *testing.B) {
	g, _ := New(1, nil)
	for b.Loop() {
		g.Next()
	}
}
