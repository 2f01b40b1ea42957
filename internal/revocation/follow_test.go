package revocation

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/token"
)

// remote is a resource server's side of the tests across the pieces: a
// token.Verifier whose revocations come from a token.RevocationStream that
// follows this package's Stream, on a test clock shared with the issuer.
type remote struct {
	s      *source
	view   *View
	iss    *token.Issuer
	v      *token.Verifier
	follow *token.RevocationStream
	cut    atomic.Bool // the server refuses the stream, as one cut off does
	srv    *httptest.Server
}

const maxStaleness = 5 * time.Second

func newRemote(t testing.TB, store closer) *remote {
	t.Helper()
	s := newSourceOn(t, store)
	v := newView(t, s, ViewConfig{})
	st, err := NewStream(v, StreamConfig{Logger: quiet, Authorize: refuseUnless(func(r *http.Request) bool {
		id, secret, ok := r.BasicAuth()
		return ok && id == "rs" && secret == "secret"
	})})
	if err != nil {
		t.Fatal(err)
	}
	rm := &remote{s: s, view: v}
	rm.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rm.cut.Load() {
			http.Error(w, "cut", http.StatusServiceUnavailable)
			return
		}
		st.ServeHTTP(w, r)
	}))
	t.Cleanup(rm.srv.Close)
	keys := token.StaticKeys{KID: "k1", Alg: token.EdDSA, Key: ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))}
	if rm.iss, err = token.NewIssuer(token.IssuerConfig{Issuer: "https://auth.example.com", Keys: keys, Now: s.clk.Now}); err != nil {
		t.Fatal(err)
	}
	rm.follow, err = token.NewRevocationStream(token.RevocationStreamConfig{
		URL: rm.srv.URL, Client: rm.srv.Client(), Authorize: func(r *http.Request) error { r.SetBasicAuth("rs", "secret"); return nil },
		MaxStaleness: maxStaleness, ReconnectDelay: time.Millisecond, Now: s.clk.Now, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, rm.follow.Run)
	if rm.v, err = token.NewVerifier(token.VerifierConfig{Issuer: "https://auth.example.com", Audience: "https://api.example.com",
		Keys: keys, Revocations: rm.follow, Now: s.clk.Now}); err != nil {
		t.Fatal(err)
	}
	return rm
}

// issue returns a token of subject carrying its current generation.
func (rm *remote) issue(t *testing.T, subject string) (string, *token.Claims) {
	t.Helper()
	gen, err := rm.s.store.Generation(context.Background(), subject)
	if err != nil {
		t.Fatal(err)
	}
	tok, c, err := rm.iss.Issue(context.Background(), token.Grant{Subject: subject, ClientID: "billing",
		Audience: []string{"https://api.example.com"}, Scope: "invoices:read", Generation: gen})
	if err != nil {
		t.Fatal(err)
	}
	return tok, c
}

// verifies waits until the remote verifier's answer to tok is want: nil,
// token.ErrRevoked or token.ErrRevocationsStale.
func (rm *remote) verifies(t *testing.T, tok string, want error) {
	t.Helper()
	testkit.WaitFor(t, "the remote verifier to answer "+errString(want), func() bool {
		_, err := rm.v.Verify(context.Background(), tok)
		return errors.Is(err, want) && (want != nil || err == nil)
	})
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// newRemoteWithTokens returns a remote verifier following the stream and
// two tokens of one client that it accepts, the first with its jti.
func newRemoteWithTokens(t *testing.T, st closer) (rm *remote, tok1, jti1, tok2 string) {
	rm = newRemote(t, st)
	tok1, c1 := rm.issue(t, "client:billing")
	tok2, _ = rm.issue(t, "client:billing")
	rm.verifies(t, tok1, nil)
	rm.verifies(t, tok2, nil)
	return rm, tok1, c1.ID, tok2
}

// onEachBackend runs test on a new store of each backend.
func onEachBackend(t *testing.T, test func(t *testing.T, st closer)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.open(t)) })
	}
}

// JWT-09 and CHG-03 across the pieces: a revocation at the server (a jti;
// every token of a subject, including one issued in the same second)
// reaches a resource server following the stream, which refuses.
func TestJWT09_RemoteVerifierRefusesRevokedToken(t *testing.T) {
	onEachBackend(t, func(t *testing.T, st closer) {
		rm, tok1, jti1, tok2 := newRemoteWithTokens(t, st)
		rm.s.revokeJTI(t, jti1)
		rm.verifies(t, tok1, token.ErrRevoked)
		rm.verifies(t, tok2, nil)
	})
}

func TestCHG03_RemoteVerifierRefusesRevokedSubject(t *testing.T) {
	onEachBackend(t, func(t *testing.T, st closer) {
		rm := newRemote(t, st)
		old, _ := rm.issue(t, "user:u_1")
		rm.verifies(t, old, nil)
		rm.s.revokeSubject(t, "user:u_1")
		fresh, _ := rm.issue(t, "user:u_1") // the same second: only the generation tells them apart
		rm.verifies(t, old, token.ErrRevoked)
		rm.verifies(t, fresh, nil)
	})
}

// SES-14's bound for a remote verifier: cut off from the stream, it fails
// closed once MaxStaleness has passed since the last heartbeat, and
// recovers by itself when the server is back, catching up on what it
// missed (Last-Event-ID).
func TestSES14_RemoteVerifierCutOff(t *testing.T) {
	onEachBackend(t, func(t *testing.T, st closer) {
		rm, tok1, jti1, tok2 := newRemoteWithTokens(t, st)
		rm.cut.Store(true)
		rm.srv.CloseClientConnections()
		rm.s.revokeJTI(t, jti1)   // missed by the remote verifier
		rm.verifies(t, tok1, nil) // within the bound
		rm.s.clk.Advance(maxStaleness + time.Millisecond)
		rm.verifies(t, tok1, token.ErrRevocationsStale)
		rm.verifies(t, tok2, token.ErrRevocationsStale)

		rm.cut.Store(false)
		rm.verifies(t, tok2, nil)
		rm.verifies(t, tok1, token.ErrRevoked)
	})
}

// The stream ends with the server's feed; the remote verifier goes stale
// past its bound and comes back with the feed, through a new snapshot
// that holds what was revoked meanwhile.
func TestSES14_RemoteVerifierAcrossFeedLoss(t *testing.T) {
	onEachBackend(t, func(t *testing.T, st closer) {
		rm, tok1, jti1, tok2 := newRemoteWithTokens(t, st)
		rm.s.unfollow()
		rm.s.revokeJTI(t, jti1) // while the feed is down: only in the store
		rm.s.clk.Advance(maxStaleness + time.Millisecond)
		rm.verifies(t, tok2, token.ErrRevocationsStale)

		rm.s.follow(t, rm.view)
		rm.verifies(t, tok2, nil)
		rm.verifies(t, tok1, token.ErrRevoked)
	})
}
