package browser

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
)

// e2e is what the tests of this binary share. TestMain owns it.
var e2e struct {
	// dir holds everything the run makes: the tether binary, Chromium's
	// profile, the screenshots and the servers' logs. It is removed when
	// every test passed, and kept (and named) otherwise.
	dir string

	buildOnce sync.Once
	bin       string // the tether binary
	buildErr  error

	chromeOnce sync.Once
	chrome     context.Context // a chromedp context whose browser runs
	chromeErr  error
	stopChrome func()
	siteCert   siteCert // the certificate of site's names, which chrome accepts
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tether-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	e2e.dir = dir
	code := m.Run()
	if e2e.stopChrome != nil {
		e2e.stopChrome()
	}
	if code == 0 && os.Getenv("TETHER_E2E_KEEP") == "" {
		os.RemoveAll(dir)
	} else {
		fmt.Fprintf(os.Stderr, "e2e: screenshots and server logs kept in %s\n", dir)
	}
	os.Exit(code)
}

// serverRaceEnv, set to 1, builds the tether binary under test with -race.
// It is off by default, even when the tests run with -race: argon2id is
// about twenty times slower under the race detector (a sign-in takes a
// second instead of 50 ms), which would double the run; the server's code
// runs under -race in its own packages' tests.
const serverRaceEnv = "TETHER_E2E_SERVER_RACE"

// tetherBinary builds cmd/tether from this tree, once per test binary.
func tetherBinary(t *testing.T) string {
	t.Helper()
	e2e.buildOnce.Do(func() {
		gocmd, err := exec.LookPath("go")
		if err != nil {
			e2e.buildErr = fmt.Errorf("building tether needs the go command: %w", err)
			return
		}
		bin := filepath.Join(e2e.dir, "tether")
		args := []string{"build", "-o", bin}
		if os.Getenv(serverRaceEnv) == "1" {
			args = append(args, "-race")
		}
		cmd := exec.Command(gocmd, append(args, "github.com/tetherauth/tether/cmd/tether")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			e2e.buildErr = fmt.Errorf("go build ./cmd/tether: %v\n%s", err, out)
			return
		}
		e2e.bin = bin
	})
	if e2e.buildErr != nil {
		t.Fatal(e2e.buildErr)
	}
	return e2e.bin
}

// A user is an account created before the server starts.
type user struct{ name, password string }

// tether is a running `tether serve` process.
type tether struct {
	t    *testing.T
	URL  string // http://127.0.0.1:PORT, no trailing slash
	data string // its SQLite file
	log  *lockedBuffer
}

// startTether creates users with `tether user add NAME --password-stdin`,
// then runs `tether serve` on a free 127.0.0.1 port with extra flags, and
// waits until /healthz answers. The server is stopped when the test ends;
// a data race it reports fails the test.
func startTether(t *testing.T, users []user, extra ...string) *tether {
	t.Helper()
	chromium(t) // every test drives it: skip before building anything
	bin := tetherBinary(t)
	srv := &tether{t: t, data: filepath.Join(t.TempDir(), "tether.db"), log: &lockedBuffer{}}
	for _, u := range users {
		srv.cli(u.password+"\n", "user", "add", u.name, "--password-stdin", "--create")
	}

	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", srv.data, "--log-format", "json"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	cmd.Stdout = srv.log
	// The log goes to stderr; read it for the address the server took
	// ("listening on http://127.0.0.1:PORT"), so no port is picked and lost.
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tether serve: %v", err)
	}
	listening := make(chan string, 1)
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			srv.log.Write(append(slices.Clip(line), '\n')) // Clip: don't write into the scanner's buffer
			var rec struct{ Msg string }
			if json.Unmarshal(line, &rec) == nil && strings.HasPrefix(rec.Msg, "listening on ") {
				select {
				case listening <- strings.TrimPrefix(rec.Msg, "listening on "):
				default:
				}
			}
		}
		io.Copy(srv.log, stderr)
	}()
	exited := make(chan error, 1)
	go func() {
		<-logged // Wait must not close the pipe before it is read out
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { srv.stop(cmd, exited) })

	select {
	case srv.URL = <-listening:
	case err := <-exited:
		exited <- err
		t.Fatalf("tether serve exited before listening: %v\n%s", err, srv.log)
	case <-time.After(time.Minute):
		t.Fatalf("tether serve did not say where it listens within a minute:\n%s", srv.log)
	}
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("tether serve listens on %q, want http://127.0.0.1:PORT", srv.URL)
	}
	srv.waitHealthy(exited)
	return srv
}

// waitHealthy polls GET /healthz until it answers 200.
func (s *tether) waitHealthy(exited chan error) {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := http.Get(s.URL + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-exited:
			exited <- err
			s.t.Fatalf("tether serve exited: %v\n%s", err, s.log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("GET /healthz: no 200 within a minute (last error %v)\n%s", err, s.log)
		}
	}
}

// waitOutput waits until the server's output has a line matching re, and
// returns its submatches. (Its standard output reaches the test through a
// pipe, so a line it printed before answering /healthz may come later.)
func (s *tether) waitOutput(re *regexp.Regexp) []string {
	s.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		if m := re.FindStringSubmatch(s.log.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no line matching %s in the server's output:\n%s", re, s.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop interrupts the server, as Ctrl-C would, and waits for it; it keeps
// the server's log with the screenshots, and fails the test on a data race.
func (s *tether) stop(cmd *exec.Cmd, exited chan error) {
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-exited
		s.t.Errorf("tether serve did not stop within 15s of an interrupt; killed")
	}
	logs := s.log.String()
	path := artifact(s.t, "server.log")
	if err := os.WriteFile(path, []byte(logs), 0o644); err != nil {
		s.t.Logf("saving the server log: %v", err)
	}
	if strings.Contains(logs, "WARNING: DATA RACE") {
		s.t.Errorf("tether serve reported a data race; its log: %s", path)
	} else if s.t.Failed() {
		s.t.Logf("the server's log: %s", path)
	}
}

// cli runs a tether command on the server's database, with stdin as its
// standard input, and returns its standard output.
func (s *tether) cli(stdin string, args ...string) string {
	s.t.Helper()
	cmd := exec.Command(tetherBinary(s.t), append(args, "--data", s.data)...)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("tether %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// cleanEnv is the test's environment without TETHER_ variables, so that
// nothing but the flags configures the server under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TETHER_") {
			env = append(env, kv)
		}
	}
	return env
}

// artifact returns a path in the run's directory for a file of test t, such
// as its screenshot or its server's log.
func artifact(t *testing.T, name string) string {
	dir := filepath.Join(e2e.dir, fileName(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("artifact dir: %v", err)
	}
	return filepath.Join(dir, fileName(name))
}

// fileName replaces the characters of s that are awkward in a file name.
func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-", r)) {
			return r
		}
		return '_'
	}, s)
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
