// Package hostile is the one table of hostile access tokens that every
// part of tether taking a token must refuse: token.Verifier and its HTTP
// middleware, a verifier over a keys.Ring or a keys.Remote, the server's
// introspection (INT-01) and revocation (REV-01) endpoints. Each case is
// tagged with the rule of docs/security.md it attacks (JWT-01 ..
// JWT-12, KEY-01 .. KEY-03), so a test runs it as the subtest
// "JWT-07/two segments".
//
//	v := hostile.Valid{Issuer: iss, Audience: aud, ClientID: "svc",
//		Key: hostile.Key{KID: kid, Alg: hostile.EdDSA, Signer: priv}, Now: clk.Now()}
//	accept(t, v.Token(t)) // the control: the valid token is accepted
//	for _, c := range v.Cases(t) {
//		t.Run(c.String(), func(t *testing.T) { refuse(t, c) })
//	}
//
// Decisions:
//
//   - A Valid says what a valid token looks like to the verifier under
//     test, and every case is that token with one thing wrong, signed
//     with the valid key unless the case is about the key. A test first
//     checks that Valid.Token is accepted: without that control, every
//     case could be refused for one dull reason (a wrong issuer, a
//     clock) and the table would prove nothing.
//   - It imports the standard library only, none of tether: it writes
//     the JSON, the base64url and the Ed25519 and ECDSA signatures
//     itself, so a case is what an attacker sends, not what tether's own
//     encoder can produce, and the tests of any package, token's
//     included, can use it.
//   - A case's Where says where the token travels: most are a bearer
//     header whose text is hostile (Bearer); the JWT-11 cases carry the
//     valid token in the URL query, so only an endpoint that reads a
//     bearer header can refuse them, and endpoints that take a token's
//     text (Verify, introspection, revocation) skip them.
//   - JWT-10 is the answer, not a token: a test checks it on every case
//     (401 and exactly `Bearer error="invalid_token"`, or exactly
//     {"active":false}); the table's own JWT-10 case is text that is no
//     token at all, answered like every other.
//   - JWT-09 needs a revoked jti (Valid.RevokedJTI) and KEY-02 a key the
//     issuer removed with `keys retire --now` (Valid.Removed): without
//     them the table has no case of those rules.
//   - KEY-01 (the JWKS holds public keys only, each kid once, with use
//     and alg) is about the published document, which keys' tests read;
//     the side of it a token reaches is whether a verifier takes a key
//     from anywhere but that set, so its cases embed a stranger's key in
//     the header and sign with it. KEY-03 (a remote key set fetches only
//     its configured URL) is reached by tokens whose jku or x5u point at
//     Valid.KeyURL: a test that serves it counts no fetch.
//   - No token can exercise KEY-04 (private keys never logged, sealed at
//     rest): it is about the issuer's storage and logs, and keys' and
//     cmd/tether's tests check it. Nor the halves of KEY-02 and KEY-03
//     that are timelines (publish before signing, refresh at most once
//     per interval, fail closed when stale): those are a key ring's and
//     a cache's behaviour over time, tested in keys.
package hostile

import (
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Key is a signing key as a key set names it.
type Key struct {
	// KID names it in the key set.
	KID string
	// Alg is the algorithm the key is bound to: EdDSA or ES256.
	Alg string
	// Signer is the private key: an ed25519.PrivateKey, or an
	// *ecdsa.PrivateKey on P-256.
	Signer crypto.Signer
}

// Valid is what a valid token looks like to the verifier under test.
type Valid struct {
	// Issuer and Audience are the verifier's: the token's iss, and its
	// aud (one string).
	Issuer, Audience string
	// ClientID is the token's client_id; its subject is "client:" +
	// ClientID. Default "hostile".
	ClientID string
	// Key is a key the verifier's key set holds, which signs the token.
	Key Key
	// Now is the verifier's clock when the cases are checked; the valid
	// token was issued then and lives 5 minutes.
	Now time.Time
	// Leeway is the verifier's clock skew allowance: the time cases lie
	// just beyond it. Default 0.
	Leeway time.Duration
	// MaxLifetime is the longest exp - iat the verifier accepts. Default
	// 24 h, token.VerifierConfig's.
	MaxLifetime time.Duration
	// Removed, when set, is a key the issuer removed with retire --now,
	// whose private part the test kept: the KEY-02 case is signed with it.
	Removed *Key
	// RevokedJTI, when set, is a jti the verifier's revocation view
	// holds: the JWT-09 case carries it.
	RevokedJTI string
	// KeyURL is where the jku and x5u of the KEY-03 cases point: a test
	// serves it to see that nothing fetches it. Default
	// "https://attacker.example/jwks.json".
	KeyURL string
}

// Where is where a case's token travels in a request.
type Where int

// The places of a token.
const (
	// Bearer: Authorization: Bearer TOKEN, the token's text hostile.
	Bearer Where = iota
	// Query: the valid token as access_token in the URL query (JWT-11).
	Query
	// QueryAndBearer: the valid token in the query and in the header.
	QueryAndBearer
)

// Case is one hostile token.
type Case struct {
	// Rule is the id of the rule it attacks, such as "JWT-07".
	Rule string
	// Name says what is wrong with it.
	Name string
	// Token is its text.
	Token string
	// Where it travels; a test that takes a token's text only runs the
	// Bearer cases.
	Where Where
}

// String is the case's subtest name: "JWT-07/two segments".
func (c Case) String() string { return c.Rule + "/" + c.Name }

// Authorize puts the case's token in r where it travels.
func (c Case) Authorize(r *http.Request) {
	if c.Where != Bearer {
		q := r.URL.Query()
		q.Set("access_token", c.Token)
		r.URL.RawQuery = q.Encode()
	}
	if c.Where != Query {
		r.Header.Set("Authorization", "Bearer "+c.Token)
	}
}

// validJTI is the valid token's jti, which every case that isn't about
// jti keeps: a revocation that went through for a case would revoke the
// valid token too, where a test sees it.
const validJTI = "hostile-valid-jti"

// maxSize is the largest token a verifier decodes (JWT-07).
const maxSize = 8 << 10

// Token is the valid token: every case is it with one thing wrong. With
// an ES256 key, whose signatures are randomized, each call gives another
// text of the same token.
func (v Valid) Token(t testing.TB) string {
	t.Helper()
	v = v.defaults(t)
	return jws(t, v.header(nil).text(t), v.claims(nil).text(t), v.Key.Signer)
}

// defaults fills v's defaults and checks that it can sign.
func (v Valid) defaults(t testing.TB) Valid {
	t.Helper()
	if v.Issuer == "" || v.Audience == "" || v.Key.KID == "" || v.Key.Signer == nil || v.Now.IsZero() {
		t.Fatal("hostile: Valid needs Issuer, Audience, Key and Now")
	}
	if v.Key.Alg != EdDSA && v.Key.Alg != ES256 {
		t.Fatalf("hostile: Key.Alg %q: want EdDSA or ES256", v.Key.Alg)
	}
	if v.ClientID == "" {
		v.ClientID = "hostile"
	}
	if v.MaxLifetime == 0 {
		v.MaxLifetime = 24 * time.Hour
	}
	if v.KeyURL == "" {
		v.KeyURL = "https://attacker.example/jwks.json"
	}
	return v
}

// header is the valid header with mods.
func (v Valid) header(mods members) members {
	return members{"alg": v.Key.Alg, "typ": "at+jwt", "kid": v.Key.KID}.with(mods)
}

// claims are the valid claims with mods.
func (v Valid) claims(mods members) members {
	now := v.Now.Unix()
	return members{
		"iss": v.Issuer, "sub": "client:" + v.ClientID, "aud": v.Audience,
		"exp": now + 300, "iat": now, "jti": validJTI, "client_id": v.ClientID, "scope": "read",
	}.with(mods)
}

// otherAlg is the algorithm of tether's that alg is not.
func otherAlg(alg string) string {
	if alg == EdDSA {
		return ES256
	}
	return EdDSA
}

// swapCase is s with its letters' case changed.
func swapCase(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z':
			return r - 'a' + 'A'
		case 'A' <= r && r <= 'Z':
			return r - 'A' + 'a'
		}
		return r
	}, s)
}

// Cases returns the hostile tokens, each of them refused by a verifier
// that accepts v.Token. It fails t when v lacks what a token needs.
func (v Valid) Cases(t testing.TB) []Case {
	t.Helper()
	v = v.defaults(t)
	b := &builder{t: t, v: v, head: v.header(nil).text(t), body: v.claims(nil).text(t)}
	b.good = b.sign(b.head, b.body)
	b.signature()
	b.algorithm()
	b.keys()
	b.times()
	b.issuerAudience()
	b.typAndClaims()
	b.compact()
	b.hygiene()
	b.transport()
	b.subjects()
	return b.cases
}

// builder makes the cases of one Valid.
type builder struct {
	t          testing.TB
	v          Valid
	head, body string // the valid header and claims, JSON
	good       string // the valid token
	cases      []Case
}

// add appends a case that travels as a bearer token.
func (b *builder) add(rule, name, tok string) {
	b.cases = append(b.cases, Case{Rule: rule, Name: name, Token: tok})
}

// sign is header and claims signed with the valid key.
func (b *builder) sign(header, claims string) string {
	return jws(b.t, header, claims, b.v.Key.Signer)
}

// claims is the valid claims with mods, signed under the valid header.
func (b *builder) claims(mods members) string {
	return b.sign(b.head, b.v.claims(mods).text(b.t))
}

// header is the valid header with mods over the valid claims, signed
// with key (the valid one when nil).
func (b *builder) header(mods members, key crypto.Signer) string {
	if key == nil {
		key = b.v.Key.Signer
	}
	return jws(b.t, b.v.header(mods).text(b.t), b.body, key)
}

// JWT-01: the signature is verified before any claim is read; any parse
// error is a rejection.
func (b *builder) signature() {
	const rule = "JWT-01"
	parts := strings.Split(b.good, ".")
	other := strings.Split(b.claims(members{"scope": "admin", "sub": "client:" + b.v.ClientID}), ".")
	b.add(rule, "signed by a stranger's key under the valid kid", jws(b.t, b.head, b.body, NewKey(b.t, b.v.Key.Alg)))
	b.add(rule, "the claims of another token under this one's signature", parts[0]+"."+other[1]+"."+parts[2])
	b.add(rule, "a bit of the signature flipped", parts[0]+"."+parts[1]+"."+flipFirst(parts[2]))
	b.add(rule, "the signature truncated", b.good[:len(b.good)-4])
	b.add(rule, "claims that are not JSON, validly signed", b.sign(b.head, "not json"))
	b.add(rule, "claims cut short, validly signed", b.sign(b.head, b.body[:len(b.body)/2]))
	b.add(rule, "data after the claims, validly signed", b.sign(b.head, b.body+" {}"))
}

// JWT-02: an allowlist of algorithms, never none; each key bound to one,
// which the header must match.
func (b *builder) algorithm() {
	const rule = "JWT-02"
	alg, other := b.v.Key.Alg, otherAlg(b.v.Key.Alg)
	none := b.v.header(members{"alg": "none"}).text(b.t)
	hs := b.v.header(members{"alg": "HS256"}).text(b.t)
	raw, pemText := publicForms(b.t, b.v.Key.Signer.Public())
	b.add(rule, "alg none, no signature", b64.EncodeToString([]byte(none))+"."+b64.EncodeToString([]byte(b.body))+".")
	b.add(rule, "alg none, a valid signature", b.sign(none, b.body))
	b.add(rule, "HS256 keyed with the public key's bytes", hs256(hs, b.body, raw))
	b.add(rule, "HS256 keyed with the public key's PEM", hs256(hs, b.body, pemText))
	b.add(rule, other+" header on the "+alg+" key, signed by a stranger's "+other+" key", b.header(members{"alg": other}, NewKey(b.t, other)))
	b.add(rule, other+" header over the "+alg+" key's own signature", b.header(members{"alg": other}, nil))
	b.add(rule, "alg in another case", b.header(members{"alg": swapCase(alg)}, nil))
	b.add(rule, "alg missing", b.header(members{"alg": nil}, nil))
	b.add(rule, "alg RS256, which tether never allows", b.header(members{"alg": "RS256"}, nil))
	if k, ok := b.v.Key.Signer.(*ecdsa.PrivateKey); ok {
		b.add(rule, "ES256 signature in ASN.1 DER, not R || S", derSigned(b.t, b.head, b.body, k))
	}
}

// JWT-03 (kid an exact lookup; jku, x5u, jwk, x5c and crit refused even
// on a validly signed token), KEY-01 (a verifier's keys are the published
// set's, never one a token brings), KEY-02 (a removed key verifies
// nothing) and KEY-03 (no URL named in a token is fetched).
func (b *builder) keys() {
	const rule = "JWT-03"
	kid := b.v.Key.KID
	own := jwkOf(b.t, b.v.Key.Signer.Public())
	b.add(rule, "a kid the key set lacks", b.header(members{"kid": kid + "-unknown"}, nil))
	if swapCase(kid) != kid {
		b.add(rule, "the kid in another case", b.header(members{"kid": swapCase(kid)}, nil))
	}
	b.add(rule, "kid missing", b.header(members{"kid": nil}, nil))
	b.add(rule, "kid empty", b.header(members{"kid": ""}, nil))
	b.add(rule, "kid a path", b.header(members{"kid": "../" + kid}, nil))
	b.add(rule, "kid over 128 characters", b.header(members{"kid": kid + strings.Repeat("k", 129)}, nil))
	for _, m := range []struct {
		name  string
		value any
	}{
		{"jku", b.v.KeyURL},
		{"x5u", b.v.KeyURL},
		{"jwk", own},
		{"x5c", []string{"MIIBhTCCASugAwIBAgIUQ"}},
		{"x5t", "dGhpcyBpcyBub3QgYSB0aHVtYnByaW50"},
		{"crit", []string{"exp"}},
		{"b64", false},
		{"zip", "DEF"},
		{"cty", "JWT"},
	} {
		b.add(rule, m.name+" in the header of a validly signed token", b.header(members{m.name: m.value}, nil))
	}

	evil := NewKey(b.t, b.v.Key.Alg)
	embedded := jwkOf(b.t, evil.Public())
	b.add("KEY-01", "a stranger's jwk in the header, signed by it, under the valid kid", b.header(members{"jwk": embedded}, evil))
	b.add("KEY-01", "a stranger's jwk in the header, signed by it, under its own kid", b.header(members{"jwk": embedded, "kid": "attacker"}, evil))
	if r := b.v.Removed; r != nil {
		b.add("KEY-02", "signed by a key removed with retire --now, under its kid", b.header(members{"kid": r.KID, "alg": r.Alg}, r.Signer))
	}
	b.add("KEY-03", "jku naming the attacker's key set, a kid only it holds", b.header(members{"jku": b.v.KeyURL, "kid": "attacker"}, evil))
	b.add("KEY-03", "x5u naming the attacker's certificate, a kid only it holds", b.header(members{"x5u": b.v.KeyURL, "kid": "attacker"}, evil))
	b.add("KEY-03", "jku naming the attacker's key set, under the valid kid", b.header(members{"jku": b.v.KeyURL}, evil))
}

// JWT-04: exp required; nbf and iat checked, beyond the leeway; the
// lifetime capped.
func (b *builder) times() {
	const rule = "JWT-04"
	now, leeway := b.v.Now.Unix(), int64(b.v.Leeway/time.Second)
	b.add(rule, "exp missing", b.claims(members{"exp": nil}))
	b.add(rule, "exp past, beyond the leeway", b.claims(members{"exp": now - leeway - 1, "iat": now - leeway - 301}))
	b.add(rule, "exp at the leeway's edge", b.claims(members{"exp": now - leeway, "iat": now - leeway - 300}))
	b.add(rule, "nbf in the future, beyond the leeway", b.claims(members{"nbf": now + leeway + 1}))
	b.add(rule, "iat in the future, beyond the leeway", b.claims(members{"iat": now + leeway + 1, "exp": now + leeway + 301}))
	b.add(rule, "iat missing", b.claims(members{"iat": nil}))
	b.add(rule, "a lifetime over the cap", b.claims(members{"exp": now + int64(b.v.MaxLifetime/time.Second) + 1}))
	b.add(rule, "exp before iat", b.claims(members{"exp": now - 1}))
}

// JWT-05: iss matched exactly; aud must contain the verifier's; missing
// aud refused.
func (b *builder) issuerAudience() {
	const rule = "JWT-05"
	iss, aud := b.v.Issuer, b.v.Audience
	b.add(rule, "another issuer", b.claims(members{"iss": "https://attacker.example"}))
	b.add(rule, "the issuer with a trailing slash", b.claims(members{"iss": iss + "/"}))
	b.add(rule, "the issuer with a suffix", b.claims(members{"iss": iss + ".attacker.example"}))
	b.add(rule, "the issuer in another case", b.claims(members{"iss": strings.ToUpper(iss)}))
	b.add(rule, "iss missing", b.claims(members{"iss": nil}))
	b.add(rule, "iss empty", b.claims(members{"iss": ""}))
	b.add(rule, "aud missing", b.claims(members{"aud": nil}))
	b.add(rule, "another audience", b.claims(members{"aud": "https://attacker.example"}))
	b.add(rule, "an audience array without ours", b.claims(members{"aud": []string{"https://a.example", "https://b.example"}}))
	b.add(rule, "an empty audience array", b.claims(members{"aud": []string{}}))
	b.add(rule, "a prefix of our audience", b.claims(members{"aud": aud[:len(aud)-1]}))
	b.add(rule, "our audience with a suffix", b.claims(members{"aud": aud + "/other"}))
	b.add(rule, "our audience in another case", b.claims(members{"aud": strings.ToUpper(aud)}))
}

// JWT-06: typ at+jwt; iss exp aud sub client_id iat jti required; scope a
// space-separated string.
func (b *builder) typAndClaims() {
	const rule = "JWT-06"
	for _, typ := range []struct {
		name  string
		value any
	}{
		{"typ missing", nil},
		{"typ JWT", "JWT"},
		{"typ application/jwt", "application/jwt"},
		{"typ with a parameter", "at+jwt; q=1"},
		{"typ with a trailing space", "at+jwt "},
		{"typ a number", 1},
	} {
		b.add(rule, typ.name, b.header(members{"typ": typ.value}, nil))
	}
	for _, claim := range []string{"sub", "client_id", "jti"} {
		b.add(rule, claim+" missing", b.claims(members{claim: nil}))
	}
	b.add(rule, "jti empty", b.claims(members{"jti": ""}))
	b.add(rule, "client_id empty", b.claims(members{"client_id": "", "sub": "client:"}))
	b.add(rule, "scope an array", b.claims(members{"scope": []string{"read"}}))
	b.add(rule, "scope with two spaces", b.claims(members{"scope": "read  write"}))
	b.add(rule, "scope with a leading space", b.claims(members{"scope": " read"}))
	b.add(rule, "scope with a quote", b.claims(members{"scope": `read "write"`}))
}

// JWT-07: compact form only, three base64url segments without padding,
// only [A-Za-z0-9_-.], at most 8 KiB before any decoding.
func (b *builder) compact() {
	const rule = "JWT-07"
	p := strings.Split(b.good, ".")
	b.add(rule, "over 8 KiB, validly signed", b.claims(members{"pad": strings.Repeat("a", maxSize)}))
	b.add(rule, "two segments", p[0]+"."+p[1])
	b.add(rule, "four segments", b.good+"."+p[2])
	b.add(rule, "a dot at the end", b.good+".")
	b.add(rule, "an empty signature", p[0]+"."+p[1]+".")
	b.add(rule, "an empty header", "."+p[1]+"."+p[2])
	b.add(rule, "empty claims", p[0]+".."+p[2])
	b.add(rule, "empty", "")
	b.add(rule, "padding", p[0]+"=."+p[1]+"."+p[2])
	b.add(rule, "padding on the signature", b.good+"==")
	b.add(rule, "the standard base64 alphabet", b.standardAlphabet())
	b.add(rule, "a trailing space", b.good+" ")
	b.add(rule, "a line break", p[0]+".\n"+p[1]+"."+p[2])
	b.add(rule, "a NUL byte", p[0]+"."+p[1]+"\x00."+p[2])
	b.add(rule, "a non-ASCII character", p[0]+"."+p[1]+"é."+p[2])
	b.add(rule, "non-canonical base64 (trailing bits set)", p[0]+"."+p[1]+"."+nonCanonical(p[2]))
	b.add(rule, "JSON serialization", `{"protected":"`+p[0]+`","payload":"`+p[1]+`","signature":"`+p[2]+`"}`)
}

// standardAlphabet is a valid token written in base64's standard alphabet
// (+ and /): its claims carry a counter raised until the text has one of
// the characters that differ.
func (b *builder) standardAlphabet() string {
	for n := 0; ; n++ {
		tok := b.claims(members{"n": n})
		if std := strings.NewReplacer("-", "+", "_", "/").Replace(tok); std != tok {
			return std
		}
	}
}

// JWT-08: duplicate member names and case variants refused; claim types
// enforced. The names that encoding/json won't write are appended to the
// valid objects as raw text.
func (b *builder) hygiene() {
	const rule = "JWT-08"
	withHead := func(member string) string { return b.sign(appendMember(b.head, member), b.body) }
	withClaim := func(member string) string { return b.sign(b.head, appendMember(b.body, member)) }
	later := b.v.Now.Unix() + 600
	// A member twice, once with the valid value: first for a parser that
	// keeps the first, last for one that keeps the last.
	first := func(member string) string { return b.sign("{"+member+","+strings.TrimPrefix(b.head, "{"), b.body) }
	b.add(rule, "alg twice in the header, the valid one last", first(`"alg":"none"`))
	b.add(rule, "alg twice in the header, the valid one first", withHead(`"alg":"none"`))
	b.add(rule, "kid twice in the header, the valid one last", first(`"kid":"attacker"`))
	b.add(rule, "kid twice in the header, the valid one first", withHead(`"kid":"attacker"`))
	b.add(rule, "Alg beside alg in the header", withHead(`"Alg":"none"`))
	b.add(rule, "kid a number", b.header(members{"kid": 1}, nil))
	b.add(rule, "sub twice", withClaim(`"sub":"user:root"`))
	b.add(rule, "exp twice", withClaim(`"exp":`+itoa(later)))
	b.add(rule, "exp twice, once spelled with an escape", withClaim(`"\u0065xp":`+itoa(later)))
	b.add(rule, "an unregistered claim twice", withClaim(`"x":1,"x":2`))
	b.add(rule, "EXP beside exp", withClaim(`"EXP":`+itoa(later)))
	b.add(rule, "Sub beside sub", withClaim(`"Sub":"user:root"`))
	b.add(rule, "Client_ID beside client_id", withClaim(`"Client_ID":"root"`))
	b.add(rule, "exp a string", b.claims(members{"exp": itoa(later)}))
	b.add(rule, "exp a fraction", b.claims(members{"exp": float64(later) + 0.5}))
	b.add(rule, "exp in exponent form", b.claims(members{"exp": json.Number(itoa(b.v.Now.Unix()+300) + "e0")}))
	b.add(rule, "exp beyond int64", b.claims(members{"exp": json.Number("92233720368547758070")}))
	b.add(rule, "exp null", b.claims(members{"exp": json.RawMessage("null")}))
	b.add(rule, "nbf a fraction", b.claims(members{"nbf": float64(b.v.Now.Unix()) - 0.5}))
	b.add(rule, "iss an array", b.claims(members{"iss": []string{b.v.Issuer}}))
	b.add(rule, "sub a number", b.claims(members{"sub": 1}))
	b.add(rule, "aud a number", b.claims(members{"aud": 1}))
	b.add(rule, "aud an array with a number", b.claims(members{"aud": []any{b.v.Audience, 1}}))
	b.add(rule, "gen negative", b.claims(members{"gen": -1}))
	b.add(rule, "gen a string", b.claims(members{"gen": "1"}))
	b.add(rule, "invalid UTF-8 in a claim", withClaim("\"x\":\"\xff\""))
	b.add(rule, "the claims an array", b.sign(b.head, "["+b.body+"]"))
	b.add(rule, "the claims a string", b.sign(b.head, `"`+b.v.Issuer+`"`))
	b.add(rule, "the claims null", b.sign(b.head, "null"))
	b.add(rule, "the header an array", b.sign("["+b.head+"]", b.body))
	b.add(rule, "a byte order mark before the claims", b.sign(b.head, "\ufeff"+b.body))
}

// JWT-09 (revocation by jti, never by a hash of the text), JWT-10 (one
// answer for every cause) and JWT-11 (never from a URL query).
func (b *builder) transport() {
	if b.v.RevokedJTI != "" {
		// Its text is one no revoker ever saw: a denylist of hashes of
		// token texts would let it through.
		b.add("JWT-09", "a revoked jti, in a text never seen before", b.claims(members{"jti": b.v.RevokedJTI, "scope": "read revoked"}))
	}
	b.add("JWT-10", "text that is no token", "not a token")
	b.cases = append(b.cases,
		Case{Rule: "JWT-11", Name: "the valid token in the URL query", Token: b.good, Where: Query},
		Case{Rule: "JWT-11", Name: "the valid token in the URL query and the header", Token: b.good, Where: QueryAndBearer},
	)
}

// JWT-12: client and user subjects can't collide.
func (b *builder) subjects() {
	const rule = "JWT-12"
	id := b.v.ClientID
	b.add(rule, "sub without a namespace", b.claims(members{"sub": id}))
	b.add(rule, "sub another client's", b.claims(members{"sub": "client:" + id + "-other"}))
	b.add(rule, "sub a user without an id", b.claims(members{"sub": "user:"}))
	b.add(rule, "the namespace in another case", b.claims(members{"sub": "Client:" + id}))
}

// itoa is n in decimal.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
