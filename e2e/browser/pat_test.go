package browser

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/testkit/proc"
)

// TestPAT_AccountPage: a person makes a personal access token on the
// account page, which shows it once, with a copy hint; the page (and
// tether tokens list) lists it; revoking it there removes it, and, when
// the server serves introspection, the token is active before and
// exactly {"active":false} after (INT-01, JWT-09).
func TestPAT_AccountPage(t *testing.T) {
	t.Parallel()
	srv := startTether(t, []user{{"alice", alicePW}})
	b := newBrowser(t, "laptop")
	b.signIn(srv, "alice", alicePW)
	if !b.has("#tokens-heading") {
		t.Fatalf("the account page has no personal access tokens section:\n%s", b.text())
	}
	b.mustContain("Personal access tokens", "You have no personal access token.")
	b.do(chromedp.SendKeys(chromedp.ID("name"), "deploy script"), chromedp.SendKeys(chromedp.ID("scopes"), "repo:read repo:write"))
	get(b, chromedp.Evaluate[bool](`(document.getElementById('expires_in_days').value = '7') !== ''`))
	b.submit(`form[action="/account/tokens"] button[type=submit]`)
	tok := get(b, chromedp.Evaluate[string](`document.getElementById('new-token').innerText`))
	if _, err := account.ParsePAT(tok); err != nil {
		t.Fatalf("the page shows %q as the new token (%v):\n%s", tok, err, b.text())
	}
	b.mustContain("deploy script", "it is shown only this once", "repo:read", "never used")
	if out := srv.cli("", "tokens", "list", "alice"); !strings.Contains(out, "deploy script") || !strings.Contains(out, "repo:read,repo:write") {
		t.Errorf("tether tokens list:\n%s", out)
	}
	introspect := srv.introspector(t)
	if introspect != nil && !introspect(tok) {
		t.Error("a new token is not active at introspection")
	}

	b.open(srv.URL + "/account")
	if strings.Contains(b.text(), tok) {
		t.Error("the account page shows the token again")
	}
	b.submit(`form[action$="/revoke"][action^="/account/tokens/"] button[type=submit]`)
	if p := b.path(); p != "/account?done=pat-revoked" {
		t.Fatalf("after revoking: at %s; the page says:\n%s", p, b.text())
	}
	b.mustContain("That personal access token was revoked", "You have no personal access token.")
	if out := srv.cli("", "tokens", "list", "alice"); strings.Contains(out, "deploy script") {
		t.Errorf("tether tokens list after the revocation:\n%s", out)
	}
	if introspect != nil && introspect(tok) {
		t.Error("a revoked token is active at introspection")
	}
}

// introspector registers a client with tether client add and returns a
// function that reports whether the server's introspection calls a token
// active; nil when the server doesn't serve /oauth2/introspect.
func (s *tether) introspector(t *testing.T) func(tok string) bool {
	t.Helper()
	if status, _, _ := s.request(http.MethodPost, "/oauth2/introspect", "", nil); status == http.StatusNotFound {
		t.Log("the server does not serve /oauth2/introspect: the token is not checked there")
		return nil
	}
	secret := proc.AddClient(t, tetherBinary(t), "rs", "--scopes", "repo:read", "--audience", "api://rs", "--data", s.data)
	return func(tok string) bool {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, s.URL+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("rs", secret)
		res, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("introspection: %d, %v", res.StatusCode, err)
		}
		return out["active"] == true
	}
}
