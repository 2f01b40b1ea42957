package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tetherauth/tether/internal/metrics"
	"github.com/tetherauth/tether/internal/testkit/promtest"
)

// The metrics move with real requests through the real stack: sign-ins
// right, wrong and throttled, a CSRF refusal, a token issued, verified and
// revoked, and a session check of a revoked session. The scrapes are
// parsed with Prometheus' own text parser. And SES-02: no token, cookie,
// password or name is in them.
func TestSES02_MetricsCountRealRequests(t *testing.T) {
	m := metrics.New()
	oh := newOAuthHarness(t, oauthOpts{harnessOpts: harnessOpts{free: 2, proxies: localProxy, metrics: m}})
	m.WatchKeys(oh.ring)
	m.WatchFeed(oh.sessions.Current)
	oh.addUser("alice", alicePW, false)
	secret := oh.addBilling()
	before := promtest.Get(t, m.Handler())

	// Sign-ins, and the checks of a session revoked on this node.
	laptop, phone := oh.client(), oh.client()
	laptop.login("alice", alicePW)
	for range 2 { // from the store, then from the near-cache
		if res, _ := laptop.me(); res.status != http.StatusOK {
			t.Fatalf("GET /api/v1/me: status %d", res.status)
		}
	}
	fresh := phone.login("alice", alicePW)
	if res := phone.json(http.MethodPost, "/api/v1/sessions/revoke-others", nil, fresh); res.status != http.StatusNoContent {
		t.Fatalf("revoke-others: status %d %s", res.status, res.body)
	}
	if res, _ := laptop.me(); res.status != http.StatusUnauthorized {
		t.Fatalf("GET /api/v1/me with a revoked session: status %d, want 401", res.status)
	}
	const guesses = 5 // free: 2, so the last are throttled: counted by their audit reason, whatever their answer
	for range guesses {
		oh.client().guess("alice", "wrong guess", "198.51.100.7")
	}

	// CSRF refusals: no token; a cross-site sign-in.
	if res := phone.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: alicePW, New: newPW}, ""); res.status != http.StatusForbidden {
		t.Fatalf("password change without a csrf token: status %d, want 403", res.status)
	}
	if res := oh.client().json(http.MethodPost, "/api/v1/login", loginRequest{Username: "alice", Password: alicePW}, "", "Sec-Fetch-Site", "cross-site"); res.status != http.StatusForbidden {
		t.Fatalf("cross-site sign-in: status %d, want 403", res.status)
	}

	// A token issued, verified, revoked, and found inactive.
	tok := oh.token("billing", secret, nil).AccessToken
	if res := oh.introspect("billing", secret, tok); res.status != http.StatusOK || res.body == inactive {
		t.Fatalf("introspect: %d %s, want an active token", res.status, res.body)
	}
	oh.revoke("billing", secret, tok)
	if res := oh.introspect("billing", secret, tok); res.body != inactive {
		t.Fatalf("introspect a revoked token: %s, want %s", res.body, inactive)
	}
	if res := oh.client().do(http.MethodGet, verifyPath, nil, "Authorization", "Bearer "+tok); res.status != http.StatusUnauthorized {
		t.Fatalf("forward-auth with a token of no ?audience=: status %d, want 401", res.status)
	}

	after := promtest.Get(t, m.Handler())
	for _, d := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"tether_signins_total", []string{"outcome", "success"}, 2},
		{"tether_csrf_refusals_total", []string{"reason", "missing_token"}, 1},
		{"tether_csrf_refusals_total", []string{"reason", "cross_origin"}, 1},
		{"tether_tokens_issued_total", []string{"kind", "access", "outcome", "success"}, 1},
		{"tether_tokens_verified_total", []string{"outcome", "active"}, 1},
		{"tether_tokens_verified_total", []string{"outcome", "inactive"}, 2}, // introspection, forward-auth
		{"tether_tokens_revoked_total", []string{"kind", "access", "outcome", "success"}, 1},
		{"tether_session_checks_total", []string{"outcome", "revoked"}, 1},
		{"tether_session_cache_hits_total", nil, 1},
	} {
		if got := after.Value(t, d.name, d.labels...) - before.Value(t, d.name, d.labels...); got != d.want {
			t.Errorf("%s%v: moved by %v, want %v", d.name, d.labels, got, d.want)
		}
	}
	moved := func(name string, labels ...string) float64 {
		return after.Value(t, name, labels...) - before.Value(t, name, labels...)
	}
	checked, throttled := moved("tether_signins_total", "reason", "wrong_password"), moved("tether_signins_total", "reason", "throttled")
	if checked+throttled != guesses || checked == 0 || throttled == 0 {
		t.Errorf("wrong guesses: %v checked and %v throttled, want %d in all, some of each", checked, throttled, guesses)
	}
	if got := moved("tether_throttled_total", "action", "sign-in"); got != throttled {
		t.Errorf("tether_throttled_total{action=sign-in}: moved by %v, want %v as the throttled sign-ins", got, throttled)
	}
	for _, d := range []struct {
		name   string
		labels []string
	}{
		{"tether_session_checks_total", []string{"outcome", "ok"}},
		{"tether_session_cache_misses_total", nil},
		{"tether_http_requests_total", []string{"route", "POST /api/v1/login", "code", "200"}},
		{"tether_http_requests_total", []string{"route", "GET /api/v1/me", "code", "401"}},
		{"tether_http_requests_total", []string{"route", "POST /oauth2/token", "code", "200"}},
		{"tether_http_request_duration_seconds", []string{"route", "GET /api/v1/me"}},
		{"tether_session_feed_up", nil},
		{"tether_session_feed_current", nil},
		{"tether_signing_key_age_seconds", []string{"state", "signing"}},
	} {
		if got := after.Value(t, d.name, d.labels...); got <= 0 {
			t.Errorf("%s%v: %v, want more than 0", d.name, d.labels, got)
		}
	}
	if _, ok := after["tether_revocation_propagation_seconds"]; !ok {
		t.Error("no family tether_revocation_propagation_seconds")
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for what, secret := range map[string]string{
		"a session cookie": phone.cookie(SessionCookie), "a csrf token": fresh, "the password": alicePW,
		"the user name": "alice", "the access token": tok, "the client secret": secret, "the client id": "billing",
	} {
		if secret == "" {
			t.Fatalf("no %s to look for", what)
		}
		if strings.Contains(rec.Body.String(), secret) {
			t.Errorf("the metrics carry %s", what)
		}
	}
}
