// Package chaos is tether's fault suite: each test is a scenario that
// starts real `tether serve` processes built from this tree (and Redis
// and PostgreSQL processes of its own, on free ports of 127.0.0.1), puts
// them under a bounded load of simulated clients, injects faults (kill -9, SIGSTOP, a
// TCP proxy of storetest/faultnet that refuses connections or drops every
// byte, data destroyed or truncated), and keeps a ledger of what the
// clients were told. Every answer is checked against the ledger as it
// arrives, and every session of the ledger once the faults are over,
// through the API:
//
//   - I1 no revoked session is accepted after its revocation was
//     acknowledged, but within the scenario's stated staleness bound,
//     which is measured;
//   - I2 no session whose creation was acknowledged disappears before its
//     timeouts, unless the store's data was really destroyed;
//   - I3 no request is answered as signed in without a valid session; a
//     failing store gives 503 within its deadline, never 500, never a hang;
//   - I4 no crash, no goroutine leak (a node's goroutines, from the Go
//     runtime's SIGQUIT dump, fresh and after the scenario), memory
//     bounded.
//
// Machine tokens share the ledger (tokens_test.go): in the scenarios that
// call enableTokens, each worker also has an OAuth client that gets,
// revokes and checks tokens, by introspection on the nodes and with a
// remote verifier in the test process (token.Verifier and a
// token.RevocationStream following one node's stream), under the same
// invariants: a revoked token refused by the nodes within --max-staleness
// and by the remote verifier within that plus its MaxStaleness (past
// which, cut off from its stream, it fails closed), no acknowledged
// revocation undone, no 500. They are added to scenarios rather than
// given their own, so that the suite's run time grows by seconds: probes
// of ten revocations time the revocation-to-refusal delays.
//
// Each scenario reports its figures (acknowledged actions, faults,
// refused, lost, staleness, recovery time, 503s, p99); with
// TETHER_CHAOS_REPORT=FILE the run writes them as Markdown to FILE, which
// is how docs/reliability.md is made:
//
//	go test ./e2e/chaos -v                                                 # skips what needs a missing redis-server or PostgreSQL
//	TETHER_TEST_REQUIRE_SERVICES=1 go test ./e2e/chaos                     # fails instead
//	TETHER_CHAOS_REPORT=$PWD/docs/reliability.md go test ./e2e/chaos -v    # the report
//
// A Redis failover under Sentinel is e2e/failover's test, not repeated
// here; clock jumps are TestSES07_ClockJumps in internal/server, where the
// clock can be injected. Set TETHER_E2E_KEEP=1 to keep the processes'
// logs and data.
package chaos
