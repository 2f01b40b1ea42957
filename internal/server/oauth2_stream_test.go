package server

import (
	"net/http"
	"testing"

	"github.com/tetherauth/tether/internal/revocation"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/memory"
)

// GET /oauth2/revocations follows the node's revocation view for an
// authenticated, enabled client only (Basic, as at the token endpoint);
// while the view is not current it answers 503, never a stale denylist.
func TestOAuthRevocationStreamRoute(t *testing.T) {
	m, err := session.NewManager(memory.New(), session.Config{})
	if err != nil {
		t.Fatal(err)
	}
	view, err := revocation.NewView(m, revocation.ViewConfig{})
	if err != nil {
		t.Fatal(err)
	}
	oh := newOAuthHarness(t, oauthOpts{tokens: func(tk *Tokens) { tk.Feed = view }})
	secret := oh.addBilling()
	get := func(hdr ...string) *response { return oh.client().do("GET", streamPath, nil, hdr...) }
	if res := get(); res.status != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", res.status)
	}
	if res := get("Authorization", basic("billing", "wrong")); res.status != http.StatusUnauthorized {
		t.Errorf("a wrong secret: %d, want 401", res.status)
	}
	if res := get("Authorization", basic("billing", secret)); res.status != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" {
		t.Errorf("a client, the view not current: %d %v, want 503 with Retry-After", res.status, res.header)
	}
	if err := oh.clients.SetClientDisabled(t.Context(), "billing", true); err != nil {
		t.Fatal(err)
	}
	if res := get("Authorization", basic("billing", secret)); res.status != http.StatusUnauthorized {
		t.Errorf("a disabled client: %d, want 401", res.status)
	}
}

// Without Tokens.Feed, there is no stream.
func TestOAuthRevocationStreamOff(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	if res := oh.client().do("GET", streamPath, nil); res.status != http.StatusNotFound {
		t.Errorf("GET %s without a feed: %d, want 404", streamPath, res.status)
	}
}
