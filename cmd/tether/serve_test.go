package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

// testServer is a tether serve that a test runs.
type testServer struct {
	url            string
	stdout, stderr *testkit.Buffer
	stop           func() error // stops it and returns what run returned
	client         *http.Client // what do asks with
}

var listeningRE = regexp.MustCompile(`listening on (https?://[^\s"]+)`)

// startServe runs tether serve on the database file data and a free port,
// with flags, until the test ends or stop is called, and returns once it
// serves.
func startServe(t *testing.T, data string, flags ...string) *testServer {
	t.Helper()
	return startServeWith(t, http.DefaultClient, data, flags...)
}

// startServeWith is startServe, asking with client (one that trusts the
// server's certificate, say).
func startServeWith(t *testing.T, client *http.Client, data string, flags ...string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{stdout: new(testkit.Buffer), stderr: new(testkit.Buffer), client: client}
	done := make(chan error, 1)
	args := append([]string{"tether", "serve", "--addr", "127.0.0.1:0", "--data", data}, flags...)
	go func() {
		done <- run(ctx, args, func(string) string { return "" }, strings.NewReader(""), s.stdout, s.stderr)
	}()
	s.stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("tether serve: %v", err)
		}
	})
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for s.url == "" {
		select {
		case err := <-done:
			done <- err // for stop, which the cleanup calls: else it waits forever
			t.Fatalf("tether serve ended before listening: %v\n%s", err, s.stderr)
		case <-tick.C:
			if m := listeningRE.FindStringSubmatch(s.stderr.String()); m != nil {
				s.url = m[1]
			}
		}
	}
	// The listener is open: this waits for the server to serve.
	if res := s.do(t, "GET", "/healthz", "", nil); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: got %s, want 200", res.Status)
	}
	return s
}

// do makes a request of the server, with a JSON body if body isn't empty,
// and returns the response with its body read.
func (s *testServer) do(t *testing.T, method, path, body string, cookie *http.Cookie) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != nil {
		// By hand: a cookie jar keeps a Secure __Host- cookie away from
		// http://127.0.0.1.
		req.AddCookie(cookie)
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		t.Fatal(err)
	}
	return res
}

var setupRE = regexp.MustCompile(`^setup: open (http://127\.0\.0\.1:\d+)(/setup\?token=([A-Za-z0-9_-]{43})) within 1h to create the first admin\n$`)

// PW-08: no default account; an empty database gets one setup link, printed
// once on stdout and never logged, and none once a user exists.
func TestServePW08_SetupLinkOnlyOnEmptyDatabase(t *testing.T) {
	data := dbPath(t)
	s := startServe(t, data)
	out := s.stdout.String()
	m := setupRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("got stdout %q, want one setup line matching %s", out, setupRE)
	}
	if m[1] != s.url {
		t.Errorf("setup link on %s, want the listening address %s", m[1], s.url)
	}
	if strings.Contains(s.stderr.String(), m[3]) {
		t.Errorf("the setup token is in the logs:\n%s", s.stderr)
	}
	if res := s.do(t, "GET", m[2], "", nil); res.StatusCode != http.StatusOK {
		t.Errorf("GET the setup link: got %s, want 200", res.Status)
	}
	if res := s.do(t, "GET", "/setup?token=wrong", "", nil); res.StatusCode == http.StatusOK {
		t.Errorf("GET /setup with a wrong token: got %s, want an error", res.Status)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("stopping: %v", err)
	}
	if _, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://")); err == nil {
		t.Errorf("still listening on %s after stopping", s.url)
	}

	mustTether(t, data, alicePassword, "user", "add", "alice", "--admin", "--password-stdin")
	again := startServe(t, data)
	if out := again.stdout.String(); out != "" {
		t.Errorf("with a user: got stdout %q, want nothing", out)
	}
	if res := again.do(t, "GET", m[2], "", nil); res.StatusCode == http.StatusOK {
		t.Errorf("GET the old setup link: got %s, want an error", res.Status)
	}
}

// MISC-06: serve warns at start when other users can read the data file,
// and leaves its mode alone; a file it creates gets no warning.
func TestServeMISC06_WarnsOfReadableDataFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("permission bits don't say who may read a file on Windows")
	}
	const warning = "data file permissions"
	fresh := startServe(t, dbPath(t))
	if strings.Contains(fresh.stderr.String(), warning) {
		t.Errorf("a data file serve created: got a warning, want none:\n%s", fresh.stderr)
	}

	data := dbPath(t)
	if err := os.WriteFile(data, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(data, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	s := startServe(t, data)
	logs := s.stderr.String()
	if !strings.Contains(logs, warning) || !strings.Contains(logs, data+" has mode 0644") {
		t.Errorf("a 0644 data file: got logs\n%s\nwant a warning %q naming it", logs, warning)
	}
	fi, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o644 {
		t.Errorf("the data file's mode after serve started: got %04o, want 0644 left alone", got)
	}
}

// MISC-03: headers are capped.
func TestServeMISC03_HeaderCap(t *testing.T) {
	s := startServe(t, dbPath(t))
	req, err := http.NewRequestWithContext(t.Context(), "GET", s.url+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Big", strings.Repeat("x", 2*maxHeaderBytes+4096))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("got %s, want 431", res.Status)
	}
}

// SES-10: tether user disable and tether sessions revoke, run in a process
// of their own while a server serves the same file, sign the user out of
// that server within the sqlite store's bound (1 s).
func TestServeSES10_CommandsSignOutOfRunningServer(t *testing.T) {
	data := dbPath(t)
	s := startServe(t, data)
	tests := []struct {
		user       string
		args       []string
		wantSignIn int // status of a new sign-in afterwards
	}{
		{"alice", []string{"user", "disable", "alice"}, http.StatusForbidden}, // invalid_credentials
		{"bob", []string{"sessions", "revoke", "bob"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			mustTether(t, data, alicePassword, "user", "add", tt.user, "--password-stdin")
			login := `{"username":"` + tt.user + `","password":"` + alicePassword + `"}`
			cookie := s.signIn(t, login)
			if res := s.do(t, "GET", "/api/v1/me", "", cookie); res.StatusCode != http.StatusOK {
				t.Fatalf("GET /api/v1/me signed in: got %s, want 200", res.Status)
			}

			args := append(tt.args, "--data", data)
			if out, err := tetherProcess(t, args...).CombinedOutput(); err != nil {
				t.Fatalf("tether %q: %v\n%s", args, err, out)
			}
			s.expectSignedOut(t, cookie, time.Second)
			if res := s.do(t, "POST", "/api/v1/login", login, nil); res.StatusCode != tt.wantSignIn {
				t.Errorf("sign in again: got %s, want %d", res.Status, tt.wantSignIn)
			}
		})
	}
}

// expectSignedOut fails t unless the server refuses cookie within bound,
// the session store's documented bound on hearing of another process's
// revocation, which has just returned: until then it may still answer 200.
func (s *testServer) expectSignedOut(t *testing.T, cookie *http.Cookie, bound time.Duration) {
	t.Helper()
	done := time.Now()
	for {
		res := s.do(t, "GET", "/api/v1/me", "", cookie)
		if res.StatusCode == http.StatusUnauthorized {
			t.Logf("signed out %v after the command returned", time.Since(done))
			return
		}
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/v1/me: got %s, want 200 or 401", res.Status)
		}
		if time.Since(done) > bound {
			t.Fatalf("still signed in %v after the command returned, want signed out within %v", time.Since(done), bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// signIn signs in through the JSON API and returns the session cookie.
func (s *testServer) signIn(t *testing.T, login string) *http.Cookie {
	t.Helper()
	res := s.do(t, "POST", "/api/v1/login", login, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("sign in: got %s, want 200", res.Status)
	}
	for _, c := range res.Cookies() {
		if c.Name == "__Host-tether" {
			return c
		}
	}
	t.Fatalf("sign in: got cookies %v, want __Host-tether", res.Cookies())
	return nil
}

// MISC-07: the real server refuses a request for a foreign Host (a page on
// evil.example rebound to 127.0.0.1) with 421, whatever the port, and
// answers for its own hosts; health checks answer any Host.
func TestServeMISC07_ForeignHostRefused(t *testing.T) {
	data := dbPath(t)
	s := startServe(t, data)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	public := startServe(t, dbPath(t), "--hosts", "auth.example.com")
	tests := []struct {
		s          *testServer
		host, path string
		want       int
		wantType   string // of a 421
	}{
		{s, "evil.example:" + port, "/login", http.StatusMisdirectedRequest, "text/plain; charset=utf-8"},
		{s, "evil.example:" + port, "/api/v1/me", http.StatusMisdirectedRequest, "application/json"},
		{s, "evil.example", "/", http.StatusMisdirectedRequest, "text/plain; charset=utf-8"},
		{s, "localhost:" + port, "/login", http.StatusOK, ""},
		{s, "evil.example:" + port, "/healthz", http.StatusOK, ""},
		{s, "evil.example:" + port, "/readyz", http.StatusOK, ""},
		{public, "auth.example.com", "/login", http.StatusOK, ""},
		{public, "Auth.Example.com:443", "/login", http.StatusOK, ""},
		{public, "127.0.0.1:" + port, "/login", http.StatusMisdirectedRequest, "text/plain; charset=utf-8"},
		{public, "evil.example:" + port, "/api/v1/me", http.StatusMisdirectedRequest, "application/json"},
	}
	for _, tt := range tests {
		req, err := http.NewRequestWithContext(t.Context(), "GET", tt.s.url+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tt.host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tt.want {
			t.Errorf("GET %s, Host %s: got %s, want %d", tt.path, tt.host, res.Status, tt.want)
		}
		if tt.want == http.StatusMisdirectedRequest {
			if ct := res.Header.Get("Content-Type"); ct != tt.wantType {
				t.Errorf("GET %s, Host %s: Content-Type %q, want %q", tt.path, tt.host, ct, tt.wantType)
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s, Host %s: no security headers", tt.path, tt.host)
			}
		}
	}
	// The setup link goes to the public name, which tether answers for.
	if out, want := public.stdout.String(), "setup: open /setup?token="; !strings.HasPrefix(out, want) || !strings.HasSuffix(out, " on auth.example.com within 1h to create the first admin\n") {
		t.Errorf("with --hosts auth.example.com: setup line %q, want %q... on auth.example.com", out, want)
	}
}

// MISC-07: listening beyond loopback without --hosts, serve refuses to
// start, and says to name the hosts.
func TestServeMISC07_HostsNeededBeyondLoopback(t *testing.T) {
	var stdout, stderr testkit.Buffer
	err := run(t.Context(), []string{"tether", "serve", "--addr", "0.0.0.0:0", "--data", dbPath(t)},
		func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
	var uerr usageError
	if !errors.As(err, &uerr) || !strings.Contains(err.Error(), "--hosts (TETHER_HOSTS) empty, and --addr 0.0.0.0:0 listens beyond loopback") {
		t.Fatalf("got %v, want a usage error naming --hosts", err)
	}
	if strings.Contains(stderr.String(), "listening on") {
		t.Errorf("it listened:\n%s", stderr.String())
	}
}
