package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tetherauth/tether/internal/account"
)

// MISC-01: every response carries the security headers, errors included;
// HSTS only over TLS. A forward-auth answer, no page but a verdict for a
// proxy, carries Cache-Control: no-store (SES-09) and no page header.
func TestMISC01_SecurityHeaders(t *testing.T) {
	want := map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
		"Referrer-Policy":         "no-referrer",
	}
	for _, tc := range []struct {
		name  string
		plain bool
		hsts  bool
	}{
		{"tls", false, true},
		{"plain http", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{plain: tc.plain})
			c := h.client()
			for _, r := range []struct{ method, path string }{
				{http.MethodGet, "/login"},
				{http.MethodGet, "/static/style.css"},
				{http.MethodGet, "/api/v1/me"},     // 401
				{http.MethodGet, "/nowhere"},       // 404
				{http.MethodGet, "/logout"},        // 405
				{http.MethodPost, "/login"},        // 403
				{http.MethodGet, "/healthz"},       // 200 JSON
				{http.MethodPost, "/api/v1/login"}, // 415
			} {
				res := c.do(r.method, r.path, nil)
				for k, v := range want {
					if got := res.header.Get(k); got != v {
						t.Errorf("%s %s: %s = %q, want %q", r.method, r.path, k, got, v)
					}
				}
				if got := res.header.Get("Strict-Transport-Security") != ""; got != tc.hsts {
					t.Errorf("%s %s: HSTS sent %v, want %v", r.method, r.path, got, tc.hsts)
				}
			}
			res := c.do(http.MethodGet, verifyPath, nil)
			for k := range want {
				if got := res.header.Get(k); got != "" {
					t.Errorf("GET %s: %s = %q, want none", verifyPath, k, got)
				}
			}
			if got := res.header.Get("Cache-Control"); got != "no-store" || res.status != http.StatusUnauthorized {
				t.Errorf("GET %s: %d, Cache-Control %q; want 401 and no-store", verifyPath, res.status, got)
			}
		})
	}
}

// MISC-02: a panic becomes a plain 500 with nothing of the panic in it.
func TestMISC02_PanicIsPlain500(t *testing.T) {
	h := newHarness(t, harnessOpts{ready: func(context.Context) error { panic("secret-key-material in a panic") }})
	res := h.client().do(http.MethodGet, "/readyz", nil)
	if res.status != http.StatusInternalServerError || res.body != "Internal Server Error\n" {
		t.Fatalf("panic: %d %q, want 500 Internal Server Error", res.status, res.body)
	}
	if res.header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(res.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("panic answer headers %v: want the security headers and text/plain", res.header)
	}
	if !strings.Contains(h.logs.String(), "secret-key-material") {
		t.Fatalf("the panic is not logged for the operator")
	}
}

// MISC-02 under /api/: the panic's 500 has the API's error shape, with
// nothing of the panic in it either.
func TestMISC02_PanicUnderAPIIsJSON(t *testing.T) {
	h := newHarness(t, harnessOpts{wrap: func(a account.Store) account.Store { return panickingAccounts{a} }})
	res := h.client().json(http.MethodPost, "/api/v1/login", loginRequest{Username: "alice", Password: alicePW}, "")
	if res.status != http.StatusInternalServerError || strings.Contains(res.body, "secret-key-material") {
		t.Fatalf("panic: %d %q, want 500 without the panic", res.status, res.body)
	}
	checkErrorShape(t, res, "internal")
}

// panickingAccounts panics on ByName.
type panickingAccounts struct{ account.Store }

func (panickingAccounts) ByName(context.Context, string) (*account.User, error) {
	panic("secret-key-material in a panic")
}

// Readiness follows Config.Ready; liveness doesn't.
func TestHealthAndReadiness(t *testing.T) {
	var down atomic.Bool
	h := newHarness(t, harnessOpts{ready: func(context.Context) error {
		if down.Load() {
			return errors.New("database is locked")
		}
		return nil
	}})
	c := h.client()
	for _, tc := range []struct {
		down          bool
		health, ready int
	}{
		{false, http.StatusOK, http.StatusOK},
		{true, http.StatusOK, http.StatusServiceUnavailable},
	} {
		down.Store(tc.down)
		if res := c.do(http.MethodGet, "/healthz", nil); res.status != tc.health {
			t.Errorf("down %v: /healthz status %d, want %d", tc.down, res.status, tc.health)
		}
		res := c.do(http.MethodGet, "/readyz", nil)
		if res.status != tc.ready || strings.Contains(res.body, "locked") {
			t.Errorf("down %v: /readyz %d %s, want %d without the cause", tc.down, res.status, res.body, tc.ready)
		}
	}
}

// New names every missing dependency.
func TestNewRefusesIncompleteConfig(t *testing.T) {
	_, err := New(Config{})
	if !errors.Is(err, errConfig) {
		t.Fatalf("New(Config{}): got %v, want errConfig", err)
	}
	for _, name := range []string{"Sessions", "Accounts", "Throttle", "Hasher", "CSRF", "Ready"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("New(Config{}) error %q doesn't name %s", err, name)
		}
	}
}
