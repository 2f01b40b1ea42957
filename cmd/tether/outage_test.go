package main

import (
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/pgtest"
	"github.com/tetherauth/tether/internal/testkit/proc"
	"github.com/tetherauth/tether/store/sqlite"
	"github.com/tetherauth/tether/storetest/faultnet"
)

// The store timeout the outage tests serve with, and the margin they
// allow past a deadline for a loaded machine (and, for a sign-in, the
// password hash): a fast 503 is one that comes in about the deadline,
// not after the network gives up (7-12 s for a frozen Redis, never for a
// partitioned PostgreSQL).
const (
	outageStoreTimeout = time.Second
	outageMargin       = 1500 * time.Millisecond
)

// unknownCookie is a well-formed session cookie that no store knows: the
// node must ask its store about it.
var unknownCookie = &http.Cookie{Name: "__Host-tether", Value: strings.Repeat("A", 43)}

// expectFast503 makes a request and fails t unless it is answered 503
// with Retry-After within bound.
func (s *testServer) expectFast503(t *testing.T, method, path, body string, cookie *http.Cookie, bound time.Duration) {
	t.Helper()
	start := time.Now()
	res := s.do(t, method, path, body, cookie)
	took := time.Since(start)
	t.Logf("%s %s: %s in %v", method, path, res.Status, took)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Errorf("%s %s: got %s Retry-After %q, want 503 with Retry-After", method, path, res.Status, res.Header.Get("Retry-After"))
	}
	if took > bound {
		t.Errorf("%s %s: answered in %v, want within %v", method, path, took, bound)
	}
}

// expectOutage checks what clients of s see while its stores don't
// answer: a sign-in, a request with a cookie the node must look up, and
// the readiness probe all get a 503 with Retry-After within their
// deadlines, never a hang.
func (s *testServer) expectOutage(t *testing.T) {
	t.Helper()
	s.expectFast503(t, "POST", "/api/v1/login", `{"username":"alice","password":"`+alicePassword+`"}`, nil, outageStoreTimeout+outageMargin)
	s.expectFast503(t, "GET", "/api/v1/me", "", unknownCookie, outageStoreTimeout+outageMargin)
	s.expectFast503(t, "GET", "/readyz", "", nil, 500*time.Millisecond+outageMargin)
}

// waitFor is testkit.WaitFor, logging how long the wait took: how long
// the server took to recover.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	t.Logf("%s: after %v", what, testkit.WaitFor(t, what, ok))
}

// answers reports whether a request is answered with status.
func (s *testServer) answers(t *testing.T, method, path, body string, status int) func() bool {
	return func() bool { return s.do(t, method, path, body, nil).StatusCode == status }
}

// startRedis runs a redis-server of the test's own on a free port, in a
// directory of the test's, with conf on its command line or, if none,
// with nothing saved; it returns its address and process. The test may
// stop (SIGSTOP) it: it is resumed and stopped when the test ends.
func startRedis(t *testing.T, conf ...string) (string, *proc.Proc) {
	t.Helper()
	bin := proc.NeedRedis(t)
	run := proc.NewRun(t, "tether-outage-")
	if len(conf) == 0 {
		conf = []string{"--save", "", "--appendonly", "no"}
	}
	p, addr, err := run.StartRedis("redis", bin, append([]string{"--dir", run.Dir}, conf...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Signal(syscall.SIGCONT) }) // runs before run's cleanup stops it
	return addr, p
}

// MISC-05: a frozen Redis (SIGSTOP: connections stay open, nothing
// answers) fails requests that need it with a 503 in about
// --store-timeout, and /readyz in about its 500 ms; before, each request
// waited 7-12 s.
func TestServeMISC05_FrozenRedisFailsFast(t *testing.T) {
	addr, redis := startRedis(t)
	flags := []string{"--sessions", "redis://" + addr + "/0"}
	data := dbPath(t)
	mustTether(t, data, alicePassword+"\n", append([]string{"user", "add", "alice", "--password-stdin", "--create"}, flags...)...)
	s := startServe(t, data, append(flags, "--store-timeout", outageStoreTimeout.String())...)
	waitFor(t, "a sign-in to succeed", s.answers(t, "POST", "/api/v1/login", `{"username":"alice","password":"`+alicePassword+`"}`, http.StatusOK))

	if err := redis.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	s.expectOutage(t)
	if err := redis.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a sign-in to succeed again", s.answers(t, "POST", "/api/v1/login", `{"username":"alice","password":"`+alicePassword+`"}`, http.StatusOK))
}

// MISC-05: a PostgreSQL cut off by a partition (a blackhole: connections
// stay open, nothing comes back) fails requests that need it with a 503
// in about --store-timeout, and /readyz in about its 500 ms; before, they
// hung as long as the partition lasted.
func TestServeMISC05_BlackholedPostgresFailsFast(t *testing.T) {
	pool, err := pgtest.Schema(t)()
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(pgtest.URL(t, pool))
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := faultnet.Listen(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	u.Host = proxy.Addr()
	flags := []string{"--accounts", u.String(), "--sessions", u.String()}
	data := dbPath(t)
	mustTether(t, data, alicePassword+"\n", append([]string{"user", "add", "alice", "--password-stdin", "--create"}, flags...)...)
	s := startServe(t, data, append(flags, "--store-timeout", outageStoreTimeout.String())...)
	t.Cleanup(func() { proxy.Set(faultnet.Pass) }) // before the server stops: it closes its connections
	waitFor(t, "a sign-in to succeed", s.answers(t, "POST", "/api/v1/login", `{"username":"alice","password":"`+alicePassword+`"}`, http.StatusOK))

	proxy.Set(faultnet.Blackhole)
	s.expectOutage(t)
	proxy.Set(faultnet.Pass)
	waitFor(t, "a sign-in to succeed again", s.answers(t, "POST", "/api/v1/login", `{"username":"alice","password":"`+alicePassword+`"}`, http.StatusOK))
}

// MISC-05, issue 9 point 6: with the --data file's disk full, /readyz
// answers 503 (it writes a row; a ping would pass), and 200 again once
// there is room.
func TestServeMISC05_ReadyzOnAFullDisk(t *testing.T) {
	dir := testkit.SmallDisk(t, 8<<20)
	data := filepath.Join(dir, "tether.db")
	s := startServe(t, data)
	waitFor(t, "/readyz to answer 200 with room to spare", s.answers(t, "GET", "/readyz", "", http.StatusOK))
	db, err := sqlite.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	// An empty WAL, as after a checkpoint: the next write must grow it.
	_, err = db.ExecContext(t.Context(), "PRAGMA wal_checkpoint(TRUNCATE)")
	if err = errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	free := testkit.FillDisk(t, dir)
	s.expectFast503(t, "GET", "/readyz", "", nil, 500*time.Millisecond+outageMargin)
	free()
	waitFor(t, "/readyz to answer 200 once there is room", s.answers(t, "GET", "/readyz", "", http.StatusOK))
}
