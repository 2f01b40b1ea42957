package server

import (
	"net/http"
	"net/url"
	"testing"
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
