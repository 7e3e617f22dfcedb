package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat
// (sysconf(_SC_CLK_TCK), 100 on every Linux platform Go runs on).
const clockTick = 10 * time.Millisecond

// raiseNoFile raises the soft limit on open files to the hard limit and
// returns it: every client is a socket.
func raiseNoFile() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return 0, fmt.Errorf("raise RLIMIT_NOFILE to %d: %w", r.Max, err)
		}
	}
	return r.Cur, nil
}

// processCPU is the CPU time (user + system) this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processRSS is this process's resident set, 0 if unknown.
func processRSS() int64 {
	rss, _ := procRSS("self")
	return rss
}

// procCPU reads utime + stime of a process from /proc/<pid>/stat.
func procCPU(pid string) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%s/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%s/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%s/stat: %w", pid, err)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// procRSS reads VmRSS of a process from /proc/<pid>/status, in bytes.
func procRSS(pid string) (int64, error) {
	f, err := os.Open(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%s/status VmRSS: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%s/status: no VmRSS", pid)
}

// startCmd starts cmd with Pdeathsig SIGKILL, so the child dies with the
// tool. The kernel sends that signal when the *thread* that forked the
// child ends, and the Go runtime may end threads (go.dev/issue/27505):
// children are forked from one goroutine locked to its thread for good.
func startCmd(cmd *exec.Cmd) error {
	starter.once.Do(func() {
		starter.reqs = make(chan startReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range starter.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	done := make(chan error, 1)
	starter.reqs <- startReq{cmd, done}
	return <-done
}

type startReq struct {
	cmd  *exec.Cmd
	done chan error
}

var starter struct {
	once sync.Once
	reqs chan startReq
}

// machineBusy is the CPU time all cores spent outside idle and iowait
// so far (/proc/stat): server, load generator and everything else.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already in user
			break
		}
		busy += n
	}
	return time.Duration(busy) * clockTick
}

// serverProc reads the server's CPU and RSS; the zero value measures
// nothing.
type serverProc struct{ pid int }

func (p serverProc) known() bool { return p.pid > 0 }

func (p serverProc) cpu() time.Duration {
	if !p.known() {
		return 0
	}
	d, _ := procCPU(strconv.Itoa(p.pid))
	return d
}

func (p serverProc) rss() int64 {
	if !p.known() {
		return 0
	}
	n, _ := procRSS(strconv.Itoa(p.pid))
	return n
}

// spawned is a guildhall the tool started for itself.
type spawned struct {
	cmd     *exec.Cmd
	dir     string
	logPath string
	log     *os.File
	addr    string
	exited  chan struct{}
	waitErr error
	started time.Time
	once    sync.Once
}

// gcLine is one GC of the spawned server, from its gctrace output.
type gcLine struct {
	at     time.Time
	liveMB int // heap live after the GC's mark phase
	stacks int // MB of goroutine stacks
}

var gcTrace = regexp.MustCompile(`^gc \d+ @([0-9.]+)s .*?(\d+)->(\d+)->(\d+) MB, \d+ MB goal, (\d+) MB stacks`)

// lastGC returns the last GC that ended after t, if any.
func (s *spawned) lastGC(after time.Time) (gcLine, bool) {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return gcLine{}, false
	}
	var last gcLine
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		m := gcTrace.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		sec, _ := strconv.ParseFloat(m[1], 64)
		at := s.started.Add(time.Duration(sec * float64(time.Second)))
		if at.Before(after) {
			continue
		}
		live, _ := strconv.Atoi(m[4])
		stacks, _ := strconv.Atoi(m[5])
		last, found = gcLine{at: at, liveMB: live, stacks: stacks}, true
	}
	return last, found
}

const serverPkg = "github.com/guildhall/guildhall/cmd/guildhall"

// spawnServer builds guildhall (unless bin is given) into a temp dir and
// starts it on a free loopback port with a temp data dir.
func spawnServer(ctx context.Context, cfg Config, logf func(string, ...any)) (*spawned, error) {
	dir, err := os.MkdirTemp("", "guildhall-bench-")
	if err != nil {
		return nil, err
	}
	s := &spawned{dir: dir, exited: make(chan struct{})}
	bin := cfg.ServerBin
	if bin == "" {
		bin = filepath.Join(dir, "guildhall")
		logf("building %s", serverPkg)
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, serverPkg)
		if out, err := build.CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("go build %s (run from inside the guildhall module, or pass --server-bin): %v\n%s", serverPkg, err, out)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.addr = ln.Addr().String()
	ln.Close()
	args := []string{"--addr", s.addr, "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn",
		"--heartbeat-interval", cfg.ServerHB.String()}
	args = append(args, cfg.ServerFlags...)
	s.logPath = filepath.Join(dir, "server.log")
	if s.log, err = os.Create(s.logPath); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	// gctrace gives the live heap after every GC: a memory figure that,
	// unlike RSS, does not depend on when the server last collected.
	s.cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1")
	if err := startCmd(s.cmd); err != nil {
		s.log.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s.started = time.Now()
	go func() { s.waitErr = s.cmd.Wait(); close(s.exited) }()
	logf("started guildhall pid %d on %s (data in %s)", s.cmd.Process.Pid, s.addr, dir)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.exited:
			tail := s.logTail(20)
			s.stop()
			return nil, fmt.Errorf("guildhall exited at start (%v):\n%s", s.waitErr, tail)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("guildhall did not answer /healthz on %s within 30s", s.addr)
		}
	}
}

func (s *spawned) pid() int { return s.cmd.Process.Pid }

// alive reports whether the server is still running.
func (s *spawned) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// logSummary counts the warnings and errors in the server's log and
// returns the first few distinct messages.
func (s *spawned) logSummary() (warns, errs int, samples []string) {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return 0, 0, nil
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.Contains(line, "level=ERROR"):
			errs++
		case strings.Contains(line, "level=WARN"):
			warns++
		default:
			continue
		}
		msg := line
		if i := strings.Index(line, "msg="); i >= 0 {
			msg = line[i:]
		}
		// Group by message, without the changing key=value tail.
		key := msg
		if i := strings.Index(msg, " "); i > 0 && strings.HasPrefix(msg, `msg="`) {
			if j := strings.Index(msg[5:], `"`); j >= 0 {
				key = msg[:5+j+1]
			}
		} else if i > 0 {
			key = msg[:i]
		}
		if !seen[key] && len(samples) < 8 {
			seen[key] = true
			if len(msg) > 200 {
				msg = msg[:200]
			}
			samples = append(samples, msg)
		}
	}
	return warns, errs, samples
}

func (s *spawned) logTail(n int) string {
	b, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop ends the server (SIGTERM, then SIGKILL after 20s) and removes its
// temp dir. Idempotent.
func (s *spawned) stop() {
	s.once.Do(s.stopOnce)
}

func (s *spawned) stopOnce() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	if s.log != nil {
		s.log.Close()
	}
	os.RemoveAll(s.dir)
}
