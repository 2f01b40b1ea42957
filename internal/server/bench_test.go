package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The server's own share of issue 4's load test (e2e/load), without the
// network, wrk and Redis: the handler stack serving GET /healthz, the
// floor, and GET /api/v1/me with a session cookie, in the same run.
//
//	go test -run '^$' -bench 'Serve|TokenEndpoint' -benchmem -count 6 ./internal/server | tee serve.txt
//	benchstat serve.txt

func BenchmarkServeHealthz(b *testing.B) {
	h := newHarness(b, harnessOpts{plain: true})
	r := newRequest("/healthz", nil)
	benchmarkServe(b, h, func() *http.Request { return r })
}

func BenchmarkServeMe(b *testing.B) {
	h := newHarness(b, harnessOpts{plain: true})
	h.addUser("alice", alicePW, false)
	c := h.client()
	c.login("alice", alicePW)
	cookie := &http.Cookie{Name: sessionCookie, Value: c.cookie(sessionCookie)}
	r := newRequest("/api/v1/me", cookie)
	benchmarkServe(b, h, func() *http.Request { return r })
}

// BenchmarkTokenEndpoint: POST /oauth2/token, client credentials with
// Basic authentication, on the harness's stack: the throttle's read (a
// right secret counts nothing), the generation and the client (in memory
// here), SHA-256 of the secret, an EdDSA signature.
func BenchmarkTokenEndpoint(b *testing.B) {
	oh := newOAuthHarness(b, oauthOpts{harnessOpts: harnessOpts{plain: true}})
	auth := basic("billing", oh.addBilling())
	benchmarkServe(b, oh.harness, func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, tokenPath, strings.NewReader("grant_type=client_credentials&scope=invoices%3Aread"))
		r.Host = "127.0.0.1"
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", auth)
		return r
	})
}

func newRequest(path string, cookie *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.Host = "127.0.0.1" // not httptest's example.com, which the server refuses (MISC-07)
	if cookie != nil {
		r.AddCookie(cookie)
	}
	return r
}

// benchmarkServe serves the requests of next in parallel with the
// harness's handler and fails on any answer but 200.
func benchmarkServe(b *testing.B, h *harness, next func() *http.Request) {
	handler := h.srv.Config.Handler
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := next()
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Errorf("GET %s: status %d %s", r.URL.Path, w.Code, w.Body)
				return
			}
		}
	})
}
