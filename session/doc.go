// Package session gives people server-side sessions: an opaque random token
// in an HttpOnly cookie, the state in a shared Store, checked on every
// request, revocable at once everywhere.
//
// A Manager creates, loads, rotates and revokes sessions, and keeps a
// near-cache of validated sessions in memory so that a session check is a
// map lookup; the Store's invalidation feed keeps that cache coherent, and
// the cache is bypassed whenever the feed is not healthy or was not heard
// from within Config.MaxStaleness (SES-14). Its Middleware
// loads the session named by the request's cookie into the context.
//
//	store := memory.New() // or sqlite, redis, ...
//	m, err := session.NewManager(store, session.Config{})
//	if err != nil { ... }
//	go m.Run(ctx) // follow the store's invalidations: enables the near-cache
//
//	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
//		_, err := m.SignIn(w, r, user.ID, func() error {
//			// read the user's password hash and check the password:
//			// SignIn has read the user's generation already (Begin)
//		})
//		if err != nil { ... } // ErrRevoked: the password changed meanwhile
//	})
//	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
//		err := m.SignOut(w, r) // behind CSRF protection; ErrPending: ends later
//	})
//	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
//		s := session.FromContext(r.Context()) // nil: not signed in
//		...
//	})
//	http.ListenAndServe(addr, m.Middleware(mux))
//
// # Security
//
// The rules are those of docs/security.md in the repository:
//
//   - SES-01: a token is 32 bytes from crypto/rand, base64url (43 characters),
//     and carries nothing else.
//   - SES-02: stores are keyed by the SHA-256 of the token (Hash) and never
//     see the token. The token is returned once, by Create or Rotate.
//   - SES-03: Create always makes a fresh token; Rotate replaces one in
//     one atomic change of the store, and refuses a session that is no
//     longer live (signed out, revoked or expired, on any node).
//   - SES-04: a malformed, unknown, expired or revoked token is ErrNoSession,
//     and the middleware treats it exactly like no cookie.
//   - SES-05: the cookie is __Host-session (Config.CookieName), Secure,
//     HttpOnly, Path=/, no Domain, SameSite=Lax (or Strict); see "HTTPS"
//     below for the development mode, and Config.CookieDomain for the
//     cookie shared across subdomains (__Secure- with a Domain, which
//     every host under it receives: see domain.go for what that trades).
//   - SES-06: a request with the cookie twice is refused.
//   - SES-07: idle timeout (default 30 min) and absolute timeout (default
//     12 h) are enforced on every load; the idle deadline is written back at
//     most once per TouchInterval (default 1 min).
//   - SES-09: responses to signed-in requests get Cache-Control: no-store and
//     Vary: Cookie.
//   - SES-10: List and RevokeID serve the "signed-in devices" page;
//     RevokeUser ends everything of a user in one write by bumping the
//     user's generation.
//   - SES-11: a store error is never a signed-in request: the middleware
//     answers 503; LoadRequest, the same check without the middleware,
//     returns the error for the caller to answer.
//   - SES-12: Begin reads the user's generation before the credential is
//     read; Create makes the session only while that generation is still
//     current, checked by the store in the same change. A sign-in racing a
//     password change, a disable or "sign out everywhere" never leaves a
//     live session, on any node.
//   - SES-13: each user has at most Config.MaxPerUser live sessions
//     (default 100): a new one signs out the one closest to its end. So
//     listing or revoking a user's sessions costs a bounded amount.
//   - SES-14: the near-cache serves a session only while the store's feed
//     was vouched current within Config.MaxStaleness (default 1 s, 400 ms
//     to 10 s). Stores vouch every HeartbeatInterval (100 ms) with a round
//     trip their invalidations would have come ahead of. A node cut off
//     from its store without noticing (packets dropped, not refused) stops
//     answering from its cache within that bound and asks the store, which
//     answers or fails (503): a session revoked on another node is accepted
//     here at most MaxStaleness after the revocation was acknowledged, and
//     within milliseconds while the feed is healthy.
//
// # HTTPS
//
// A browser keeps a __Host- or Secure cookie only from an https:// page
// (and, in Chrome and Firefox but not Safari, from http://localhost).
// Served over plain HTTP at any other host name, an app's sign-in sets a
// cookie the browser drops: the user lands back on the sign-in form,
// signed out, with no error anywhere. Serve HTTPS, or terminate TLS at a
// reverse proxy in front of the app.
//
// For development on http://localhost, Config.InsecureLocalhostHTTP names
// the cookie without "__Host-" and without Secure, but only for a request
// that comes over plain HTTP straight from the same machine for
// localhost, 127.0.0.1 or [::1] (see package localdev): never for another
// host, over TLS, or through a proxy, even one that rewrites Host to
// 127.0.0.1. Those keep the secure cookie, and the first of them in a
// minute is logged as an error. So the mode left on in production
// weakens no real user's cookie.
//
// A Session is an immutable snapshot: its fields are read through
// methods and Get returns a copy, so a handler can't change what the
// near-cache hands to later requests.
//
// # Tokens
//
// The same store keeps the state of machines' access tokens (DESIGN's one
// revocation model): a denylist of jtis kept until their expiry
// (RevokeToken, TokenRevoked, Revocations; JWT-09), and a generation per
// token subject ("client:billing", "user:u_..."), which is a user's
// generation under the subject's name (SubjectGeneration, RevokeSubject:
// one write kills every token of the subject, even one issued in the same
// second, CHG-03). RevokeSubject also puts the new generation on the
// denylist, so a verifier that only follows the denylist learns of it.
// Config.OnEvent hands every feed event, TokenRevoked among them, to a
// view of the denylist kept beside the near-cache, and Current says when
// that view may be trusted (SES-14).
//
// # Session data
//
// A session carries a little application data (Get, String, Int; Put,
// PutString, PutInt, DeleteKey), capped by Config.MaxDataSize. Sessions are
// immutable snapshots: a write goes straight to the store as a
// compare-and-swap on the record's version, retried on conflict, so two
// requests of one session that write different keys keep both writes.
package session
