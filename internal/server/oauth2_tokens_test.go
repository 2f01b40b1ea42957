package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/token"
)

// inactive is INT-01's answer, byte for byte.
const inactive = "{\"active\":false}\n"

// introspect asks about tok as client id.
func (oh *oauthHarness) introspect(id, secret, tok string) *response {
	oh.t.Helper()
	return oh.post(introspectPath, id, secret, url.Values{"token": {tok}})
}

// revoke revokes tok as client id and fails the test unless the answer
// is 200 with an empty body.
func (oh *oauthHarness) revoke(id, secret, tok string) {
	oh.t.Helper()
	res := oh.post(revokePath, id, secret, url.Values{"token": {tok}, "token_type_hint": {"access_token"}})
	if res.status != http.StatusOK || res.body != "" {
		oh.t.Fatalf("revoke: status %d %q, want 200 and no body", res.status, res.body)
	}
}

func TestINT01_ActiveToken(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	api := oh.addClient("api", nil, []string{apiReports}, 0) // a resource server for apiReports
	one := oh.token("billing", secret, url.Values{"scope": {"invoices:read"}}).AccessToken
	two := oh.token("billing", secret, url.Values{"resource": {apiBilling, apiReports}}).AccessToken
	for _, tc := range []struct {
		name, caller, secret, tok string
		aud                       any
	}{
		{"own token", "billing", secret, one, apiBilling},
		{"own token, two audiences", "billing", secret, two, []any{apiBilling, apiReports}},
		{"a token for the caller's audience", "api", api, two, []any{apiBilling, apiReports}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := oh.introspect(tc.caller, tc.secret, tc.tok)
			if res.status != http.StatusOK || res.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("status %d, Cache-Control %q: %s", res.status, res.header.Get("Cache-Control"), res.body)
			}
			var got map[string]any
			res.decodeJSON(t, &got)
			c, err := oh.verifier(apiBilling).Verify(t.Context(), tc.tok)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"active": true, "scope": c.Scope, "client_id": "billing", "sub": "client:billing",
				"aud": tc.aud, "iss": oh.issuer, "exp": float64(c.Expiry.Unix()), "iat": float64(c.IssuedAt.Unix()),
				"jti": c.ID, "token_type": "Bearer",
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %v\nwant %v", got, want)
			}
		})
	}
}

func TestINT01_InactiveIsExactlyActiveFalse(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	other := oh.addClient("other", nil, []string{"https://other.example"}, 0)
	live := oh.token("billing", secret, nil).AccessToken
	revoked := oh.token("billing", secret, nil).AccessToken
	oh.revoke("billing", secret, revoked)
	subject := oh.token("billing", secret, nil).AccessToken

	// Signed by a key outside the ring, and by the ring for another issuer.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged := issueWith(t, oh.issuer, token.StaticKeys{KID: "forged", Alg: token.EdDSA, Key: priv})
	foreignIssuer := issueWith(t, "https://elsewhere.example", oh.ring)

	expired := oh.token("late", oh.addClient("late", nil, []string{apiBilling}, 0), nil).AccessToken
	for _, tc := range []struct {
		name, caller, secret, tok string
		before                    func()
	}{
		{name: "garbage", caller: "billing", secret: secret, tok: "not a token"},
		{name: "a token of another client's audience", caller: "other", secret: other, tok: live},
		{name: "revoked by jti", caller: "billing", secret: secret, tok: revoked},
		{name: "revoked by subject", caller: "billing", secret: secret, tok: subject, before: func() { oh.revokeSubject("client:billing") }},
		{name: "unknown kid", caller: "billing", secret: secret, tok: forged},
		{name: "another issuer", caller: "billing", secret: secret, tok: foreignIssuer},
		{name: "personal access token without a checker", caller: "billing", secret: secret, tok: account.PATPrefix + "abc"},
		{name: "expired", caller: "billing", secret: secret, tok: expired, before: func() { oh.clock.Advance(DefaultTokenTTL) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			res := oh.introspect(tc.caller, tc.secret, tc.tok)
			if res.status != http.StatusOK || res.body != inactive {
				t.Errorf("status %d %q, want 200 %q", res.status, res.body, inactive)
			}
		})
	}
}

// issueWith issues a token for billing, audience apiBilling, signed with
// keys as iss.
func issueWith(t *testing.T, iss string, keys token.Signer) string {
	t.Helper()
	i, err := token.NewIssuer(token.IssuerConfig{Issuer: iss, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := i.Issue(t.Context(), token.Grant{Subject: "client:billing", ClientID: "billing", Audience: []string{apiBilling}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestINT01_Errors: the caller must authenticate, and name a token; a
// store that can't tell fails closed (503), never "active".
func TestINT01_Errors(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	tok := oh.token("billing", secret, nil).AccessToken
	oauthError(t, oh.introspect("", "", tok), http.StatusUnauthorized, codeInvalidClient)
	oauthError(t, oh.introspect("billing", "wrong", tok), http.StatusUnauthorized, codeInvalidClient)
	oauthError(t, oh.post(introspectPath, "billing", secret, url.Values{"token_type_hint": {"access_token"}}), http.StatusBadRequest, codeInvalidRequest)
	oauthError(t, oh.post(introspectPath, "billing", secret, url.Values{"token": {tok, tok}}), http.StatusBadRequest, codeInvalidRequest)
	oh.store.all.Store(true)
	defer oh.store.all.Store(false)
	oauthError(t, oh.introspect("billing", secret, tok), http.StatusServiceUnavailable, codeUnavailable)
}

func TestREV01_RevokeOwnToken(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	tok := oh.token("billing", secret, nil).AccessToken
	c, err := oh.verifier(apiBilling).Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	oh.revoke("billing", secret, tok)
	if _, err := oh.verifier(apiBilling).Verify(t.Context(), tok); !errors.Is(err, token.ErrRevoked) {
		t.Errorf("after revocation: got %v, want ErrRevoked", err)
	}
	if res := oh.introspect("billing", secret, tok); res.body != inactive {
		t.Errorf("introspection after revocation: %s", res.body)
	}
	if revoked := oh.revoked(); len(revoked) != 1 || revoked[0].JTI != c.ID || !revoked[0].Exp.Equal(c.Expiry.Add(token.MaxLeeway)) {
		t.Errorf("denylist entries %+v, want the token's jti until its exp and the most leeway (JWT-09)", revoked)
	}
	recs := oh.logs.Records(t, "audit")
	last := recs[len(recs)-1]
	if last["event"] != "token-revoke" || last["outcome"] != "success" || last["jti"] != c.ID {
		t.Errorf("audit record %v", last)
	}
	oh.revoke("billing", secret, tok) // again: 200
}

// TestREV01_NotRevokedButOK: another client's token is not revoked, and
// neither is anything that isn't one of the caller's tokens; the answer
// is 200 all the same.
func TestREV01_NotRevokedButOK(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	thief := oh.addClient("thief", []string{"invoices:read"}, []string{apiBilling}, 0) // the same audience
	tok := oh.token("billing", secret, nil).AccessToken
	expired := oh.token("late", oh.addClient("late", nil, []string{apiBilling}, 0), nil).AccessToken
	for _, tc := range []struct{ name, tok string }{
		{"another client's token", tok},
		{"garbage", "garbage"},
		{"a personal access token", account.PATPrefix + "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oh.revoke("thief", thief, tc.tok)
		})
	}
	if revoked := oh.revoked(); len(revoked) != 0 {
		t.Fatalf("revoked %+v", revoked)
	}
	if _, err := oh.verifier(apiBilling).Verify(t.Context(), tok); err != nil {
		t.Errorf("billing's token after thief's revocation: %v", err)
	}
	oh.clock.Advance(DefaultTokenTTL)
	oh.revoke("billing", secret, expired)
	if revoked := oh.revoked(); len(revoked) != 0 {
		t.Fatalf("an expired token went on the denylist: %+v", revoked)
	}
}

func TestREV01_Errors(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	tok := oh.token("billing", secret, nil).AccessToken
	oauthError(t, oh.post(revokePath, "", "", url.Values{"token": {tok}}), http.StatusUnauthorized, codeInvalidClient)
	oauthError(t, oh.post(revokePath, "billing", "wrong", url.Values{"token": {tok}}), http.StatusUnauthorized, codeInvalidClient)
	oauthError(t, oh.post(revokePath, "billing", secret, url.Values{}), http.StatusBadRequest, codeInvalidRequest)
	oauthError(t, oh.client().do(http.MethodGet, revokePath, nil), http.StatusMethodNotAllowed, codeInvalidRequest)

	// A revocation that can't be written is not reported done (SES-15).
	oh.store.revokeToken.Store(true)
	oauthError(t, oh.post(revokePath, "billing", secret, url.Values{"token": {tok}}), http.StatusServiceUnavailable, codeUnavailable)
	oh.store.revokeToken.Store(false)
	if _, err := oh.verifier(apiBilling).Verify(t.Context(), tok); err != nil {
		t.Errorf("after a failed revocation: %v", err)
	}
	// Nor one whose token can't be checked.
	oh.store.all.Store(true)
	oauthError(t, oh.post(revokePath, "billing", secret, url.Values{"token": {tok}}), http.StatusServiceUnavailable, codeUnavailable)
	oh.store.all.Store(false)
}

// TestCHG03_RevokedClientTokensDead: raising the client subject's
// generation kills every token issued before, in the same second too,
// at the verifier and at introspection; a token issued after lives.
func TestCHG03_RevokedClientTokensDead(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	old := oh.token("billing", secret, nil).AccessToken
	oh.revokeSubject("client:billing")
	if _, err := oh.verifier(apiBilling).Verify(t.Context(), old); !errors.Is(err, token.ErrRevoked) {
		t.Errorf("got %v, want ErrRevoked", err)
	}
	if res := oh.introspect("billing", secret, old); res.body != inactive {
		t.Errorf("introspection: %s", res.body)
	}
	fresh := oh.token("billing", secret, nil).AccessToken
	if res := oh.introspect("billing", secret, fresh); !strings.HasPrefix(res.body, `{"active":true`) {
		t.Errorf("introspection of a new token: %s", res.body)
	}
}

// TestKEY01_JWKSEndpoint: the ring's public keys, cached for the ring's
// MaxAge (KEY-02); a ring that fails answers 503 in JSON.
func TestKEY01_JWKSEndpoint(t *testing.T) {
	failing := &failingRing{}
	oh := newOAuthHarness(t, oauthOpts{tokens: func(tk *Tokens) { failing.KeyRing = tk.Keys; tk.Keys = failing }})
	res := oh.client().do(http.MethodGet, jwksPath, nil)
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/jwk-set+json" ||
		res.header.Get("Cache-Control") != "public, max-age=900" {
		t.Fatalf("status %d, headers %v", res.status, res.header)
	}
	set, skipped, err := keys.ParseJWKS([]byte(res.body))
	kid, _, _, _ := oh.ring.SigningKey(t.Context())
	if err != nil || len(skipped) != 0 || len(set) != 1 || set[0].Kid != kid {
		t.Errorf("JWKS %s: %v, skipped %v", res.body, err, skipped)
	}
	if strings.Contains(res.body, `"d"`) {
		t.Error("a private member in the JWKS")
	}
	failing.fail = true
	oauthError(t, oh.client().do(http.MethodGet, jwksPath, nil), http.StatusServiceUnavailable, codeUnavailable)
	failing.panic = true
	oauthError(t, oh.client().do(http.MethodGet, jwksPath, nil), http.StatusInternalServerError, codeServerError)
}

// failingRing is a KeyRing whose JWKS fails, or panics, when told to.
type failingRing struct {
	KeyRing
	fail, panic bool // set before the requests that read them
}

func (f *failingRing) JWKS(ctx context.Context) ([]byte, error) {
	if f.panic {
		panic("test")
	}
	if f.fail {
		return nil, errStoreDown
	}
	return f.KeyRing.JWKS(ctx)
}

func TestOAuthMetadata(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	res := oh.client().do(http.MethodGet, metadataPath, nil)
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/json" || res.header.Get("Cache-Control") != "public, max-age=3600" {
		t.Fatalf("status %d, headers %v", res.status, res.header)
	}
	var md map[string]any
	res.decodeJSON(t, &md)
	methods := "[client_secret_basic client_secret_post]"
	want := map[string]any{
		"issuer":                                        oh.issuer,
		"token_endpoint":                                oh.issuer + tokenPath,
		"jwks_uri":                                      oh.issuer + jwksPath,
		"revocation_endpoint":                           oh.issuer + revokePath,
		"introspection_endpoint":                        oh.issuer + introspectPath,
		"grant_types_supported":                         "[client_credentials]",
		"response_types_supported":                      "[]",
		"token_endpoint_auth_methods_supported":         methods,
		"revocation_endpoint_auth_methods_supported":    methods,
		"introspection_endpoint_auth_methods_supported": methods,
	}
	if fmt.Sprint(md) != fmt.Sprint(want) {
		t.Errorf("got %v\nwant %v", md, want)
	}
}

// TestOAuthOff: without Config.Tokens, the endpoints are not there.
func TestOAuthOff(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, path := range []string{tokenPath, revokePath, introspectPath} {
		if res := h.client().form(path, url.Values{"grant_type": {"client_credentials"}}); res.status != http.StatusNotFound {
			t.Errorf("POST %s: status %d, want 404", path, res.status)
		}
	}
	for _, path := range []string{jwksPath, metadataPath} {
		if res := h.client().do(http.MethodGet, path, nil); res.status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, res.status)
		}
	}
}

func TestOAuthConfig(t *testing.T) {
	ring := testRing(t, time.Now)
	ok := Tokens{Issuer: "https://auth.example", Keys: ring, Clients: &account.SQLite{}, Revocations: StoreRevocations{}}
	for _, tc := range []struct {
		name   string
		change func(*Tokens)
		want   string // in the error; "" for none
	}{
		{"valid", func(*Tokens) {}, ""},
		{"loopback over http", func(tk *Tokens) { tk.Issuer = "http://127.0.0.1:8080" }, ""},
		{"no issuer", func(tk *Tokens) { tk.Issuer = "" }, "Issuer is required"},
		{"http", func(tk *Tokens) { tk.Issuer = "http://auth.example" }, "must be https"},
		{"query", func(tk *Tokens) { tk.Issuer = "https://auth.example/?a=b" }, "no user, query or fragment"},
		{"fragment", func(tk *Tokens) { tk.Issuer = "https://auth.example/#" }, "no user, query or fragment"},
		{"user", func(tk *Tokens) { tk.Issuer = "https://u@auth.example" }, "no user, query or fragment"},
		{"not a URL", func(tk *Tokens) { tk.Issuer = "auth.example" }, "no user, query or fragment"},
		{"no keys", func(tk *Tokens) { tk.Keys = nil }, "Tokens.Keys is required"},
		{"no clients", func(tk *Tokens) { tk.Clients = nil }, "Tokens.Clients is required"},
		{"no revocations", func(tk *Tokens) { tk.Revocations = nil }, "Tokens.Revocations is required"},
		{"lifetime under a second", func(tk *Tokens) { tk.TTL = time.Millisecond }, "DefaultTTL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := ok
			tc.change(&tk)
			_, err := newOAuth(&tk, time.Now)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestOAuthErrorsAreJSON: the layers in front of the endpoints answer
// them in RFC 6749's shape too.
func TestOAuthErrorsAreJSON(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{harnessOpts: harnessOpts{plain: true, hosts: []string{"127.0.0.1", "auth.example"}}})
	secret := oh.addBilling()
	form := "grant_type=client_credentials"
	ct := "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name   string
		path   string
		hdr    []string
		status int
		code   string
	}{
		{"foreign host", tokenPath, []string{"Host", "evil.example"}, http.StatusMisdirectedRequest, codeInvalidRequest},
		{"plain HTTP", tokenPath, []string{"Host", "auth.example"}, http.StatusForbidden, codeInvalidRequest},
		{"cross-origin", tokenPath, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden, codeInvalidRequest},
		{"duplicate session cookie", tokenPath, []string{"Cookie", sessionCookie + "=a; " + sessionCookie + "=b"}, http.StatusBadRequest, codeInvalidRequest},
		{"no such endpoint", "/oauth2/authorize", nil, http.StatusNotFound, codeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, oh.srv.URL+tc.path, strings.NewReader(form))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", ct)
			req.Header.Set("Authorization", basic("billing", secret))
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				if tc.hdr[i] == "Host" {
					req.Host = tc.hdr[i+1]
				} else {
					req.Header.Set(tc.hdr[i], tc.hdr[i+1])
				}
			}
			res, err := oh.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			oauthError(t, &response{status: res.StatusCode, header: res.Header, body: string(body)}, tc.status, tc.code)
		})
	}
}

// INT-01: a token of a client that was disabled or deleted is inactive at
// introspection even when its subject's generation was never raised (the
// session store lost it: its data wiped), because the client is read from
// the account store, the durable one.
func TestINT01_TokenOfGoneClientInactive(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	ci := oh.addClient("ci", []string{"deploy"}, []string{apiBilling}, 0)
	tok := oh.token("ci", ci, nil).AccessToken
	if res := oh.introspect("billing", secret, tok); res.status != http.StatusOK || !strings.Contains(res.body, `"active":true`) {
		t.Fatalf("a live token: %d %s", res.status, res.body)
	}
	if err := oh.clients.SetClientDisabled(t.Context(), "ci", true); err != nil {
		t.Fatal(err)
	}
	if res := oh.introspect("billing", secret, tok); res.status != http.StatusOK || res.body != inactive {
		t.Errorf("a disabled client's token: %d %s, want %s", res.status, res.body, inactive)
	}
	if err := oh.clients.DeleteClient(t.Context(), "ci"); err != nil {
		t.Fatal(err)
	}
	if res := oh.introspect("billing", secret, tok); res.status != http.StatusOK || res.body != inactive {
		t.Errorf("a deleted client's token: %d %s, want %s", res.status, res.body, inactive)
	}
}
