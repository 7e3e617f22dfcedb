package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// restClient talks to the REST API (docs/api.md).
type restClient struct {
	base string // http://host:port/api/v1
	hc   *http.Client
}

func newRESTClient(addr string, conns int) *restClient {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute, DisableCompression: true}
	return &restClient{base: "http://" + addr + "/api/v1", hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// statusError is a REST reply with an unexpected status.
type statusError struct {
	status int
	code   string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d %s", e.status, e.code) }

func (r *restClient) do(ctx context.Context, method, path, token string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		var e struct{ Code, Message string }
		_ = json.Unmarshal(data, &e)
		if e.Code == "" {
			e.Code = "?"
		}
		return &statusError{status: resp.StatusCode, code: e.Code}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// world is what setup made: users, one server, its channels and who
// follows which.
type world struct {
	tokens   []string
	serverID string
	channels []uint64
	members  map[uint64]int // channel → clients subscribed to it
	clients  []ClientSpec   // client i: token and channel
}

// setupWorld registers users, creates a server with enough channels for
// the scenario and joins every user by invite. Argon2 makes registering
// slow, so there are only a few users; clients share their tokens (one
// user may hold many sessions).
func setupWorld(ctx context.Context, r *restClient, cfg Config, logf func(string, ...any)) (*world, error) {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	prefix := "bench" + hex.EncodeToString(rnd[:])
	w := &world{members: make(map[uint64]int)}
	logf("registering %d users", cfg.Users)
	for i := range cfg.Users {
		var out struct{ Token string }
		name := prefix + "_" + strconv.Itoa(i)
		if err := r.do(ctx, "POST", "/auth/register", "", map[string]string{"username": name, "password": "bench password"}, 201, &out); err != nil {
			return nil, fmt.Errorf("register %s: %w", name, err)
		}
		w.tokens = append(w.tokens, out.Token)
	}
	owner := w.tokens[0]
	var srv struct{ ID string }
	if err := r.do(ctx, "POST", "/servers", owner, map[string]string{"name": "bench " + prefix}, 201, &srv); err != nil {
		return nil, fmt.Errorf("create server: %w", err)
	}
	w.serverID = srv.ID
	var chans []struct{ ID string }
	if err := r.do(ctx, "GET", "/servers/"+srv.ID+"/channels", owner, nil, 200, &chans); err != nil || len(chans) == 0 {
		return nil, fmt.Errorf("list channels: %v (%d channels)", err, len(chans))
	}
	general, err := strconv.ParseUint(chans[0].ID, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("channel id %q: %w", chans[0].ID, err)
	}
	w.channels = []uint64{general}
	want := 1
	if cfg.Scenario != ScenarioOneChannel {
		want = (cfg.Clients + cfg.ChannelSize - 1) / cfg.ChannelSize
	}
	if want > 1 {
		logf("creating %d channels", want-1)
	}
	for i := 1; i < want; i++ {
		var ch struct{ ID string }
		if err := r.do(ctx, "POST", "/servers/"+srv.ID+"/channels", owner, map[string]string{"name": "bench-" + strconv.Itoa(i)}, 201, &ch); err != nil {
			return nil, fmt.Errorf("create channel %d: %w", i, err)
		}
		id, err := strconv.ParseUint(ch.ID, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("channel id %q: %w", ch.ID, err)
		}
		w.channels = append(w.channels, id)
	}
	if len(w.tokens) > 1 {
		var inv struct{ Code string }
		if err := r.do(ctx, "POST", "/servers/"+srv.ID+"/invites", owner, map[string]int{"max_uses": 0}, 201, &inv); err != nil {
			return nil, fmt.Errorf("create invite: %w", err)
		}
		for _, tok := range w.tokens[1:] {
			if err := r.do(ctx, "POST", "/invites/"+inv.Code, tok, nil, 200, nil); err != nil {
				return nil, fmt.Errorf("join by invite: %w", err)
			}
		}
	}
	for i := range cfg.Clients {
		ch := w.channels[0]
		if cfg.Scenario != ScenarioOneChannel {
			ch = w.channels[i/cfg.ChannelSize]
		}
		w.clients = append(w.clients, ClientSpec{Token: i % len(w.tokens), Channel: ch})
		w.members[ch]++
	}
	return w, nil
}

// sender posts bench messages over REST, each carrying its send time.
type sender struct {
	rest  *restClient
	token string
	phase uint64
	size  int
	w     *world

	sent     atomic.Uint64 // accepted (201)
	expected atomic.Uint64 // deliveries the accepted messages owe
	failed   atomic.Uint64
	mu       sync.Mutex
	errs     map[string]int
}

func (s *sender) send(ctx context.Context, ch uint64) {
	content := makeContent(s.phase, time.Now().UnixNano(), s.size)
	err := s.rest.do(ctx, "POST", "/channels/"+strconv.FormatUint(ch, 10)+"/messages", s.token, map[string]string{"content": content}, 201, nil)
	if err != nil {
		if ctx.Err() != nil {
			return // the run is ending
		}
		s.failed.Add(1)
		s.mu.Lock()
		if s.errs == nil {
			s.errs = make(map[string]int)
		}
		key := shortError(err)
		if se, ok := err.(*statusError); ok {
			key = se.Error()
		}
		s.errs["send: "+key]++
		s.mu.Unlock()
		return
	}
	s.sent.Add(1)
	s.expected.Add(uint64(s.w.members[ch]))
}

func (s *sender) errors() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return mergeCounts(nil, s.errs)
}

// pool runs n goroutines sending to the channels put on the returned
// channel; close it and call wait to finish.
func (s *sender) pool(ctx context.Context, n int) (chan<- uint64, func()) {
	tickets := make(chan uint64, n*2)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for ch := range tickets {
				s.send(ctx, ch)
			}
		})
	}
	return tickets, func() { close(tickets); wg.Wait() }
}
