package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tetherauth/tether/internal/revocation"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/session"
)

// The server's own share of issue 4's load test (e2e/load), without the
// network, wrk and Redis: the handler stack serving GET /healthz, the
// floor, and GET /api/v1/me with a session cookie, in the same run.
//
//	go test -run '^$' -bench 'Serve|TokenEndpoint' -benchmem -count 6 ./internal/server | tee serve.txt
//	benchstat serve.txt
//
// And forward-auth's /auth/verify, by credential, beside /healthz in the
// same run (and session's BenchmarkManagerLoadCached, the yardsticks'
// JWT_GolangJWT_VerifyParallel/HS256):
//
//	go test -run '^$' -bench 'ServeHealthz|ForwardAuth' -benchmem -count 6 ./internal/server | tee fwd.txt

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

// BenchmarkForwardAuthSession: /auth/verify with a session cookie, the
// session and its user cached.
func BenchmarkForwardAuthSession(b *testing.B) {
	ph := newPATHarness(b, oauthOpts{harnessOpts: harnessOpts{plain: true}})
	ph.waitCurrent()
	r := newRequest(verifyPath, &http.Cookie{Name: sessionCookie, Value: ph.alice.cookie(sessionCookie)})
	benchmarkServe(b, ph.harness, func() *http.Request { return r })
}

// BenchmarkForwardAuthPAT: /auth/verify with a personal access token,
// cached, and a required scope.
func BenchmarkForwardAuthPAT(b *testing.B) {
	ph := newPATHarness(b, oauthOpts{harnessOpts: harnessOpts{plain: true}})
	ph.waitCurrent()
	r := newRequest(verifyPath+"?scope=repo:read", nil)
	r.Header.Set("Authorization", "Bearer "+ph.mustCreate(map[string]any{"name": "bench", "scopes": []string{"repo:read"}}).Token)
	benchmarkServe(b, ph.harness, func() *http.Request { return r })
}

// BenchmarkForwardAuthJWT: /auth/verify with a client's access token
// (EdDSA) for ?audience=, and a required scope; its revocation state is
// the node's revocation.View, as serve wires it, answering from memory.
func BenchmarkForwardAuthJWT(b *testing.B) {
	var view atomic.Pointer[revocation.View]
	o := oauthOpts{harnessOpts: harnessOpts{plain: true}}
	o.onEvent = func(e session.Event) {
		if v := view.Load(); v != nil {
			v.Handle(e)
		}
	}
	o.tokens = func(tk *Tokens) {
		store := tk.Revocations.(StoreRevocations)
		v, err := revocation.NewView(store.Manager, revocation.ViewConfig{})
		if err != nil {
			b.Fatal(err)
		}
		view.Store(v)
		tk.Revocations = viewRevocations{v, store}
	}
	ph := newPATHarness(b, o)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); view.Load().Run(ctx) }()
	b.Cleanup(func() { stop(); <-done })
	view.Load().Handle(session.Event{Kind: session.FeedUp}) // in case the feed came up before the view
	tok := ph.token("billing", ph.secret, url.Values{"scope": {"invoices:read"}}).AccessToken
	r := newRequest(verifyPath+"?scope=invoices:read&audience="+url.QueryEscape(apiBilling), nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	serve := func() int {
		w := httptest.NewRecorder()
		ph.srv.Config.Handler.ServeHTTP(w, r)
		return w.Code
	}
	testkit.WaitFor(b, "the view to answer without the store", func() bool {
		serve() // the view reads the client's generation once
		ph.store.all.Store(true)
		defer ph.store.all.Store(false)
		return serve() == http.StatusOK
	})
	benchmarkServe(b, ph.harness, func() *http.Request { return r })
}

// viewRevocations is TokenRevocations with the view's Check, as serve's
// tokenState.
type viewRevocations struct {
	*revocation.View
	StoreRevocations
}

func (v viewRevocations) Check(ctx context.Context, subject string, gen uint64, jti string) error {
	return v.View.Check(ctx, subject, gen, jti)
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
