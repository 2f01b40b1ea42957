package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/throttle"
	"github.com/tetherauth/tether/token"
)

func TestOAuthToken_ClientCredentials(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	for _, tc := range []struct {
		name string
		send func(form url.Values) *response
	}{
		{"client_secret_basic", func(form url.Values) *response { return oh.post(tokenPath, "billing", secret, form) }},
		{"client_secret_post", func(form url.Values) *response {
			form.Set("client_id", "billing")
			form.Set("client_secret", secret)
			return oh.post(tokenPath, "", "", form)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.send(url.Values{"grant_type": {"client_credentials"}})
			if res.status != http.StatusOK {
				t.Fatalf("status %d: %s", res.status, res.body)
			}
			if cc, p := res.header.Get("Cache-Control"), res.header.Get("Pragma"); cc != "no-store" || p != "no-cache" {
				t.Errorf("Cache-Control %q, Pragma %q: want no-store, no-cache (RFC 6749 §5.1)", cc, p)
			}
			var out tokenResponse
			res.decodeJSON(t, &out)
			if out.TokenType != "Bearer" || out.ExpiresIn != 600 || out.Scope != "invoices:read invoices:write" {
				t.Errorf("got %+v, want Bearer, 600 s (JWT-04), every scope of the client", out)
			}
			c, err := oh.verifier(apiBilling).Verify(t.Context(), out.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "client:billing" || c.ClientID != "billing" || c.Issuer != oh.issuer ||
				len(c.Audience) != 1 || c.Expiry.Sub(c.IssuedAt) != DefaultTokenTTL {
				t.Errorf("claims %+v: want sub client:billing (JWT-12), the first audience, 10 min", c)
			}
		})
	}
}

func TestOAuthToken_ScopeAndAudience(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	for _, tc := range []struct {
		name      string
		form      url.Values
		scope     string
		audiences []string
	}{
		{"one scope", url.Values{"scope": {"invoices:read"}}, "invoices:read", []string{apiBilling}},
		{"scopes in any order, repeated", url.Values{"scope": {"invoices:write invoices:read invoices:write"}}, "invoices:read invoices:write", []string{apiBilling}},
		{"resource", url.Values{"resource": {apiReports}}, "invoices:read invoices:write", []string{apiReports}},
		{"two resources", url.Values{"resource": {apiReports, apiBilling}}, "invoices:read invoices:write", []string{apiBilling, apiReports}},
		{"audience", url.Values{"audience": {apiReports}}, "invoices:read invoices:write", []string{apiReports}},
		{"empty scope is no scope", url.Values{"scope": {""}}, "invoices:read invoices:write", []string{apiBilling}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := oh.token("billing", secret, tc.form)
			if out.Scope != tc.scope {
				t.Errorf("scope %q, want %q", out.Scope, tc.scope)
			}
			c, err := oh.verifier(tc.audiences[0]).Verify(t.Context(), out.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(c.Audience, " ") != strings.Join(tc.audiences, " ") || c.Scope != tc.scope {
				t.Errorf("aud %q scope %q, want %q %q", c.Audience, c.Scope, tc.audiences, tc.scope)
			}
		})
	}
}

func TestJWT04_TokenLifetimeCapped(t *testing.T) {
	for _, tc := range []struct {
		name            string
		ttl, max, cl    time.Duration
		wantExpiresIn   int64
		wantConfigError bool
	}{
		{name: "default", wantExpiresIn: 600},
		{name: "client's cap", cl: 2 * time.Minute, wantExpiresIn: 120},
		{name: "client's cap above the lifetime", cl: time.Hour, wantExpiresIn: 600},
		{name: "server's cap", max: 5 * time.Minute, wantExpiresIn: 300},
		{name: "lifetime", ttl: 30 * time.Minute, wantExpiresIn: 1800},
		{name: "lifetime over the cap", ttl: 2 * time.Hour, wantConfigError: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantConfigError {
				_, err := newOAuth(&Tokens{Issuer: "https://a.example", Keys: testRing(t, time.Now), Clients: &account.SQLite{}, Revocations: StoreRevocations{}, TTL: tc.ttl}, time.Now)
				if err == nil {
					t.Fatal("a lifetime over the cap was accepted")
				}
				return
			}
			oh := newOAuthHarness(t, oauthOpts{tokens: func(tk *Tokens) { tk.TTL, tk.MaxTTL = tc.ttl, tc.max }})
			secret := oh.addClient("ci", nil, []string{apiBilling}, tc.cl)
			out := oh.token("ci", secret, nil)
			if out.ExpiresIn != tc.wantExpiresIn {
				t.Errorf("expires_in %d, want %d", out.ExpiresIn, tc.wantExpiresIn)
			}
			c, err := oh.verifier(apiBilling).Verify(t.Context(), out.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if got := int64(c.Expiry.Sub(c.IssuedAt) / time.Second); got != tc.wantExpiresIn || c.Scope != "" {
				t.Errorf("exp - iat = %d s, scope %q: want %d s, none", got, c.Scope, tc.wantExpiresIn)
			}
		})
	}
}

func TestOAuthToken_Errors(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	disabledSecret := oh.addClient("gone", nil, []string{apiBilling}, 0)
	if err := oh.clients.SetClientDisabled(t.Context(), "gone", true); err != nil {
		t.Fatal(err)
	}
	grant := "grant_type=client_credentials"
	auth := basic("billing", secret)
	for _, tc := range []struct {
		name   string
		method string // default POST
		path   string // default the token endpoint
		body   string
		hdr    []string // default: form content type, billing's Basic credentials
		status int
		code   string
	}{
		{name: "GET", method: http.MethodGet, status: http.StatusMethodNotAllowed, code: codeInvalidRequest},
		{name: "JSON body", body: `{"grant_type":"client_credentials"}`, hdr: []string{"Content-Type", "application/json", "Authorization", auth}, status: 400, code: codeInvalidRequest},
		{name: "no content type", body: grant, hdr: []string{"Authorization", auth}, status: 400, code: codeInvalidRequest},
		{name: "parameters in the URL", path: tokenPath + "?" + grant, body: grant, status: 400, code: codeInvalidRequest},
		{name: "grant_type twice", body: grant + "&" + grant, status: 400, code: codeInvalidRequest},
		{name: "no grant_type", body: "scope=invoices:read", status: 400, code: codeInvalidRequest},
		{name: "password grant", body: "grant_type=password&username=a&password=b", status: 400, code: codeUnsupportedGrantType},
		{name: "body too large", body: grant + "&x=" + strings.Repeat("a", maxOAuthBody), status: 400, code: codeInvalidRequest},
		{name: "no client authentication", body: grant, hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 401, code: codeInvalidClient},
		{name: "unknown client", body: grant, hdr: []string{"Authorization", basic("nobody", secret)}, status: 401, code: codeInvalidClient},
		{name: "wrong secret, Basic", body: grant, hdr: []string{"Authorization", basic("billing", "wrong")}, status: 401, code: codeInvalidClient},
		{name: "wrong secret, form", body: grant + "&client_id=billing&client_secret=wrong", hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 401, code: codeInvalidClient},
		{name: "disabled client", body: grant, hdr: []string{"Authorization", basic("gone", disabledSecret)}, status: 401, code: codeInvalidClient},
		{name: "malformed client id", body: grant, hdr: []string{"Authorization", basic("Billing", secret)}, status: 401, code: codeInvalidClient},
		{name: "Bearer instead of Basic", body: grant, hdr: []string{"Authorization", "Bearer " + secret}, status: 401, code: codeInvalidClient},
		{name: "Basic and form", body: grant + "&client_id=billing&client_secret=" + url.QueryEscape(secret), status: 400, code: codeInvalidRequest},
		{name: "scope not the client's", body: grant + "&scope=invoices:read+admin", status: 400, code: codeInvalidScope},
		{name: "malformed scope", body: grant + "&scope=invoices:read++invoices:write", status: 400, code: codeInvalidScope},
		{name: "resource not the client's", body: grant + "&resource=https://evil.example", status: 400, code: codeInvalidTarget},
		{name: "audience not the client's", body: grant + "&audience=https://evil.example", status: 400, code: codeInvalidTarget},
		{name: "resource and audience", body: grant + "&resource=" + apiBilling + "&audience=" + apiBilling, status: 400, code: codeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := cmpOr(tc.method, http.MethodPost)
			path := cmpOr(tc.path, tokenPath)
			hdr := tc.hdr
			if hdr == nil {
				hdr = []string{"Content-Type", "application/x-www-form-urlencoded", "Authorization", auth}
			} else if !strings.Contains(strings.Join(hdr, " "), "Content-Type") && tc.name != "no content type" {
				hdr = append(hdr, "Content-Type", "application/x-www-form-urlencoded")
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			res := oh.client().do(method, path, body, hdr...)
			oauthError(t, res, tc.status, tc.code)
			if tc.method == http.MethodGet && res.header.Get("Allow") != "POST" {
				t.Errorf("Allow %q, want POST", res.header.Get("Allow"))
			}
		})
	}
}

// cmpOr is cmp.Or for strings in a table.
func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestOAuthToken_UnauthorizedClient(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addClient("nowhere", []string{"x"}, nil, 0)
	res := oh.post(tokenPath, "nowhere", secret, url.Values{"grant_type": {"client_credentials"}})
	oauthError(t, res, http.StatusBadRequest, codeUnauthorizedClient)
}

// TestSES11_TokenStoreDown: a store that fails, or answers too late,
// fails the request closed: 503 temporarily_unavailable with
// Retry-After, never a token (MISC-05).
func TestSES11_TokenStoreDown(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	for _, tc := range []struct {
		name string
		fail func(bool)
	}{
		{"clients", oh.clients.fail.Store},
		{"generations", oh.store.all.Store},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fail(true)
			defer tc.fail(false)
			res := oh.post(tokenPath, "billing", secret, url.Values{"grant_type": {"client_credentials"}})
			oauthError(t, res, http.StatusServiceUnavailable, codeUnavailable)
			if res.header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
		})
	}
	t.Run("recovers", func(t *testing.T) { oh.token("billing", secret, nil) })
}

// TestMISC05_OAuthStuckStores: a client store, a revocation state or a
// throttle that stops answering fails the request with 503 and
// Retry-After once the store timeout has passed, never a hang; so does
// a forward-auth check of an access token, or of a session with an
// assertion to sign.
func TestMISC05_OAuthStuckStores(t *testing.T) {
	const timeout = 500 * time.Millisecond
	form := url.Values{"grant_type": {"client_credentials"}}
	// The forward-auth rows' callers: billing's token, or alice signed in.
	byToken := func(oh *oauthHarness, tok string) (*client, []string) {
		return oh.client(), []string{"Authorization", "Bearer " + tok}
	}
	bySession := func(oh *oauthHarness, _ string) (*client, []string) {
		oh.addUser("alice", alicePW, false)
		c := oh.client()
		c.login("alice", alicePW)
		return c, nil
	}
	for _, tc := range []struct {
		name  string
		path  string
		stick func(oh *oauthHarness, seen chan time.Time)
		// caller, for a forward-auth row, is who asks, set up before the
		// store sticks; nil for the OAuth endpoints, which billing asks.
		caller func(oh *oauthHarness, tok string) (*client, []string)
	}{
		{"clients", tokenPath, func(oh *oauthHarness, seen chan time.Time) { oh.clients.stuck.Store(&seen) }, nil},
		{"generations", tokenPath, func(oh *oauthHarness, seen chan time.Time) { oh.store.stuck.Store(&seen) }, nil},
		{"revocation check", introspectPath, func(oh *oauthHarness, seen chan time.Time) { oh.store.stuck.Store(&seen) }, nil},
		{"revocation", revokePath, func(oh *oauthHarness, seen chan time.Time) { oh.store.stuck.Store(&seen) }, nil},
		{"forward-auth token", verifyPath + "?audience=" + url.QueryEscape(apiBilling), func(oh *oauthHarness, seen chan time.Time) { oh.store.stuck.Store(&seen) }, byToken},
		{"forward-auth assertion", verifyPath + "?assertion=" + url.QueryEscape(apiReports), func(oh *oauthHarness, seen chan time.Time) { oh.store.stuck.Store(&seen) }, bySession},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oh := newOAuthHarness(t, oauthOpts{harnessOpts: harnessOpts{storeTimeout: timeout, asserted: []string{apiReports}}})
			secret := oh.addBilling()
			tok := oh.token("billing", secret, nil).AccessToken
			form := url.Values{"grant_type": {"client_credentials"}, "token": {tok}}
			var c *client
			var hdr []string
			if tc.caller != nil {
				c, hdr = tc.caller(oh, tok)
			}
			seen := make(chan time.Time, 10)
			tc.stick(oh, seen)
			start := time.Now()
			if c != nil {
				res := c.do(http.MethodGet, tc.path, nil, hdr...)
				if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
					t.Errorf("status %d, Retry-After %q; want 503 with Retry-After", res.status, res.header.Get("Retry-After"))
				}
			} else {
				res := oh.post(tc.path, "billing", secret, form)
				oauthError(t, res, http.StatusServiceUnavailable, codeUnavailable)
				if res.header.Get("Retry-After") == "" {
					t.Error("no Retry-After")
				}
			}
			checkDeadline(t, <-seen, start, timeout)
		})
	}
	t.Run("throttle", func(t *testing.T) {
		seen := make(chan time.Time, 10)
		oh := newOAuthHarness(t, oauthOpts{harnessOpts: harnessOpts{storeTimeout: timeout,
			wrapThrottle: func(th Throttle) Throttle { return stuckThrottle{th, seen} }}})
		start := time.Now()
		oauthError(t, oh.post(tokenPath, "billing", oh.addBilling(), form), http.StatusServiceUnavailable, codeUnavailable)
		checkDeadline(t, <-seen, start, timeout)
	})
}

// TestSES11_TokenNoSigningKey: a ring with no key to sign with (after an
// emergency removal) answers 503, not a token and not a 500.
func TestSES11_TokenNoSigningKey(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	kid, _, _, err := oh.ring.SigningKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := oh.ring.Retire(t.Context(), kid, true); err != nil {
		t.Fatal(err)
	}
	oauthError(t, oh.post(tokenPath, "billing", secret, url.Values{"grant_type": {"client_credentials"}}), http.StatusServiceUnavailable, codeUnavailable)
}

// TestPW06_ClientSecretThrottled: failed client authentications count
// per client and per address; past the allowance even the right secret
// waits, and right secrets count nothing.
func TestPW06_ClientSecretThrottled(t *testing.T) {
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	oh := newOAuthHarness(t, oauthOpts{harnessOpts: harnessOpts{free: 3, proxies: []netip.Prefix{loopback}}})
	secret := oh.addBilling()
	other := oh.addClient("other", nil, []string{apiBilling}, 0)
	form := url.Values{"grant_type": {"client_credentials"}}
	from := func(ip string) []string { return []string{"X-Forwarded-For", ip} }
	for range 10 { // successes don't add up
		oh.token("billing", secret, nil)
	}
	for range 4 { // the allowance, and the first attempt past it
		oauthError(t, oh.post(tokenPath, "billing", "guess", form, from("192.0.2.1")...), http.StatusUnauthorized, codeInvalidClient)
	}
	for _, tc := range []struct {
		name, id, secret, ip string
	}{
		{"another guess", "billing", "guess", "192.0.2.1"},
		{"the right secret", "billing", secret, "192.0.2.1"},
		{"the client from another address", "billing", secret, "198.51.100.1"},
		{"another client from the address", "other", other, "192.0.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := oh.post(tokenPath, tc.id, tc.secret, form, from(tc.ip)...)
			oauthError(t, res, http.StatusTooManyRequests, codeUnavailable)
			if res.header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
		})
	}
	oauthError(t, oh.post(revokePath, "billing", secret, url.Values{"token": {"x"}}, from("192.0.2.1")...), http.StatusTooManyRequests, codeUnavailable)
	if res := oh.post(tokenPath, "other", other, form, from("198.51.100.1")...); res.status != http.StatusOK {
		t.Errorf("another client from another address: status %d", res.status)
	}
	oh.clock.Advance(time.Hour)
	oh.token("billing", secret, nil)
}

// TestPW06_ClientThrottleChecksFirst: the throttle is read before the
// secret is checked and only failures count (package throttle, "Checking
// first"): a right secret from an address past its allowance is refused,
// whichever client its failures were against; from a fresh address the
// right secret passes, as often as it is sent, until the client id's own
// allowance is used up by failures, and then it waits too.
func TestPW06_ClientThrottleChecksFirst(t *testing.T) {
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	var writes atomic.Int64
	oh := newOAuthHarness(t, oauthOpts{harnessOpts: harnessOpts{free: 3, proxies: []netip.Prefix{loopback},
		wrapThrottle: func(th Throttle) Throttle { return writingThrottle{th, &writes} }}})
	secret := oh.addBilling()
	oh.addClient("other", nil, []string{apiBilling}, 0)
	form := url.Values{"grant_type": {"client_credentials"}}
	post := func(id, secret, ip string) *response {
		return oh.post(tokenPath, id, secret, form, "X-Forwarded-For", ip)
	}
	wantStatus := func(what string, res *response, status int) {
		t.Helper()
		if res.status != status {
			t.Fatalf("%s: status %d, want %d: %s", what, res.status, status, res.body)
		}
		if status == http.StatusTooManyRequests && res.header.Get("Retry-After") == "" {
			t.Errorf("%s: 429 without Retry-After", what)
		}
	}
	const attacker = "192.0.2.1"
	for _, id := range []string{"billing", "billing", "other", "other"} { // the address: 4 failures, past its 3
		wantStatus("a guess", post(id, "guess", attacker), http.StatusUnauthorized)
	}
	wantStatus("the right secret from the address", post("billing", secret, attacker), http.StatusTooManyRequests)
	before := writes.Load()
	for i := range 10 { // billing: 2 failures, within its 3
		wantStatus(fmt.Sprint("the right secret from a fresh address, ", i), post("billing", secret, "198.51.100.1"), http.StatusOK)
	}
	if n := writes.Load() - before; n != 0 {
		t.Errorf("10 right secrets made %d throttle writes, want none", n)
	}
	wantStatus("a third guess at billing", post("billing", "guess", "198.51.100.2"), http.StatusUnauthorized)
	wantStatus("the right secret, billing's allowance just used", post("billing", secret, "198.51.100.3"), http.StatusOK)
	wantStatus("a fourth guess at billing", post("billing", "guess", "198.51.100.4"), http.StatusUnauthorized)
	wantStatus("the right secret, billing past its allowance", post("billing", secret, "198.51.100.5"), http.StatusTooManyRequests)
	wantStatus("another client from a fresh address", post("other", "guess", "198.51.100.6"), http.StatusUnauthorized)
}

// writingThrottle counts the calls to its writes, Attempt and Refund.
type writingThrottle struct {
	Throttle
	writes *atomic.Int64
}

func (w writingThrottle) Attempt(ctx context.Context, keys ...throttle.Key) (time.Duration, error) {
	w.writes.Add(1)
	return w.Throttle.Attempt(ctx, keys...)
}

func (w writingThrottle) Refund(ctx context.Context, keys ...string) error {
	w.writes.Add(1)
	return w.Throttle.Refund(ctx, keys...)
}

// passingThrottle is a throttle whose Wait always lets the request
// through, as a read made before a concurrent request's failure was
// counted does, and whose Attempt fails with err when it is set.
type passingThrottle struct {
	Throttle
	err error
}

func (p passingThrottle) Wait(context.Context, ...throttle.Key) (time.Duration, error) { return 0, nil }

func (p passingThrottle) Attempt(ctx context.Context, keys ...throttle.Key) (time.Duration, error) {
	if p.err != nil {
		return 0, p.err
	}
	return p.Throttle.Attempt(ctx, keys...)
}

// TestPW06_ClientFailureUncountedGetsNoVerdict: a failed client
// authentication is answered invalid_client only once the throttle has
// counted it. When the throttle refuses to count it (a burst's guesses
// all passed the read: the trade-off of checking first), the answer is
// 429, and when the throttle fails, 503: a guess that isn't counted
// learns nothing. A right secret is checked and answered all the same.
func TestPW06_ClientFailureUncountedGetsNoVerdict(t *testing.T) {
	form := url.Values{"grant_type": {"client_credentials"}}
	t.Run("refused", func(t *testing.T) {
		oh := newOAuthHarness(t, oauthOpts{harnessOpts: harnessOpts{free: 3,
			wrapThrottle: func(th Throttle) Throttle { return passingThrottle{Throttle: th} }}})
		secret := oh.addBilling()
		for range 4 { // counted: the allowance and the first past it
			oauthError(t, oh.post(tokenPath, "billing", "guess", form), http.StatusUnauthorized, codeInvalidClient)
		}
		res := oh.post(tokenPath, "billing", "guess", form)
		oauthError(t, res, http.StatusTooManyRequests, codeUnavailable)
		if res.header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		oh.token("billing", secret, nil)
		if !oh.logs.Contains("wrong secret, not counted: throttled") {
			t.Error("the uncounted failure is not in the audit log")
		}
	})
	t.Run("throttle fails", func(t *testing.T) {
		oh := newOAuthHarness(t, oauthOpts{harnessOpts: harnessOpts{
			wrapThrottle: func(th Throttle) Throttle { return passingThrottle{th, errStoreDown} }}})
		secret := oh.addBilling()
		for _, guess := range []string{"billing", "nobody"} {
			res := oh.post(tokenPath, guess, "guess", form)
			oauthError(t, res, http.StatusServiceUnavailable, codeUnavailable)
			if res.header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
		}
		oh.token("billing", secret, nil)
	})
}

// TestPW07_TokenAudit: issuance and its refusals are audit events, with
// the client and the token's jti, never the secret or the token.
func TestPW07_TokenAudit(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	out := oh.token("billing", secret, nil)
	oh.post(tokenPath, "billing", "wrong-secret", url.Values{"grant_type": {"client_credentials"}})
	c, err := oh.verifier(apiBilling).Verify(t.Context(), out.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, rec := range oh.logs.Records(t, "audit") {
		if rec["event"] == "token-issue" && rec["client_id"] == "billing" {
			outcomes = append(outcomes, rec["outcome"].(string))
			if rec["outcome"] == "success" && rec["jti"] != c.ID {
				t.Errorf("success record %v: want jti %s", rec, c.ID)
			}
		}
	}
	if strings.Join(outcomes, ",") != "success,failure" {
		t.Errorf("outcomes %q, want success then failure", outcomes)
	}
	if logs := oh.logs.String(); strings.Contains(logs, secret) || strings.Contains(logs, out.AccessToken) || strings.Contains(logs, "wrong-secret") {
		t.Error("a secret or a token is in the log")
	}
}

// TestCHG03_TokenCarriesGenerationReadBeforeCheck: a revocation of the
// client's subject that lands while its credentials are being checked
// kills the token the request is issued, as it would one issued a moment
// before: the generation in it was read before the check.
func TestCHG03_TokenCarriesGenerationReadBeforeCheck(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	revoke := func(id string) { oh.revokeSubject(token.ClientSubject(id)) }
	oh.clients.onClient.Store(&revoke)
	out := oh.token("billing", secret, nil)
	oh.clients.onClient.Store(nil)
	if _, err := oh.verifier(apiBilling).Verify(t.Context(), out.AccessToken); !errors.Is(err, token.ErrRevoked) {
		t.Fatalf("got %v, want ErrRevoked", err)
	}
	// Issued after the revocation, in the same second: live.
	if _, err := oh.verifier(apiBilling).Verify(t.Context(), oh.token("billing", secret, nil).AccessToken); err != nil {
		t.Fatal(err)
	}
}
