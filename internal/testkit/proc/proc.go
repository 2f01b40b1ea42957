// Package proc starts, stops and kills the processes of tether's tests
// (tether built from this tree, redis-server and its Sentinels, nginx),
// each logging to a file in the run's directory, and tears everything
// down when the test ends. The end-to-end tests under e2e/ use it, and so
// do the tests of store/redis and cmd/tether that need a Redis of their
// own (to stop, freeze or restart it).
//
//	run := proc.NewRun(t, "tether-mytest-") // removed when the test passes
//	bin := proc.BuildTether(t, run.Dir)
//	_, redisAddr, err := run.StartRedis("redis", redisBin, "--dir", run.Dir, "--save", "")
//	...
//	p, err := run.Start("node-a", bin, "serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--sessions", "redis://"+redisAddr)
//	url, err := p.Listening() // from its JSON log
//
// Set TETHER_E2E_KEEP=1 to keep the run's directory (the processes' logs,
// their configuration and data); it is always kept when the test fails.
// TETHER_E2E_SERVER_RACE=1 builds the tether binary with -race.
package proc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The bounds of waiting for something to happen: generous, since they only
// end a test that has already gone wrong. None is a time limit on speed.
const (
	StartTimeout = 30 * time.Second // a process to start answering
	StopTimeout  = 15 * time.Second // a process to exit after SIGTERM
	PollEvery    = 5 * time.Millisecond
)

// KeepEnv, set, keeps the run's directory even when the test passes.
const KeepEnv = "TETHER_E2E_KEEP"

// A Run is the processes one test started, and the directory where their
// logs and data are.
type Run struct {
	Dir string // the run's directory

	mu    sync.Mutex // guards procs
	procs []*Proc    // every process started, for the cleanup
}

// NewRun creates the run's directory, named after prefix in the system's
// temporary directory and readable by everyone (nginx's workers may run
// as another user). When the test ends, failed or not, every process
// still running is stopped, and the directory is removed unless the test
// failed or TETHER_E2E_KEEP is set.
func NewRun(t testing.TB, prefix string) *Run {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &Run{Dir: dir}
	t.Cleanup(func() { r.cleanup(t) })
	return r
}

// A Proc is a process the test started. Its standard output and error go
// to NAME.log in the run's directory, appended at each start.
type Proc struct {
	Name string // its name in the run, and its log's
	Log  string // the path of its log

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // what Wait returned; set before done is closed

	mu      sync.Mutex // guards stopped
	stopped bool       // the test stopped it (else it exited by itself)
}

// Start starts bin with args as a process called name; the cleanup stops
// it if it still runs then. Its environment is the test's without the
// TETHER_ variables.
func (r *Run) Start(name, bin string, args ...string) (*Proc, error) {
	return r.StartEnv(name, nil, bin, args...)
}

// StartEnv is Start with env ("KEY=value") added to the environment.
func (r *Run) StartEnv(name string, env []string, bin string, args ...string) (*Proc, error) {
	p := &Proc{Name: name, Log: filepath.Join(r.Dir, name+".log"), done: make(chan struct{})}
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "=== %s: %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(CleanEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = procAttr()
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	r.mu.Lock()
	r.procs = append(r.procs, p)
	r.mu.Unlock()
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is what the process exited with, once Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// MarkStopped records that the process exits because the test wants it
// to (say, after a SHUTDOWN it sent), so that the cleanup doesn't
// complain that it exited by itself.
func (p *Proc) MarkStopped() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
}

func (p *Proc) wasStopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

// Stop sends SIGTERM and waits for the process to exit, killing it if it
// takes longer than StopTimeout. It returns what the process exited with,
// or an error if it had to be killed. SIGTERM is sent again every second:
// a process may refuse one and not retry (redis-server does, while it
// writes its first append-only file after CONFIG SET appendonly yes).
func (p *Proc) Stop() error {
	if p.Exited() {
		return nil
	}
	p.MarkStopped()
	timeout := time.After(StopTimeout)
	again := time.NewTicker(time.Second)
	defer again.Stop()
	for {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			return p.err
		case <-again.C:
		case <-timeout:
			p.cmd.Process.Kill()
			<-p.done
			return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.Name, StopTimeout)
		}
	}
}

// Kill kills the process with SIGKILL, as a crash would, and waits for it
// to exit.
func (p *Proc) Kill() error {
	if p.Exited() {
		return fmt.Errorf("%s had already exited: %v", p.Name, p.err)
	}
	p.MarkStopped()
	if err := p.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("kill %s: %w", p.Name, err)
	}
	<-p.done
	return nil
}

// Listening reads the process's log (tether's JSON log) until it says
// where it listens, and returns that URL. Test traffic only ever goes to
// 127.0.0.1: a process listening anywhere else is an error.
func (p *Proc) Listening() (string, error) {
	deadline := time.Now().Add(StartTimeout)
	for {
		if b, err := os.ReadFile(p.Log); err == nil {
			for line := range strings.Lines(string(b)) {
				var rec struct{ Msg string }
				if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Msg, "listening on ") {
					url := strings.TrimPrefix(rec.Msg, "listening on ")
					if host, _, _ := net.SplitHostPort(strings.TrimPrefix(url, "http://")); host != "127.0.0.1" {
						return "", fmt.Errorf("%s listens on %s, want 127.0.0.1", p.Name, url)
					}
					return url, nil
				}
			}
		}
		if p.Exited() {
			return "", fmt.Errorf("%s exited before listening: %v\n%s", p.Name, p.err, p.Tail(40))
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not say where it listens within %v\n%s", p.Name, StartTimeout, p.Tail(40))
		}
		time.Sleep(PollEvery)
	}
}

// Tail returns the last n lines of the process's log.
func (p *Proc) Tail(n int) string { return tailFile(p.Log, n) }

// tailFile returns the last n lines of the file at path.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.SplitAfter(string(b), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}

// CleanEnv is the test's environment without TETHER_ variables, so that
// nothing but the flags configures the processes under test.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TETHER_") {
			env = append(env, kv)
		}
	}
	return env
}

// cleanup stops every process still running, last started first, says
// which exited by themselves, reports data races in the logs, and shows
// the logs if the test failed. The run's directory is removed if the test
// passed.
func (r *Run) cleanup(t testing.TB) {
	r.mu.Lock()
	procs := r.procs
	r.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if p.Exited() && !p.wasStopped() {
			t.Errorf("%s exited by itself: %v", p.Name, p.err)
		}
		if err := p.Stop(); err != nil {
			t.Errorf("stopping %s: %v", p.Name, err)
		}
	}
	logs, _ := filepath.Glob(filepath.Join(r.Dir, "*.log"))
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil && bytes.Contains(b, []byte("WARNING: DATA RACE")) {
			t.Errorf("%s reports a data race", l)
		}
	}
	if t.Failed() {
		for _, l := range logs {
			t.Logf("--- %s (its last lines) ---\n%s", filepath.Base(l), tailFile(l, 40))
		}
	}
	if t.Failed() || os.Getenv(KeepEnv) != "" {
		t.Logf("the processes' logs, configuration and data kept in %s", r.Dir)
	} else {
		os.RemoveAll(r.Dir)
	}
}

// Signal sends sig to the process: SIGSTOP and SIGCONT freeze and thaw it,
// as a stuck host or a long GC pause would.
func (p *Proc) Signal(sig os.Signal) error {
	if p.Exited() {
		return fmt.Errorf("%s has exited: %v", p.Name, p.err)
	}
	return p.cmd.Process.Signal(sig)
}

// Pid is the process's id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Goroutines ends a Go process with SIGQUIT, whose runtime then writes
// every goroutine's stack to its log, and returns how many there were:
// the only count of a binary's goroutines that needs nothing built into
// it. The process is gone afterwards; start it again if the test goes on.
func (p *Proc) Goroutines() (int, error) {
	st, err := os.Stat(p.Log)
	if err != nil {
		return 0, err
	}
	p.MarkStopped()
	if err := p.Signal(syscall.SIGQUIT); err != nil {
		return 0, err
	}
	select {
	case <-p.done:
	case <-time.After(StopTimeout):
		p.cmd.Process.Kill()
		<-p.done
		return 0, fmt.Errorf("%s did not exit within %v of SIGQUIT; killed", p.Name, StopTimeout)
	}
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return 0, err
	}
	n := 0
	for line := range strings.Lines(string(b[min(st.Size(), int64(len(b))):])) {
		if strings.HasPrefix(line, "goroutine ") && strings.HasSuffix(strings.TrimSpace(line), ":") {
			n++
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: no goroutine dump in its log after SIGQUIT\n%s", p.Name, p.Tail(20))
	}
	return n, nil
}

// RSS is the process's resident memory in bytes (Linux: /proc/PID/status).
func (p *Proc) RSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("%s: VmRSS %q: %w", p.Name, v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("%s: no VmRSS in /proc/%d/status", p.Name, p.Pid())
}
