package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tetherauth/tether/token"
)

const (
	testIssuer   = "http://127.0.0.1:8080"
	testAudience = "https://api.example.com"
)

// TestParseConfig: the flags and the secret, and every problem of a bad
// command line reported at once.
func TestParseConfig(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == SecretEnv {
				return v
			}
			return ""
		}
	}
	good := []string{"-tether", testIssuer + "/", "-audience", testAudience, "-client-id", "api"}
	tests := []struct {
		name    string
		args    []string
		env     string
		want    config
		wantErr []string // each in the error
	}{
		{"env secret", good, "from-env",
			config{addr: "127.0.0.1:8090", tether: testIssuer, issuer: testIssuer, audience: testAudience,
				scope: "whoami:read", clientID: "api", secret: "from-env", maxStaleness: 5e9}, nil},
		{"file secret, own issuer", append(slices.Clone(good), "-client-secret-file", secretFile, "-issuer", "https://auth.example.com"), "from-env",
			config{addr: "127.0.0.1:8090", tether: testIssuer, issuer: "https://auth.example.com", audience: testAudience,
				scope: "whoami:read", clientID: "api", secret: "from-file", maxStaleness: 5e9}, nil},
		{"nothing", nil, "", config{}, []string{"-tether", "-audience is required", "-client-id is required", "secret is required"}},
		{"not a URL", []string{"-tether", "ftp://x", "-audience", "a", "-client-id", "c"}, "s", config{}, []string{`-tether "ftp://x"`}},
		{"missing file", append(slices.Clone(good), "-client-secret-file", filepath.Join(t.TempDir(), "none")), "", config{}, []string{"-client-secret-file"}},
		{"staleness", append(slices.Clone(good), "-max-staleness", "0s"), "s", config{}, []string{"-max-staleness 0s"}},
		{"arguments", append(slices.Clone(good), "extra"), "s", config{}, []string{"unexpected arguments"}},
		{"unknown flag", []string{"-nope"}, "s", config{}, []string{"-nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, env(tt.env), io.Discard)
			if tt.wantErr == nil {
				if err != nil || got != tt.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			for _, w := range tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("got error %v, want one saying %q", err, w)
				}
			}
		})
	}
}

// ready is a readiness the test sets.
type ready struct{ atomic.Bool }

func (r *ready) Current() bool { return r.Load() }

// TestHandler: /whoami answers the identity of a token with the route's
// scope, 403 without it, 401 for a bad or revoked token or none; /readyz
// follows the stream's state.
func TestHandler(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ks := token.StaticKeys{KID: "k1", Alg: token.EdDSA, Key: priv}
	iss, err := token.NewIssuer(token.IssuerConfig{Issuer: testIssuer, Keys: ks})
	if err != nil {
		t.Fatal(err)
	}
	revs := token.NewMemoryRevocations(nil)
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: testIssuer, Audience: testAudience, Keys: ks, Revocations: revs})
	if err != nil {
		t.Fatal(err)
	}
	var isReady ready
	srv := httptest.NewServer(newHandler(v, &isReady, "whoami:read"))
	t.Cleanup(srv.Close)

	issue := func(scope string) (string, *token.Claims) {
		tok, c, err := iss.Issue(t.Context(), token.Grant{Subject: token.ClientSubject("reports"), ClientID: "reports",
			Audience: []string{testAudience}, Scope: scope})
		if err != nil {
			t.Fatal(err)
		}
		return tok, c
	}
	get := func(path, tok string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("WWW-Authenticate") + " " + string(b)
	}

	good, claims := issue("other whoami:read")
	if code, body := get("/whoami", good); code != http.StatusOK {
		t.Fatalf("GET /whoami: %d %s", code, body)
	} else {
		var id Identity
		if err := json.Unmarshal([]byte(strings.TrimSpace(body)), &id); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if want := (Identity{"client:reports", "reports", []string{"other", "whoami:read"}}); id.Subject != want.Subject ||
			id.ClientID != want.ClientID || !slices.Equal(id.Scopes, want.Scopes) {
			t.Errorf("got %+v, want %+v", id, want)
		}
	}
	wrongScope, _ := issue("other")
	for _, tt := range []struct {
		name, path, tok string
		code            int
		says            string
	}{
		{"wrong scope", "/whoami", wrongScope, http.StatusForbidden, `error="insufficient_scope"`},
		{"no token", "/whoami", "", http.StatusUnauthorized, "Bearer "},
		{"forged", "/whoami", good[:len(good)-4] + "AAAA", http.StatusUnauthorized, `error="invalid_token"`},
		{"not ready", "/readyz", "", http.StatusServiceUnavailable, "not current"},
		{"alive", "/healthz", "", http.StatusOK, "ok"},
	} {
		if code, body := get(tt.path, tt.tok); code != tt.code || !strings.Contains(body, tt.says) {
			t.Errorf("%s: got %d %q, want %d saying %q", tt.name, code, body, tt.code, tt.says)
		}
	}
	isReady.Store(true)
	if code, _ := get("/readyz", ""); code != http.StatusOK {
		t.Errorf("GET /readyz when current: %d", code)
	}
	revs.RevokeID(claims.ID, claims.Expiry)
	if code, body := get("/whoami", good); code != http.StatusUnauthorized {
		t.Errorf("revoked: got %d %s, want 401", code, body)
	}
}
