package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/token"
)

// The OAuth endpoints' tests run on the harness's real stack: the
// clients in its account.SQLite, the revocation state in its session
// Manager over store/sqlite (StoreRevocations), with a real key ring
// (package keys, in memory). hookedClients and the harness's
// failingStore make them fail or hang on demand.

// hookedClients is the harness's account.Clients with hooks on Client:
// onClient, when set, runs before it answers, to force an interleaving;
// fail makes it fail; with stuck set, it hangs (see hang).
type hookedClients struct {
	account.Clients
	onClient atomic.Pointer[func(id string)]
	fail     atomic.Bool
	stuck    atomic.Pointer[chan time.Time]
}

func (c *hookedClients) Client(ctx context.Context, id string) (*account.Client, error) {
	if f := c.onClient.Load(); f != nil {
		(*f)(id)
	}
	if seen := c.stuck.Load(); seen != nil {
		return nil, hang(ctx, *seen)
	}
	if c.fail.Load() {
		return nil, errStoreDown
	}
	return c.Clients.Client(ctx, id)
}

// oauthHarness is a harness serving the OAuth endpoints.
type oauthHarness struct {
	*harness
	ring    *keys.Ring
	clients *hookedClients
	revs    StoreRevocations
	issuer  string
}

// oauthOpts changes the oauth harness: the harness's options, and
// tokens, which may change the Tokens the server gets.
type oauthOpts struct {
	harnessOpts
	tokens func(*Tokens)
}

func newOAuthHarness(t testing.TB, o oauthOpts) *oauthHarness {
	t.Helper()
	if o.clock == nil {
		o.clock = newHarnessClock()
	}
	ring := testRing(t, o.clock.Now)
	oh := &oauthHarness{ring: ring}
	o.harnessOpts.tokens = func(h *harness, u string) *Tokens {
		oh.issuer = u
		oh.clients = &hookedClients{Clients: h.accounts}
		oh.revs = StoreRevocations{h.sessions}
		tk := &Tokens{Issuer: u, Keys: ring, Clients: oh.clients, Revocations: oh.revs, PATs: h.pats}
		if o.tokens != nil {
			o.tokens(tk)
		}
		return tk
	}
	oh.harness = newHarness(t, o.harnessOpts)
	return oh
}

// revoked returns the denylist's entries of single tokens (by jti).
func (oh *oauthHarness) revoked() []session.Revocation {
	oh.t.Helper()
	list, err := oh.sessions.Revocations(oh.t.Context())
	if err != nil {
		oh.t.Fatal(err)
	}
	return slices.DeleteFunc(list, func(r session.Revocation) bool { return r.JTI == "" })
}

// revokeSubject ends every token of subject (CHG-03).
func (oh *oauthHarness) revokeSubject(subject string) {
	oh.t.Helper()
	if _, err := oh.sessions.RevokeSubject(oh.t.Context(), subject); err != nil {
		oh.t.Fatal(err)
	}
}

// testRing is a key ring in memory with its first key, on clock now.
func testRing(t testing.TB, now func() time.Time) *keys.Ring {
	t.Helper()
	ring, err := keys.NewRing(t.Context(), keys.NewMemoryStorage(), keys.Config{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.Maintain(t.Context()); err != nil {
		t.Fatal(err)
	}
	return ring
}

// addClient adds a client and returns its secret.
func (oh *oauthHarness) addClient(id string, scopes, audiences []string, maxTTL time.Duration) string {
	oh.t.Helper()
	secret := rand.Text() + rand.Text()
	c := &account.Client{ID: id, SecretHash: sha256.Sum256([]byte(secret)), Scopes: scopes, Audiences: audiences, MaxTTL: maxTTL}
	if err := oh.accounts.CreateClient(oh.t.Context(), c); err != nil {
		oh.t.Fatal(err)
	}
	return secret
}

// The audiences and scopes of the tests' clients.
const (
	apiBilling = "https://billing.example"
	apiReports = "https://reports.example"
)

// addBilling adds the client billing: scopes invoices:read and
// invoices:write, audiences apiBilling (the first) and apiReports.
func (oh *oauthHarness) addBilling() string {
	return oh.addClient("billing", []string{"invoices:read", "invoices:write"}, []string{apiBilling, apiReports}, 0)
}

// basic is the Authorization header of RFC 6749 §2.3.1 for id and secret.
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// post sends form to path with the client's Basic credentials (none when
// id is "") and extra headers.
func (oh *oauthHarness) post(path, id, secret string, form url.Values, hdr ...string) *response {
	oh.t.Helper()
	if id != "" {
		hdr = append(hdr, "Authorization", basic(id, secret))
	}
	return oh.client().form(path, form, hdr...)
}

// token gets a token for client id with form's parameters (grant_type
// added) and fails the test unless it is issued.
func (oh *oauthHarness) token(id, secret string, form url.Values) tokenResponse {
	oh.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("grant_type", "client_credentials")
	res := oh.post(tokenPath, id, secret, form)
	if res.status != http.StatusOK {
		oh.t.Fatalf("token for %s: status %d %s", id, res.status, res.body)
	}
	var out tokenResponse
	res.decodeJSON(oh.t, &out)
	return out
}

// verifier is a resource server's verifier of aud, over the ring and the
// revocations.
func (oh *oauthHarness) verifier(aud string) *token.Verifier {
	oh.t.Helper()
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: oh.issuer, Audience: aud, Keys: oh.ring, Revocations: oh.revs, Now: oh.clock.Now})
	if err != nil {
		oh.t.Fatal(err)
	}
	return v
}

// oauthError checks that res is an RFC 6749 §5.2 error answer of status
// and code: JSON of error and an error_description of the allowed
// characters, not cached, with the Basic challenge exactly when it is
// invalid_client.
func oauthError(t testing.TB, res *response, status int, code string) {
	t.Helper()
	if res.status != status {
		t.Fatalf("status %d, want %d: %s", res.status, status, res.body)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if cc := res.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	var body map[string]string
	res.decodeJSON(t, &body)
	if body["error"] != code || len(body) != 2 {
		t.Errorf("body %s: want error %q and an error_description, nothing else", res.body, code)
	}
	for _, c := range []byte(body["error_description"]) {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			t.Errorf("error_description %q: %q is not allowed (RFC 6749 §5.2)", body["error_description"], c)
		}
	}
	if got, want := res.header.Get("WWW-Authenticate"), code == codeInvalidClient; (got != "") != want {
		t.Errorf("WWW-Authenticate %q with %s", got, code)
	}
}
