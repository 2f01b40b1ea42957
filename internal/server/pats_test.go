package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/token"
)

// The personal access tokens' tests run on the oauth harness: alice
// signed in through the API, the client billing to introspect, and the
// harness's PATCheck over its account store (counted by countingPATs).

// countingPATs is the harness's account.PATs, counting the lookups and
// last-use writes that reach it; fail makes PATByHash fail, and failOn
// the method it names.
type countingPATs struct {
	account.PATs
	byHash  atomic.Int64
	touches atomic.Int64
	fail    atomic.Bool
	failOn  atomic.Pointer[string]
}

// failing reports whether method must fail.
func (c *countingPATs) failing(method string) bool {
	m := c.failOn.Load()
	return m != nil && *m == method
}

func (c *countingPATs) PATList(ctx context.Context, userID string) ([]*account.PAT, error) {
	if c.failing("PATList") {
		return nil, errStoreDown
	}
	return c.PATs.PATList(ctx, userID)
}

func (c *countingPATs) CreatePAT(ctx context.Context, p *account.PAT) error {
	if c.failing("CreatePAT") {
		return errStoreDown
	}
	return c.PATs.CreatePAT(ctx, p)
}

func (c *countingPATs) DeletePAT(ctx context.Context, userID, id string) (*account.PAT, error) {
	if c.failing("DeletePAT") {
		return nil, errStoreDown
	}
	return c.PATs.DeletePAT(ctx, userID, id)
}

func (c *countingPATs) PATByHash(ctx context.Context, h account.SecretHash) (*account.PAT, error) {
	c.byHash.Add(1)
	if c.fail.Load() {
		return nil, errStoreDown
	}
	return c.PATs.PATByHash(ctx, h)
}

func (c *countingPATs) TouchPAT(ctx context.Context, id string, t time.Time) error {
	c.touches.Add(1)
	return c.PATs.TouchPAT(ctx, id, t)
}

type patHarness struct {
	*oauthHarness
	patStore *countingPATs
	alice    *client
	csrf     string // alice's
	secret   string // billing's
	data     string // the SQLite file
}

func newPATHarness(t testing.TB, o oauthOpts) *patHarness {
	t.Helper()
	ph := &patHarness{}
	if o.data == "" {
		o.data = t.TempDir() + "/tether.db"
	}
	ph.data = o.data
	o.wrapPATs = func(p account.PATs) account.PATs { ph.patStore = &countingPATs{PATs: p}; return ph.patStore }
	ph.oauthHarness = newOAuthHarness(t, o)
	ph.addUser("alice", alicePW, false)
	ph.alice = ph.client()
	ph.csrf = ph.alice.login("alice", alicePW)
	ph.secret = ph.addBilling()
	return ph
}

// create asks for a token as alice.
func (ph *patHarness) create(req any) *response {
	ph.t.Helper()
	return ph.alice.json(http.MethodPost, "/api/v1/tokens", req, ph.csrf)
}

// mustCreate makes a token as alice, and fails the test unless it is
// made.
func (ph *patHarness) mustCreate(req any) patCreated {
	ph.t.Helper()
	res := ph.create(req)
	if res.status != http.StatusCreated {
		ph.t.Fatalf("create token: status %d %s", res.status, res.body)
	}
	var out patCreated
	res.decodeJSON(ph.t, &out)
	return out
}

// active reports whether billing is told tok is active.
func (ph *patHarness) active(tok string) bool {
	ph.t.Helper()
	res := ph.introspect("billing", ph.secret, tok)
	if res.status != http.StatusOK {
		ph.t.Fatalf("introspect: status %d %s", res.status, res.body)
	}
	return strings.HasPrefix(res.body, `{"active":true`)
}

// list returns alice's tokens as the API lists them.
func (ph *patHarness) list() []patView {
	ph.t.Helper()
	res := ph.alice.do(http.MethodGet, "/api/v1/tokens", nil)
	if res.status != http.StatusOK {
		ph.t.Fatalf("list tokens: status %d %s", res.status, res.body)
	}
	var out struct{ Tokens []patView }
	res.decodeJSON(ph.t, &out)
	return out.Tokens
}

// waitCurrent waits until the session Manager's feed is current, so
// that PATCheck's cache serves.
func (ph *patHarness) waitCurrent() {
	ph.t.Helper()
	testkit.WaitFor(ph.t, "the feed to be current", ph.sessions.Current)
	ph.pats.tick()
}

func TestPATAPI_CreateListRevoke(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	now := ph.clock.Now()
	made := ph.mustCreate(map[string]any{"name": " ci deploy ", "scopes": []string{"repo:write", "repo:read", "repo:read"}, "expires_in_days": 7})
	if _, err := account.ParsePAT(made.Token); err != nil {
		t.Errorf("token %q: %v", made.Token, err)
	}
	if made.Name != "ci deploy" || strings.Join(made.Scopes, " ") != "repo:read repo:write" ||
		!made.Expires.Equal(now.AddDate(0, 0, 7)) || made.Created.IsZero() || made.LastUsed != nil {
		t.Errorf("created %+v", made.patView)
	}
	deflt := ph.mustCreate(map[string]any{"name": "default"})
	if !deflt.Expires.Equal(now.Add(DefaultPATTTL)) || len(deflt.Scopes) != 0 {
		t.Errorf("default token %+v: want no scopes and an expiry in 30 days", deflt.patView)
	}
	res := ph.alice.do(http.MethodGet, "/api/v1/tokens", nil)
	if strings.Contains(res.body, made.Token) || strings.Contains(res.body, `"token"`) || strings.Contains(res.body, "hash") {
		t.Errorf("the list shows a token or a hash: %s", res.body)
	}
	if list := ph.list(); len(list) != 2 || list[0].ID != made.ID || list[1].ID != deflt.ID {
		t.Errorf("list %+v, want both, oldest first", list)
	}
	if res := ph.alice.json(http.MethodDelete, "/api/v1/tokens/"+made.ID, nil, ph.csrf); res.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", res.status, res.body)
	}
	if list := ph.list(); len(list) != 1 || list[0].ID != deflt.ID {
		t.Errorf("list after revoking %+v", list)
	}
	for _, tc := range []struct{ name, id string }{{"again", made.ID}, {"unknown", "pat_nope"}, {"another user's", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.id
			if id == "" {
				ph.addUser("bob", alicePW, false)
				bob := ph.client()
				res := bob.json(http.MethodPost, "/api/v1/tokens", map[string]any{"name": "bob's"}, bob.login("bob", alicePW))
				var out patCreated
				res.decodeJSON(t, &out)
				id = out.ID
			}
			res := ph.alice.json(http.MethodDelete, "/api/v1/tokens/"+id, nil, ph.csrf)
			if res.status != http.StatusNotFound || res.errorCode(t) != "not_found" {
				t.Errorf("got %d %s, want 404 not_found", res.status, res.body)
			}
		})
	}
}

func TestPATAPI_Refusals(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	for _, tc := range []struct {
		name   string
		body   string
		csrf   bool
		ctype  string
		status int
		code   string
	}{
		{"no csrf token", `{"name":"x"}`, false, "application/json", 403, "csrf_token_missing"},
		{"text/plain", `{"name":"x"}`, true, "text/plain", 415, "unsupported_media_type"},
		{"unknown member", `{"name":"x","admin":true}`, true, "application/json", 400, "bad_request"},
		{"name twice", `{"name":"x","name":"y"}`, true, "application/json", 400, "bad_request"},
		{"Name", `{"Name":"x"}`, true, "application/json", 400, "bad_request"},
		{"trailing data", `{"name":"x"} {}`, true, "application/json", 400, "bad_request"},
		{"no name", `{}`, true, "application/json", 400, "invalid_name"},
		{"past the cap", `{"name":"x","expires_in_days":366}`, true, "application/json", 400, "invalid_expiry"},
		{"both expiries", `{"name":"x","expires_in_days":1,"expires_at":"2999-01-01T00:00:00Z"}`, true, "application/json", 400, "invalid_expiry"},
		{"bad scope", `{"name":"x","scopes":["a b"]}`, true, "application/json", 400, "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := []string{"Content-Type", tc.ctype}
			if tc.csrf {
				hdr = append(hdr, "X-CSRF-Token", ph.csrf)
			}
			res := ph.alice.do(http.MethodPost, "/api/v1/tokens", strings.NewReader(tc.body), hdr...)
			if res.status != tc.status || res.errorCode(t) != tc.code {
				t.Errorf("got %d %s, want %d %s", res.status, res.body, tc.status, tc.code)
			}
		})
	}
	if list := ph.list(); len(list) != 0 {
		t.Errorf("refused requests made tokens: %+v", list)
	}
	if res := ph.client().json(http.MethodPost, "/api/v1/tokens", map[string]any{"name": "x"}, ""); res.status != http.StatusUnauthorized {
		t.Errorf("signed out: got %d %s, want 401", res.status, res.body)
	}
}

// TestPATRequest: the checks of a request for a token, after decoding.
func TestPATRequest(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	days := func(n int) *int { return &n }
	at := func(t time.Time) *time.Time { return &t }
	for _, tc := range []struct {
		name    string
		req     patRequest
		max     time.Duration
		expires time.Time // zero: refused
		code    string
	}{
		{"default", patRequest{Name: "x"}, DefaultPATMaxTTL, now.Add(DefaultPATTTL), ""},
		{"default over a short cap", patRequest{Name: "x"}, 7 * 24 * time.Hour, now.Add(7 * 24 * time.Hour), ""},
		{"days", patRequest{Name: "x", ExpiresInDays: days(1)}, DefaultPATMaxTTL, now.AddDate(0, 0, 1), ""},
		{"a year", patRequest{Name: "x", ExpiresInDays: days(365)}, DefaultPATMaxTTL, now.AddDate(0, 0, 365), ""},
		{"zero days", patRequest{Name: "x", ExpiresInDays: days(0)}, DefaultPATMaxTTL, time.Time{}, "invalid_expiry"},
		{"negative days", patRequest{Name: "x", ExpiresInDays: days(-1)}, DefaultPATMaxTTL, time.Time{}, "invalid_expiry"},
		{"past the cap", patRequest{Name: "x", ExpiresInDays: days(8)}, 7 * 24 * time.Hour, time.Time{}, "invalid_expiry"},
		{"at", patRequest{Name: "x", ExpiresAt: at(now.Add(time.Hour))}, DefaultPATMaxTTL, now.Add(time.Hour), ""},
		{"at now", patRequest{Name: "x", ExpiresAt: at(now)}, DefaultPATMaxTTL, time.Time{}, "invalid_expiry"},
		{"at past the cap", patRequest{Name: "x", ExpiresAt: at(now.Add(DefaultPATMaxTTL + time.Second))}, DefaultPATMaxTTL, time.Time{}, "invalid_expiry"},
		{"both", patRequest{Name: "x", ExpiresInDays: days(1), ExpiresAt: at(now.Add(time.Hour))}, DefaultPATMaxTTL, time.Time{}, "invalid_expiry"},
		{"blank name", patRequest{Name: "  "}, DefaultPATMaxTTL, time.Time{}, "invalid_name"},
		{"101 bytes", patRequest{Name: strings.Repeat("x", 101)}, DefaultPATMaxTTL, time.Time{}, "invalid_name"},
		{"100 bytes", patRequest{Name: strings.Repeat("é", 50)}, DefaultPATMaxTTL, now.Add(DefaultPATTTL), ""},
		{"control character", patRequest{Name: "a\nb"}, DefaultPATMaxTTL, time.Time{}, "invalid_name"},
		{"invalid UTF-8", patRequest{Name: "a\xff"}, DefaultPATMaxTTL, time.Time{}, "invalid_name"},
		{"scopes", patRequest{Name: "x", Scopes: []string{"a:b", "~!#$%&'()*+,-./[]^_`{|}"}}, DefaultPATMaxTTL, now.Add(DefaultPATTTL), ""},
		{"empty scope", patRequest{Name: "x", Scopes: []string{""}}, DefaultPATMaxTTL, time.Time{}, "invalid_scope"},
		{"quote", patRequest{Name: "x", Scopes: []string{`a"`}}, DefaultPATMaxTTL, time.Time{}, "invalid_scope"},
		{"backslash", patRequest{Name: "x", Scopes: []string{`a\`}}, DefaultPATMaxTTL, time.Time{}, "invalid_scope"},
		{"non-ASCII", patRequest{Name: "x", Scopes: []string{"é"}}, DefaultPATMaxTTL, time.Time{}, "invalid_scope"},
		{"long scope", patRequest{Name: "x", Scopes: []string{strings.Repeat("a", maxScopeLen+1)}}, DefaultPATMaxTTL, time.Time{}, "invalid_scope"},
		{"too many scopes", patRequest{Name: "x", Scopes: strings.Fields(strings.Repeat("a ", MaxPATScopes+1))}, DefaultPATMaxTTL, time.Time{}, "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newPATRecord(tc.req, now, tc.max)
			if tc.code != "" {
				var pr *problem
				if !errors.As(err, &pr) || pr.code != tc.code || p != nil {
					t.Errorf("got %+v, %v; want problem %s", p, err, tc.code)
				}
				return
			}
			if err != nil || !p.Expires.Equal(tc.expires) {
				t.Errorf("got %+v, %v; want expiry %v", p, err, tc.expires)
			}
		})
	}
}

// FuzzPATRequest: whatever the body, decoding and checking a request for
// a token either refuses it or gives a token whose name, scopes and
// expiry the store takes, within the cap.
func FuzzPATRequest(f *testing.F) {
	for _, s := range []string{
		`{"name":"x"}`, `{"name":"x","scopes":["a","b"],"expires_in_days":30}`,
		`{"name":"x","expires_at":"2030-01-01T00:00:00Z"}`, `{"name":"x","name":"y"}`, `{"name":"\ud800"}`,
		`{"name":"x","expires_in_days":1e3}`, `{"scopes":null}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/tokens", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		req, err := decode[patRequest](httptest.NewRecorder(), r)
		if err != nil {
			return
		}
		p, err := newPATRecord(req, now, DefaultPATMaxTTL)
		if err != nil {
			return
		}
		if p.Name == "" || len(p.Name) > account.MaxPATNameLen || len(p.Scopes) > MaxPATScopes {
			t.Errorf("accepted %+v", p)
		}
		for _, s := range p.Scopes {
			if !isScopeToken(s) || len(s) > maxScopeLen {
				t.Errorf("accepted scope %q", s)
			}
		}
		if !p.Expires.After(now) || p.Expires.Sub(now) > DefaultPATMaxTTL {
			t.Errorf("accepted expiry %v", p.Expires)
		}
	})
}

// TestSES11_PATStoreErrors: a store that fails makes or revokes nothing
// it doesn't report: 503 with Retry-After; a revocation that reached the
// denylist but not the deletion is reported as failed, and the token is
// dead all the same.
func TestSES11_PATStoreErrors(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	made := ph.mustCreate(map[string]any{"name": "ci"})
	fail := func(method string) func() { return func() { ph.patStore.failOn.Store(&method) } }
	for _, tc := range []struct {
		name   string
		fail   func()
		create bool // the request is a creation, else a revocation of made
		dead   bool // made is dead after it
	}{
		{"list on create", fail("PATList"), true, false},
		{"create", fail("CreatePAT"), true, false},
		{"generation", func() { ph.harness.store.all.Store(true) }, true, false},
		{"list on revoke", fail("PATList"), false, false},
		{"denylist", func() { ph.harness.store.revokeToken.Store(true) }, false, false},
		{"delete", fail("DeletePAT"), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fail()
			var res *response
			if tc.create {
				res = ph.create(map[string]any{"name": "more"})
			} else {
				res = ph.alice.json(http.MethodDelete, "/api/v1/tokens/"+made.ID, nil, ph.csrf)
			}
			ph.patStore.failOn.Store(nil)
			ph.harness.store.all.Store(false)
			ph.harness.store.revokeToken.Store(false)
			if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
				t.Errorf("got %d %s, want 503 with Retry-After", res.status, res.body)
			}
			if list := ph.list(); len(list) != 1 || list[0].ID != made.ID {
				t.Errorf("tokens after the failure: %+v, want only the first", list)
			}
			if ph.active(made.Token) == tc.dead {
				t.Errorf("the first token active: %v, want %v", !tc.dead, !tc.dead)
			}
		})
	}
}

// TestPATCreateRefused: no token is made for a session ended, or past
// the cap of tokens per user.
func TestPATCreateRefused(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	u := ph.userID("alice")
	ph.harness.store.afterGeneration.Store(&generationHook{subject: token.UserSubject(u), run: func() {
		if err := ph.sessions.RevokeUser(t.Context(), u, nil); err != nil {
			t.Error(err)
		}
	}})
	if res := ph.create(map[string]any{"name": "raced"}); res.status != http.StatusUnauthorized {
		t.Errorf("creation racing the end of the session: %d %s, want 401", res.status, res.body)
	}
	if list, err := ph.accounts.PATList(t.Context(), u); err != nil || len(list) != 0 {
		t.Fatalf("tokens %v, %v; want none", list, err)
	}
	ph.csrf = ph.alice.login("alice", alicePW)
	for range MaxPATsPerUser {
		_, h := account.NewPAT()
		if err := ph.accounts.CreatePAT(t.Context(), &account.PAT{UserID: u, Name: "x", Hash: h, Expires: ph.clock.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if res := ph.create(map[string]any{"name": "one more"}); res.status != http.StatusConflict || res.errorCode(t) != "too_many_tokens" {
		t.Errorf("past the cap: %d %s, want 409 too_many_tokens", res.status, res.body)
	}
}

// TestSES02_PATStoredAsHash: the store keeps the token's SHA-256, never
// the token; neither is logged.
func TestSES02_PATStoredAsHash(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	made := ph.mustCreate(map[string]any{"name": "ci"})
	p, err := ph.accounts.PATByHash(t.Context(), account.HashSecret(made.Token))
	if err != nil || p.ID != made.ID {
		t.Fatalf("PATByHash(SHA-256 of the token) = %+v, %v", p, err)
	}
	secret := strings.TrimPrefix(made.Token, account.PATPrefix)
	for _, name := range []string{ph.data, ph.data + "-wal"} {
		b, err := os.ReadFile(name)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the token", name)
		}
	}
	if ph.logs.Contains(secret) {
		t.Error("the log holds the token")
	}
}

// TestINT01_PersonalAccessTokens: a live token is active for every client
// that authenticates, with its scope, subject, owner, expiry and creation;
// unknown, malformed, expired and revoked ones are exactly
// {"active":false}, a malformed one without a store call; a store that
// fails fails closed (503).
func TestINT01_PersonalAccessTokens(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	made := ph.mustCreate(map[string]any{"name": "ci", "scopes": []string{"invoices:read"}})
	u, _ := ph.accounts.ByName(t.Context(), "alice")
	want := fmt.Sprintf(`{"active":true,"scope":"invoices:read","sub":"user:%s","username":"alice","exp":%d,"iat":%d,"token_type":"Bearer"}`+"\n",
		u.ID, made.Expires.Unix(), made.Created.Unix())
	other := ph.addClient("reports", nil, []string{apiReports}, 0)
	for _, c := range []struct{ id, secret string }{{"billing", ph.secret}, {"reports", other}} {
		if res := ph.introspect(c.id, c.secret, made.Token); res.status != http.StatusOK || res.body != want {
			t.Errorf("introspection by %s: %d %s\nwant %s", c.id, res.status, res.body, want)
		}
	}
	unknown, _ := account.NewPAT()
	before := ph.patStore.byHash.Load()
	for _, tok := range []string{mistype(made.Token), account.PATPrefix + "x", made.Token + " "} {
		if ph.active(tok) {
			t.Errorf("malformed %q active", tok)
		}
	}
	if n := ph.patStore.byHash.Load() - before; n != 0 {
		t.Errorf("malformed tokens cost %d store lookups, want none", n)
	}
	if ph.active(unknown) {
		t.Error("an unknown token is active")
	}
	ph.patStore.fail.Store(true)
	ph.pats.Handle(session.Event{Kind: session.FeedDown}) // nothing cached
	oauthError(t, ph.introspect("billing", ph.secret, made.Token), http.StatusServiceUnavailable, codeUnavailable)
	ph.patStore.fail.Store(false)
	ph.clock.Advance(DefaultPATTTL)
	ph.pats.tick()
	if ph.active(made.Token) {
		t.Error("an expired token is active")
	}
}

// mistype returns tok with its last character changed, so that its
// checksum no longer matches.
func mistype(tok string) string {
	repl := "0"
	if strings.HasSuffix(tok, repl) {
		repl = "1"
	}
	return tok[:len(tok)-1] + repl
}

// TestINT01_PATOfDisabledOwnerInactive: a personal access token whose
// owner was disabled, or deleted, in the account store alone (no
// revocation written: a session store that lost it, or an operator's
// direct change) is exactly {"active":false} once the user cache has
// let go of the owner, and active again when they are enabled.
func TestINT01_PATOfDisabledOwnerInactive(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	made := ph.mustCreate(map[string]any{"name": "ci"})
	u, _ := ph.accounts.ByName(t.Context(), "alice")
	if !ph.active(made.Token) {
		t.Fatal("a new token is not active")
	}
	for _, step := range []struct {
		name   string
		change func() error
		active bool
	}{
		{"disabled", func() error { return ph.accounts.SetDisabled(t.Context(), u.ID, true) }, false},
		{"enabled again", func() error { return ph.accounts.SetDisabled(t.Context(), u.ID, false) }, true},
		{"deleted", func() error { return ph.accounts.Delete(t.Context(), u.ID) }, false},
	} {
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		ph.clock.Advance(DefaultUserCacheTTL + time.Millisecond)
		res := ph.introspect("billing", ph.secret, made.Token)
		if got := res.status == http.StatusOK && res.body != inactive; got != step.active || res.status != http.StatusOK {
			t.Errorf("owner %s: %d %s, want active %v", step.name, res.status, res.body, step.active)
		}
	}
}

// TestJWT09_PATRevokedByID: revoking a token puts its id on the denylist
// until its expiry, which ends it at once, cached or not; revoking by id
// on the denylist alone (as another node's revocation arrives through
// the feed) ends it too, though its record is still there.
func TestJWT09_PATRevokedByID(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	ph.waitCurrent()
	made := ph.mustCreate(map[string]any{"name": "ci"})
	kept := ph.mustCreate(map[string]any{"name": "kept"})
	for _, tok := range []string{made.Token, kept.Token, made.Token, kept.Token} { // the second time from the cache
		if !ph.active(tok) {
			t.Fatal("a new token is not active")
		}
	}
	if res := ph.alice.json(http.MethodDelete, "/api/v1/tokens/"+made.ID, nil, ph.csrf); res.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", res.status, res.body)
	}
	if revoked := ph.revoked(); len(revoked) != 1 || revoked[0].JTI != made.ID || !revoked[0].Exp.Equal(made.Expires) {
		t.Errorf("denylist %+v, want the token's id until its expiry", revoked)
	}
	if ph.active(made.Token) {
		t.Error("a revoked token is active")
	}
	if err := ph.sessions.RevokeToken(t.Context(), session.Revocation{JTI: kept.ID, Exp: kept.Expires}); err != nil {
		t.Fatal(err)
	}
	if ph.active(kept.Token) {
		t.Error("a token whose id is on the denylist is active")
	}
}

// TestCHG03_PATDeadAfterPasswordChange: a password change ends the
// user's tokens, and so does a revocation of their token subject racing
// the creation of one: the generation it carries was read before the
// session and the account were checked.
func TestCHG03_PATDeadAfterPasswordChange(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	made := ph.mustCreate(map[string]any{"name": "ci"})
	res := ph.alice.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: alicePW, New: "a whole new passphrase"}, ph.csrf)
	if res.status != http.StatusOK {
		t.Fatalf("password change: %d %s", res.status, res.body)
	}
	var fresh csrfResponse
	res.decodeJSON(t, &fresh)
	ph.csrf = fresh.CSRFToken
	if ph.active(made.Token) {
		t.Error("a token made before the password change is active")
	}
	u, _ := ph.accounts.ByName(t.Context(), "alice")
	subject := token.UserSubject(u.ID)
	ph.harness.store.afterGeneration.Store(&generationHook{subject: subject, run: func() { ph.revokeSubject(subject) }})
	raced := ph.mustCreate(map[string]any{"name": "raced"})
	if ph.active(raced.Token) {
		t.Error("a token whose creation raced a revocation of the user's tokens is active")
	}
	if !ph.active(ph.mustCreate(map[string]any{"name": "after"}).Token) {
		t.Error("a token made after the revocation is not active")
	}
}

// TestSES14_PATCacheOnlyWhileCurrent: a cached token is served without a
// store call only while the feed is current; FeedDown empties the cache.
func TestSES14_PATCacheOnlyWhileCurrent(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	made := ph.mustCreate(map[string]any{"name": "ci"})
	gate := &feedGate{PATRevocations: StoreRevocations{ph.sessions}}
	check, err := NewPATCheck(PATCheckConfig{PATs: ph.patStore, Revocations: gate, Now: ph.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ph.waitCurrent()
	check.tick()
	lookups := func() int64 {
		t.Helper()
		before := ph.patStore.byHash.Load()
		if _, err := check.CheckPAT(t.Context(), made.Token); err != nil {
			t.Fatal(err)
		}
		return ph.patStore.byHash.Load() - before
	}
	for _, step := range []struct {
		name string
		do   func()
		want int64
	}{
		{"first", func() {}, 1},
		{"cached", func() {}, 0},
		{"feed not current", func() { gate.down.Store(true) }, 1},
		{"current again", func() { gate.down.Store(false) }, 0},
		{"feed down", func() { check.Handle(session.Event{Kind: session.FeedDown}) }, 1},
		{"cached again", func() {}, 0},
		{"user revoked", func() { check.Handle(session.Event{Kind: session.UserRevoked, UserID: "user:" + ph.userID("alice")}) }, 1},
		{"another's id revoked", func() {
			check.Handle(session.Event{Kind: session.TokenRevoked, Revocation: session.Revocation{JTI: "pat_x"}})
		}, 0},
	} {
		step.do()
		if got := lookups(); got != step.want {
			t.Errorf("%s: %d store lookups, want %d", step.name, got, step.want)
		}
	}
}

// feedGate is PATRevocations whose Current is false while down is set.
type feedGate struct {
	PATRevocations
	down atomic.Bool
}

func (g *feedGate) Current() bool { return !g.down.Load() && g.PATRevocations.Current() }

// userID returns the id of the user named name.
func (h *harness) userID(name string) string {
	h.t.Helper()
	u, err := h.accounts.ByName(h.t.Context(), name)
	if err != nil {
		h.t.Fatal(err)
	}
	return u.ID
}

// TestPATLastUsed: a token's use is recorded off the request path, at
// most once a minute.
func TestPATLastUsed(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	made := ph.mustCreate(map[string]any{"name": "ci"})
	for range 3 {
		ph.active(made.Token)
	}
	testkit.WaitFor(t, "the last use recorded", func() bool { return ph.list()[0].LastUsed != nil })
	if got := ph.list()[0].LastUsed; !got.Equal(ph.clock.Now()) || ph.patStore.touches.Load() != 1 {
		t.Errorf("last used %v after %d writes, want %v after one", got, ph.patStore.touches.Load(), ph.clock.Now())
	}
	ph.clock.Advance(PATTouchInterval)
	ph.pats.tick()
	ph.active(made.Token)
	testkit.WaitFor(t, "the next use recorded", func() bool { return ph.patStore.touches.Load() == 2 })
}

// TestPW07_PATAudit: making and revoking a token are audit events, and
// neither the token nor its hash is in the log.
func TestPW07_PATAudit(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	made := ph.mustCreate(map[string]any{"name": "ci", "scopes": []string{"a"}})
	ph.alice.json(http.MethodDelete, "/api/v1/tokens/"+made.ID, nil, ph.csrf)
	ph.alice.json(http.MethodDelete, "/api/v1/tokens/pat_nope", nil, ph.csrf)
	var got []string
	for _, rec := range ph.logs.Records(t, "audit") {
		if ev := rec["event"].(string); strings.HasPrefix(ev, "pat-") {
			got = append(got, fmt.Sprintf("%s %s %s %v", ev, rec["user"], rec["outcome"], rec["pat_id"]))
		}
	}
	want := []string{"pat-create alice success " + made.ID, "pat-revoke alice success " + made.ID, "pat-revoke alice failure <nil>"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	h := account.HashSecret(made.Token)
	if logs := ph.logs.String(); strings.Contains(logs, strings.TrimPrefix(made.Token, account.PATPrefix)) || strings.Contains(logs, fmt.Sprintf("%x", h[:])) {
		t.Error("the token or its hash is in the log")
	}
}

// TestPATPage: the account page makes a token and shows it once, lists
// it, and revokes it, with the page's csrf token.
func TestPATPage(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	page := ph.alice.do(http.MethodGet, "/account", nil)
	if !strings.Contains(page.body, "Personal access tokens") || !strings.Contains(page.body, "You have no personal access token.") {
		t.Fatalf("account page:\n%s", page.body)
	}
	res := ph.alice.form("/account/tokens", url.Values{"csrf_token": {formToken(t, page.body, "/account/tokens")},
		"name": {"laptop"}, "scopes": {"a, b"}, "expires_in_days": {"7"}})
	_, rest, ok := strings.Cut(res.body, `<code id="new-token">`)
	tok, _, _ := strings.Cut(rest, "</code>")
	if res.status != http.StatusOK || !ok || !ph.active(tok) {
		t.Fatalf("create: %d, token %q:\n%s", res.status, tok, res.body)
	}
	list := ph.list()
	if len(list) != 1 || list[0].Name != "laptop" || strings.Join(list[0].Scopes, " ") != "a b" {
		t.Fatalf("list %+v", list)
	}
	page = ph.alice.do(http.MethodGet, "/account", nil)
	if strings.Contains(page.body, tok) || !strings.Contains(page.body, "laptop") || !strings.Contains(page.body, `<span class="badge">b</span>`) {
		t.Errorf("account page after: the token again, or not the list:\n%s", page.body)
	}
	bad := ph.alice.form("/account/tokens", url.Values{"csrf_token": {formToken(t, page.body, "/account/tokens")},
		"name": {"too long"}, "expires_in_days": {"9999"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "expires in 1 to 365 days") || !strings.Contains(bad.body, `value="too long"`) {
		t.Errorf("refused form: %d\n%s", bad.status, bad.body)
	}
	action := "/account/tokens/" + list[0].ID + "/revoke"
	if res := ph.alice.form(action, url.Values{}); res.status != http.StatusForbidden {
		t.Errorf("revoke without a csrf token: %d", res.status)
	}
	res = ph.alice.form(action, url.Values{"csrf_token": {formToken(t, page.body, action)}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/account?done=pat-revoked" || ph.active(tok) || len(ph.list()) != 0 {
		t.Errorf("revoke: %d %v, or still active or listed", res.status, res.header)
	}
	if page := ph.alice.do(http.MethodGet, "/account?done=pat-revoked", nil); !strings.Contains(page.body, notices["pat-revoked"]) {
		t.Errorf("no notice of the revocation:\n%s", page.body)
	}
}

// BenchmarkPATCheck: a personal access token checked on a cache hit.
// Compare with session's BenchmarkManagerLoadCached in the same run:
//
//	go test -run '^$' -bench 'PATCheck|ManagerLoadCached' -benchmem ./internal/server ./session
func BenchmarkPATCheck(b *testing.B) {
	ph := newPATHarness(b, oauthOpts{harnessOpts: harnessOpts{plain: true}})
	made := ph.mustCreate(map[string]any{"name": "bench", "scopes": []string{"a", "b"}})
	ph.waitCurrent()
	ctx := b.Context()
	if _, err := ph.pats.CheckPAT(ctx, made.Token); err != nil {
		b.Fatal(err)
	}
	before := ph.patStore.byHash.Load()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ph.pats.CheckPAT(ctx, made.Token); err != nil {
			b.Fatal(err)
		}
	}
	if n := ph.patStore.byHash.Load() - before; n > 0 {
		b.Logf("%d of the checks missed the cache", n)
	}
}

// A token whose checksum was mistyped is refused without a store lookup,
// cache hit or miss: the cache holds only tokens that passed ParsePAT, so
// its hash is in neither.
func TestPATChecksumTypoRefused(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	made := ph.mustCreate(map[string]any{"name": "ci"})
	ph.waitCurrent()
	if !ph.active(made.Token) {
		t.Fatal("the token is not active")
	}
	typo := mistype(made.Token)
	before := ph.patStore.byHash.Load()
	if _, err := ph.pats.CheckPAT(t.Context(), typo); !errors.Is(err, token.ErrInvalid) || !errors.Is(err, account.ErrMalformedPAT) {
		t.Errorf("a mistyped checksum: got %v, want ErrInvalid and ErrMalformedPAT", err)
	}
	if n := ph.patStore.byHash.Load() - before; n != 0 {
		t.Errorf("a mistyped checksum cost %d store lookups, want 0", n)
	}
}
