package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/token"
)

// The OAuth endpoints' tests run on the harness's real stack with a real
// key ring (package keys, in memory) and two stand-ins, for the parts
// being written beside this one: memClients for account.Clients (until
// account.SQLite implements it) and memRevocations for the session
// Manager's revocation methods, over token.MemoryRevocations.

// memClients is account.Clients in memory. onClient, when set, runs in
// Client before it answers: a hook to force an interleaving; fail makes
// every method fail; with stuck set, Client hangs (see hang).
type memClients struct {
	mu       sync.Mutex // guards clients
	clients  map[string]*account.Client
	onClient func(id string)
	fail     atomic.Bool
	stuck    chan time.Time
}

var _ account.Clients = (*memClients)(nil)

func newMemClients() *memClients { return &memClients{clients: map[string]*account.Client{}} }

func (m *memClients) CreateClient(ctx context.Context, c *account.Client) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail.Load() {
		return errStoreDown
	}
	if _, ok := m.clients[c.ID]; ok {
		return account.ErrClientExists
	}
	c.Created = time.Now()
	cp := *c
	m.clients[c.ID] = &cp
	return nil
}

func (m *memClients) Client(ctx context.Context, id string) (*account.Client, error) {
	if m.onClient != nil {
		m.onClient(id)
	}
	if m.stuck != nil {
		return nil, hang(ctx, m.stuck)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail.Load() {
		return nil, errStoreDown
	}
	c, ok := m.clients[id]
	if !ok {
		return nil, account.ErrClientNotFound
	}
	cp := *c
	return &cp, nil
}

func (m *memClients) ClientList(ctx context.Context) ([]*account.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*account.Client
	for _, c := range m.clients {
		cp := *c
		out = append(out, &cp)
	}
	slices.SortFunc(out, func(a, b *account.Client) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// change applies f to client id.
func (m *memClients) change(id string, f func(c *account.Client)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.clients[id]
	if !ok {
		return account.ErrClientNotFound
	}
	f(c)
	return nil
}

func (m *memClients) SetClientSecret(ctx context.Context, id string, h account.SecretHash) error {
	return m.change(id, func(c *account.Client) { c.SecretHash = h })
}

func (m *memClients) SetClientDisabled(ctx context.Context, id string, disabled bool) error {
	return m.change(id, func(c *account.Client) { c.Disabled = disabled })
}

func (m *memClients) DeleteClient(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.clients[id]; !ok {
		return account.ErrClientNotFound
	}
	delete(m.clients, id)
	return nil
}

// memRevocations is TokenRevocations over token.MemoryRevocations; fail
// makes every method fail, failRevoke RevokeToken only; with stuck set,
// every method hangs (see hang).
type memRevocations struct {
	*token.MemoryRevocations
	mu         sync.Mutex           // guards revoked
	revoked    []session.Revocation // what RevokeToken was given
	fail       atomic.Bool
	failRevoke atomic.Bool
	stuck      chan time.Time
}

var _ TokenRevocations = (*memRevocations)(nil)

func (m *memRevocations) Check(ctx context.Context, subject string, gen uint64, jti string) error {
	if m.stuck != nil {
		return hang(ctx, m.stuck)
	}
	if m.fail.Load() {
		return errStoreDown
	}
	return m.MemoryRevocations.Check(ctx, subject, gen, jti)
}

func (m *memRevocations) RevokeToken(ctx context.Context, r session.Revocation) error {
	if m.stuck != nil {
		return hang(ctx, m.stuck)
	}
	if m.fail.Load() || m.failRevoke.Load() {
		return errStoreDown
	}
	m.mu.Lock()
	m.revoked = append(m.revoked, r)
	m.mu.Unlock()
	m.RevokeID(r.JTI, r.Exp)
	return nil
}

func (m *memRevocations) SubjectGeneration(ctx context.Context, subject string) (uint64, error) {
	if m.stuck != nil {
		return 0, hang(ctx, m.stuck)
	}
	if m.fail.Load() {
		return 0, errStoreDown
	}
	return m.Generation(subject), nil
}

// oauthHarness is a harness serving the OAuth endpoints.
type oauthHarness struct {
	*harness
	ring    *keys.Ring
	clients *memClients
	revs    *memRevocations
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
	oh := &oauthHarness{ring: ring, clients: newMemClients(), revs: &memRevocations{MemoryRevocations: token.NewMemoryRevocations(o.clock.Now)}}
	o.harnessOpts.tokens = func(u string) *Tokens {
		oh.issuer = u
		tk := &Tokens{Issuer: u, Keys: ring, Clients: oh.clients, Revocations: oh.revs}
		if o.tokens != nil {
			o.tokens(tk)
		}
		return tk
	}
	oh.harness = newHarness(t, o.harnessOpts)
	return oh
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
	if err := oh.clients.CreateClient(oh.t.Context(), c); err != nil {
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
