// Package machines holds the end-to-end tests of tether's machine tokens
// whose other side nobody here wrote (issue 11): a real `tether serve`
// built from this tree, its clients added with the tether command, and
// on the other side of each token a client or verifier that is not
// tether's own code, all on 127.0.0.1.
//
//   - TestClientCredentials: a client of golang.org/x/oauth2/clientcredentials
//     finds the token endpoint in tether's RFC 8414 metadata, gets tokens
//     and calls ../../examples/resource-server, run as a process, which
//     answers the caller's identity and scopes (403 without the route's
//     scope, 401 for a token it can't trust).
//   - TestRevocationReachesResourceServer: 200 tokens revoked at tether's
//     /oauth2/revoke, each refused by the resource server (which follows
//     GET /oauth2/revocations) a few milliseconds later: the p50, p99 and
//     worst of the delay from /oauth2/revoke's answer to the first refusal
//     (issue 11's target for the p99: under 100 ms on loopback); then
//     `tether client disable`, another process, whose revocation reaches
//     tether through its store's feed. It runs with tether's sessions in
//     its SQLite file and in a redis-server of the test's own.
//   - TestStreamCut: tether killed, the resource server refuses every
//     token (503) once the stream has been silent for its -max-staleness,
//     and accepts them again by itself when tether is back.
//   - TestStopWithFollower: tether stopped with SIGTERM while a resource
//     server follows its stream exits cleanly.
//   - TestJoseVerifies: Node's jose package from the npm registry
//     (testdata/package.json pins it; npm ci installs it into the run's
//     directory, never into the tree) verifies tether's tokens from the
//     JWKS URL, and refuses them once `tether keys retire KID --now` has
//     taken their key out of the JWKS.
//
// The tests log their figures (go test -v); with TETHER_MACHINES_REPORT=FILE
// they also write them as Markdown to FILE, which is how docs/machines.md
// is made:
//
//	go test ./e2e/machines -v                                      # skips without node and npm, or redis-server
//	TETHER_MACHINES_REPORT=$PWD/docs/machines.md go test ./e2e/machines -v
//	TETHER_TEST_REQUIRE_SERVICES=1 go test ./e2e/machines          # fails without them (CI)
//
// Every process keeps its log in the run's directory; set TETHER_E2E_KEEP=1
// to keep it (it is always kept when a test fails). Tether's accounts and
// keys are in its default SQLite file. The tests skip with -short.
package machines
