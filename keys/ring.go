package keys

import (
	"cmp"
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxLeeway is the most clock skew a verifier may allow on exp (JWT-04):
// a retired key stays published that much longer than its last token.
const MaxLeeway = 60 * time.Second

// Errors of a Ring.
var (
	// ErrNoSigningKey: the ring has no key that may sign (a new ring, or
	// after an emergency removal): run Maintain or Rotate.
	ErrNoSigningKey = errors.New("keys: the key ring has no key to sign with: rotate to add one")
	// ErrRotationPending: a new key is already waiting to sign.
	ErrRotationPending = errors.New("keys: a new key is already published and waiting to sign: retire it, or wait until it signs")
	// ErrLastKey: retiring the key would leave nothing to sign with.
	ErrLastKey = errors.New("keys: it is the only key that may sign now: rotate first and retire it once the new key signs, or retire it at once")
	// ErrKeyExists: an imported key is in the ring already.
	ErrKeyExists = errors.New("keys: the key is in the ring already")
	// ErrNotFound: no key in the ring has that kid.
	ErrNotFound = errors.New("keys: no key in the ring has that kid")
)

// Config is a Ring's settings. The zero value of each field is its default.
type Config struct {
	// Alg is the algorithm of the keys the ring makes: EdDSA (default) or
	// ES256.
	Alg string
	// CacheLifetime is how long a verifier may keep the JWKS: the max-age
	// the server serves it with. A new key is published that long before
	// it signs. Default 15 min.
	CacheLifetime time.Duration
	// MaxTokenTTL is the longest lifetime of a token signed with the
	// ring's keys: a key stays published that long (plus MaxLeeway) after
	// it stopped signing. Default 1 h; it must be at least the issuer's cap.
	MaxTokenTTL time.Duration
	// RotateEvery is how long a key signs before Maintain replaces it.
	// Default 720 h; negative: only on demand (Rotate).
	RotateEvery time.Duration
	// MasterKey seals the private keys at rest (KEY-04); nil stores them
	// plain, and is refused by a ring that holds sealed keys.
	MasterKey *MasterKey
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Ring is the issuer's set of signing keys over a Storage: the key that
// signs now (SigningKey), the keys a token may be verified with
// (PublicKey), the JWKS document, and the schedule that rotates them. It
// answers from memory what it last loaded; every change, Reload and
// Maintain reads the storage again. It is safe for concurrent use.
type Ring struct {
	st  Storage
	cfg Config

	mu      sync.RWMutex    // guards the fields below
	version uint64          // of the storage, when recs were loaded
	recs    []Record        // every record
	live    []Record        // the records not removed when loaded: those with keys
	keys    map[string]*Key // their private keys
}

// NewRing loads the ring from st. It refuses a ring that holds sealed keys
// without cfg.MasterKey (ErrMasterKeyRequired), or one whose keys do not
// open with it (ErrMasterKeyWrong). It writes nothing: a new ring gets its
// first key from Maintain or Rotate.
func NewRing(ctx context.Context, st Storage, cfg Config) (*Ring, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Ring{st: st, cfg: cfg}
	if _, err := r.Reload(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// withDefaults is cfg with the defaults in place of its zero fields, or
// an error if it is not a valid configuration.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Alg == "" {
		cfg.Alg = EdDSA
	}
	if cfg.Alg != EdDSA && cfg.Alg != ES256 {
		return cfg, fmt.Errorf("keys: algorithm %q is not supported: use %s or %s", cfg.Alg, EdDSA, ES256)
	}
	if cfg.CacheLifetime == 0 {
		cfg.CacheLifetime = 15 * time.Minute
	}
	if cfg.MaxTokenTTL == 0 {
		cfg.MaxTokenTTL = time.Hour
	}
	if cfg.RotateEvery == 0 {
		cfg.RotateEvery = 720 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CacheLifetime < 0 || cfg.MaxTokenTTL < 0 {
		return cfg, errors.New("keys: CacheLifetime and MaxTokenTTL must be positive")
	}
	if cfg.RotateEvery > 0 && cfg.RotateEvery <= cfg.CacheLifetime {
		return cfg, fmt.Errorf("keys: the rotation period %v must be longer than the JWKS cache lifetime %v", cfg.RotateEvery, cfg.CacheLifetime)
	}
	return cfg, nil
}

// MaxAge is how long a verifier may cache the JWKS: serve it with
// Cache-Control: max-age of this.
func (r *Ring) MaxAge() time.Duration { return r.cfg.CacheLifetime }

// Reload reads the ring from the storage, for the changes other nodes
// made, and returns the version it read.
func (r *Ring) Reload(ctx context.Context) (uint64, error) {
	recs, version, err := r.st.Load(ctx)
	if err != nil {
		return 0, fmt.Errorf("keys: load the key ring: %w", err)
	}
	sortRecords(recs)
	now := r.cfg.Now()
	r.mu.RLock()
	old := r.keys
	r.mu.RUnlock()
	keys := make(map[string]*Key, len(recs))
	var live []Record
	for _, rec := range recs {
		if rec.Sealed && r.cfg.MasterKey == nil {
			return 0, ErrMasterKeyRequired
		}
		if removed(rec, now) {
			continue
		}
		live = append(live, rec)
		if k := old[rec.Kid]; k != nil {
			keys[rec.Kid] = k
			continue
		}
		der := []byte(rec.Private)
		if rec.Sealed {
			if der, err = r.cfg.MasterKey.open(rec.Kid, der); err != nil {
				return 0, err
			}
		}
		k, err := parsePKCS8(der, rec.Kid)
		if err != nil {
			return 0, err
		}
		if k.alg != rec.Alg {
			return 0, fmt.Errorf("keys: key %s is recorded as %s but is a %s key", rec.Kid, rec.Alg, k.alg)
		}
		keys[rec.Kid] = k
	}
	r.mu.Lock()
	if version >= r.version { // a Reload that read earlier must not undo a later one
		r.recs, r.live, r.keys, r.version = recs, live, keys, version
	}
	r.mu.Unlock()
	return version, nil
}

// sortRecords sorts recs oldest first.
func sortRecords(recs []Record) {
	slices.SortFunc(recs, func(a, b Record) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.Kid, b.Kid))
	})
}

func published(rec Record, t time.Time) bool { return !t.Before(rec.Created) && !removed(rec, t) }

func removed(rec Record, t time.Time) bool { return !rec.RemoveAt.IsZero() && !t.Before(rec.RemoveAt) }

// maySign: published and not past SignUntil, whether its
// SignFrom has come or not.
func maySign(rec Record, t time.Time) bool {
	return published(rec, t) && (rec.SignUntil.IsZero() || t.Before(rec.SignUntil))
}

// signer is the record that signs at t: of those that may, the one whose
// SignFrom came last. When none's SignFrom has come (the first key of a
// ring, or after an emergency removal of the signing key) it is the
// waiting one: a key signs early rather than nothing signs, and verifiers
// that refresh on an unknown kid (KEY-03) fetch it.
func signer(recs []Record, t time.Time) (Record, bool) {
	active, pending := schedule(recs, t)
	if active != nil {
		return *active, true
	}
	if pending != nil {
		return *pending, true
	}
	return Record{}, false
}

// schedule finds, among the records that may sign at t, the one whose
// SignFrom came last (active) and the one whose SignFrom comes first
// (pending), each nil when there is none.
func schedule(recs []Record, t time.Time) (active, pending *Record) {
	for i := range recs {
		rec := &recs[i]
		switch {
		case !maySign(*rec, t):
		case !t.Before(rec.SignFrom):
			if active == nil || rec.SignFrom.After(active.SignFrom) {
				active = rec
			}
		default:
			if pending == nil || rec.SignFrom.Before(pending.SignFrom) {
				pending = rec
			}
		}
	}
	return active, pending
}

// SigningKey returns the key to sign with now. It implements the token
// package's Signer.
func (r *Ring) SigningKey(ctx context.Context) (kid, alg string, key crypto.Signer, err error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rec, ok := signer(r.live, r.cfg.Now())
	if !ok {
		return "", "", nil, ErrNoSigningKey
	}
	k := r.keys[rec.Kid]
	return k.kid, k.alg, k.priv, nil
}

// PublicKey returns the published key named kid and its one algorithm; for
// a kid it doesn't publish, a nil key and a nil error, as the token
// package's KeySet, which it implements, says (the verifier refuses the
// token: 401, not 503).
func (r *Ring) PublicKey(ctx context.Context, kid string) (alg string, key crypto.PublicKey, err error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.cfg.Now()
	for _, rec := range r.live {
		if rec.Kid == kid && published(rec, now) {
			k := r.keys[kid]
			return k.alg, k.Public(), nil
		}
	}
	return "", nil, nil
}

// JWKS returns the key set to publish now: every published key, public
// members only (KEY-01).
func (r *Ring) JWKS(ctx context.Context) ([]byte, error) {
	r.mu.RLock()
	now := r.cfg.Now()
	var set []JWK
	for _, rec := range r.live {
		if published(rec, now) {
			k := r.keys[rec.Kid]
			set = append(set, JWK{Kid: k.kid, Alg: k.alg, Key: k.Public()})
		}
	}
	r.mu.RUnlock()
	return MarshalJWKS(set)
}
