// Package browser holds tether's end-to-end tests: Debian's Chromium, driven
// through the DevTools protocol (github.com/chromedp/chromedp), against a real
// `tether serve` process built from this tree, on a free 127.0.0.1 port with
// a temporary database.
//
// They test what only a browser does: which cookies it keeps and which it
// sends on cross-site requests (SES-05, CSRF-01, CSRF-05), what a script in
// the page can read (the XSS argument for HttpOnly cookies), and what the
// back button shows after sign-out (SES-09), and which cookies it deletes
// when told to by Clear-Site-Data (SES-08). Each test is named after the
// rule of docs/security.md that it shows.
//
// The package has only tests:
//
//	go test ./e2e/browser                                  # skips without Chromium
//	TETHER_TEST_REQUIRE_SERVICES=1 go test ./e2e/browser   # fails without it
//	TETHER_E2E_SCREENSHOTS=docs go test ./e2e/browser -run Screenshots
//
// The last one writes the README's screenshots into docs/ (relative to the
// module root). Every test also saves a screenshot of each browser's last
// page in a temporary directory, and the server's log and data in one of
// the server's own (internal/testkit/proc); both are kept, and named, when
// a test fails (or always, with TETHER_E2E_KEEP=1).
// TETHER_E2E_SERVER_RACE=1 builds the server under test with -race.
//
// Chromium runs with the flags this machine needs: headless, no sandbox, no
// GPU, no QUIC, no first-run screens, and background networking, component
// updates and sync disabled, with a fresh profile directory. For the tests
// that need several host names of one site over HTTPS (tether behind a TLS
// front end at auth.tether.test, beside a sibling app at app.tether.test),
// it also resolves every name under tether.test to 127.0.0.1 and accepts
// the one certificate the test binary makes for them.
package browser
