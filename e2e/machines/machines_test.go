package machines

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

// TestClientCredentials: a client of golang.org/x/oauth2/clientcredentials,
// configured from tether's metadata, gets a token and calls the resource
// server, which answers with its identity and scopes; a token without the
// route's scope is answered 403 insufficient_scope, and no token, another
// audience's token or a forged one 401 (JWT-10).
func TestClientCredentials(t *testing.T) {
	h := newHarness(t, sessionsInSQLite)
	rs := h.startResourceServer(t, 5*time.Second)
	secret := h.addClient(t, "reports", whoamiScope+","+otherScope)

	cc, ctx := h.credentials(t, "reports", secret, whoamiScope)
	tok := token(t, ctx, cc)
	w := rs.mustWhoami(t, tok, http.StatusOK)
	if id := w.Identity; id.Subject != "client:reports" || id.ClientID != "reports" || !slices.Equal(id.Scopes, []string{whoamiScope}) {
		t.Errorf("GET /whoami: got %+v, want subject client:reports, client_id reports, scopes [%s]", id, whoamiScope)
	}

	// The client's http.Client adds the token by itself.
	res, err := cc.Client(ctx).Get(rs.url + "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /whoami through clientcredentials' client: %d", res.StatusCode)
	}

	cc, ctx = h.credentials(t, "reports", secret, otherScope)
	other := token(t, ctx, cc)
	if w := rs.mustWhoami(t, other, http.StatusForbidden); !strings.Contains(w.Auth, `error="insufficient_scope"`) {
		t.Errorf("token without %s: got %v, want insufficient_scope", whoamiScope, w)
	}
	for _, tt := range []struct{ name, tok, auth string }{
		{"no token", "", "Bearer"},
		{"forged signature", tok[:strings.LastIndexByte(tok, '.')+1] + strings.Repeat("A", 86), `Bearer error="invalid_token"`},
		{"not a JWT", "tether_pat_nope", `Bearer error="invalid_token"`},
	} {
		if w := rs.mustWhoami(t, tt.tok, http.StatusUnauthorized); w.Auth != tt.auth {
			t.Errorf("%s: got %v, want WWW-Authenticate %q", tt.name, w, tt.auth)
		}
	}

	// A wrong secret is refused by tether, as RFC 6749 says.
	cc, ctx = h.credentials(t, "reports", "tether_cs_wrong", whoamiScope)
	if _, err := cc.Token(ctx); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("wrong secret: got %v, want invalid_client", err)
	}
}

// revocations is how many tokens TestRevocationReachesResourceServer
// revokes: issue 11 asks for the p99 over 200.
const revocations = 200

// refusalWait bounds the wait for one refusal: it ends a test that has
// gone wrong, and times nothing.
const refusalWait = 30 * time.Second

// TestRevocationReachesResourceServer: each of 200 tokens, accepted by the
// resource server, is revoked at tether's /oauth2/revoke and then refused
// by the resource server, which learns it from the revocation stream; the
// delay from /oauth2/revoke's answer to the first refusal is measured.
// Then `tether client disable`, run as another process, ends the
// client's remaining token at the resource server too. It runs with the
// sessions in tether's SQLite file, and in Redis.
func TestRevocationReachesResourceServer(t *testing.T) {
	for _, sessions := range []string{sessionsInSQLite, sessionsInRedis} {
		t.Run(sessions, func(t *testing.T) { testRevocationReachesResourceServer(t, sessions) })
	}
}

func testRevocationReachesResourceServer(t *testing.T, sessions string) {
	h := newHarness(t, sessions)
	rs := h.startResourceServer(t, 5*time.Second)
	secret := h.addClient(t, "reports", whoamiScope)
	cc, ctx := h.credentials(t, "reports", secret, whoamiScope)

	delays := make([]time.Duration, 0, revocations)
	polls := 0
	for range revocations {
		tok := token(t, ctx, cc)
		rs.mustWhoami(t, tok, http.StatusOK)
		revoked := h.revoke(t, "reports", secret, tok)
		refused, n := rs.refused(t, tok)
		delays = append(delays, refused.Sub(revoked))
		polls += n
	}
	p50, p99, worst := quantiles(delays)
	record(t, "%d tokens revoked at /oauth2/revoke, refused by the resource server %v (p50), %v (p99), %v (worst) after the revocation's answer (%.1f requests per refusal; target for the p99: under 100 ms)",
		revocations, ms(p50), ms(p99), ms(worst), float64(polls)/revocations)

	tok := token(t, ctx, cc)
	rs.mustWhoami(t, tok, http.StatusOK)
	h.cli(t, "client", "disable", "reports")
	took := testkit.WaitFor(t, "the resource server to refuse the token of a disabled client", func() bool {
		return rs.whoami(t, tok).Status == http.StatusUnauthorized
	})
	record(t, "tether client disable (another process, through the store's feed): the client's token refused by the resource server %v after the command returned", ms(took))
	if _, err := cc.Token(ctx); err == nil {
		t.Error("a disabled client got a token")
	}
}

// refused calls GET /whoami with tok, back to back, until the resource
// server answers 401, and returns when that answer came and how many
// requests it took. It doesn't pause between requests, as testkit.WaitFor
// does: the pauses would be the resolution of the measurement. Any answer
// but 200 and 401 fails the test.
func (rs *resourceServer) refused(t *testing.T, tok string) (time.Time, int) {
	t.Helper()
	deadline := time.Now().Add(refusalWait)
	for n := 1; ; n++ {
		w := rs.whoami(t, tok)
		at := time.Now()
		switch {
		case w.Status == http.StatusUnauthorized:
			return at, n
		case w.Status != http.StatusOK:
			t.Fatalf("GET /whoami with a revoked token: got %v, want 200 until 401", w)
		case at.After(deadline):
			t.Fatalf("GET /whoami: a revoked token still accepted %v after its revocation", refusalWait)
		}
	}
}
