package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A proc is a process the test started. Its standard output and error go
// to NAME.log in the run's directory, appended at each start.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // what Wait returned; set before done is closed

	mu      sync.Mutex // guards stopped
	stopped bool       // the test stopped it (else it exited by itself)
}

// start starts a process named name; it is stopped by the cleanup if it
// still runs then.
func (c *cluster) start(name, bin string, args ...string) (*proc, error) {
	p := &proc{name: name, log: filepath.Join(c.dir, name+".log"), done: make(chan struct{})}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "=== %s: %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = cleanEnv()
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = procAttr()
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) markStopped() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
}

func (p *proc) wasStopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

// stop sends SIGTERM and waits for the process to exit, killing it if it
// takes longer than stopTimeout. It returns what the process exited with,
// or an error if it had to be killed.
func (p *proc) stop() error {
	if p.exited() {
		return nil
	}
	p.markStopped()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(stopTimeout):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.name, stopTimeout)
	}
}

// listening reads the process's log (tether's JSON log) until it says
// where it listens, and returns that URL.
func (p *proc) listening() (string, error) {
	deadline := time.Now().Add(startTimeout)
	for {
		if b, err := os.ReadFile(p.log); err == nil {
			for line := range strings.Lines(string(b)) {
				var rec struct{ Msg string }
				if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Msg, "listening on ") {
					return strings.TrimPrefix(rec.Msg, "listening on "), nil
				}
			}
		}
		if p.exited() {
			return "", fmt.Errorf("%s exited before listening: %v\n%s", p.name, p.err, p.tail(40))
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not say where it listens within %v\n%s", p.name, startTimeout, p.tail(40))
		}
		time.Sleep(pollEvery)
	}
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string { return tailFile(p.log, n) }

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.SplitAfter(string(b), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}

// cleanEnv is the test's environment without TETHER_ variables, so that
// nothing but the flags configures the processes under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TETHER_") {
			env = append(env, kv)
		}
	}
	return env
}
