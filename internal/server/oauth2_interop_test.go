package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/token"
)

// TestOAuthClientCredentialsInterop: a client written by others
// (golang.org/x/oauth2/clientcredentials) gets tokens from the server,
// with either of its ways to authenticate, and a resource server's
// token.Verifier accepts them through the JWKS endpoint, fetched by
// keys.Remote. Its errors come back as RFC 6749 errors.
func TestOAuthClientCredentialsInterop(t *testing.T) {
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, oh.srv.Client())
	remote, err := keys.NewRemote(keys.RemoteConfig{URL: oh.issuer + jwksPath, Client: oh.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(token.VerifierConfig{Issuer: oh.issuer, Audience: apiReports, Keys: remote, Now: oh.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, style := range []struct {
		name  string
		style oauth2.AuthStyle
	}{
		{"header", oauth2.AuthStyleInHeader},
		{"params", oauth2.AuthStyleInParams},
		{"auto-detect", oauth2.AuthStyleAutoDetect},
	} {
		t.Run(style.name, func(t *testing.T) {
			cc := clientcredentials.Config{
				ClientID:       "billing",
				ClientSecret:   secret,
				TokenURL:       oh.issuer + tokenPath,
				Scopes:         []string{"invoices:read"},
				EndpointParams: url.Values{"resource": {apiReports}},
				AuthStyle:      style.style,
			}
			tok, err := cc.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tok.TokenType != "Bearer" || tok.Expiry.IsZero() {
				t.Errorf("token type %q, expiry %v", tok.TokenType, tok.Expiry)
			}
			// The resource server's side: a request with the token.
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://reports.example/x", nil)
			if err != nil {
				t.Fatal(err)
			}
			tok.SetAuthHeader(req)
			c, err := v.VerifyRequest(req)
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "client:billing" || c.Scope != "invoices:read" || !c.HasScope("invoices:read") {
				t.Errorf("claims %+v", c)
			}
		})
	}
	t.Run("wrong secret", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: "billing", ClientSecret: "wrong", TokenURL: oh.issuer + tokenPath, AuthStyle: oauth2.AuthStyleInHeader}
		_, err := cc.Token(ctx)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != codeInvalidClient || re.Response.StatusCode != http.StatusUnauthorized {
			t.Fatalf("got %v, want invalid_client", err)
		}
	})
	t.Run("scope not allowed", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: "billing", ClientSecret: secret, TokenURL: oh.issuer + tokenPath, Scopes: []string{"admin"}}
		_, err := cc.Token(ctx)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != codeInvalidScope {
			t.Fatalf("got %v, want invalid_scope", err)
		}
	})
}
