package load

import (
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tetherauth/tether/e2e/internal/proxy"
	"github.com/tetherauth/tether/e2e/internal/web"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/proc"
)

// The forward-auth benchmarks (issue 12, "Speed") load over 64
// connections, as the issue asks.
const forwardConnections = 64

// forwardTimeout is how long wrk waits for an answer before it counts a
// socket timeout (which fails the benchmark), instead of its default 2 s:
// on the shared machine, with wrk, tether, Redis, two nginx and the
// upstream on 2 cores, a request now and then took longer than 2 s in the
// nginx benchmark's plain half.
const forwardTimeout = "10s"

// runForward is runWrk over forwardConnections with forwardTimeout.
func runForward(b *testing.B, w wrk, url string, extra ...string) load {
	b.Helper()
	return runWrk(b, w, forwardConnections, url, append([]string{"--timeout", forwardTimeout}, extra...)...)
}

// verifyPath is tether's forward-auth check.
const verifyPath = "/auth/verify"

// BenchmarkServeForwardAuth loads the node of BenchmarkServeAuthenticated
// with wrk over 64 connections: 10 s of GET /healthz and 10 s of GET
// /auth/verify with the session cookie, in alternating slices of 2 s. It
// reports the requests per second of each, and the second as a
// percentage of the first (issue 12's target: at least 90).
func BenchmarkServeForwardAuth(b *testing.B) {
	w, n := startLoad(b)
	cookie := "Cookie: " + web.CookieName + "=" + n.cookie
	floor, verify := side{name: "healthz", what: "GET " + floorPath}, side{name: "verify", what: "GET " + verifyPath + " (session)"}
	rounds := alternate(b, func() { floor.add(runForward(b, w, n.url+floorPath)) }, func() {
		verify.add(runForward(b, w, n.url+verifyPath, "-H", cookie))
	})
	n.client.Must(b, http.StatusOK, "GET", n.url+verifyPath, n.device, nil) // the session lasted
	reportRates(b, rounds, floor, verify)
}

// AnchorsEnv names the directory of the yardsticks' module
// (../shared/bench-anchors); by default it is found beside this
// repository's directory.
const AnchorsEnv = "TETHER_BENCH_ANCHORS"

// BenchmarkServeForwardAuthVsJWT loads the same node's GET /auth/verify
// with the session cookie, and the yardstick's bare handler that verifies
// a golang-jwt HS256 token (cmd/authsrv of ../shared/bench-anchors, its
// /jwt), in alternating slices, over 64 connections. It reports the
// requests per second of each, and tether's as a percentage of the
// yardstick's (issue 12's target: at least 150); beside them, the
// yardstick's /noop, a handler that checks nothing, and both as a
// percentage of it. It skips without the yardsticks' module.
func BenchmarkServeForwardAuthVsJWT(b *testing.B) {
	place := pinned(b)
	w, n := startPlaced(b, place)
	jwtURL, jwt := startAuthsrv(b, n.redis, place)
	cookie := "Cookie: " + web.CookieName + "=" + n.cookie
	floor, verify := side{name: "jwt", what: "GET /jwt (golang-jwt HS256, bench-anchors)"}, side{name: "verify", what: "GET " + verifyPath + " (session)"}
	noop := side{name: "noop", what: "GET /noop (bench-anchors, no check)"}
	rounds := alternate(b, func() {
		floor.add(runForward(b, w, jwtURL, "-H", "Authorization: Bearer "+jwt))
		noop.add(runForward(b, w, strings.TrimSuffix(jwtURL, "/jwt")+"/noop"))
	}, func() {
		verify.add(runForward(b, w, n.url+verifyPath, "-H", cookie))
	})
	reportRates(b, rounds, floor, verify)
	// The ceiling of any net/http handler here: the yardstick's own
	// handler that checks nothing.
	b.Logf("%s %.0f req/s: %s at %.1f%% of it, %s at %.1f%%", noop.what, noop.rate(),
		verify.what, 100*verify.rate()/noop.rate(), floor.what, 100*floor.rate()/noop.rate())
	b.ReportMetric(100*verify.rate()/noop.rate(), "verify-%-of-noop")
}

// startAuthsrv builds and starts the yardsticks' cmd/authsrv on a free
// port, its sessions in the benchmark's own Redis at redisAddr (which it
// fills with 100,000 of them: nothing of the machine's shared Redis), and
// returns the URL of its /jwt and the token it wants.
func startAuthsrv(b *testing.B, redisAddr string, place placement) (string, string) {
	b.Helper()
	dir := os.Getenv(AnchorsEnv)
	if dir == "" {
		dir = "../../../shared/bench-anchors"
	}
	if _, err := os.Stat(filepath.Join(dir, "cmd", "authsrv")); err != nil {
		b.Skipf("skipping: no yardsticks' module at %s (set %s): %v", dir, AnchorsEnv, err)
	}
	run := proc.NewRun(b, "tether-load-authsrv-")
	bin := filepath.Join(run.Dir, "authsrv")
	build := exec.Command("go", "build", "-o", bin, "./cmd/authsrv")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/authsrv in %s: %v\n%s", dir, err, out)
	}
	port, err := testkit.FreePort()
	if err != nil {
		b.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	creds := filepath.Join(run.Dir, "creds.env")
	authsrv, args := place.command(place.server, bin, "-addr", addr, "-redis", redisAddr, "-creds", creds)
	p, err := run.Start("authsrv", authsrv, args...)
	if err != nil {
		b.Fatal(err)
	}
	// It has no handler for SIGTERM, and exits by it with an error the
	// run's cleanup (after this one) would report.
	b.Cleanup(func() { p.Stop() })
	c := web.NewClient(b)
	// /noop answers once it listens, after the credentials are written.
	if err := c.WaitOK(p, "http://"+addr+"/noop"); err != nil {
		b.Fatal(err)
	}
	env, err := os.ReadFile(creds)
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(env)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "JWT="); ok {
			return "http://" + addr + "/jwt", v
		}
	}
	b.Fatalf("authsrv wrote no JWT= to %s", creds)
	return "", ""
}

// BenchmarkNginxForwardAuth loads nginx in front of examples/upstream
// with wrk over 64 connections: 10 s through
// examples/nginx/forward-auth.conf.tmpl with the session cookie (an
// auth_request to the node's /auth/verify on each request), and 10 s
// through a second nginx that serves the same upstream without asking
// (testdata/plain.conf.tmpl), in alternating slices. It reports the
// requests per second of each, and the first as a percentage of the
// second.
func BenchmarkNginxForwardAuth(b *testing.B) {
	w, n := startLoad(b)
	nginxBin := proxy.NeedNginx(b)
	run := proc.NewRun(b, "tether-load-nginx-")
	data := map[string]any{
		"Tether": strings.TrimPrefix(n.url, "http://"), "TetherHost": "127.0.0.1",
		"Upstream": proxy.Upstream(b, run), "Audience": url.QueryEscape("https://app.example.com"),
	}
	guarded := proxy.Nginx(b, run, n.client, nginxBin, "../../examples/nginx/forward-auth.conf.tmpl", data, "/", http.StatusUnauthorized)
	plainRun := proc.NewRun(b, "tether-load-nginx-plain-") // a directory of its own: its own nginx prefix
	plain := proxy.Nginx(b, plainRun, n.client, nginxBin, "testdata/plain.conf.tmpl", data, "/", http.StatusOK)

	cookie := "Cookie: " + web.CookieName + "=" + n.cookie
	floor, verify := side{name: "plain", what: "nginx, no auth"}, side{name: "authrequest", what: "nginx auth_request (session)"}
	rounds := alternate(b, func() { floor.add(runForward(b, w, plain.URL+"/")) }, func() {
		verify.add(runForward(b, w, guarded.URL+"/", "-H", cookie))
	})
	reportRates(b, rounds, floor, verify)
}
