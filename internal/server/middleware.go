package server

import (
	"log/slog"
	"net/http"
	"runtime/debug"
)

// setSecurityHeaders sets the headers every response carries (MISC-01).
// HSTS only over TLS: over plain HTTP it would be ignored, and on a local
// address it could pin a developer's browser. Nothing is cached unless a
// handler says otherwise: pages and JSON answers carry a user's data or a
// csrf token, and redirects after sign-in carry the session cookie (SES-09;
// the session middleware adds Vary: Cookie to every response).
func setSecurityHeaders(h http.Header, r *http.Request) {
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	}
}

// secureHeaders sets the security headers before anything else runs.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header(), r)
		next.ServeHTTP(w, r)
	})
}

// capBody caps every request body at maxBody, so neither a form nor a
// multipart body parsed by a CSRF check can grow without bound (PW-04).
func capBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

// recoverPanic turns a panic into a plain 500 with nothing of the panic in
// it (MISC-02); the panic and its stack go to the log. If the response had
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
