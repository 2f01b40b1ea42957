// Package cluster holds tether's end-to-end test of several nodes behind a
// load balancer: three `tether serve` processes built from this tree,
// sharing a Redis (sessions) and a PostgreSQL schema (accounts), with
// Debian's nginx in front of them, round-robin and without stickiness
// (../../examples/nginx/nginx.conf.tmpl), all on 127.0.0.1.
//
// The test starts every process itself: its own redis-server on a free
// port, with its data in the run's directory (never the machine's shared
// Redis, which it restarts), a fresh PostgreSQL schema (see
// internal/testkit/pgtest), the nodes and nginx. TestCluster shows, through
// nginx, that a setup token in a URL stays out of nginx's access log, that
// requests spread over the nodes, that a password change or a
// revoked device is refused by every node on its next request (and prints
// how long after the acknowledgement), that a node can be stopped and
// started without a failed request, what a Redis restart does with and
// without its data, and that a request for a foreign Host is refused
// through nginx (MISC-07). TestClusterSessionsInPostgres shows the same but the
// Redis restart with the sessions in the PostgreSQL schema too
// (--sessions postgres://...), revocations travelling by LISTEN/NOTIFY.
// TestPW06_ThrottleSharedAcrossNodes shows the sign-in throttle the nodes
// share in that schema: one account's counter tripped by wrong passwords
// spread over the nodes, an untrusted peer's rotating X-Forwarded-For
// counted under its own address, the owner signed in after the delay, and
// throttled, wrong-password and unknown-user sign-ins answered alike, with
// their times logged (PW-05, PW-06).
//
// The package has only tests:
//
//	go test ./e2e/cluster -v                                  # skips without nginx, redis-server or PostgreSQL
//	TETHER_TEST_REQUIRE_SERVICES=1 go test ./e2e/cluster -v   # fails without them
//
// Set TETHER_E2E_KEEP=1 to keep the run's directory (the processes' logs,
// nginx's configuration, Redis's data); it is always kept when the test
// fails. TETHER_E2E_SERVER_RACE=1 builds the tether binary with -race.
package cluster
