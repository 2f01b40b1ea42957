package password

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/crypto/argon2"
)

// defaultWait is HasherConfig.Wait's default.
const defaultWait = time.Second

// HasherConfig configures a Hasher. The zero value of every field means its
// documented default.
type HasherConfig struct {
	// Params are argon2id's parameters for new hashes; each zero field takes
	// DefaultParams' value. A field below DefaultParams (the OWASP minimum,
	// PW-03) or above the package's bounds (256 MiB, 16 passes, 16 lanes,
	// 64-byte salt and key) is refused.
	Params Params
	// MaxConcurrent is how many hashes may run at once, each holding
	// Params.Memory (PW-04). Default runtime.NumCPU().
	MaxConcurrent int
	// Wait is how long a call waits for a free slot before it returns
	// ErrBusy (PW-04). Default 1 second. A High call waits highPatience
	// times as long: only running hashes and other High calls, few by
	// their nature, are ahead of it, so on a machine slowed down by a
	// flood it had better wait than fail.
	Wait time.Duration
	// MaxWaiting is how many calls may wait for a slot at once, whatever
	// their Priority (PW-04). One more, of a priority no waiting call is
	// below, gets ErrBusy at once; of a higher priority, it takes the place
	// of the newest waiting call of the lowest priority, which gets ErrBusy.
	// So the queue's memory is bounded, and a flood of low-priority calls
	// is refused at once instead of delaying everyone. Default 8 ×
	// MaxConcurrent.
	MaxWaiting int
}

// Hasher hashes and verifies passwords with argon2id. It is safe for
// concurrent use.
type Hasher struct {
	params Params
	wait   time.Duration
	slots  *slots                                       // who hashes and who waits (PW-04)
	dummy  string                                       // what VerifyDummy verifies against (PW-05)
	idKey  func(password, salt []byte, p Params) []byte // argon2idKey; tests count its runs
}

// NewHasher returns a Hasher configured by cfg, or an error wrapping
// ErrInvalidConfig that names every field out of bounds.
func NewHasher(cfg HasherConfig) (*Hasher, error) {
	p := cfg.Params.withDefaults()
	slots := cmp.Or(cfg.MaxConcurrent, runtime.NumCPU())
	wait := cmp.Or(cfg.Wait, defaultWait)
	maxWaiting := cmp.Or(cfg.MaxWaiting, 8*slots)
	var errs []error
	if err := p.validate(); err != nil {
		errs = append(errs, fmt.Errorf("Params: %w", err))
	}
	if slots < 0 {
		errs = append(errs, fmt.Errorf("MaxConcurrent=%d, want more than 0 (0 means runtime.NumCPU())", slots))
	}
	if wait < 0 {
		errs = append(errs, fmt.Errorf("Wait=%v, want more than 0 (0 means %v)", wait, defaultWait))
	}
	if maxWaiting < 0 {
		errs = append(errs, fmt.Errorf("MaxWaiting=%d, want more than 0 (0 means 8 × MaxConcurrent)", maxWaiting))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return &Hasher{
		params: p,
		wait:   wait,
		slots:  newSlots(slots, maxWaiting),
		// A hash of no password at all: a random key that no password
		// derives (but with 2^-256 odds), under a random salt and exactly
		// the configured parameters. Verifying against it costs what
		// verifying against a real hash made now costs, without spending
		// a hash at start-up to make it.
		dummy: encodePHC(p, randomBytes(p.SaltLen), randomBytes(p.KeyLen)),
		idKey: argon2idKey,
	}, nil
}

// argon2idKey derives the key of password under salt and p.
func argon2idKey(password, salt []byte, p Params) []byte {
	return argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
}

// randomBytes returns n bytes from crypto/rand.
func randomBytes(n uint32) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails: since Go 1.24 it crashes the program instead
	return b
}

// Hash returns the PHC string of password, normalised with Normalize
// (PW-09), under a fresh 16-byte (SaltLen) salt from crypto/rand and the
// configured parameters (PW-03):
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// salt and key in unpadded standard base64. A password of more than
// MaxBytes bytes is refused with ErrTooLong, and one that is not valid UTF-8
// with ErrInvalidUTF8, both before any hashing; when no slot frees up in
// time the error is ErrBusy (PW-04); a context that ended before the hash
// started returns its error.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if len(password) > MaxBytes {
		return "", tooLong(MaxBytes)
	}
	normalized, err := Normalize(password)
	if err != nil {
		return "", err
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	salt := randomBytes(h.params.SaltLen)
	return encodePHC(h.params, salt, h.idKey([]byte(normalized), salt, h.params)), nil
}

// Verify reports whether password is the one encoded was made from,
// comparing keys in constant time. When it is, needsRehash reports whether
// the caller should store Hash(ctx, password) in place of encoded: because
// encoded is weaker than the configured parameters (PW-03), or because it
// was made from the password as typed rather than from its normalised form.
//
// Verify checks the normalised password (PW-09), so every spelling of it
// verifies against a hash made by Hash. A hash made before Hash normalised
// is of the bytes as typed: when the normalised password doesn't match and
// differs from what was typed, Verify also checks the password as typed,
// and if that matches it answers ok with needsRehash, so that the stored
// hash moves to the normalised form at the next sign-in. Until then only
// the spelling first chosen verifies against such a hash. Both checks run
// in one hashing slot, after the size check: a request costs at most two
// hashes of at most MaxBytes bytes (PW-04), and one attempt still tests one
// password, in two spellings.
//
// A wrong password is ok == false with a nil error. The errors are:
// ErrTooLong (more than MaxBytes bytes) and ErrInvalidUTF8 (not valid
// UTF-8), both before any hashing and whatever encoded is, so they tell
// nothing about the account; ErrMalformedHash (encoded is not an argon2id
// PHC string within the package's bounds), ErrBusy (PW-04) and the
// context's error. Treat every error but ErrBusy like a wrong password
// towards the user.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	if len(password) > MaxBytes {
		return false, false, tooLong(MaxBytes)
	}
	normalized, err := Normalize(password)
	if err != nil {
		return false, false, err
	}
	stored, err := parsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	if h.matches(normalized, stored) {
		return true, stored.params.weakerThan(h.params), nil
	}
	if normalized != password && h.matches(password, stored) {
		return true, true, nil
	}
	return false, false, nil
}

// VerifyDummy does what Verify does against a hash made with the configured
// parameters, and throws the answer away: call it when the user is unknown,
// so that the response takes as long as for a wrong password (PW-05); like
// Verify, it hashes twice when the password is not in normalised form. Its
// errors are Verify's: ErrTooLong, ErrInvalidUTF8, ErrBusy and the
// context's error.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, h.dummy)
	return err
}

// Check is Verify for a sign-in that needs only a yes or a no: nil when
// password matches encoded, else an error. Pass "" as encoded when there
// is no such user: the password is then checked against a dummy hash, so
// the answer takes as long as for a wrong password (PW-05). A wrong
// password, an unknown user, a password that can't be one (ErrTooLong,
// ErrInvalidUTF8) and a malformed stored hash all wrap ErrMismatch, to be
// answered alike; ErrBusy (PW-04) and the context's error don't, and ask
// for a 503. Check
// never asks for a new hash: an app that moves its hashes to stronger
// parameters (PW-03) calls Verify, which says when.
func (h *Hasher) Check(ctx context.Context, password, encoded string) error {
	known := encoded != ""
	if !known {
		encoded = h.dummy
	}
	ok, _, err := h.Verify(ctx, password, encoded)
	switch {
	case errors.Is(err, ErrBusy), err != nil && ctx.Err() != nil:
		return err
	case err != nil:
		return fmt.Errorf("%w: %w", ErrMismatch, err)
	case !ok || !known:
		return ErrMismatch
	}
	return nil
}

// matches reports whether password derives stored's key under its salt and
// parameters. The caller holds a hashing slot.
func (h *Hasher) matches(password string, stored phc) bool {
	key := h.idKey([]byte(password), stored.salt, stored.params)
	return subtle.ConstantTimeCompare(key, stored.key) == 1
}

// highPatience is how many times HasherConfig.Wait a High call waits.
const highPatience = 10

// acquire takes a hashing slot at ctx's Priority. It waits at most h.wait
// for one (highPatience times that at High), and no longer than ctx
// lasts; then it returns ErrBusy (PW-04).
// With MaxWaiting calls waiting already, see HasherConfig.MaxWaiting. A
// context that has already ended returns its error without taking a slot.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, wait := PriorityOf(ctx), h.wait
	if p == High {
		wait *= highPatience
	}
	return h.slots.acquire(ctx, p, wait)
}

// release frees the slot acquire took.
func (h *Hasher) release() {
	h.slots.release()
}

// Saturated reports whether a call at priority p would get ErrBusy at once
// now: every slot is hashing and MaxWaiting calls of priority p or higher
// wait. A server can check it before any costlier work, such as counting a
// sign-in attempt, and answer "busy" straight away. The answer may change
// at any moment; Hash and Verify decide.
func (h *Hasher) Saturated(p Priority) bool {
	return h.slots.saturated(p)
}

// Stats returns a snapshot of the hashing slots and their queue.
func (h *Hasher) Stats() HasherStats {
	return h.slots.stats()
}
