package server

import "net/http"

// addRoutes registers every route of the server, and is the one place that
// says how each unsafe route is protected against cross-site requests, with
// one of the csrf.Protector's handlers:
//
//   - Handler(sessionBinding, …): CSRF-01 (http.CrossOriginProtection:
//     Sec-Fetch-Site, else Origin against Host) and the csrf token bound to
//     the session, from the X-CSRF-Token header or the csrf_token form field
//     (CSRF-02); a request without a session is refused;
//   - PreSessionHandler: CSRF-01 and the token bound to the pre-session
//     cookie, for the forms used before there is a session (CSRF-05);
//   - OriginOnlyHandler: CSRF-01 only; used for the exemptions, each with
//     its reason next to it.
//
// Refusals are answered like any other error of the route: JSON on the
// API, a page on the pages.
//
// Routes name their method (Go 1.22 patterns): nothing changes state on GET
// or HEAD, and no header, field or query parameter overrides the method
// (CSRF-03).
// Only GET /healthz and /readyz answer a foreign Host (MISC-07: checkHost).
func addRoutes(mux *http.ServeMux, s *server) {
	api, pages := s.failJSON, s.failPage
	apiCSRF, pagesCSRF := s.csrf.WithErrorHandler(csrfFailer(api)), s.csrf.WithErrorHandler(csrfFailer(pages))

	// JSON API.
	//
	// CSRF exemption: POST /api/v1/login needs no csrf token, so scripts and
	// command-line clients can sign in in one request. Cross-site forms
	// can't use it: CrossOriginProtection runs first, and decode answers 415
	// to anything but Content-Type: application/json (CSRF-04), which a
	// cross-site page can't send without a CORS preflight that tether never
	// grants.
	mux.Handle("POST /api/v1/login", apiCSRF.OriginOnlyHandler(handleAPILogin(s)))
	// CSRF exemption, only while the session store is down: sign-out then
	// can't read the session its token is bound to, so it is checked for
	// origin only (CSRF-01). It only clears this browser's cookie and has
	// the session ended once the store answers: a forged request could do
	// no more than sign the victim out (signOutGuard).
	mux.Handle("POST /api/v1/logout", signOutGuard(api, apiCSRF, handleAPILogout(s)))
	mux.Handle("GET /api/v1/me", signedIn(api, handleAPIMe(s)))
	mux.Handle("GET /api/v1/sessions", signedIn(api, handleAPISessions(s)))
	mux.Handle("DELETE /api/v1/sessions/{id}", signedIn(api, apiCSRF.Handler(sessionBinding, handleAPIRevokeSession(s))))
	mux.Handle("POST /api/v1/sessions/revoke-others", signedIn(api, apiCSRF.Handler(sessionBinding, handleAPIRevokeOthers(s))))
	mux.Handle("POST /api/v1/password", signedIn(api, apiCSRF.Handler(sessionBinding, handleAPIPassword(s))))
	if s.pats != nil { // personal access tokens (pats.go)
		mux.Handle("GET /api/v1/tokens", signedIn(api, handleAPIPATs(s)))
		mux.Handle("POST /api/v1/tokens", signedIn(api, apiCSRF.Handler(sessionBinding, handleAPICreatePAT(s))))
		mux.Handle("DELETE /api/v1/tokens/{id}", signedIn(api, apiCSRF.Handler(sessionBinding, handleAPIRevokePAT(s))))
	}
	// Any other path or method under /api/: 404 or 405 (with Allow) in the
	// API's error shape, not the mux's plain text. It changes nothing, so
	// it needs no CSRF check.
	mux.Handle("/api/", handleNoRoute(mux, api, errNoEndpoint))
	mux.Handle("/api", handleNoRoute(mux, api, errNoEndpoint))
	mux.Handle("GET /healthz", handleHealthz())
	// Forward-auth (forwardauth.go): any method, the same decision for
	// each (GW-03). CSRF exemption: it changes nothing, and its answer (a
	// status and headers) is not readable by another site.
	mux.Handle(verifyPath, handleForwardAuth(s))
	mux.Handle("GET /readyz", handleReadyz(s))

	// Pages.
	mux.Handle("GET /{$}", handleHome())
	mux.Handle("GET /login", handleLoginPage(s))
	mux.Handle("POST /login", pagesCSRF.PreSessionHandler(handleLoginForm(s)))
	mux.Handle("GET /setup", handleSetupPage(s))
	mux.Handle("POST /setup", pagesCSRF.PreSessionHandler(handleSetupForm(s)))
	mux.Handle("GET /account", signedIn(pages, handleAccountPage(s)))
	mux.Handle("POST /account/sessions/{id}/revoke", signedIn(pages, pagesCSRF.Handler(sessionBinding, handleRevokePage(s))))
	mux.Handle("POST /account/revoke-others", signedIn(pages, pagesCSRF.Handler(sessionBinding, handleRevokeOthersPage(s))))
	mux.Handle("POST /account/password", signedIn(pages, pagesCSRF.Handler(sessionBinding, handlePasswordPage(s))))
	if s.pats != nil {
		mux.Handle("POST /account/tokens", signedIn(pages, pagesCSRF.Handler(sessionBinding, handleCreatePATPage(s))))
		mux.Handle("POST /account/tokens/{id}/revoke", signedIn(pages, pagesCSRF.Handler(sessionBinding, handleRevokePATPage(s))))
	}
	mux.Handle("POST /logout", signOutGuard(pages, pagesCSRF, handleLogoutPage(s))) // the same exemption as the API's
	mux.Handle("GET /static/", handleStatic())

	if s.oauth != nil {
		addOAuthRoutes(mux, s)
	}
}

// addOAuthRoutes registers the OAuth 2.0 endpoints for machines
// (oauth2.go). Their errors are RFC 6749's JSON.
//
// CSRF exemption: the OAuth endpoints take no csrf token. Machines call
// them, with no cookie: each request carries the client's own credentials
// (Basic, or client_secret in the form), which a cross-site page doesn't
// have, and nothing in them reads the session. They are still checked for
// origin (CSRF-01), so that a browser that holds Basic credentials for
// tether (typed at the challenge of an invalid_client answer) can't be
// made to use them from another site; clients other than browsers send
// neither Sec-Fetch-Site nor Origin, and pass.
func addOAuthRoutes(mux *http.ServeMux, s *server) {
	oauthCSRF := s.csrf.WithErrorHandler(csrfFailer(s.failOAuth))
	mux.Handle("POST "+tokenPath, oauthCSRF.OriginOnlyHandler(handleOAuth(s, s.issueToken)))
	mux.Handle("POST "+revokePath, oauthCSRF.OriginOnlyHandler(handleRevoke(s)))
	mux.Handle("POST "+introspectPath, oauthCSRF.OriginOnlyHandler(handleOAuth(s, s.introspect)))
	mux.Handle("/oauth2/", handleNoRoute(mux, s.failOAuth, errNoOAuthEndpoint))
	mux.Handle("GET "+jwksPath, handleJWKS(s))
	mux.Handle("GET "+metadataPath, handleMetadata(s))
	if s.oauth.stream != nil {
		mux.Handle("GET "+streamPath, s.oauth.stream)
	}
}
