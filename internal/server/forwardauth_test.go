package server

import (
	"context"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/account"
)

// The forward-auth tests run on the PAT harness: alice signed in (a
// session cookie in her client's jar), the client billing, personal
// access tokens, a key ring.

// verify asks c's /auth/verify with query and extra headers.
func verify(c *client, query string, hdr ...string) *response {
	c.t.Helper()
	path := verifyPath
	if query != "" {
		path += "?" + query
	}
	return c.do(http.MethodGet, path, nil, hdr...)
}

// wantIdentity checks that res is a 200 without a body naming who.
func wantIdentity(t *testing.T, res *response, who identity) {
	t.Helper()
	if res.status != http.StatusOK {
		t.Fatalf("status %d, want 200", res.status)
	}
	if res.body != "" {
		t.Errorf("body %q, want none", res.body)
	}
	checkIdentityHeaders(t, res, who)
}

// checkIdentityHeaders checks that res carries every identity header,
// with who's values.
func checkIdentityHeaders(t *testing.T, res *response, who identity) {
	t.Helper()
	for _, h := range []struct{ name, want string }{
		{HeaderUser, who.name}, {HeaderUserID, who.id}, {HeaderSessionID, who.sessionID},
		{HeaderScopes, who.scopes}, {HeaderSubjectType, who.kind},
	} {
		if got := res.header.Values(h.name); len(got) != 1 || got[0] != h.want {
			t.Errorf("%s: %q, want exactly [%q]", h.name, got, h.want)
		}
	}
}

// aliceSession is the identity of alice's session in ph.
func (ph *patHarness) aliceSession() identity {
	ph.t.Helper()
	_, me := ph.alice.me()
	return identity{name: "alice", id: ph.userID("alice"), sessionID: me.Session.ID, kind: "user"}
}

func TestForwardAuth_Session(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	wantIdentity(t, verify(ph.alice, ""), ph.aliceSession())
}

func TestForwardAuth_PAT(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	made := ph.mustCreate(map[string]any{"name": "ci", "scopes": []string{"repo:read", "repo:write"}})
	res := verify(ph.client(), "scope=repo:read", "Authorization", "Bearer "+made.Token)
	wantIdentity(t, res, identity{name: "alice", id: ph.userID("alice"), scopes: "repo:read repo:write", kind: "user"})
}

func TestForwardAuth_JWT(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	tok := ph.token("billing", ph.secret, url.Values{"scope": {"invoices:read"}}).AccessToken
	res := verify(ph.client(), "audience="+url.QueryEscape(apiBilling)+"&scope=invoices:read", "Authorization", "Bearer "+tok)
	wantIdentity(t, res, identity{name: "billing", id: "billing", scopes: "invoices:read", kind: "client"})
}

func TestForwardAuth_Refusals(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	jwt := ph.token("billing", ph.secret, url.Values{"scope": {"invoices:read"}}).AccessToken
	pat := ph.mustCreate(map[string]any{"name": "ci", "scopes": []string{"repo:read"}}).Token
	billing := "audience=" + url.QueryEscape(apiBilling)
	tests := []struct {
		name   string
		c      *client
		query  string
		hdr    []string
		status int
	}{
		{"no credentials", ph.client(), "", nil, http.StatusUnauthorized},
		{"unknown cookie", withCookie(ph.harness, "x"), "", nil, http.StatusUnauthorized},
		{"session lacks the scope", ph.alice, "scope=repo:read", nil, http.StatusForbidden},
		{"PAT lacks the scope", ph.client(), "scope=repo:write", []string{"Authorization", "Bearer " + pat}, http.StatusForbidden},
		{"PAT mistyped", ph.client(), "", []string{"Authorization", "Bearer " + pat[:len(pat)-1] + "!"}, http.StatusUnauthorized},
		{"JWT without audience", ph.client(), "", []string{"Authorization", "Bearer " + jwt}, http.StatusUnauthorized},
		{"JWT of another audience", ph.client(), "audience=https://other.example", []string{"Authorization", "Bearer " + jwt}, http.StatusForbidden},
		{"JWT lacks the scope", ph.client(), billing + "&scope=invoices:write", []string{"Authorization", "Bearer " + jwt}, http.StatusForbidden},
		{"JWT tampered", ph.client(), billing, []string{"Authorization", "Bearer " + jwt + "x"}, http.StatusUnauthorized},
		{"JWT in the query (JWT-11)", ph.client(), billing + "&access_token=" + jwt, nil, http.StatusUnauthorized},
		{"Basic", ph.client(), "", []string{"Authorization", basic("billing", ph.secret)}, http.StatusUnauthorized},
		{"two Authorization headers", ph.client(), billing, []string{"Authorization", "Bearer " + jwt, "Authorization", "Bearer " + jwt}, http.StatusUnauthorized},
		{"bad token beside a good cookie", ph.alice, "", []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized},
		{"two audiences", ph.alice, "audience=a&audience=b", nil, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := verify(tt.c, tt.query, tt.hdr...)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d", res.status, tt.status)
			}
			if res.body != "" {
				t.Errorf("body %q, want none", res.body)
			}
			checkIdentityHeaders(t, res, identity{})
		})
	}
}

func TestForwardAuth_StoreDown(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	ph.store.all.Store(true)
	res := verify(ph.alice, "")
	if res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", res.status, res.header.Get("Retry-After"))
	}
	checkIdentityHeaders(t, res, identity{})
}

// countingAccounts counts the reads of the account store.
type countingAccounts struct {
	account.Store
	reads *atomic.Int64
}

func (c countingAccounts) ByID(ctx context.Context, id string) (*account.User, error) {
	c.reads.Add(1)
	return c.Store.ByID(ctx, id)
}

func (c countingAccounts) ByName(ctx context.Context, name string) (*account.User, error) {
	c.reads.Add(1)
	return c.Store.ByName(ctx, name)
}

// Once a node has checked a session and a personal access token, checking
// them again reads neither the account store nor the token store: the
// session and the token come from the near-caches, the user's name from
// the node's copy.
func TestForwardAuth_CacheHitReadsNoAccount(t *testing.T) {
	var reads atomic.Int64
	ph := newPATHarness(t, oauthOpts{harnessOpts: harnessOpts{wrap: func(s account.Store) account.Store { return countingAccounts{s, &reads} }}})
	pat := ph.mustCreate(map[string]any{"name": "ci", "scopes": []string{"repo:read"}}).Token
	ph.waitCurrent()
	anon := ph.client()
	bearer := []string{"Authorization", "Bearer " + pat}
	for _, first := range []*response{verify(ph.alice, ""), verify(anon, "", bearer...)} {
		if first.status != http.StatusOK {
			t.Fatalf("first check: status %d", first.status)
		}
	}
	reads.Store(0)
	tokenReads := ph.patStore.byHash.Load()
	for range 20 {
		if res := verify(ph.alice, ""); res.status != http.StatusOK {
			t.Fatalf("session: status %d", res.status)
		}
		if res := verify(anon, "", bearer...); res.status != http.StatusOK {
			t.Fatalf("token: status %d", res.status)
		}
	}
	if n := reads.Load(); n != 0 {
		t.Errorf("%d reads of the account store on cache hits, want 0", n)
	}
	if n := ph.patStore.byHash.Load() - tokenReads; n != 0 {
		t.Errorf("%d reads of the token store on cache hits, want 0", n)
	}
}

// A user disabled or deleted in the account store alone (no revocation
// written) is refused once the user cache lets go of them, as at
// introspection (INT-01).
func TestForwardAuth_DisabledOwner(t *testing.T) {
	ph := newPATHarness(t, oauthOpts{})
	pat := ph.mustCreate(map[string]any{"name": "ci"}).Token
	u, _ := ph.accounts.ByName(t.Context(), "alice")
	for _, step := range []struct {
		name   string
		change func() error
		status int
	}{
		{"disabled", func() error { return ph.accounts.SetDisabled(t.Context(), u.ID, true) }, http.StatusUnauthorized},
		{"enabled again", func() error { return ph.accounts.SetDisabled(t.Context(), u.ID, false) }, http.StatusOK},
		{"deleted", func() error { return ph.accounts.Delete(t.Context(), u.ID) }, http.StatusUnauthorized},
	} {
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		ph.clock.Advance(DefaultUserCacheTTL + time.Millisecond)
		for kind, res := range map[string]*response{
			"session": verify(ph.alice, ""),
			"token":   verify(ph.client(), "", "Authorization", "Bearer "+pat),
		} {
			if res.status != step.status {
				t.Errorf("owner %s, %s: status %d, want %d", step.name, kind, res.status, step.status)
			}
		}
	}
}
