// Package session gives people server-side sessions: an opaque random token
// in an HttpOnly cookie, the state in a shared Store, checked on every
// request, revocable at once everywhere.
//
// A Manager creates, loads, rotates and revokes sessions, and keeps a
// near-cache of validated sessions in memory so that a session check is a
// map lookup; the Store's invalidation feed keeps that cache coherent, and
// the cache is bypassed whenever the feed is not healthy. Its Middleware
// loads the session named by the request's cookie into the context.
//
//	store := memory.New() // or sqlite, redis, ...
//	m, err := session.NewManager(store, session.Config{})
//	if err != nil { ... }
//	go m.Run(ctx) // follow the store's invalidations: enables the near-cache
//
//	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
//		// ... check the password ...
//		token, s, err := m.Create(r.Context(), user.ID, session.Meta{UserAgent: r.UserAgent()})
//		if err != nil { ... }
//		m.SetCookie(w, token, s)
//	})
//	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
//		s := session.FromContext(r.Context()) // nil: not signed in
//		...
//	})
//	http.ListenAndServe(addr, m.Middleware(mux))
//
// # Security
//
// The rules are those of SECURITY.md in the project's shared folder:
//
//   - SES-01: a token is 32 bytes from crypto/rand, base64url (43 characters),
//     and carries nothing else.
//   - SES-02: stores are keyed by the SHA-256 of the token (Hash) and never
//     see the token. The token is returned once, by Create or Rotate.
//   - SES-03: Create always makes a fresh token; Rotate replaces one.
//   - SES-04: a malformed, unknown, expired or revoked token is ErrNoSession,
//     and the middleware treats it exactly like no cookie.
//   - SES-05: the cookie is __Host-tether, Secure, HttpOnly, Path=/, no
//     Domain, SameSite=Lax (or Strict).
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
//     answers 503.
//
// # Session data
//
// A session carries a little application data (Get, String, Int; Put,
// PutString, PutInt, DeleteKey), capped by Config.MaxDataSize. Sessions are
// immutable snapshots: a write goes straight to the store as a
// compare-and-swap on the record's version, retried on conflict, so two
// requests of one session that write different keys keep both writes.
package session
