package keys

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// maxAttempts bounds how often a change is decided again after losing a
// race with another node.
const maxAttempts = 5

// change reads the ring, lets decide say what to write, and writes it if
// nobody else wrote meanwhile; otherwise it reads and decides again.
// decide returns no records for "nothing to do".
func (r *Ring) change(ctx context.Context, decide func(recs []Record, now time.Time) ([]Record, error)) error {
	for range maxAttempts {
		version, err := r.Reload(ctx)
		if err != nil {
			return err
		}
		r.mu.RLock()
		recs := append([]Record(nil), r.recs...)
		r.mu.RUnlock()
		// Times are written to the microsecond, as SQL databases keep them.
		changes, err := decide(recs, r.cfg.Now().Truncate(time.Microsecond))
		if err != nil || len(changes) == 0 {
			return err
		}
		if _, err = r.st.Save(ctx, version, changes); errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("keys: save the key ring: %w", err)
		}
		_, err = r.Reload(ctx)
		return err
	}
	return fmt.Errorf("keys: the key ring kept changing under %d attempts: %w", maxAttempts, ErrConflict)
}

// Rotate adds a new key now: it is published at once and signs one
// CacheLifetime later, and the key signing now stops then and stays
// published MaxTokenTTL+MaxLeeway longer (KEY-02). A ring with no key
// that may sign gets one that signs at once. It returns the new key's
// kid; ErrRotationPending if a new key is already waiting to sign.
func (r *Ring) Rotate(ctx context.Context) (string, error) {
	k, err := Generate(r.cfg.Alg)
	if err != nil {
		return "", err
	}
	err = r.change(ctx, func(recs []Record, now time.Time) ([]Record, error) {
		return r.add(recs, k, now)
	})
	if err != nil {
		return "", err
	}
	return k.kid, nil
}

// Import adds an existing key (ParsePEM) the way Rotate adds a new one.
func (r *Ring) Import(ctx context.Context, k *Key) error {
	return r.change(ctx, func(recs []Record, now time.Time) ([]Record, error) {
		for _, rec := range recs {
			if rec.Kid == k.kid {
				return nil, fmt.Errorf("%s: %w", k.kid, ErrKeyExists)
			}
		}
		return r.add(recs, k, now)
	})
}

// add is the change that adds k to recs at now.
func (r *Ring) add(recs []Record, k *Key, now time.Time) ([]Record, error) {
	active, pending := schedule(recs, now)
	if pending != nil {
		return nil, fmt.Errorf("%w (key %s signs from %s)", ErrRotationPending, pending.Kid, pending.SignFrom.UTC().Format(time.RFC3339))
	}
	der, err := k.marshal()
	if err != nil {
		return nil, fmt.Errorf("keys: encode key %s: %w", k.kid, err)
	}
	rec := Record{Kid: k.kid, Alg: k.alg, Private: der, Created: now, SignFrom: now}
	if r.cfg.MasterKey != nil {
		rec.Private, rec.Sealed = r.cfg.MasterKey.seal(k.kid, der), true
	}
	if active == nil {
		return []Record{rec}, nil
	}
	rec.SignFrom = now.Add(r.cfg.CacheLifetime)
	changes := []Record{rec}
	for _, old := range recs {
		if maySign(old, now) && old.SignUntil.IsZero() {
			old.SignUntil = rec.SignFrom
			old.RemoveAt = rec.SignFrom.Add(r.cfg.MaxTokenTTL + MaxLeeway)
			changes = append(changes, old)
		}
	}
	return changes, nil
}

// Retire takes the key kid out of service. Without now, it stops signing
// at once and stays published until every token it signed has expired
// (MaxTokenTTL+MaxLeeway); that is refused (ErrLastKey) when no other key
// may sign yet. With now, an emergency (the key leaked), it is out of the
// JWKS at once and its private key is destroyed, even when that leaves
// nothing to sign with: then a key waiting to sign signs early, or
// SigningKey fails until Rotate. Verifiers that cached the JWKS drop it
// within CacheLifetime. Retiring a removed key does nothing.
func (r *Ring) Retire(ctx context.Context, kid string, now bool) error {
	return r.change(ctx, func(recs []Record, t time.Time) ([]Record, error) {
		i := indexOf(recs, kid)
		if i < 0 {
			return nil, fmt.Errorf("%s: %w", kid, ErrNotFound)
		}
		rec := recs[i]
		if removed(rec, t) {
			return nil, nil
		}
		if rec.SignUntil.IsZero() || rec.SignUntil.After(t) {
			rec.SignUntil = t
		}
		if now {
			rec.RemoveAt, rec.Private, rec.Sealed = t, nil, false
			return []Record{rec}, nil
		}
		if end := t.Add(r.cfg.MaxTokenTTL + MaxLeeway); rec.RemoveAt.IsZero() || rec.RemoveAt.After(end) {
			rec.RemoveAt = end
		}
		recs[i] = rec
		if active, _ := schedule(recs, t); active == nil {
			return nil, fmt.Errorf("%s: %w", kid, ErrLastKey)
		}
		return []Record{rec}, nil
	})
}

func indexOf(recs []Record, kid string) int {
	for i, rec := range recs {
		if rec.Kid == kid {
			return i
		}
	}
	return -1
}

// Due reports whether Maintain would add a key at now: the ring has no
// key that may sign, or the signing key has signed for RotateEvery less
// CacheLifetime and no new key waits. The new key then signs when the old
// one reaches RotateEvery.
func (r *Ring) Due(now time.Time) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.due(r.recs, now)
}

func (r *Ring) due(recs []Record, now time.Time) bool {
	at, ok := nextRotation(r.cfg, recs, now)
	return ok && !now.Before(at)
}

// nextRotation is when the schedule of a ring with cfg adds a key to recs,
// as seen at now (Due from then on): at once when no key may sign; when
// the signing key has signed for RotateEvery less CacheLifetime, so that
// the new key signs when it reaches RotateEvery. A key waiting to sign
// early (no key's SignFrom has come) counts from its SignFrom. There is
// none (false) when a new key already waits, or keys rotate only on
// demand.
func nextRotation(cfg Config, recs []Record, now time.Time) (time.Time, bool) {
	active, pending := schedule(recs, now)
	switch {
	case active == nil && pending == nil:
		return now, true
	case active == nil:
		active = pending
	case pending != nil:
		return time.Time{}, false
	}
	if cfg.RotateEvery <= 0 {
		return time.Time{}, false
	}
	return active.SignFrom.Add(cfg.RotateEvery - cfg.CacheLifetime), true
}

// Maintain is the ring's schedule, for the server to call every minute or
// so on every node: it reads the ring again, adds a key when one is Due,
// destroys the private keys of removed keys, and seals the plain ones when
// a master key is configured (KEY-04). Nodes running it at once add one
// key between them (see Storage).
func (r *Ring) Maintain(ctx context.Context) error {
	_, err := r.MaintainReport(ctx)
	return err
}

// Maintenance is what one run of the schedule changed in the ring, for an
// audit log. Of nodes running it at once, only the one whose write won
// reports a change.
type Maintenance struct {
	Added     string   // the kid of the key it added, "" for none
	Destroyed []string // the kids of removed keys whose private keys it destroyed
	Sealed    []string // the kids of the keys it sealed with the master key
}

// MaintainReport is Maintain, returning what it changed.
func (r *Ring) MaintainReport(ctx context.Context) (Maintenance, error) {
	var m Maintenance
	err := r.change(ctx, func(recs []Record, now time.Time) ([]Record, error) {
		m = Maintenance{}
		var changes []Record
		for _, rec := range recs {
			switch {
			case len(rec.Private) > 0 && removed(rec, now):
				rec.Private, rec.Sealed = nil, false
				m.Destroyed = append(m.Destroyed, rec.Kid)
			case len(rec.Private) > 0 && !rec.Sealed && r.cfg.MasterKey != nil:
				rec.Private, rec.Sealed = r.cfg.MasterKey.seal(rec.Kid, rec.Private), true
				m.Sealed = append(m.Sealed, rec.Kid)
			default:
				continue
			}
			changes = append(changes, rec)
		}
		if !r.due(recs, now) {
			return changes, nil
		}
		k, err := Generate(r.cfg.Alg)
		if err != nil {
			return nil, err
		}
		added, err := r.add(recs, k, now)
		if err != nil {
			return nil, err
		}
		m.Added = k.kid
		return merge(changes, added), nil
	})
	if err != nil {
		return Maintenance{}, err
	}
	return m, nil
}

// merge is changes with the records of later replacing those of the same
// kid.
func merge(changes, later []Record) []Record {
	for _, rec := range later {
		if i := indexOf(changes, rec.Kid); i >= 0 {
			changes[i] = rec
		} else {
			changes = append(changes, rec)
		}
	}
	return changes
}

// State is where a key is in its life.
type State string

// The states of a key, in the order it goes through them.
const (
	Pending State = "pending" // published, waiting to sign
	Signing State = "signing" // the key that signs now
	Retired State = "retired" // published for the tokens it signed, signs no more
	Removed State = "removed" // out of the JWKS
)

// Info is a key as List shows it: its record without the private key.
type Info struct {
	Kid, Alg                               string
	Sealed                                 bool
	State                                  State
	Created, SignFrom, SignUntil, RemoveAt time.Time
}

// List reads the ring again and returns every key with its state now,
// oldest first.
func (r *Ring) List(ctx context.Context) ([]Info, error) {
	if _, err := r.Reload(ctx); err != nil {
		return nil, err
	}
	return r.Loaded(), nil
}

// Loaded returns every key as the ring last loaded it (NewRing, Reload,
// Maintain or a change), with its state now, oldest first. It reads no
// storage: for metrics, whose scrapes must not wait on a store.
func (r *Ring) Loaded() []Info {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return infos(r.recs, r.cfg.Now())
}

// infos is recs (oldest first) with their states at now.
func infos(recs []Record, now time.Time) []Info {
	cur, _ := signer(recs, now)
	out := make([]Info, 0, len(recs))
	for _, rec := range recs {
		info := Info{Kid: rec.Kid, Alg: rec.Alg, Sealed: rec.Sealed, Created: rec.Created,
			SignFrom: rec.SignFrom, SignUntil: rec.SignUntil, RemoveAt: rec.RemoveAt}
		switch {
		case removed(rec, now):
			info.State = Removed
		case rec.Kid == cur.Kid:
			info.State = Signing
		case maySign(rec, now) && rec.SignFrom.After(now):
			info.State = Pending
		default:
			info.State = Retired
		}
		out = append(out, info)
	}
	return out
}

// Description is a key ring as Describe reads it from its Storage.
type Description struct {
	Keys []Info // every key with its state at Now, oldest first
	// NextRotation is when the schedule adds a key (Ring.Due from
	// then on), which signs CacheLifetime later; zero when a new key
	// waits already or keys rotate only on demand.
	NextRotation time.Time
	// Now is the time of the states; CacheLifetime is cfg's, defaults
	// applied.
	Now           time.Time
	CacheLifetime time.Duration
}

// Describe reads the records st holds and describes the ring a Ring with
// cfg would load: its keys and its schedule, by the Ring's own rules. It
// opens no private key, so a sealed ring needs no cfg.MasterKey (KEY-04):
// a monitor can report on the ring without the master key. It writes
// nothing.
func Describe(ctx context.Context, st Storage, cfg Config) (Description, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Description{}, err
	}
	recs, _, err := st.Load(ctx)
	if err != nil {
		return Description{}, fmt.Errorf("keys: load the key ring: %w", err)
	}
	sortRecords(recs)
	now := cfg.Now()
	d := Description{Keys: infos(recs, now), Now: now, CacheLifetime: cfg.CacheLifetime}
	if at, ok := nextRotation(cfg, recs, now); ok {
		d.NextRotation = at
	}
	return d, nil
}
