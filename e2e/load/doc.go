// Package load holds tether's load benchmark (issue 4, "Speed"): one
// `tether serve` node built from this tree (without -race), its sessions
// in a redis-server the benchmark starts itself on a free port of
// 127.0.0.1, its accounts in the default SQLite file, loaded with wrk
// (Debian's package) at the concurrency of the yardsticks in
// ../shared/bench-anchors: two threads, 32 connections.
//
// BenchmarkServeAuthenticated signs in once, then runs wrk for 10 s
// against GET /healthz and for 10 s against GET /api/v1/me with the
// session cookie, in alternating slices of 2 s, and reports the requests
// per second of each and their ratio, the figure issue 4 asks to be at
// least 85%. BenchmarkTokenEndpoint does the same with POST /oauth2/token
// (a machine client's client credentials grant, issue 11) in place of
// /api/v1/me, over 16 connections.
//
// The forward-auth benchmarks (issue 12) load over 64 connections:
// BenchmarkServeForwardAuth, GET /auth/verify with the session cookie
// beside the same node's /healthz (target: at least 90%);
// BenchmarkServeForwardAuthVsJWT, the same beside the yardsticks'
// cmd/authsrv verifying a golang-jwt HS256 token (target: at least 150%;
// it skips without ../shared/bench-anchors, or TETHER_BENCH_ANCHORS);
// BenchmarkNginxForwardAuth, examples/nginx/forward-auth.conf.tmpl in
// front of examples/upstream beside an nginx serving the same upstream
// without asking (testdata/plain.conf.tmpl). No benchmark asserts a
// figure. The package has no test, so
// `go test ./...` spends no time on it:
//
//	go test -run '^$' -bench . -count 6 ./e2e/load | tee load.txt
//	benchstat load.txt
//
// It skips without wrk or redis-server (apt-get install -y wrk
// redis-server; and nginx for BenchmarkNginxForwardAuth), or fails instead when TETHER_TEST_REQUIRE_SERVICES=1.
// Everything runs on this machine, so wrk, tether and Redis share its
// CPUs: quote the ratio, which both halves of a run pay alike, and its
// median over several runs, not one run's requests per second.
//
// BenchmarkServeForwardAuthVsJWT compares two servers, not two endpoints
// of one, so it runs them on one half of the CPUs and wrk on the other
// (taskset, when there are two CPUs or more; see placement): what it
// measures is then what each server's handling costs, not that plus
// wrk's own share of the same CPUs, which is the same for both servers
// and squeezes their ratio towards 1.
package load
