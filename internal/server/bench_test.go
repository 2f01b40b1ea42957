package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The server's own share of issue 4's load test (e2e/load), without the
// network, wrk and Redis: the handler stack serving GET /healthz, the
// floor, and GET /api/v1/me with a session cookie, in the same run.
//
//	go test -run '^$' -bench 'Serve' -benchmem -count 6 ./internal/server | tee serve.txt
//	benchstat serve.txt

func BenchmarkServeHealthz(b *testing.B) {
	h := newHarness(b, harnessOpts{plain: true})
	benchmarkServe(b, h, newRequest("/healthz", nil))
}

func BenchmarkServeMe(b *testing.B) {
	h := newHarness(b, harnessOpts{plain: true})
	h.addUser("alice", alicePW, false)
	c := h.client()
	c.login("alice", alicePW)
	cookie := &http.Cookie{Name: sessionCookie, Value: c.cookie(sessionCookie)}
	benchmarkServe(b, h, newRequest("/api/v1/me", cookie))
}

func newRequest(path string, cookie *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.Host = "127.0.0.1" // not httptest's example.com, which the server refuses (MISC-07)
	if cookie != nil {
		r.AddCookie(cookie)
	}
	return r
}

// benchmarkServe serves r in parallel with the harness's handler and fails
// on any answer but 200.
func benchmarkServe(b *testing.B, h *harness, r *http.Request) {
	handler := h.srv.Config.Handler
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Errorf("GET %s: status %d %s", r.URL.Path, w.Code, w.Body)
				return
			}
		}
	})
}
