// Package forwardauth tests the forward-auth examples end to end (issue
// 12): examples/nginx/forward-auth.conf.tmpl and
// examples/caddy/Caddyfile.tmpl, each run by the real proxy from Debian's
// package in front of examples/upstream, with tether serve (built from
// this tree, its data in one SQLite file) answering GET /auth/verify.
// Every process listens on 127.0.0.1; the test's clients talk to nothing
// else.
//
// TestNginx and TestCaddy check, through the proxy:
//
//   - a signed-in request reaches the upstream with the identity headers;
//   - an anonymous browser (Accept: text/html) is sent to tether's
//     sign-in page with the original URL, on the app's host
//     (app.tether.test, sent as Host), and after signing in there is sent
//     back to it;
//   - an anonymous API request gets 401, and never reaches the upstream;
//   - X-Tether-* headers sent by the client never reach the upstream
//     (GW-02), signed in or not, whatever tether's answer lacks;
//   - a personal access token and a JWT access token (client credentials,
//     for the app's audience) work as bearer tokens;
//   - a session signed out, a personal access token revoked and a JWT
//     revoked are refused at the next request;
//   - with tether stopped, the proxy answers 5xx and the upstream is not
//     reached (the check fails closed).
//
// They skip without nginx or caddy (apt-get install -y nginx caddy), and
// fail instead when TETHER_TEST_REQUIRE_SERVICES=1.
package forwardauth
