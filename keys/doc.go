// Package keys holds the keys access tokens are signed with: an issuer's
// Ring of signing keys, its JWKS document, and Remote, a resource server's
// cache of an issuer's JWKS.
//
//	master, err := keys.ParseMasterKey(os.Getenv(keys.MasterKeyEnv)) // when set
//	ring, err := keys.NewRing(ctx, store, keys.Config{MasterKey: master})
//	err = ring.Maintain(ctx)           // every minute or so: first key, rotations
//	kid, alg, signer, err := ring.SigningKey(ctx)
//	jwks, err := ring.JWKS(ctx)       // GET /.well-known/jwks.json, max-age ring.MaxAge()
//
//	remote, err := keys.NewRemote(keys.RemoteConfig{URL: "https://auth.example/.well-known/jwks.json"})
//	alg, pub, err := remote.PublicKey(ctx, kid)
//
// # Keys
//
// A key is Ed25519 (EdDSA, the default) or P-256 (ES256), bound to that one
// algorithm (JWT-02), and named by its RFC 7638 thumbprint: the base64url
// SHA-256 of {"crv","kty","x"} (and "y" for P-256), as go-jose's
// JSONWebKey.Thumbprint computes it. Generate makes one; ParsePEM takes an
// existing one from PKCS#8 or SEC 1 PEM.
//
// # Rotation
//
// A Ring computes each key's state from four times in its Record, so the
// whole timeline is written when a key is added, and every node that
// reads the ring agrees on it:
//
//	Created ───────── SignFrom ────────── SignUntil ─────────── RemoveAt
//	published,         signs               signs no more,        out of
//	waiting to sign                        still published       the JWKS
//
// Rotate (or Maintain, when Due: the signing key has signed for RotateEvery
// less CacheLifetime) adds a key with SignFrom = now + CacheLifetime, so it
// is in every verifier's cached JWKS before it signs, and sets the signing
// key's SignUntil to that same time and its RemoveAt to MaxTokenTTL +
// MaxLeeway later, when the last token it signed has expired (KEY-02).
// With the defaults (CacheLifetime 15 min, MaxTokenTTL 1 h, RotateEvery
// 720 h) a key is published at t, signs from t+15m for 720 h, and is
// unpublished 1 h 1 min after that.
//
// Two exceptions, each where the alternative is that nothing signs: when
// no key may sign (a new ring, or after Retire(kid, true), the emergency
// removal, of the signing key) a key still waiting to sign signs early,
// and the key Rotate adds signs at once. Verifiers that refresh on an unknown kid (KEY-03), such
// as Remote, fetch it with the first token it signed.
//
// Retire(kid, false) stops a key signing now and keeps it published for
// its tokens; Retire(kid, true) takes it out of the JWKS and destroys its
// private key at once. Verifiers that cached the JWKS may still accept it
// for CacheLifetime: revoke its tokens too.
//
// A Ring answers SigningKey, PublicKey and JWKS from memory; Reload,
// Maintain and every change read the storage again, so another node's
// rotation is seen at the next Maintain, long before its key signs.
//
// # Storage
//
// A Ring keeps its records in a Storage: Load all, and Save a few in one
// atomic change conditioned on the ring's version, which is how two nodes
// running Maintain at once add one key, not two (see Storage).
// MemoryStorage is one in memory; the server's account store is another,
// on SQLite or PostgreSQL.
//
// # Sealing
//
// When a MasterKey is configured, private keys are stored sealed with
// AES-256-GCM, the kid as additional data so that a sealed key moved to
// another record does not open (KEY-04). Its text form, the server's
// TETHER_MASTER_KEY, is 32 random bytes in base64url without padding (43
// characters; NewMasterKey). Without a master key, keys are stored as
// plain PKCS#8; Maintain seals them once one is configured, and a ring
// holding sealed keys refuses to load without it (ErrMasterKeyRequired).
// Key, Record and Secret print and log without their private parts.
//
// # JWKS
//
// The JWK types are github.com/go-jose/go-jose/v4's (v4.1.9): MarshalJWKS
// writes a jose.JSONWebKeySet of public members only (kty, crv, x, y,
// kid, alg, use "sig"), each kid once (KEY-01), refusing any key that is
// not an Ed25519 or P-256 public key, a private one included, before
// go-jose sees it. ParseJWKS reads an untrusted key set within
// MaxJWKSSize: the document's structure, duplicate member names and
// UTF-8 are checked with go-json-experiment, private members, kid, use,
// alg and strict base64url by this package, and each entry's key is read
// by jose.JSONWebKey (point on the curve, coordinate sizes, low-order
// Ed25519 points, x5c and x5t consistency); it skips the keys it can't
// use and says why. golang-jwt/jwt/v5, which signs and verifies tether's
// tokens (see package token), has no JWK type; go-jose's is the one of
// the two libraries the issue named.
//
// # Remote
//
// Remote fetches one configured URL, never one named by a token, with a
// deadline and MaxJWKSSize. A kid it doesn't know, or a set older than
// RefreshAfter, makes it fetch again, at most once per MinInterval, one
// fetch at a time: concurrent lookups wait for the fetch under way. A set
// fetched longer than MaxAge ago is not used: with the issuer unreachable
// that long, every lookup fails (ErrStale) until a fetch succeeds (KEY-03).
package keys
