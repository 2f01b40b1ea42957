// Package csrf protects cookie-authenticated HTTP handlers against cross-site
// request forgery with two independent checks on every unsafe request:
//
//  1. Go's [http.CrossOriginProtection]: Sec-Fetch-Site first, and Origin
//     against Host when it is absent (CSRF-01); trusted origins match scheme,
//     host and port exactly (CSRF-06).
//  2. A token bound to the session: an HMAC-SHA256, under a server secret, of a
//     binding the caller chooses (such as the session's ID), masked afresh for
//     every response (CSRF-02). It is read from the X-CSRF-Token header or the
//     csrf_token form field, never from a cookie or the URL query.
//
// GET, HEAD and OPTIONS are safe methods and are never checked, so they must
// not change state; no method override (X-HTTP-Method-Override, _method, …) is
// honoured (CSRF-03).
//
// Each unsafe route takes one of three checks, each a method named for what
// it checks, with a handler form that answers refusals with the
// ErrorHandler:
//
//   - [Protector.Check] and [Protector.Handler]: the origin and the token
//     bound to the session. A request without a session is refused
//     ([ErrNoBinding]); it never falls back to the origin alone.
//   - [Protector.CheckPreSession] and [Protector.PreSessionHandler]: the
//     origin and the token bound to a pre-session cookie, for sign-in and
//     registration forms, which have no session yet (login CSRF, CSRF-05).
//     [Protector.PreSessionToken] sets the cookie and returns the form's
//     token; [Protector.ClearPreSession] expires it at sign-in.
//   - [Protector.CheckOriginOnly] and [Protector.OriginOnlyHandler]: the
//     origin alone, for the deliberate exemptions: requests no cookie
//     authenticates.
//
// # HTTPS
//
// The pre-session cookie is __Host- and Secure, like a session cookie
// (SES-05), named DefaultPreSessionCookie unless [WithPreSessionCookie]
// names it after your app. Over plain HTTP at any host name but
// localhost, a browser drops it, so the sign-in form is refused with
// ErrNoPreSession; and a browser sends no Sec-Fetch-Site there, so a page
// with Referrer-Policy: no-referrer (which makes its forms send Origin:
// null) is refused with ErrCrossOrigin first. Both mean the same: serve
// HTTPS.
//
// For development on http://localhost, [WithInsecureLocalhostHTTP] names
// the pre-session cookie without "__Host-" and without Secure, but only
// for a request that comes over plain HTTP straight from the same machine
// for localhost, 127.0.0.1 or [::1] (see package localdev); every other
// request keeps the secure cookie, and the first of them in a minute is
// logged as an error. Turn on session.Config.InsecureLocalhostHTTP with
// it.
//
// The package imports nothing from tether but localdev: any app can use
// it with any session mechanism.
//
//	p, err := csrf.New(secret) // >= 32 random bytes, the same on every node
//	if err != nil {
//		return err
//	}
//	bind := func(r *http.Request) []byte { return sessionID(r) } // nil: no session, refused
//	mux.Handle("POST /settings", p.Handler(bind, saveSettings))
//	mux.HandleFunc("GET /settings", func(w http.ResponseWriter, r *http.Request) {
//		page.Execute(w, map[string]string{"CSRF": p.Token(bind(r))})
//		// <input type="hidden" name="csrf_token" value="{{.CSRF}}">
//	})
//	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
//		loginPage.Execute(w, map[string]string{"CSRF": p.PreSessionToken(w, r)})
//	})
//	mux.Handle("POST /login", p.PreSessionHandler(signIn)) // signIn calls p.ClearPreSession(w, r)
package csrf
