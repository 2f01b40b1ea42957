package keys

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

// jwksServer serves a key set it can change, counting the fetches.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int32

	mu     sync.Mutex // guards the fields below
	status int
	body   string
	gate   chan struct{} // when set, a fetch waits for it to close
}

func newJWKSServer(t *testing.T, keys ...*Key) *jwksServer {
	s := &jwksServer{status: http.StatusOK}
	s.set(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		status, body, gate := s.status, s.body, s.gate
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(t *testing.T, keys ...*Key) {
	var set []JWK
	for _, k := range keys {
		set = append(set, JWK{Kid: k.Kid(), Alg: k.Alg(), Key: k.Public()})
	}
	out, err := MarshalJWKS(set)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body = string(out)
	s.mu.Unlock()
}

func (s *jwksServer) fail(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

func genKey(t *testing.T) *Key {
	k, err := Generate(EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newRemote(t *testing.T, url string, clk *testkit.Clock) *Remote {
	c, err := NewRemote(RemoteConfig{URL: url, RefreshAfter: 5 * time.Minute, MaxAge: time.Hour,
		MinInterval: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestKEY03_UnknownKidRefreshesAtMostOncePerInterval(t *testing.T) {
	ctx := context.Background()
	a, b := genKey(t), genKey(t)
	srv := newJWKSServer(t, a)
	clk := testkit.NewClock(t0)
	c := newRemote(t, srv.URL, clk)

	if alg, _, err := c.PublicKey(ctx, a.Kid()); err != nil || alg != EdDSA {
		t.Fatalf("got %s, %v", alg, err)
	}
	// A stream of made-up kids within the interval costs no fetch.
	for range 10 {
		if _, key, err := c.PublicKey(ctx, "made-up"); key != nil || err != nil {
			t.Fatalf("got %v, %v; want no key and no error (token.KeySet)", key, err)
		}
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
	// The issuer publishes b; a token with b's kid makes the next fetch,
	// once the interval has passed.
	srv.set(t, a, b)
	if _, key, err := c.PublicKey(ctx, b.Kid()); key != nil || err != nil {
		t.Fatalf("within the interval: got %v, %v; want no key and no error (token.KeySet)", key, err)
	}
	clk.Advance(time.Minute)
	if _, _, err := c.PublicKey(ctx, b.Kid()); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
	if _, key, err := c.PublicKey(ctx, "made-up"); key != nil || err != nil {
		t.Fatalf("got %v, %v; want no key and no error (token.KeySet)", key, err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
}

func TestKEY03_ConcurrentLookupsFetchOnce(t *testing.T) {
	ctx := context.Background()
	a := genKey(t)
	srv := newJWKSServer(t, a)
	gate := make(chan struct{})
	srv.mu.Lock()
	srv.gate = gate
	srv.mu.Unlock()
	// A clock that moves past MinInterval on every reading: only the
	// single flight, not the rate limit, can keep the fetches to one.
	var ticks atomic.Int64
	now := func() time.Time { return t0.Add(time.Duration(ticks.Add(1)) * time.Hour) }
	c, err := NewRemote(RemoteConfig{URL: srv.URL, MaxAge: 1000000 * time.Hour, RefreshAfter: 1000000 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	errs := make(chan error, n)
	var started sync.WaitGroup
	started.Add(n)
	for range n {
		go func() {
			started.Done()
			_, _, err := c.PublicKey(ctx, a.Kid())
			errs <- err
		}()
	}
	started.Wait()
	testkit.WaitFor(t, "the first fetch", func() bool { return srv.fetches.Load() == 1 })
	close(gate)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Errorf("%d fetches for %d concurrent lookups, want 1", got, n)
	}
}

func TestKEY03_FailsClosedPastMaxAge(t *testing.T) {
	ctx := context.Background()
	a := genKey(t)
	srv := newJWKSServer(t, a)
	clk := testkit.NewClock(t0)
	c := newRemote(t, srv.URL, clk)
	if _, _, err := c.PublicKey(ctx, a.Kid()); err != nil {
		t.Fatal(err)
	}
	srv.fail(http.StatusServiceUnavailable)
	// Past RefreshAfter the fetch fails, and the set serves on.
	clk.Advance(30 * time.Minute)
	if _, _, err := c.PublicKey(ctx, a.Kid()); err != nil {
		t.Fatalf("within MaxAge: %v", err)
	}
	clk.Advance(30*time.Minute - time.Second)
	if _, _, err := c.PublicKey(ctx, a.Kid()); err != nil {
		t.Fatalf("just within MaxAge: %v", err)
	}
	clk.Advance(time.Second)
	for range 3 {
		if _, _, err := c.PublicKey(ctx, a.Kid()); !errors.Is(err, ErrStale) {
			t.Fatalf("past MaxAge: got %v, want ErrStale", err)
		}
	}
	// It recovers by itself at the first fetch that works.
	srv.fail(http.StatusOK)
	clk.Advance(time.Minute)
	if _, _, err := c.PublicKey(ctx, a.Kid()); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestKEY03_FetchesOnlyItsURL(t *testing.T) {
	ctx := context.Background()
	var evil atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { evil.Add(1) }))
	defer other.Close()
	srv := newJWKSServer(t, genKey(t))
	srv.Config.Handler = http.RedirectHandler(other.URL+"/jwks.json", http.StatusFound)
	clk := testkit.NewClock(t0)
	c := newRemote(t, srv.URL, clk)
	// A kid that is a URL is a kid like any other; a redirect is a failure.
	if _, _, err := c.PublicKey(ctx, other.URL+"/jwks.json"); !errors.Is(err, ErrStale) {
		t.Errorf("got %v, want ErrStale", err)
	}
	if n := evil.Load(); n != 0 {
		t.Errorf("fetched another URL %d times", n)
	}
}

func TestKEY03_RefusesOversizedSet(t *testing.T) {
	ctx := context.Background()
	a := genKey(t)
	srv := newJWKSServer(t, a)
	srv.mu.Lock()
	srv.body = srv.body[:len(srv.body)-1] + `,"pad":"` + strings.Repeat("x", MaxJWKSSize) + `"}`
	srv.mu.Unlock()
	c := newRemote(t, srv.URL, testkit.NewClock(t0))
	if err := c.Refresh(ctx); !errors.Is(err, ErrJWKSTooLarge) {
		t.Errorf("got %v, want ErrJWKSTooLarge", err)
	}
	if _, _, err := c.PublicKey(ctx, a.Kid()); !errors.Is(err, ErrStale) {
		t.Errorf("got %v, want ErrStale", err)
	}
}

func TestNewRemoteRefusesURL(t *testing.T) {
	for _, u := range []string{"", "jwks.json", "file:///etc/jwks.json", "ftp://h/x", "https://"} {
		if _, err := NewRemote(RemoteConfig{URL: u}); err == nil {
			t.Errorf("%q: no error", u)
		}
	}
}
