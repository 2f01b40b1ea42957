package server

import (
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
)

// setSecurityHeaders sets the headers every response carries (MISC-01).
// HSTS only over TLS: over plain HTTP it would be ignored, and on a local
// address it could pin a developer's browser. Nothing is cached unless a
// handler says otherwise: pages and JSON answers carry a user's data or a
// csrf token, and redirects after sign-in carry the session cookie (SES-09;
// the session middleware adds Vary: Cookie to every response).
func setSecurityHeaders(h http.Header, r *http.Request) {
	h.Set("Cache-Control", "no-store")
	if r.URL.Path == verifyPath {
		// A forward-auth answer is no page: it has no body, and the
		// proxy reads its status and identity headers; the page headers
		// would only grow a header map past its eight inline entries on
		// the hottest path (MISC-01 applies to what a browser renders).
		return
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", contentSecurityPolicy(""))
	h.Set("Referrer-Policy", "no-referrer")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	}
}

// contentSecurityPolicy is the CSP of every response (MISC-01), its forms
// allowed to submit to tether and to origin too when it is not "" (the
// origin of a return address after sign-in: browsers apply form-action to
// the redirect a form's answer makes, returnto.go).
func contentSecurityPolicy(origin string) string {
	formAction := "'self'"
	if origin != "" {
		formAction += " " + origin
	}
	return "default-src 'self'; frame-ancestors 'none'; form-action " + formAction + "; base-uri 'none'"
}

// secureHeaders sets the security headers before anything else runs.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header(), r)
		next.ServeHTTP(w, r)
	})
}

// misdirected is the message of a 421 answer.
const misdirected = "This server does not answer for the host name in the request: reach it by the name it is configured with."

// checkHost answers 421 Misdirected Request to a request whose Host is not
// one of s.hosts (MISC-07: DNS rebinding; see hosts.go), a missing Host
// included: in plain text, or as JSON under /api/ and at the OAuth
// endpoints. It runs before anything
// else reads the request (the session cookie above all), and the refusals
// are logged at most once a second, so that a flood can't drown the log.
//
// GET /healthz and /readyz answer whatever the Host: load balancers and
// orchestrators probe a node by its address, and what they say (alive,
// ready) is of no use to a rebinding page.
func (s *server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.hosts.allows(r.Host) || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		if held, ok := s.refusals.Let(); ok {
			s.log.WarnContext(r.Context(), "refused a request for another host (MISC-07)",
				"host", truncate(r.Host, 100), "path", truncate(r.URL.Path, 100),
				"ip", clientIP(r, s.proxies), "unlogged_since_last", held)
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/"):
			encode(w, http.StatusMisdirectedRequest, errorBody{Error: "misdirected", Message: misdirected})
		case isOAuthPath(r.URL.Path):
			s.failOAuth(w, r, &problem{status: http.StatusMisdirectedRequest, message: misdirected})
		default:
			http.Error(w, misdirected, http.StatusMisdirectedRequest)
		}
	})
}

// truncate returns at most the first n bytes of s, for a log line.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// capBody caps every request body at maxBody, so neither a form nor a
// multipart body parsed by a CSRF check can grow without bound (PW-04).
func capBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != http.NoBody { // what the server gives a request without a body: nothing to cap
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// recoverPanic turns a panic into a plain 500 with nothing of the panic in
// it (MISC-02), in the JSON error shapes under /api/ and at the OAuth
// endpoints; the panic and its stack go to the log. If the response had
// already started, the connection is aborted instead, so that a half answer
// can't pass for a whole one.
func recoverPanic(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &trackingWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler || tw.wrote {
				panic(http.ErrAbortHandler)
			}
			log.ErrorContext(r.Context(), "panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			h := w.Header()
			clear(h) // no half-set cookie or content type of the failed handler
			setSecurityHeaders(h, r)
			const failed = "The server failed to answer; the failure is logged."
			switch {
			case strings.HasPrefix(r.URL.Path, "/api/"): // the API's error shape, as every answer of the API
				encode(w, http.StatusInternalServerError, errorBody{Error: "internal", Message: failed})
				return
			case isOAuthPath(r.URL.Path):
				encode(w, http.StatusInternalServerError, oauthErrorBody{Error: codeServerError, Description: failed})
				return
			}
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		}()
		next.ServeHTTP(tw, r)
	})
}

// trackingWriter remembers whether the response has started.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) {
	t.wrote = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
