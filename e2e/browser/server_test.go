package browser

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/proc"
)

// e2e is what the tests of this binary share. TestMain owns it.
var e2e struct {
	// dir holds what the run makes besides the servers (whose logs and
	// data proc keeps when their test fails): the tether binary,
	// Chromium's profile and the screenshots. It is removed when
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
	if code == 0 && os.Getenv(proc.KeepEnv) == "" {
		os.RemoveAll(dir)
	} else {
		fmt.Fprintf(os.Stderr, "e2e: screenshots kept in %s\n", dir)
	}
	os.Exit(code)
}

// tetherBinary builds cmd/tether from this tree, once per test binary
// (with -race when proc.ServerRaceEnv is 1).
func tetherBinary(t *testing.T) string {
	t.Helper()
	testkit.SkipShort(t, "drives Chromium and a tether process")
	e2e.buildOnce.Do(func() { e2e.bin = proc.BuildTether(t, e2e.dir) })
	if e2e.bin == "" {
		t.Fatal("building tether failed in an earlier test")
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
	proc *proc.Proc
}

// startTether creates users with `tether user add NAME --password-stdin`,
// then runs `tether serve` on a free 127.0.0.1 port with extra flags, and
// waits until /healthz answers. The server is stopped when the test ends;
// a data race it reports fails the test, and its log is kept when the
// test fails.
func startTether(t *testing.T, users []user, extra ...string) *tether {
	t.Helper()
	chromium(t) // every test drives it: skip before building anything
	bin := tetherBinary(t)
	run := proc.NewRun(t, "tether-browser-")
	srv := &tether{t: t, data: filepath.Join(run.Dir, "tether.db")}
	for _, u := range users {
		srv.cli(u.password+"\n", "user", "add", u.name, "--password-stdin", "--create")
	}
	p, err := run.Start("tether", bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--data", srv.data, "--log-format", "json"}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv.proc = p
	// The server says where it listens in its log, so no port is picked and lost.
	if srv.URL, err = p.Listening(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "GET /healthz to answer 200", func() bool {
		if p.Exited() {
			t.Fatalf("tether serve exited: %v\n%s", p.Err(), p.Tail(40))
		}
		res, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, testkit.Within(time.Minute))
	return srv
}

// waitOutput waits until the server's output has a line matching re, and
// returns its submatches.
func (s *tether) waitOutput(re *regexp.Regexp) []string {
	s.t.Helper()
	var m []string
	testkit.WaitFor(s.t, "a line matching "+re.String()+" in the server's output", func() bool {
		out, _ := os.ReadFile(s.proc.Log)
		m = re.FindStringSubmatch(string(out))
		return m != nil
	}, testkit.Within(stepTimeout))
	return m
}

// cli runs a tether command on the server's database, with stdin as its
// standard input, and returns its standard output.
func (s *tether) cli(stdin string, args ...string) string {
	s.t.Helper()
	return proc.Tether(s.t, tetherBinary(s.t), stdin, append(args, "--data", s.data)...)
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
