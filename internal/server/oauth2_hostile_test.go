package server

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit/hostile"
	"github.com/tetherauth/tether/session"
)

// newHostileHarness is an oauth harness with the client billing (its
// secret is returned) and the Valid of billing's tokens for apiBilling,
// signed with the ring's current key: the ring's first key was removed
// with retire --now (KEY-02), its private part kept to sign that case,
// and the revocation state holds Valid.RevokedJTI (JWT-09). The valid
// token is checked active first: the control without which every case
// could be inactive for one dull reason.
func newHostileHarness(t *testing.T) (*oauthHarness, string, hostile.Valid) {
	t.Helper()
	oh := newOAuthHarness(t, oauthOpts{})
	secret := oh.addBilling()
	ctx := t.Context()
	removedKID, removedAlg, removedKey, err := oh.ring.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oh.ring.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := oh.ring.Retire(ctx, removedKID, true); err != nil {
		t.Fatal(err)
	}
	kid, alg, key, err := oh.ring.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := oh.clock.Now()
	valid := hostile.Valid{
		Issuer: oh.issuer, Audience: apiBilling, ClientID: "billing",
		Key: hostile.Key{KID: kid, Alg: alg, Signer: key}, Now: now,
		Removed:    &hostile.Key{KID: removedKID, Alg: removedAlg, Signer: removedKey},
		RevokedJTI: "revoked-jti",
	}
	if err := oh.sessions.RevokeToken(ctx, session.Revocation{JTI: valid.RevokedJTI, Exp: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if res := oh.introspect("billing", secret, valid.Token(t)); res.status != http.StatusOK || !strings.HasPrefix(res.body, `{"active":true`) {
		t.Fatalf("the valid token: status %d %s, want active", res.status, res.body)
	}
	return oh, secret, valid
}

// tokenCases are the cases of valid whose text is what's hostile: the
// endpoints take a token as a form parameter, never from a bearer header
// or the URL query, so the JWT-11 cases (the valid token in the query)
// are not theirs.
func tokenCases(t *testing.T, valid hostile.Valid) []hostile.Case {
	var out []hostile.Case
	for _, c := range valid.Cases(t) {
		if c.Where == hostile.Bearer {
			out = append(out, c)
		}
	}
	return out
}

// missingToken checks the answer to the case of an empty token, which
// is to the endpoints a request without the token parameter that RFC
// 7662 §2.1 and RFC 7009 §2.1 require: invalid_request. It reports
// whether c was that case.
func missingToken(t *testing.T, c hostile.Case, res *response) bool {
	t.Helper()
	if c.Token != "" {
		return false
	}
	oauthError(t, res, http.StatusBadRequest, codeInvalidRequest)
	return true
}

// TestINT01_HostileTable: introspection answers every case of the shared
// table (JWT-01..10, JWT-12, KEY-01..03) with exactly {"active":false}.
func TestINT01_HostileTable(t *testing.T) {
	oh, secret, valid := newHostileHarness(t)
	for _, c := range tokenCases(t, valid) {
		t.Run(c.String(), func(t *testing.T) {
			if res := oh.introspect("billing", secret, c.Token); !missingToken(t, c, res) && (res.status != http.StatusOK || res.body != inactive) {
				t.Errorf("status %d %q, want 200 %q", res.status, res.body, inactive)
			}
		})
	}
}

// TestREV01_HostileTable: revocation answers every case of the shared
// table 200 with an empty body, and revokes nothing: the denylist got no
// write, and the valid token, whose jti most cases carry, is still
// active.
func TestREV01_HostileTable(t *testing.T) {
	oh, secret, valid := newHostileHarness(t)
	for _, c := range tokenCases(t, valid) {
		t.Run(c.String(), func(t *testing.T) {
			if res := oh.post(revokePath, "billing", secret, url.Values{"token": {c.Token}}); !missingToken(t, c, res) && (res.status != http.StatusOK || res.body != "") {
				t.Errorf("status %d %q, want 200 and no body", res.status, res.body)
			}
		})
	}
	if revoked := oh.revoked(); len(revoked) != 1 || revoked[0].JTI != valid.RevokedJTI {
		t.Errorf("denylist %v, want only the case's revoked jti: nothing revoked", revoked)
	}
	if res := oh.introspect("billing", secret, valid.Token(t)); !strings.HasPrefix(res.body, `{"active":true`) {
		t.Errorf("the valid token after the cases: %s, want active", res.body)
	}
}
