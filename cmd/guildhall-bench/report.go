package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Targets of the fan-out issue, printed next to the measured figures.
const (
	targetDeliveries  = 500_000 // deliveries/s from one link node
	targetLatencyRate = 200_000 // deliveries/s at which p99 is judged
	targetP99         = 20 * time.Millisecond
	targetIdleRSS     = 16 << 10               // bytes per idle connection
	targetIdleCPU     = 2500 * time.Nanosecond // CPU per idle connection per second
	targetReconnects  = 10_000                 // per second
	targetAllBack     = 3 * time.Second
)

func (m *Main) printReport(cfg Config) {
	w := m.Stdout
	fmt.Fprintf(w, "guildhall-bench: scenario %s, %s clients, %d CPUs shared by server and load generator, %s\n",
		cfg.Scenario, commas(cfg.Clients), runtime.NumCPU(), runtime.Version())
	if cfg.ServerPID == 0 {
		fmt.Fprintln(w, "server CPU and RSS: not measured (give --server-pid or use --spawn-server)")
	}
	for _, p := range m.Passes {
		printPass(w, cfg, p)
	}
	if len(m.Passes) == 2 && m.Passes[0].Sent > 0 && m.Passes[1].Sent > 0 {
		printComparison(w, m.Passes[0], m.Passes[1])
	}
	if m.server != nil {
		fmt.Fprintf(w, "\nserver log: %d warnings, %d errors\n", m.ServerWarnings, m.ServerErrors)
		for _, l := range m.ServerLog {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

func printPass(w io.Writer, cfg Config, p PassResult) {
	st := p.Stats
	fmt.Fprintf(w, "\n== %s, batch=%v: %s clients in %d channel(s) (largest %s), %d load process(es)\n",
		p.Scenario, p.Batch, commas(p.Clients), p.Channels, commas(p.ChannelSize), p.Processes)
	line := func(name, format string, args ...any) {
		fmt.Fprintf(w, "%-13s %s\n", name, fmt.Sprintf(format, args...))
	}
	line("connect", "%s/%s in %v (%s/s); per client p50 %v, p99 %v, max %v",
		commas(st.ConnectOK), commas(p.Clients), round(p.ConnectWall), commas(int(float64(st.ConnectOK)/p.ConnectWall.Seconds())),
		round(st.Connect.Quantile(0.5)), round(st.Connect.Quantile(0.99)), round(st.Connect.Max()))
	if p.BaselineRSS > 0 {
		when := fmt.Sprintf("after %v idle", cfg.Settle)
		if p.Scenario == ScenarioIdle {
			when = fmt.Sprintf("after %v settle + %v idle", cfg.Settle, cfg.Duration.Round(time.Second))
		}
		line("server RSS", "%s baseline → %s with %s clients → %s with all (%s; no GC forced: the server exposes no GC trigger)",
			mb(p.BaselineRSS), mb(p.HalfRSS), commas(p.HalfConns), mb(p.ConnectedRSS), when)
		line("RSS/conn", "%s marginal (second half of the clients), %s against the baseline",
			kb(p.MarginalPerConn), kb(p.RSSPerConn))
		switch {
		case p.HeapAfterMB >= 0 && p.HeapBeforeMB >= 0:
			line("heap/conn", "%s: live heap + stacks after the last GC went %d MB → %d MB (gctrace)",
				kb(p.HeapPerConn), p.HeapBeforeMB, p.HeapAfterMB)
		case p.HeapBeforeMB >= 0:
			line("heap/conn", "n/a: the server ran no GC after the clients connected")
		}
	}
	switch p.Scenario {
	case ScenarioOneChannel, ScenarioSpread:
		rate := "flat out"
		if p.Rate > 0 {
			rate = fmt.Sprintf("requested %g/s", p.Rate)
		}
		line("sent", "%s messages over REST in %v (%.1f/s, %s)%s",
			commas64(p.Sent), round(p.SendWall), float64(p.Sent)/p.SendWall.Seconds(), rate, stallNote(p.WindowStalls))
		line("delivered", "%s of %s expected in %v: %s deliveries/s; %s seq gaps, %s reordered",
			commas64(st.Delivered), commas64(p.Expected), round(p.DeliverWall), commas(int(p.DeliveriesPerSec)), commas64(st.Gaps), commas64(st.Reordered))
		if st.WSMessages > 0 {
			line("ws messages", "%s received (%.2f deliveries per WebSocket message, %s batch frames)",
				commas64(st.WSMessages), float64(st.Delivered)/float64(st.WSMessages), commas64(st.Batches))
		}
		note := ""
		if p.Rate == 0 {
			note = fmt.Sprintf("; flat out, so about --window=%d messages queue per subscriber: judge latency at a set --rate", cfg.Window)
		}
		line("latency", "send→receive p50 %v, p99 %v, p99.9 %v, max %v (%s samples%s)",
			round(st.Latency.Quantile(0.5)), round(st.Latency.Quantile(0.99)), round(st.Latency.Quantile(0.999)), round(st.Latency.Max()), commas64(st.Latency.Count()), note)
		if p.ServerCPU > 0 && st.Delivered > 0 {
			line("server CPU", "%v over %v (%.2f cores): %s per delivery",
				round(p.ServerCPU), round(p.MeasureWall), p.ServerCPU.Seconds()/p.MeasureWall.Seconds(), us(float64(p.ServerCPU)/float64(st.Delivered)))
		}
	case ScenarioIdle:
		line("heartbeats", "%s acknowledged in %v", commas64(st.Acks), round(p.MeasureWall))
		if p.ServerCPU >= 0 && cfg.ServerPID != 0 {
			line("server CPU", "%v over %v (%.3f cores): %s per connection per second",
				round(p.ServerCPU), round(p.MeasureWall), p.ServerCPU.Seconds()/p.MeasureWall.Seconds(), us(float64(p.IdleCPUPerConnPerSec)))
		}
	case ScenarioStorm:
		if s := p.Storm; s != nil {
			how := "resume"
			if !cfg.StormResume {
				how = "identify + subscribe anew, by --storm-resume=false"
			}
			line("reconnected", "%s of %s back in %v: %s reconnects/s (%s); per client p50 %v, p99 %v; %d failed",
				commas(s.Back), commas(s.Clients), round(s.AllBack), commas(int(float64(s.Back)/s.AllBack.Seconds())), how,
				round(s.Reconnect.Quantile(0.5)), round(s.Reconnect.Quantile(0.99)), s.Failed)
			if cfg.StormResume {
				line("resumed", "%s resumed (%s dispatches replayed); %s got invalid_session and identified + subscribed anew",
					commas(s.Resumed), commas(s.Replayed), commas(s.Invalid))
			}
			line("receiving", "%s of %s back and with a message again, the last %v after the drop (probes every %v to every channel)",
				commas(s.Receiving), commas(s.Back), round(s.AllReceiving), cfg.ProbeEvery)
			if p.ServerCPU > 0 && s.Back > 0 {
				line("server CPU", "%v over %v of storm (%.2f cores): %s per reconnect, probes included",
					round(p.ServerCPU), round(p.MeasureWall), p.ServerCPU.Seconds()/p.MeasureWall.Seconds(), us(float64(p.ServerCPU)/float64(s.Back)))
			}
		}
	}
	if p.LoadCPU > 0 && p.MeasureWall > 0 {
		line("load gen CPU", "%v (%.2f cores)", round(p.LoadCPU), p.LoadCPU.Seconds()/p.MeasureWall.Seconds())
	}
	if p.MachineCPU > 0 && p.MeasureWall > 0 {
		others := max(p.MachineCPU-p.ServerCPU-p.LoadCPU, 0)
		line("machine CPU", "%.2f of %d cores busy; %.2f cores were other processes", p.MachineCPU.Seconds()/p.MeasureWall.Seconds(),
			runtime.NumCPU(), others.Seconds()/p.MeasureWall.Seconds())
	}
	line("errors", "%s", counts(mergeCounts(mergeCounts(nil, st.Errors), p.SendErrors)))
	line("close codes", "%s", counts(st.CloseCodes))
	for _, t := range targets(cfg, p) {
		line("target", "%s", t)
	}
}

func stallNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; the window stalled %d times (deliveries stopped for 2 s)", n)
}

// targets judges the figures against the fan-out issue's targets.
func targets(cfg Config, p PassResult) []string {
	st := p.Stats
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	var out []string
	switch p.Scenario {
	case ScenarioOneChannel:
		if p.Rate == 0 {
			out = append(out, fmt.Sprintf("≥ %s deliveries/s from one link node: %s (%s/s)",
				commas(targetDeliveries), met(p.DeliveriesPerSec >= targetDeliveries), commas(int(p.DeliveriesPerSec))))
		} else {
			p99 := st.Latency.Quantile(0.99)
			verdict := met(p99 <= targetP99)
			if p.DeliveriesPerSec < targetLatencyRate*0.95 {
				verdict += fmt.Sprintf(", but at %s deliveries/s, below the %s/s of the target", commas(int(p.DeliveriesPerSec)), commas(targetLatencyRate))
			}
			out = append(out, fmt.Sprintf("p99 ≤ %v at %s deliveries/s: %s (p99 %v)", targetP99, commas(targetLatencyRate), verdict, round(p99)))
		}
	case ScenarioIdle:
		if cfg.ServerPID != 0 {
			out = append(out,
				fmt.Sprintf("≤ 16 KB RSS per idle connection: %s (%s marginal, %s against the baseline)",
					met(p.MarginalPerConn <= targetIdleRSS && p.RSSPerConn <= targetIdleRSS), kb(p.MarginalPerConn), kb(p.RSSPerConn)),
				fmt.Sprintf("≤ 2.5 µs/s CPU per idle connection: %s (%s/s)", met(p.IdleCPUPerConnPerSec <= targetIdleCPU), us(float64(p.IdleCPUPerConnPerSec))))
		}
	case ScenarioStorm:
		if s := p.Storm; s != nil && s.AllBack > 0 {
			rate := float64(s.Resumed) / s.AllBack.Seconds()
			what := "resumes/s"
			if s.Invalid > 0 || !cfg.StormResume {
				what = fmt.Sprintf("resumes/s; %s reconnects/s counting the fresh identifies", commas(int(float64(s.Back)/s.AllBack.Seconds())))
			}
			out = append(out,
				fmt.Sprintf("≥ %s resumes/s: %s (%s %s)", commas(targetReconnects), met(rate >= targetReconnects), commas(int(rate)), what),
				fmt.Sprintf("all back and receiving within %v: %s (%v)", targetAllBack, met(s.Failed == 0 && s.Receiving == s.Back && s.AllReceiving <= targetAllBack), round(s.AllReceiving)))
		}
	}
	return out
}

func printComparison(w io.Writer, a, b PassResult) {
	fmt.Fprintf(w, "\n== batch=false (baseline: one WebSocket write per delivery) → batch=true\n")
	ratio := func(x, y float64) string {
		if x == 0 || y == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f×", y/x)
	}
	fmt.Fprintf(w, "%-22s %s → %s (%s)\n", "deliveries/s", commas(int(a.DeliveriesPerSec)), commas(int(b.DeliveriesPerSec)), ratio(a.DeliveriesPerSec, b.DeliveriesPerSec))
	cpuA, cpuB := perDelivery(a), perDelivery(b)
	if cpuA > 0 && cpuB > 0 {
		fmt.Fprintf(w, "%-22s %s → %s (%s)\n", "server CPU/delivery", us(cpuA), us(cpuB), ratio(cpuA, cpuB))
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		x, y := a.Stats.Latency.Quantile(q), b.Stats.Latency.Quantile(q)
		fmt.Fprintf(w, "%-22s %v → %v\n", fmt.Sprintf("latency p%s", strconv.FormatFloat(q*100, 'f', -1, 64)), round(x), round(y))
	}
	if a.Stats.WSMessages > 0 && b.Stats.WSMessages > 0 {
		fmt.Fprintf(w, "%-22s %.2f → %.2f\n", "deliveries/ws message",
			float64(a.Stats.Delivered)/float64(a.Stats.WSMessages), float64(b.Stats.Delivered)/float64(b.Stats.WSMessages))
	}
}

func perDelivery(p PassResult) float64 {
	if p.ServerCPU <= 0 || p.Stats.Delivered == 0 {
		return 0
	}
	return float64(p.ServerCPU) / float64(p.Stats.Delivered)
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%s", k, commas(m[k]))
	}
	return strings.Join(parts, ", ")
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func us(ns float64) string { return fmt.Sprintf("%.2f µs", ns/1000) }
func kb(b float64) string  { return fmt.Sprintf("%.1f KB", b/1024) }
func mb(b int64) string    { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func commas64(n uint64) string { return commas(int(n)) }

func commas(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
