package token

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// spyRevocations records what it was asked.
type spyRevocations struct {
	calls []string
	err   error
}

func (s *spyRevocations) Check(_ context.Context, subject string, gen uint64, jti string) error {
	s.calls = append(s.calls, jti)
	return s.err
}

func TestJWT01_SignatureBeforeClaims(t *testing.T) {
	spy := &spyRevocations{}
	v, _ := newVerifier(t, func(c *VerifierConfig) { c.Revocations = spy })
	expired := claimsJSON(map[string]any{"exp": t0.Add(-time.Hour).Unix(), "iat": t0.Add(-2 * time.Hour).Unix()})
	otherKey := forge(goodHead, expired, EdDSA, edOther)
	refuse(t, v, []hostile{
		{"signed by another key", forge(goodHead, claimsJSON(nil), EdDSA, edOther), nil},
		{"claims swapped under a valid signature", func() string {
			a, b := strings.Split(good(claimsJSON(nil)), "."), strings.Split(good(claimsJSON(map[string]any{"sub": "user:root"})), ".")
			return a[0] + "." + b[1] + "." + a[2]
		}(), nil},
		{"truncated signature", good(claimsJSON(nil))[:len(good(claimsJSON(nil)))-4], nil},
		{"claims not JSON under a valid signature", good(`not json`), nil},
		{"trailing data after the claims", good(claimsJSON(nil) + ` {}`), nil},
	})
	// An expired token signed by a stranger is refused for its signature,
	// not for its exp: its claims were never read.
	if _, err := v.Verify(context.Background(), otherKey); errors.Is(err, ErrExpired) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want a signature refusal", err)
	}
	if len(spy.calls) != 0 {
		t.Fatalf("revocations consulted for %v, want never for a refused token", spy.calls)
	}
}

// TestJWT01_ES256SignatureForms: the signature golang-jwt's ES256 method
// verifies is R || S of 32 bytes each, and nothing near it passes: a
// byte short or long, zeros, R and S swapped, or a signature of other
// claims.
func TestJWT01_ES256SignatureForms(t *testing.T) {
	v, _ := newVerifier(t, func(c *VerifierConfig) { c.Keys = ecKeys; c.Algorithms = []string{ES256} })
	head := `{"alg":"ES256","typ":"at+jwt","kid":"k2"}`
	ok := forge(head, claimsJSON(nil), ES256, ecPriv)
	accept(t, v, ok)
	dot := strings.LastIndexByte(ok, '.')
	sig := mustDecode(t, ok[dot+1:])
	with := func(sig []byte) string { return ok[:dot+1] + b64.EncodeToString(sig) }
	other := forge(head, claimsJSON(map[string]any{"sub": "user:root"}), ES256, ecPriv)
	refuse(t, v, []hostile{
		{"63 bytes", with(sig[:63]), nil},
		{"65 bytes", with(append(sig[:64:64], 0)), nil},
		{"zeros", with(make([]byte, 64)), nil},
		{"R and S swapped", with(append(append([]byte{}, sig[32:]...), sig[:32]...)), nil},
		{"the signature of other claims", with(mustDecode(t, other[strings.LastIndexByte(other, '.')+1:])), nil},
	})
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := b64.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJWT02_Algorithms(t *testing.T) {
	// none, HS256 and a stranger's key of the other algorithm are in
	// the shared table (hostile_test.go). In a set of two keys, each is
	// refused for the other's algorithm, and ES256 is refused where the
	// allowlist lacks it.
	both := keysOf{"k1": edKeys, "k2": ecKeys}
	v2, _ := newVerifier(t, func(c *VerifierConfig) { c.Keys = both; c.Algorithms = []string{EdDSA, ES256} })
	refuse(t, v2, []hostile{
		{"EdDSA header on the ES256 key", forge(`{"alg":"EdDSA","typ":"at+jwt","kid":"k2"}`, claimsJSON(nil), EdDSA, edPriv), nil},
		{"ES256 header on the EdDSA key", forge(`{"alg":"ES256","typ":"at+jwt","kid":"k1"}`, claimsJSON(nil), ES256, ecPriv), nil},
	})
	v3, _ := newVerifier(t, func(c *VerifierConfig) { c.Keys = both })
	refuse(t, v3, []hostile{
		{"ES256 outside the allowlist", forge(`{"alg":"ES256","typ":"at+jwt","kid":"k2"}`, claimsJSON(nil), ES256, ecPriv), nil},
	})
	for _, algs := range [][]string{{"none"}, {"HS256"}, {EdDSA, "RS256"}} {
		if _, err := NewVerifier(VerifierConfig{Issuer: testIss, Audience: testAud, Keys: edKeys, Algorithms: algs}); err == nil {
			t.Errorf("Algorithms %q accepted, want refused", algs)
		}
	}
}

// keysOf is a KeySet of several StaticKeys.
type keysOf map[string]StaticKeys

func (k keysOf) PublicKey(ctx context.Context, kid string) (string, crypto.PublicKey, error) {
	s, ok := k[kid]
	if !ok {
		return "", nil, nil
	}
	return s.PublicKey(ctx, kid)
}

// failingKeys is a KeySet that can't answer.
type failingKeys struct{}

func (failingKeys) PublicKey(context.Context, string) (string, crypto.PublicKey, error) {
	return "", nil, errors.New("store down")
}

func TestJWT03_KeysAndHeaders(t *testing.T) {
	v, _ := newVerifier(t, nil)
	withHead := func(h string) string { return forge(h, claimsJSON(nil), EdDSA, edPriv) }
	refuse(t, v, []hostile{
		{"unknown kid", withHead(`{"alg":"EdDSA","typ":"at+jwt","kid":"k9"}`), ErrUnknownKey},
		{"kid in another case", withHead(`{"alg":"EdDSA","typ":"at+jwt","kid":"K1"}`), ErrUnknownKey},
		{"no kid", withHead(`{"alg":"EdDSA","typ":"at+jwt"}`), ErrUnknownKey},
		{"kid too long", withHead(`{"alg":"EdDSA","typ":"at+jwt","kid":"` + strings.Repeat("k", 129) + `"}`), ErrUnknownKey},
	})
	// A key set that can't answer fails closed, and is not a token fault.
	vf, _ := newVerifier(t, func(c *VerifierConfig) { c.Keys = failingKeys{} })
	if c, err := vf.Verify(context.Background(), good(claimsJSON(nil))); c != nil || err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, %v; want a refusal that is not ErrInvalid", c, err)
	}
}

func TestJWT04_Times(t *testing.T) {
	v, _ := newVerifier(t, nil)
	refuse(t, v, []hostile{
		{"exp passed", good(claimsJSON(map[string]any{"exp": t0.Add(-time.Second).Unix(), "iat": t0.Add(-time.Minute).Unix()})), ErrExpired},
		{"exp now", good(claimsJSON(map[string]any{"exp": t0.Unix(), "iat": t0.Add(-time.Minute).Unix()})), ErrExpired},
		{"nbf in the future", good(claimsJSON(map[string]any{"nbf": t0.Add(time.Second).Unix()})), ErrNotYetValid},
		{"iat in the future", good(claimsJSON(map[string]any{"iat": t0.Add(time.Second).Unix()})), ErrNotYetValid},
	})
	for _, l := range []time.Duration{61 * time.Second, time.Hour, -time.Second} {
		if _, err := NewVerifier(VerifierConfig{Issuer: testIss, Audience: testAud, Keys: edKeys, Leeway: l}); err == nil {
			t.Errorf("Leeway %v accepted, want refused", l)
		}
	}
	if _, _, err := newIssuer(t).Issue(context.Background(), Grant{Subject: "client:svc", ClientID: "svc", Audience: []string{testAud}, TTL: 2 * time.Hour}); err == nil {
		t.Error("a TTL over MaxTTL was issued, want refused")
	}
}

// TestJWT04_LeewayEdges moves an injected clock across each edge.
func TestJWT04_LeewayEdges(t *testing.T) {
	const leeway = 30 * time.Second
	v, clk := newVerifier(t, func(c *VerifierConfig) { c.Leeway = leeway })
	exp := t0.Add(5 * time.Minute)
	tok := good(claimsJSON(map[string]any{"nbf": t0.Unix()}))
	for _, c := range []struct {
		name string
		at   time.Time
		want error
	}{
		{"before iat and nbf within the leeway", t0.Add(-leeway), nil},
		{"before iat and nbf past the leeway", t0.Add(-leeway - time.Second), ErrNotYetValid},
		{"after exp within the leeway", exp.Add(leeway - time.Nanosecond), nil},
		{"after exp at the leeway", exp.Add(leeway), ErrExpired},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk.Advance(c.at.Sub(clk.Now()))
			_, err := v.Verify(context.Background(), tok)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestJWT05_IssuerAudience(t *testing.T) {
	v, _ := newVerifier(t, nil)
	refuse(t, v, []hostile{
		{"aud missing", good(claimsJSON(map[string]any{"aud": nil})), ErrAudience},
		{"aud another", good(claimsJSON(map[string]any{"aud": "https://other.example.com"})), ErrAudience},
		{"aud array without ours", good(claimsJSON(map[string]any{"aud": []string{"a", "b"}})), ErrAudience},
		{"aud empty array", good(claimsJSON(map[string]any{"aud": []string{}})), ErrAudience},
		{"aud a prefix of ours", good(claimsJSON(map[string]any{"aud": testAud[:len(testAud)-1]})), ErrAudience},
	})
	accept(t, v, good(claimsJSON(map[string]any{"aud": []string{"a", testAud}})))
}

func TestJWT06_TypAndRequiredClaims(t *testing.T) {
	v, _ := newVerifier(t, nil)
	withTyp := func(typ string) string {
		return forge(`{"alg":"EdDSA","typ":`+typ+`,"kid":"k1"}`, claimsJSON(nil), EdDSA, edPriv)
	}
	// The refused typs and claims are in the shared table
	// (hostile_test.go); these spellings of at+jwt are accepted.
	for _, typ := range []string{`"at+jwt"`, `"AT+JWT"`, `"application/at+jwt"`, `"Application/At+Jwt"`} {
		accept(t, v, withTyp(typ))
	}
}

func TestJWT07_CompactForm(t *testing.T) {
	v, _ := newVerifier(t, nil)
	tok := good(claimsJSON(nil))
	parts := strings.Split(tok, ".")
	big := good(claimsJSON(map[string]any{"pad": strings.Repeat("a", MaxSize)}))
	// A signature whose last character carries non-zero trailing bits
	// decodes, leniently, to the same bytes: strict decoding refuses it.
	last := parts[2][len(parts[2])-1]
	lenient := parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-1] + string(last+1)
	if a, b := lenientDecode(t, parts[2]), lenientDecode(t, strings.Split(lenient, ".")[2]); !bytes.Equal(a, b) {
		t.Fatal("the non-canonical signature does not decode to the same bytes: fix the test")
	}
	refuse(t, v, []hostile{
		{"over 8 KiB", big, nil},
		{"two segments", parts[0] + "." + parts[1], nil},
		{"four segments", tok + "." + parts[2], nil},
		{"empty signature", parts[0] + "." + parts[1] + ".", nil},
		{"empty header", "." + parts[1] + "." + parts[2], nil},
		{"padding", parts[0] + "=." + parts[1] + "." + parts[2], nil},
		{"standard base64 alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(tok) + "+", nil},
		{"whitespace", tok + " ", nil},
		{"a line break", parts[0] + ".\n" + parts[1] + "." + parts[2], nil},
		{"JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, nil},
		{"non-canonical base64", lenient, nil},
		{"empty", "", nil},
	})
}

func lenientDecode(t *testing.T, s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJWT08_JSONHygiene(t *testing.T) {
	v, _ := newVerifier(t, nil)
	c := claimsJSON(nil)
	withMember := func(m string) string { return good(c[:len(c)-1] + "," + m + "}") }
	// Duplicates, case variants and wrong types are in the shared table
	// (hostile_test.go); claims it doesn't know, in their own names, are
	// allowed.
	accept(t, v, withMember(`"acr":"mfa","auth_time":1`))
}

func TestJWT09_RevocationByJTI(t *testing.T) {
	revs := NewMemoryRevocations(nil)
	spy := &spyRevocations{}
	tok := good(claimsJSON(map[string]any{"jti": "j-revoked"}))
	v, _ := newVerifier(t, func(c *VerifierConfig) { c.Revocations = revs })
	accept(t, v, tok)
	revs.RevokeID("j-revoked", t0.Add(5*time.Minute))
	refuse(t, v, []hostile{{"jti on the denylist", tok, ErrRevoked}})
	accept(t, v, good(claimsJSON(map[string]any{"jti": "j-other"})))
	// The view is asked about the jti itself, not a hash of the text.
	vs, _ := newVerifier(t, func(c *VerifierConfig) { c.Revocations = spy })
	accept(t, vs, tok)
	if len(spy.calls) != 1 || spy.calls[0] != "j-revoked" {
		t.Fatalf("got %q, want [j-revoked]", spy.calls)
	}
	// A view that can't answer fails closed, and is not a token fault.
	spy.err = errors.New("feed down")
	if c, err := vs.Verify(context.Background(), tok); c != nil || err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, %v; want a refusal that is not ErrInvalid", c, err)
	}
}

// TestCHG03_GenerationKillsSameSecond: raising a subject's generation
// kills its tokens issued in the same second, and the next ones live.
func TestCHG03_GenerationKillsSameSecond(t *testing.T) {
	revs := NewMemoryRevocations(nil)
	iss := newIssuer(t)
	v, _ := newVerifier(t, func(c *VerifierConfig) { c.Revocations = revs })
	g := Grant{Subject: "user:alice", ClientID: "cli", Audience: []string{testAud}, Generation: revs.Generation("user:alice")}
	old, _, err := iss.Issue(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	accept(t, v, old)
	g.Generation = revs.RevokeSubject("user:alice")
	refuse(t, v, []hostile{{"older generation, same second", old, ErrRevoked}})
	fresh, _, err := iss.Issue(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	accept(t, v, fresh)
}

func TestJWT10_SameAnswerForEveryCause(t *testing.T) {
	v, _ := newVerifier(t, func(c *VerifierConfig) { c.Revocations = NewMemoryRevocations(nil) })
	h := v.Middleware("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	answer := func(tok string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Result().Status + "|" + w.Header().Get("WWW-Authenticate") + "|" + w.Body.String()
	}
	want := "401 Unauthorized|" + `Bearer error="invalid_token"` + "|invalid token\n"
	for _, tok := range []string{
		"garbage",
		forge(goodHead, claimsJSON(nil), EdDSA, edOther),
		good(claimsJSON(map[string]any{"exp": t0.Add(-time.Second).Unix(), "iat": t0.Add(-time.Minute).Unix()})),
		good(claimsJSON(map[string]any{"aud": "x"})),
		forge(`{"alg":"EdDSA","typ":"at+jwt","kid":"k9"}`, claimsJSON(nil), EdDSA, edPriv),
		good(claimsJSON(map[string]any{"iss": "x"})),
	} {
		if got := answer(tok); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	// A missing scope is 403 insufficient_scope.
	hs := v.Middleware("admin", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+good(claimsJSON(nil)))
	w := httptest.NewRecorder()
	hs.ServeHTTP(w, r)
	if w.Code != 403 || w.Header().Get("WWW-Authenticate") != `Bearer error="insufficient_scope"` {
		t.Errorf("got %d %q, want 403 insufficient_scope", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

func TestJWT11_NotFromURLQuery(t *testing.T) {
	v, _ := newVerifier(t, nil)
	tok := good(claimsJSON(nil))
	for _, c := range []struct {
		name, target, header string
	}{
		{"query only", "/?access_token=" + tok, ""},
		{"query and header", "/?access_token=" + tok, "Bearer " + tok},
		{"another scheme", "/", "Basic " + tok},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", c.target, nil)
			if c.header != "" {
				r.Header.Set("Authorization", c.header)
			}
			if got, err := v.VerifyRequest(r); got != nil || !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNoToken) {
				t.Fatalf("got %v, %v; want refused", got, err)
			}
		})
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	if _, err := v.VerifyRequest(r); err != nil {
		t.Fatalf("got %v, want the header's token accepted", err)
	}
}

func TestJWT12_SubjectNamespaces(t *testing.T) {
	v, _ := newVerifier(t, nil)
	// The colliding subjects are in the shared table (hostile_test.go);
	// a user may have a client's name, and the issuer refuses to sign a
	// subject outside its namespace.
	accept(t, v, good(claimsJSON(map[string]any{"sub": "user:svc"})))
	for _, g := range []Grant{
		{Subject: "svc", ClientID: "svc", Audience: []string{testAud}},
		{Subject: "client:other", ClientID: "svc", Audience: []string{testAud}},
	} {
		if _, _, err := newIssuer(t).Issue(context.Background(), g); err == nil {
			t.Errorf("subject %q for client %q issued, want refused", g.Subject, g.ClientID)
		}
	}
}

// TestWriteError: each kind of failure gets its RFC 6750 answer, and a
// verifier that could not decide never lets a request through.
func TestWriteError(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		auth   string
	}{
		{ErrNoToken, 401, "Bearer"},
		{invalid(ErrExpired, "x"), 401, `Bearer error="invalid_token"`},
		{ErrInsufficientScope, 403, `Bearer error="insufficient_scope"`},
		{errors.New("token: key set: store down"), 503, ""},
	} {
		w := httptest.NewRecorder()
		WriteError(w, c.err)
		if w.Code != c.status || w.Header().Get("WWW-Authenticate") != c.auth {
			t.Errorf("%v: got %d %q, want %d %q", c.err, w.Code, w.Header().Get("WWW-Authenticate"), c.status, c.auth)
		}
	}
}
