package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// A worker holds gateway clients. The parent drives each worker through
// the same requests, whether it lives in the parent's process (few
// clients) or in a child process (the tool re-executed with --worker,
// talking newline-delimited JSON over stdin/stdout).

// Request is one command from the parent to a worker.
type Request struct {
	Op      string       `json:"op"` // connect, reset, progress, stats, storm, close
	Connect *ConnectSpec `json:"connect,omitempty"`
	Phase   uint64       `json:"phase,omitempty"`
	Storm   *StormSpec   `json:"storm,omitempty"`
}

// ConnectSpec says which clients a worker opens.
type ConnectSpec struct {
	URL      string       `json:"url"`
	Batch    bool         `json:"batch"`
	Parallel int          `json:"parallel"` // 0: all at once
	Tokens   []string     `json:"tokens"`
	Channels []uint64     `json:"channels"` // every channel of the server
	Append   bool         `json:"append"`   // add to the clients already open (else replace them)
	Clients  []ClientSpec `json:"clients"`
}

// ClientSpec is one client: an index into Tokens and its channel.
type ClientSpec struct {
	Token   int    `json:"t"`
	Channel uint64 `json:"c"`
}

// StormSpec is a reconnect storm: every client drops and connects again.
type StormSpec struct {
	Parallel int           `json:"parallel"` // 0: all at once
	Resume   bool          `json:"resume"`   // resume the sessions (else identify + subscribe anew)
	Wait     time.Duration `json:"wait"`     // longest wait for all to be back and receiving
}

// Reply answers a Request.
type Reply struct {
	Err      string       `json:"err,omitempty"`
	Stats    *Stats       `json:"stats,omitempty"`
	Progress *Progress    `json:"progress,omitempty"`
	Storm    *StormResult `json:"storm,omitempty"`
}

// Progress is what the parent polls while it sends.
type Progress struct {
	Delivered uint64 `json:"delivered"`
	Alive     int64  `json:"alive"`
}

// StormResult is one worker's view of a reconnect storm. Times run from
// the moment the worker dropped its clients.
type StormResult struct {
	Clients      int           `json:"clients"`
	Back         int           `json:"back"`      // live again: resumed, or identified and subscribed
	Resumed      int           `json:"resumed"`   // of which resumed
	Invalid      int           `json:"invalid"`   // of which got invalid_session and identified anew
	Replayed     int           `json:"replayed"`  // dispatches replayed by resumes
	Failed       int           `json:"failed"`    // reconnect failed
	Receiving    int           `json:"receiving"` // got a message after reconnecting
	AllBack      time.Duration `json:"all_back"`
	AllReceiving time.Duration `json:"all_receiving"` // until the last client was back and had a message
	Reconnect    Hist          `json:"reconnect"`     // per client, drop → subscribed again
}

// Merge adds another worker's storm result.
func (s *StormResult) Merge(o StormResult) {
	s.Clients += o.Clients
	s.Back += o.Back
	s.Resumed += o.Resumed
	s.Invalid += o.Invalid
	s.Replayed += o.Replayed
	s.Failed += o.Failed
	s.Receiving += o.Receiving
	s.AllBack = max(s.AllBack, o.AllBack)
	s.AllReceiving = max(s.AllReceiving, o.AllReceiving)
	s.Reconnect.Merge(o.Reconnect)
}

// Stats are a worker's counters; the parent merges those of all workers.
type Stats struct {
	Processes     int            `json:"processes"`
	Clients       int            `json:"clients"`
	Alive         int64          `json:"alive"`
	ConnectOK     int            `json:"connect_ok"`
	ConnectFailed int            `json:"connect_failed"`
	Connect       Hist           `json:"connect"` // per client, dial → subscribed
	Delivered     uint64         `json:"delivered"`
	WSMessages    uint64         `json:"ws_messages"` // WebSocket messages received since the reset
	Batches       uint64         `json:"batches"`
	Stale         uint64         `json:"stale"`     // bench messages of an earlier phase
	Gaps          uint64         `json:"gaps"`      // messages skipped in a channel's seq on a live connection
	Reordered     uint64         `json:"reordered"` // a channel's seq going backwards or repeating
	Acks          uint64         `json:"acks"`      // heartbeat_acks since the reset
	LastDelivery  int64          `json:"last_delivery"`
	Latency       Hist           `json:"latency"`
	Errors        map[string]int `json:"errors,omitempty"`
	CloseCodes    map[string]int `json:"close_codes,omitempty"`
	CPU           time.Duration  `json:"cpu"` // this process since the reset
	RSS           int64          `json:"rss"`
}

// Merge adds another worker's stats.
func (s *Stats) Merge(o Stats) {
	s.Processes += o.Processes
	s.Clients += o.Clients
	s.Alive += o.Alive
	s.ConnectOK += o.ConnectOK
	s.ConnectFailed += o.ConnectFailed
	s.Connect.Merge(o.Connect)
	s.Delivered += o.Delivered
	s.WSMessages += o.WSMessages
	s.Batches += o.Batches
	s.Stale += o.Stale
	s.Gaps += o.Gaps
	s.Reordered += o.Reordered
	s.Acks += o.Acks
	s.LastDelivery = max(s.LastDelivery, o.LastDelivery)
	s.Latency.Merge(o.Latency)
	s.Errors = mergeCounts(s.Errors, o.Errors)
	s.CloseCodes = mergeCounts(s.CloseCodes, o.CloseCodes)
	s.CPU += o.CPU
	s.RSS += o.RSS
}

func mergeCounts(a, b map[string]int) map[string]int {
	for k, v := range b {
		if a == nil {
			a = make(map[string]int)
		}
		a[k] += v
	}
	return a
}

// shard holds the counters of a share of the clients, so that 10,000
// readers do not all hit one cache line.
type shard struct {
	delivered, wsMessages, batches, stale, gaps, reordered, acks atomic.Uint64
	lastDelivery                                                 atomic.Int64
	latency                                                      atomicHist
	_                                                            [64]byte
}

const nShards = 8

type worker struct {
	url   string
	batch bool
	hc    *http.Client

	shards [nShards]shard
	phase  atomic.Uint64
	alive  atomic.Int64

	mu            sync.Mutex
	clients       []*client
	connect       Hist
	connectOK     int
	connectFailed int
	errors        map[string]int
	closeCodes    map[string]int
	cpuAtReset    time.Duration
}

func newWorker() *worker {
	// One TCP connection per WebSocket: no keep-alive pool to speak of.
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: handshakeTime}).DialContext,
		MaxIdleConnsPerHost: -1,
		DisableCompression:  true,
	}
	return &worker{hc: &http.Client{Transport: tr}, cpuAtReset: processCPU()}
}

func (w *worker) countError(what string) {
	w.mu.Lock()
	if w.errors == nil {
		w.errors = make(map[string]int)
	}
	w.errors[what]++
	w.mu.Unlock()
}

// connectionEnded counts a connection the server (or the network) ended.
func (w *worker) connectionEnded(err error) {
	if code := websocket.CloseStatus(err); code != -1 {
		w.mu.Lock()
		if w.closeCodes == nil {
			w.closeCodes = make(map[string]int)
		}
		w.closeCodes[strconv.Itoa(int(code))]++
		w.mu.Unlock()
		return
	}
	w.countError("connection lost: " + shortError(err))
}

// shortError makes an error countable: no addresses or ports in it.
func shortError(err error) string {
	switch {
	case err == nil:
		return "no error"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no free local port (EADDRNOTAVAIL)"
	case errors.Is(err, syscall.EMFILE):
		return "too many open files"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s)-i > 4 {
		s = s[i+2:]
	}
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// handle serves one request. Requests come one at a time.
func (w *worker) handle(ctx context.Context, req Request) Reply {
	switch req.Op {
	case "connect":
		if req.Connect == nil {
			return Reply{Err: "connect without a spec"}
		}
		w.doConnect(ctx, req.Connect)
		st := w.stats()
		return Reply{Stats: &st}
	case "reset":
		w.reset(req.Phase)
		return Reply{}
	case "progress":
		var p Progress
		for i := range w.shards {
			p.Delivered += w.shards[i].delivered.Load()
		}
		p.Alive = w.alive.Load()
		return Reply{Progress: &p}
	case "stats":
		st := w.stats()
		return Reply{Stats: &st}
	case "storm":
		if req.Storm == nil {
			return Reply{Err: "storm without a spec"}
		}
		r := w.storm(ctx, *req.Storm)
		return Reply{Storm: &r}
	case "close":
		w.closeAll()
		st := w.stats()
		return Reply{Stats: &st}
	}
	return Reply{Err: fmt.Sprintf("unknown op %q", req.Op)}
}

// doConnect opens the clients of spec, replacing any earlier ones.
func (w *worker) doConnect(ctx context.Context, spec *ConnectSpec) {
	if !spec.Append {
		w.closeAll()
	}
	others := make(map[uint64][]uint64) // channel → the server's other channels, shared
	for _, cs := range spec.Clients {
		if _, ok := others[cs.Channel]; ok {
			continue
		}
		list := []uint64{}
		for _, ch := range spec.Channels {
			if ch != cs.Channel {
				list = append(list, ch)
			}
		}
		others[cs.Channel] = list
	}
	w.mu.Lock()
	w.url, w.batch = spec.URL, spec.Batch
	if !spec.Append {
		w.clients = nil
		w.connect, w.connectOK, w.connectFailed = Hist{}, 0, 0
		w.errors, w.closeCodes = nil, nil
	}
	clients := make([]*client, len(spec.Clients))
	for i, cs := range spec.Clients {
		n := len(w.clients) + i
		clients[i] = &client{w: w, token: spec.Tokens[cs.Token], channel: cs.Channel, others: others[cs.Channel], sh: &w.shards[n%nShards]}
	}
	w.clients = append(w.clients, clients...)
	w.mu.Unlock()
	w.forAll(ctx, clients, spec.Parallel, func(c *client) {
		start := time.Now()
		_, err := c.connect(ctx, false)
		took := time.Since(start)
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil {
			w.connectFailed++
			if w.errors == nil {
				w.errors = make(map[string]int)
			}
			w.errors["connect "+shortStepError(err)]++
			return
		}
		w.connectOK++
		w.connect.Record(int64(took))
	})
}

// shortStepError keeps the handshake step and a countable reason.
func shortStepError(err error) string {
	s := err.Error()
	step, _, _ := strings.Cut(s, ":")
	if strings.Contains(s, ": close ") {
		return s
	}
	return step + ": " + shortError(errors.Unwrap(err))
}

// forAll runs f for every client, at most parallel at once (0: no limit).
func (w *worker) forAll(ctx context.Context, clients []*client, parallel int, f func(*client)) {
	var wg sync.WaitGroup
	var sem chan struct{}
	if parallel > 0 {
		sem = make(chan struct{}, parallel)
	}
	for _, c := range clients {
		if sem != nil {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return
			}
		}
		wg.Go(func() {
			f(c)
			if sem != nil {
				<-sem
			}
		})
	}
	wg.Wait()
}

func (w *worker) reset(phase uint64) {
	w.phase.Store(phase)
	for i := range w.shards {
		sh := &w.shards[i]
		for _, a := range []*atomic.Uint64{&sh.delivered, &sh.wsMessages, &sh.batches, &sh.stale, &sh.gaps, &sh.reordered, &sh.acks} {
			a.Store(0)
		}
		sh.lastDelivery.Store(0)
		sh.latency.reset()
	}
	w.mu.Lock()
	w.cpuAtReset = processCPU()
	w.mu.Unlock()
}

func (w *worker) stats() Stats {
	st := Stats{Processes: 1, Alive: w.alive.Load(), RSS: processRSS()}
	for i := range w.shards {
		sh := &w.shards[i]
		st.Delivered += sh.delivered.Load()
		st.WSMessages += sh.wsMessages.Load()
		st.Batches += sh.batches.Load()
		st.Stale += sh.stale.Load()
		st.Gaps += sh.gaps.Load()
		st.Reordered += sh.reordered.Load()
		st.Acks += sh.acks.Load()
		st.LastDelivery = max(st.LastDelivery, sh.lastDelivery.Load())
		sh.latency.addTo(&st.Latency)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	st.Clients = len(w.clients)
	st.ConnectOK, st.ConnectFailed = w.connectOK, w.connectFailed
	st.Connect.Merge(w.connect)
	st.Errors = mergeCounts(nil, w.errors)
	st.CloseCodes = mergeCounts(nil, w.closeCodes)
	st.CPU = processCPU() - w.cpuAtReset
	return st
}

// storm drops every client at once and connects each again at once (a
// full identify and subscribe: the gateway has no resume yet), then waits
// until every client that is back got a message.
func (w *worker) storm(ctx context.Context, spec StormSpec) StormResult {
	w.mu.Lock()
	clients := w.clients
	w.mu.Unlock()
	res := StormResult{Clients: len(clients)}
	var mu sync.Mutex
	back := make([]*client, 0, len(clients))
	backAt := make([]int64, 0, len(clients)) // unix ns, for back[i]
	start := time.Now()
	w.forAll(ctx, clients, spec.Parallel, func(c *client) {
		c.drop()
		c.rearm()
		how, err := c.connect(ctx, spec.Resume)
		took := time.Since(start)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			res.Failed++
			w.countError("reconnect " + shortStepError(err))
			return
		}
		res.Back++
		switch how {
		case resumed:
			res.Resumed++
			res.Replayed += c.replayed
		case invalidThenIdentified:
			res.Invalid++
		}
		res.AllBack = max(res.AllBack, took)
		res.Reconnect.Record(int64(took))
		back = append(back, c)
		backAt = append(backAt, start.Add(took).UnixNano())
	})
	deadline := time.Now().Add(spec.Wait)
	for {
		res.Receiving = 0
		var last int64
		for i, c := range back {
			// Back and receiving: subscribed again (or resumed) and a
			// message arrived; replayed ones may come before "resumed".
			if at := c.firstAt.Load(); at != 0 {
				res.Receiving++
				last = max(last, at, backAt[i])
			}
		}
		res.AllReceiving = time.Duration(last - start.UnixNano())
		if res.Receiving == len(back) || time.Now().After(deadline) || ctx.Err() != nil {
			return res
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closeAll closes every client normally (1000), so that the server ends
// the sessions instead of keeping them for resume.
func (w *worker) closeAll() {
	w.mu.Lock()
	clients := w.clients
	w.mu.Unlock()
	w.forAll(context.Background(), clients, 0, (*client).closeNormal)
}

// workerConn is the parent's handle on a worker.
type workerConn interface {
	call(ctx context.Context, req Request) (Reply, error)
	close() error
}

// localWorker is a worker in the parent's process.
type localWorker struct{ w *worker }

func (l localWorker) call(ctx context.Context, req Request) (Reply, error) {
	r := l.w.handle(ctx, req)
	if r.Err != "" {
		return r, errors.New(r.Err)
	}
	return r, nil
}

func (l localWorker) close() error {
	l.w.closeAll()
	l.w.hc.CloseIdleConnections()
	return nil
}

// remoteWorker is a child process running the tool with --worker.
type remoteWorker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	enc   *json.Encoder
	dec   *json.Decoder
	mu    sync.Mutex // one request at a time
}

// workerEnv marks a child worker's environment. A test binary looks for
// it in TestMain, since its own flags are not the tool's.
const workerEnv = "GUILDHALL_BENCH_WORKER"

func startWorker() (*remoteWorker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "--worker")
	cmd.Env = append(os.Environ(), workerEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := startCmd(cmd); err != nil { // dies with the tool
		return nil, fmt.Errorf("start worker %s: %w", exe, err)
	}
	return &remoteWorker{cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), dec: json.NewDecoder(bufio.NewReader(stdout))}, nil
}

func (r *remoteWorker) call(ctx context.Context, req Request) (Reply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// A worker that does not answer in time is killed: the run is bounded.
	stop := context.AfterFunc(ctx, func() { _ = r.cmd.Process.Kill() })
	defer stop()
	var rep Reply
	if err := r.enc.Encode(req); err != nil {
		return rep, fmt.Errorf("worker %d: %w (%s)", r.cmd.Process.Pid, err, r.exitStatus())
	}
	if err := r.dec.Decode(&rep); err != nil {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		return rep, fmt.Errorf("worker %d: %w (%s)", r.cmd.Process.Pid, err, r.exitStatus())
	}
	if rep.Err != "" {
		return rep, fmt.Errorf("worker %d: %s", r.cmd.Process.Pid, rep.Err)
	}
	return rep, nil
}

// exitStatus waits a moment for a worker that stopped answering and says
// how it ended.
func (r *remoteWorker) exitStatus() string {
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
		return r.cmd.ProcessState.String()
	case <-time.After(2 * time.Second):
		return "still running"
	}
}

// close ends the worker: on EOF it drops its clients and exits.
func (r *remoteWorker) close() error {
	_ = r.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		_ = r.cmd.Process.Kill()
		return <-done
	}
}

// runWorker serves requests from in until it ends.
func runWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	if _, err := raiseNoFile(); err != nil {
		return err
	}
	w := newWorker()
	defer w.closeAll()
	dec := json.NewDecoder(bufio.NewReader(in))
	enc := json.NewEncoder(out)
	for {
		var req Request
		if err := dec.Decode(&req); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if err := enc.Encode(w.handle(ctx, req)); err != nil {
			return err
		}
	}
}
