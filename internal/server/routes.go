package server

import "net/http"

// addRoutes registers every route of the server, and is the one place that
// says how each unsafe route is protected against cross-site requests:
//
//   - s.sessionToken: CSRF-01 (http.CrossOriginProtection: Sec-Fetch-Site,
//     else Origin against Host) and the csrf token bound to the session, from
//     the X-CSRF-Token header or the csrf_token form field (CSRF-02);
//   - s.preSessionToken: CSRF-01 and the token bound to the pre-session
//     cookie, for the forms used before there is a session (CSRF-05);
//   - s.sameOrigin: CSRF-01 only; used for the exemptions, each with its
//     reason next to it.
//
// Routes name their method (Go 1.22 patterns): nothing changes state on GET
// or HEAD, and no header, field or query parameter overrides the method
// (CSRF-03).
// Only GET /healthz and /readyz answer a foreign Host (MISC-07: checkHost).
func addRoutes(mux *http.ServeMux, s *server) {
	api, pages := s.failJSON, s.failPage

	// JSON API.
	//
	// CSRF exemption: POST /api/v1/login needs no csrf token, so scripts and
	// command-line clients can sign in in one request. Cross-site forms
	// can't use it: CrossOriginProtection runs first, and decode answers 415
	// to anything but Content-Type: application/json (CSRF-04), which a
	// cross-site page can't send without a CORS preflight that tether never
	// grants.
	mux.Handle("POST /api/v1/login", s.sameOrigin(api, handleAPILogin(s)))
	mux.Handle("POST /api/v1/logout", signedIn(api, s.sessionToken(api, handleAPILogout(s))))
	mux.Handle("GET /api/v1/me", signedIn(api, handleAPIMe(s)))
	mux.Handle("GET /api/v1/sessions", signedIn(api, handleAPISessions(s)))
	mux.Handle("DELETE /api/v1/sessions/{id}", signedIn(api, s.sessionToken(api, handleAPIRevokeSession(s))))
	mux.Handle("POST /api/v1/sessions/revoke-others", signedIn(api, s.sessionToken(api, handleAPIRevokeOthers(s))))
	mux.Handle("POST /api/v1/password", signedIn(api, s.sessionToken(api, handleAPIPassword(s))))
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(s))

	// Pages.
	mux.Handle("GET /{$}", handleHome())
	mux.Handle("GET /login", handleLoginPage(s))
	mux.Handle("POST /login", s.preSessionToken(pages, handleLoginForm(s)))
	mux.Handle("GET /setup", handleSetupPage(s))
	mux.Handle("POST /setup", s.preSessionToken(pages, handleSetupForm(s)))
	mux.Handle("GET /account", signedIn(pages, handleAccountPage(s)))
	mux.Handle("POST /account/sessions/{id}/revoke", signedIn(pages, s.sessionToken(pages, handleRevokePage(s))))
	mux.Handle("POST /account/revoke-others", signedIn(pages, s.sessionToken(pages, handleRevokeOthersPage(s))))
	mux.Handle("POST /account/password", signedIn(pages, s.sessionToken(pages, handlePasswordPage(s))))
	mux.Handle("POST /logout", signedIn(pages, s.sessionToken(pages, handleLogoutPage(s))))
	mux.Handle("GET /static/", handleStatic())
}
