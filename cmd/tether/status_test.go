package main

import (
	"context"
	"errors"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/pgtest"
	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/session"
)

// statusLine matches one check's line of tether status: name, verdict,
// what it found, and how long it took.
var statusLine = regexp.MustCompile(`^(\w+) +(ok|FAIL) +(.*) \((\d[\d.]*(?:µs|ms|s|ns))\)$`)

// runStatus runs tether status with args and returns each check's verdict
// and text by name, failing t unless every line but the last is a check
// and the last is the verdict that matches the error.
func runStatus(t *testing.T, args ...string) (map[string][2]string, error) {
	t.Helper()
	out, err := tether(t.Context(), t, "", "", append([]string{"status"}, args...)...)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	checks := map[string][2]string{}
	for _, line := range lines[:len(lines)-1] {
		m := statusLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %q is not a check: %s\n%s", line, statusLine, out)
		}
		checks[m[1]] = [2]string{m[2], m[3]}
	}
	last := lines[len(lines)-1]
	if healthy := last == "status    ok   healthy"; healthy != (err == nil) || !healthy && !strings.HasPrefix(last, "status    FAIL unhealthy: ") {
		t.Fatalf("last line %q with error %v:\n%s", last, err, out)
	}
	if err != nil && (!errors.Is(err, errUnhealthy) || exitCode(err, new(testkit.Buffer)) != 1) {
		t.Errorf("error %v: want errUnhealthy, exit status 1", err)
	}
	return checks, err
}

// wantHealthy runs tether status with args and fails t unless every
// check passes.
func wantHealthy(t *testing.T, args ...string) map[string][2]string {
	t.Helper()
	checks, err := runStatus(t, args...)
	if err != nil {
		t.Fatalf("status %q: %v, %v", args, err, checks)
	}
	for _, name := range []string{"open", "accounts", "sessions", "feed", "server", "keys", "counts"} {
		if checks[name][0] != "ok" {
			t.Errorf("status %q: %s: %v, want ok", args, name, checks[name])
		}
	}
	return checks
}

// wantUnhealthy runs tether status with args and fails t unless the check
// called name fails saying want.
func wantUnhealthy(t *testing.T, name, want string, args ...string) {
	t.Helper()
	checks, err := runStatus(t, args...)
	if err == nil || checks[name][0] != "FAIL" || !strings.Contains(checks[name][1], want) || !strings.Contains(err.Error(), name) {
		t.Errorf("status %q: got %v, %s: %v; want %s failing with %q", args, err, name, checks[name], name, want)
	}
}

// tether status on the embedded default: a database without a signing
// key is unhealthy (keys); with one, every check passes and the counts
// are what the stores hold; a database that isn't there is unhealthy
// (open), and status creates none (ADM-01).
func TestStatusSQLite(t *testing.T) {
	data := initDB(t)
	wantUnhealthy(t, "keys", "no key signs", "--data", data)

	mustTether(t, data, "", "keys", "rotate")
	mustTether(t, data, alicePassword, "user", "add", "alice", "--password-stdin")
	mustTether(t, data, alicePassword, "user", "add", "bob", "--password-stdin")
	mustTether(t, data, "", "user", "disable", "bob")
	mustTether(t, data, "", "client", "add", "ci", "--scopes", "deploy", "--audience", "api://x")
	addPAT(t, data, "alice", "laptop")
	signIn(t, newManager(t, data), data, "alice", session.Meta{})
	checks := wantHealthy(t, "--data", data)
	if got, want := checks["counts"][1], "users 2 (1 disabled), sessions 1, clients 1 (0 disabled), personal access tokens 1, revoked access tokens 0"; got != want {
		t.Errorf("counts: got %q, want %q", got, want)
	}
	if !strings.HasPrefix(checks["feed"][1], "connected in ") {
		t.Errorf("feed: %q", checks["feed"][1])
	}
	if !strings.Contains(checks["keys"][1], "next rotation: a new key signs from ") {
		t.Errorf("keys: %q", checks["keys"][1])
	}

	missing := dbPath(t)
	wantUnhealthy(t, "open", "no database at", "--data", missing)
	if _, err := tether(t.Context(), t, "", "", "user", "list", "--data", missing); err == nil {
		t.Error("status created the database it was pointed at")
	}
}

// The counts of a deployment too large to count user by user in time:
// the users not reached are left out, the line says so, and the check
// passes (a healthy deployment is not reported unhealthy for its size);
// with time enough, everything is counted.
func TestStatusCountsStopInTime(t *testing.T) {
	data := initDB(t)
	for _, name := range []string{"alice", "bob"} {
		mustTether(t, data, alicePassword, "user", "add", name, "--password-stdin")
		signIn(t, newManager(t, data), data, name, session.Meta{})
	}
	addPAT(t, data, "alice", "laptop")
	st, err := openStores(t.Context(), config{Data: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tt := range []struct {
		perUser time.Duration
		want    string
	}{
		{0, "users 2 (0 disabled), sessions 0 and personal access tokens 0 of the first 0 users (counting stopped after 0s; the rest are not counted), clients 0 (0 disabled), revoked access tokens 0"},
		{time.Minute, "users 2 (0 disabled), sessions 2, clients 0 (0 disabled), personal access tokens 1, revoked access tokens 0"},
	} {
		got, err := countAll(t.Context(), st, time.Now(), tt.perUser)
		if err != nil || got != tt.want {
			t.Errorf("counting for %v: got %q, %v; want %q", tt.perUser, got, err, tt.want)
		}
	}
}

// tether status with sessions in Redis (the shared one, under a prefix
// of the test's own), then in a Redis of the test's own that stops: the
// sessions (or the stores' opening) fail, and status says so.
func TestStatusRedis(t *testing.T) {
	prefix, _ := sharedRedisPrefix(t)
	flags := []string{"--sessions", "redis://" + sharedRedis + "/0", "--redis-prefix", prefix}
	data := initDB(t, flags...)
	mustTether(t, data, "", append([]string{"keys", "rotate"}, flags...)...)
	wantHealthy(t, append(flags, "--data", data)...)

	addr, redis := startRedis(t)
	flags = []string{"--sessions", "redis://" + addr + "/0"}
	data = initDB(t, flags...)
	mustTether(t, data, "", append([]string{"keys", "rotate"}, flags...)...)
	wantHealthy(t, append(flags, "--data", data)...)
	// MISC-05: a Redis that takes connections and never answers (SIGSTOP)
	// is reported once the check's deadline has passed, not waited for.
	if err := redis.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	wantUnhealthy(t, "open", "sessions", append(flags, "--data", data)...)
	if err := redis.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := redis.Kill(); err != nil {
		t.Fatal(err)
	}
	wantUnhealthy(t, "open", "sessions", append(flags, "--data", data)...)
}

// tether status with the accounts in PostgreSQL, in a schema of the
// test's own; then with a URL where no PostgreSQL listens.
func TestStatusPostgres(t *testing.T) {
	pool, err := pgtest.Schema(t)()
	if err != nil {
		t.Fatal(err)
	}
	pg := pgtest.URL(t, pool)
	flags := []string{"--accounts", pg, "--sessions", pg}
	data := initDB(t, flags...)
	mustTether(t, data, "", append([]string{"keys", "rotate"}, flags...)...)
	wantHealthy(t, append(flags, "--data", data)...)

	u, err := url.Parse(pg)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = "127.0.0.1:1"
	wantUnhealthy(t, "open", "accounts", "--accounts", u.String(), "--sessions", u.String(), "--data", data)
}

// KEY-02: the keys line of tether status: the key that signs, the next
// rotation (a key waiting, or the schedule's date, or by hand only), the
// retired keys; a ring with no key that signs, or whose rotation is
// overdue past a cache lifetime, fails.
func TestKEY02_StatusDescribesRing(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	const month, cache = 720 * time.Hour, 15 * time.Minute
	signing := keys.Info{Kid: "A", Alg: "EdDSA", State: keys.Signing, SignFrom: now.Add(-48 * time.Hour)}
	// scheduled is when keys.Describe says the schedule adds the key
	// that replaces signing, rotating every every: a cache lifetime
	// before the new key signs.
	scheduled := func(every time.Duration) time.Time { return signing.SignFrom.Add(every - cache) }
	tests := []struct {
		name        string
		list        []keys.Info
		rotateEvery time.Duration
		want        string // in the line, or the error
		wantErr     bool
	}{
		{"empty", nil, month, "no key signs", true},
		{"only removed", []keys.Info{{Kid: "Z", State: keys.Removed}}, month, "no key signs", true},
		{"scheduled", []keys.Info{signing}, month, "signing key A (EdDSA), signing for 48h0m0s; next rotation: a new key signs from 2026-06-29T12:00:00Z, published 15m0s before; retired: none; removed: 0", false},
		{"by hand", []keys.Info{signing}, 0, "next rotation: only by tether keys rotate", false},
		{"pending", []keys.Info{signing, {Kid: "B", State: keys.Pending, SignFrom: now.Add(cache)}}, month, "next rotation: B signs from 2026-06-01T12:15:00Z", false},
		{"retired", []keys.Info{{Kid: "R", State: keys.Retired, RemoveAt: now.Add(time.Hour)}, {Kid: "Z", State: keys.Removed}, signing}, month, "retired: R published until 2026-06-01T13:00:00Z; removed: 1", false},
		{"due, within a cache lifetime", []keys.Info{signing}, 48*time.Hour - cache, "next rotation: a new key signs from 2026-06-01T11:45:00Z", false},
		{"overdue", []keys.Info{signing}, 48*time.Hour - cache - time.Second, "should have been replaced at 2026-06-01T11:44:59Z", true},
	}
	for _, tt := range tests {
		d := keys.Description{Keys: tt.list, Now: now, CacheLifetime: cache}
		waiting := slices.ContainsFunc(tt.list, func(k keys.Info) bool { return k.State == keys.Pending })
		if tt.rotateEvery > 0 && !waiting { // else the schedule adds none
			d.NextRotation = scheduled(tt.rotateEvery)
		}
		got, err := describeRing(d, tt.rotateEvery)
		if err != nil {
			got = err.Error()
		}
		if (err != nil) != tt.wantErr || !strings.Contains(got, tt.want) {
			t.Errorf("%s: got %q, %v; want %q (error: %v)", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

// KEY-04: status describes a sealed ring from its records, without the
// master key: a monitor that runs it is not given the key, and a healthy
// sealed deployment is reported healthy.
func TestKEY04_StatusNeedsNoMasterKey(t *testing.T) {
	data := initDB(t)
	withKey := map[string]string{keys.MasterKeyEnv: keys.NewMasterKey()}
	runSteps(t, data, []step{
		{name: "rotate sealed", env: withKey, args: []string{"keys", "rotate"}, want: "added key "},
		{name: "list sealed", env: withKey, args: []string{"keys", "list"}, want: "signing  true"},
	})
	checks := wantHealthy(t, "--data", data)
	if !strings.Contains(checks["keys"][1], "signing key ") {
		t.Errorf("keys: %q", checks["keys"][1])
	}
}

// MISC-05: a check that needs a store whose check failed (one that
// fails, or hangs past its deadline) is not run, so not waited for: it
// fails as skipped, naming the check it needed; the others still run.
func TestStatusSkipsChecksOfFailedStores(t *testing.T) {
	var out strings.Builder
	r := &statusReport{w: &out}
	ran := map[string]bool{}
	do := func(name string, err error) func(context.Context) (string, error) {
		return func(context.Context) (string, error) { ran[name] = true; return "found", err }
	}
	r.check(t.Context(), "accounts", nil, do("accounts", errors.New("unreachable: deadline exceeded")))
	r.check(t.Context(), "sessions", nil, do("sessions", nil))
	r.check(t.Context(), "feed", []string{"sessions"}, do("feed", nil))
	r.check(t.Context(), "server", []string{"accounts"}, do("server", nil))
	r.check(t.Context(), "counts", []string{"accounts", "sessions"}, do("counts", nil))
	err := r.err()
	if want := map[string]bool{"accounts": true, "sessions": true, "feed": true}; !maps.Equal(ran, want) {
		t.Errorf("ran %v, want %v", ran, want)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	for i, want := range []string{"FAIL unreachable", "ok   found", "ok   found", "FAIL skipped: the accounts check failed", "FAIL skipped: the accounts check failed"} {
		if m := statusLine.FindStringSubmatch(lines[i]); m == nil || !strings.Contains(lines[i], want) {
			t.Errorf("line %q: want a check line with %q", lines[i], want)
		}
	}
	if !errors.Is(err, errUnhealthy) || lines[len(lines)-1] != "status    FAIL unhealthy: accounts, server, counts" {
		t.Errorf("got %v, last line %q; want unhealthy: accounts, server, counts", err, lines[len(lines)-1])
	}
}
