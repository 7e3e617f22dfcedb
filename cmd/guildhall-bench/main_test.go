package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the tool's child worker: the
// tool re-executes itself (os.Executable) with --worker, which is this
// binary under go test.
func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		w := NewMain()
		if err := w.ParseFlags([]string{"--worker"}); err != nil {
			os.Exit(2)
		}
		if err := w.Run(context.Background()); err != nil {
			os.Stderr.WriteString("worker: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// mustBuildServer builds guildhall once for the tests in this package.
func mustBuildServer(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "guildhall")
	if out, err := exec.Command("go", "build", "-o", bin, serverPkg).CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", serverPkg, err, out)
	}
	return bin
}

// mustRun runs the tool in-process with args and returns its Main.
func mustRun(tb testing.TB, args ...string) *Main {
	tb.Helper()
	m := NewMain()
	var out, errs bytes.Buffer
	m.Stdout, m.Stderr = &out, &errs
	if err := m.ParseFlags(args); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := m.Run(ctx)
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	tb.Logf("%s\n%s", errs.String(), out.String())
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// TestBench runs the tool against a guildhall it spawns, with tiny
// numbers, and checks that messages arrive and nothing fails. It asserts
// nothing about timing.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts guildhall")
	}
	bin := mustBuildServer(t)
	common := []string{"--spawn-server", "--server-bin", bin, "--clients", "20", "--duration", "1s", "--settle", "0", "--users", "2", "--quiet"}

	t.Run("one-channel/workers/compare-batch", func(t *testing.T) {
		// 20 clients at 10 per worker: two child processes.
		m := mustRun(t, append(common, "--scenario", "one-channel", "--clients-per-worker", "10", "--compare-batch")...)
		if len(m.Passes) != 2 || m.Passes[0].Batch || !m.Passes[1].Batch {
			t.Fatalf("want a batch=false and a batch=true pass, got %d", len(m.Passes))
		}
		for _, p := range m.Passes {
			checkPass(t, p)
			if p.Processes != 2 {
				t.Errorf("batch=%v: clients in %d processes, want 2 workers", p.Batch, p.Processes)
			}
		}
		if m.ServerErrors != 0 {
			t.Errorf("server logged %d errors: %v", m.ServerErrors, m.ServerLog)
		}
	})

	t.Run("spread", func(t *testing.T) {
		// Channels of 5: every client follows exactly its own channel,
		// although the server is small enough to be followed whole.
		m := mustRun(t, append(common, "--scenario", "spread", "--channel-size", "5", "--rate", "200")...)
		p := m.Passes[0]
		checkPass(t, p)
		if p.Channels != 4 {
			t.Errorf("%d channels, want 4", p.Channels)
		}
		if p.Stats.Delivered > p.Expected {
			t.Errorf("delivered %d, more than the %d expected: clients follow other channels", p.Stats.Delivered, p.Expected)
		}
	})

	t.Run("reconnect-storm", func(t *testing.T) {
		m := mustRun(t, append(common, "--scenario", "reconnect-storm", "--channel-size", "10")...)
		p := m.Passes[0]
		s := p.Storm
		if s == nil || s.Back != 20 || s.Failed != 0 || s.Receiving != s.Back {
			t.Fatalf("storm %+v: want all 20 back and receiving", s)
		}
		if s.Resumed+s.Invalid != s.Back {
			t.Errorf("storm %+v: every client either resumes or is told invalid_session", s)
		}
		checkErrors(t, p)
	})
}

func checkPass(t *testing.T, p PassResult) {
	t.Helper()
	st := p.Stats
	if st.ConnectOK != p.Clients || st.ConnectFailed != 0 {
		t.Errorf("batch=%v: %d of %d connected", p.Batch, st.ConnectOK, p.Clients)
	}
	if p.Sent == 0 || st.Delivered == 0 || p.DeliveriesPerSec <= 0 {
		t.Errorf("batch=%v: sent %d, delivered %d (%v/s)", p.Batch, p.Sent, st.Delivered, p.DeliveriesPerSec)
	}
	if st.Delivered != p.Expected || st.Gaps != 0 || st.Reordered != 0 {
		t.Errorf("batch=%v: delivered %d of %d, %d gaps, %d reordered", p.Batch, st.Delivered, p.Expected, st.Gaps, st.Reordered)
	}
	if st.Latency.Count() != st.Delivered {
		t.Errorf("batch=%v: %d latency samples for %d deliveries", p.Batch, st.Latency.Count(), st.Delivered)
	}
	checkErrors(t, p)
}

func checkErrors(t *testing.T, p PassResult) {
	t.Helper()
	if len(p.Stats.Errors) != 0 || len(p.Stats.CloseCodes) != 0 || len(p.SendErrors) != 0 {
		t.Errorf("batch=%v: errors %v, close codes %v, send errors %v", p.Batch, p.Stats.Errors, p.Stats.CloseCodes, p.SendErrors)
	}
}

func TestHist(t *testing.T) {
	var h Hist
	for v := int64(1); v <= 100_000; v++ {
		h.Record(v * 1000) // 1 µs .. 100 ms
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {0.999, 99900 * time.Microsecond}} {
		got := h.Quantile(c.q)
		if d := got - c.want; d < -c.want/50 || d > c.want/50 {
			t.Errorf("p%v = %v, want %v ± 2%%", c.q*100, got, c.want)
		}
	}
	for v := int64(0); v < 1<<40; v = v*3/2 + 1 {
		if mid := bucketMid(bucketOf(v)); mid < v-v/64-1 || mid > v+v/64+1 {
			t.Fatalf("value %d lands in a bucket around %d", v, mid)
		}
	}
}

func TestContent(t *testing.T) {
	c := makeContent(7, 1_700_000_000_123_456_789, 100)
	if len(c) != 100 || !strings.HasPrefix(c, contentPrefix) {
		t.Fatalf("content %q", c)
	}
	phase, at, ok := parseContent([]byte(c))
	if !ok || phase != 7 || at != 1_700_000_000_123_456_789 {
		t.Fatalf("parsed %d %d %v", phase, at, ok)
	}
	for _, bad := range []string{"", "hello", "bench ", "bench x 1", "bench 1 "} {
		if _, _, ok := parseContent([]byte(bad)); ok {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestParseFlags(t *testing.T) {
	if err := NewMain().ParseFlags([]string{"--scenario", "idle", "--clients", "10"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{
		{"--addr", "10.0.0.1:8080"}, // loopback only
		{"--addr", "example.com:80"},
		{"--scenario", "nope"},
		{"--clients", "0"},
		{"--clients", "1000000"},
		{"--duration", "1h"},
		{"--clients-per-worker", "25000"},
		{"--scenario", "spread", "--clients", "10000", "--channel-size", "10"}, // 1,000 channels
		{"stray"},
	} {
		if err := NewMain().ParseFlags(bad); err == nil {
			t.Errorf("ParseFlags(%v) accepted", bad)
		}
	}
}
