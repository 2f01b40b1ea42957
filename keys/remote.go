package keys

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// ErrStale: the remote key set is older than RemoteConfig.MaxAge and could
// not be fetched again, so no token is verified with it (KEY-03).
var ErrStale = errors.New("keys: the remote JWKS is past its lifetime and can't be fetched")

// RemoteConfig is a Remote's settings. The zero value of each field but
// URL is its default.
type RemoteConfig struct {
	// URL of the issuer's JWKS; https, or http for loopback. It is the only
	// address a Remote fetches: never one named in a token (KEY-03).
	URL string
	// Client makes the requests; default: a client that follows no
	// redirect. Each fetch has its own deadline, Timeout.
	Client *http.Client
	// Timeout of one fetch. Default 10 s.
	Timeout time.Duration
	// RefreshAfter is the age after which a lookup fetches the set again
	// (and keeps using the old one if that fails). Default 5 min.
	RefreshAfter time.Duration
	// MaxAge is the age after which the set is not used any more: lookups
	// fail with ErrStale until a fetch succeeds. At least RefreshAfter;
	// default 1 h.
	MaxAge time.Duration
	// MinInterval is the least time between two fetches, whatever asks for
	// them (an unknown kid, a stale set): a stream of tokens with made-up
	// kids costs one fetch per interval (KEY-03). Default 1 min.
	MinInterval time.Duration
	// Logger gets the keys a fetch skipped and the fetches that failed;
	// default: none.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Remote is a resource server's cache of an issuer's JWKS. It implements
// the token package's KeySet. It is safe for concurrent use.
type Remote struct {
	cfg RemoteConfig
	// sem lets one fetch run at a time; a lookup waiting for it reads the
	// set that fetch brought instead of fetching again (single flight).
	sem chan struct{}

	mu        sync.RWMutex // guards the fields below
	keys      map[string]JWK
	fetched   time.Time // when keys were fetched
	attempted time.Time // when the last fetch started
	fetches   uint64    // fetches done, for the single flight
	lastErr   error     // the last fetch's error
}

// NewRemote returns a Remote for cfg.URL. It fetches nothing until the
// first lookup (or Refresh).
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("keys: the JWKS URL %q is not an http(s) URL", cfg.URL)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.RefreshAfter == 0 {
		cfg.RefreshAfter = 5 * time.Minute
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = time.Hour
	}
	if cfg.MinInterval == 0 {
		cfg.MinInterval = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxAge < cfg.RefreshAfter {
		return nil, fmt.Errorf("keys: MaxAge %v is shorter than RefreshAfter %v", cfg.MaxAge, cfg.RefreshAfter)
	}
	return &Remote{cfg: cfg, sem: make(chan struct{}, 1)}, nil
}

// PublicKey returns the key named kid and its one algorithm. A kid not in
// the set, or a set older than RefreshAfter, makes it fetch the set again,
// at most once per MinInterval however many lookups ask at once. A set
// older than MaxAge is never used: ErrStale (KEY-03).
func (c *Remote) PublicKey(ctx context.Context, kid string) (alg string, key crypto.PublicKey, err error) {
	k, ok, fresh, err := c.lookup(kid)
	if ok && fresh {
		return k.Alg, k.Key, nil
	}
	if ferr := c.refresh(ctx); ferr != nil {
		c.cfg.Logger.Warn("JWKS fetch failed", "component", "keys", "url", c.cfg.URL, "err", ferr)
	}
	if k, ok, _, err = c.lookup(kid); ok {
		return k.Alg, k.Key, nil
	}
	return "", nil, err // nil for an unknown kid, as token.KeySet says: the token is refused
}

// lookup finds kid in the set: fresh says the set is younger than
// RefreshAfter; err is ErrStale when the set is too old to use.
func (c *Remote) lookup(kid string) (k JWK, ok, fresh bool, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	age := c.cfg.Now().Sub(c.fetched)
	if c.fetched.IsZero() || age >= c.cfg.MaxAge {
		return JWK{}, false, false, ErrStale
	}
	k, ok = c.keys[kid]
	return k, ok, ok && age < c.cfg.RefreshAfter, nil
}

// Refresh fetches the set now, unless a fetch started less than
// MinInterval ago (it then returns nil and changes nothing). A set fetched
// replaces the old one whole, even when it has no usable key: the issuer
// removed them.
func (c *Remote) Refresh(ctx context.Context) error { return c.refresh(ctx) }

func (c *Remote) refresh(ctx context.Context) error {
	c.mu.RLock()
	seen := c.fetches
	c.mu.RUnlock()
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.sem }()
	now := c.cfg.Now()
	c.mu.Lock()
	if c.fetches != seen {
		// A fetch ran while this one waited: its result is this one's.
		err := c.lastErr
		c.mu.Unlock()
		return err
	}
	if !c.attempted.IsZero() && now.Sub(c.attempted) < c.cfg.MinInterval {
		c.mu.Unlock()
		return nil
	}
	c.attempted = now
	c.mu.Unlock()

	keys, skipped, err := c.fetch(ctx)
	c.mu.Lock()
	c.fetches++
	c.lastErr = err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	for _, s := range skipped {
		c.cfg.Logger.Warn("JWKS key skipped", "component", "keys", "url", c.cfg.URL, "key", s.String())
	}
	set := make(map[string]JWK, len(keys))
	for _, k := range keys {
		set[k.Kid] = k
	}
	c.mu.Lock()
	c.keys, c.fetched = set, now
	c.mu.Unlock()
	return nil
}

// fetch gets and parses the set, within Timeout and MaxJWKSSize.
func (c *Remote) fetch(ctx context.Context) ([]JWK, []Skipped, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.URL, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: fetch the JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("keys: fetch the JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("keys: fetch the JWKS: %s answered %s", c.cfg.URL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("keys: fetch the JWKS: %w", err)
	}
	return ParseJWKS(body)
}
