// Package failover holds tether's end-to-end test of a Redis failover
// under Sentinel: a primary, one replica and three Sentinels (quorum 2,
// down-after-milliseconds 1000, failover-timeout 5000, parallel-syncs 1),
// all started by the test on free ports of 127.0.0.1 with their data in
// the run's directory (appendonly yes), a fresh PostgreSQL schema for the
// accounts (see internal/testkit), and two `tether serve` nodes built from
// this tree with --redis-min-replicas 1, following the Sentinels.
//
// Four signers (one user each) sign in on both nodes in turn, check each
// new session on the other node, and revoke some of their sessions (by
// signing them out, or by DELETE /api/v1/sessions/{id} from another
// session of the user), checking each at once on both nodes; two checkers
// check every session in turn (GET /api/v1/me) on both nodes. Under that
// bounded load the test kills the primary (SIGKILL) and shows, printing
// the counts and the delays, that:
//
//   - Sentinel promotes the replica, and the nodes follow: session checks
//     are answered again (200 or 401, as right) within Sentinel's failover
//     timeout of its switch, before any replica is back;
//   - with --redis-min-replicas 1, sign-ins and revocations need a replica
//     of the new primary: until there is one they answer 503 (the store's
//     ErrNotReplicated, which the test waits to see logged by both
//     nodes); then the test restarts the old primary, on its port and with
//     its data, as a replica of the new one (as an operator would), and
//     sign-ins work again once it has synced;
//   - every session whose sign-in was answered 200 and that the test did
//     not revoke is accepted by both nodes after the failover;
//   - no acknowledged revocation is lost: every session whose revocation
//     was answered 204 is refused (401) by both nodes after the failover,
//     and by every check sent after the acknowledgement during the load,
//     with one allowance: the node that did not acknowledge it learns of
//     it through Redis's pub/sub (the store's invalidation feed, see
//     store/redis), so until the signer has seen that node refuse it, that
//     node may still accept it. Those answers are counted and printed,
//     with how long after the acknowledgement the last one came;
//   - requests get 503 in the failover window, never 500 and never a wrong
//     answer; requests answered before the kill, or sent once both nodes
//     have answered a check and a sign-in again, never get 503.
//
// A revocation answered 503 may or may not have happened, and so may a
// sign-out answered 202 (its session's end pending until the store
// answers): once the failover has settled, the test signs such a session out again, as a
// client should, and then checks that it is refused.
//
// The package has only tests:
//
//	go test ./e2e/failover -v                                  # skips without redis-server or PostgreSQL
//	TETHER_TEST_REQUIRE_SERVICES=1 go test ./e2e/failover -v   # fails without them
//
// Set TETHER_E2E_KEEP=1 to keep the run's directory (the processes' logs,
// the Sentinels' configuration, Redis's data, and load.log, every request
// of the load with its answer); it is always kept when the test fails.
// TETHER_E2E_SERVER_RACE=1 builds the tether binary with -race.
package failover
