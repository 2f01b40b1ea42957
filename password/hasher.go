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
	// ErrBusy (PW-04). Default 1 second.
	Wait time.Duration
}

// Hasher hashes and verifies passwords with argon2id. It is safe for
// concurrent use.
type Hasher struct {
	params Params
	wait   time.Duration
	slots  chan struct{}                                // one value per running hash (PW-04)
	dummy  string                                       // what VerifyDummy verifies against (PW-05)
	idKey  func(password, salt []byte, p Params) []byte // argon2idKey; tests count its runs
}

// NewHasher returns a Hasher configured by cfg, or an error wrapping
// ErrInvalidConfig that names every field out of bounds.
func NewHasher(cfg HasherConfig) (*Hasher, error) {
	p := cfg.Params.withDefaults()
	slots := cmp.Or(cfg.MaxConcurrent, runtime.NumCPU())
	wait := cmp.Or(cfg.Wait, defaultWait)
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
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return &Hasher{
		params: p,
		wait:   wait,
		slots:  make(chan struct{}, slots),
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

// Hash returns the PHC string of password under a fresh 16-byte (SaltLen)
// salt from crypto/rand and the configured parameters (PW-03):
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// salt and key in unpadded standard base64. A password of more than
// MaxBytes bytes is refused with ErrTooLong before any hashing; when no
// slot frees up in time the error is ErrBusy (PW-04); a context that ended
// before the hash started returns its error.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if len(password) > MaxBytes {
		return "", tooLong(MaxBytes)
	}
	salt := randomBytes(h.params.SaltLen)
	key, err := h.derive(ctx, password, salt, h.params)
	if err != nil {
		return "", err
	}
	return encodePHC(h.params, salt, key), nil
}

// Verify reports whether password is the one encoded was made from,
// comparing keys in constant time. When it is, needsRehash reports whether
// encoded is weaker than the configured parameters: the caller should then
// store Hash(ctx, password) in its place (PW-03).
//
// A wrong password is ok == false with a nil error. The errors are:
// ErrTooLong (more than MaxBytes bytes, refused before hashing),
// ErrMalformedHash (encoded is not an argon2id PHC string within the
// package's bounds), ErrBusy (PW-04) and the context's error. Treat every
// error but ErrBusy like a wrong password towards the user.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	if len(password) > MaxBytes {
		return false, false, tooLong(MaxBytes)
	}
	stored, err := parsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	key, err := h.derive(ctx, password, stored.salt, stored.params)
	if err != nil {
		return false, false, err
	}
	if subtle.ConstantTimeCompare(key, stored.key) != 1 {
		return false, false, nil
	}
	return true, stored.params.weakerThan(h.params), nil
}

// VerifyDummy does what Verify does against a hash made with the configured
// parameters, and throws the answer away: call it when the user is unknown,
// so that the response takes as long as for a wrong password (PW-05). Its
// errors are Verify's: ErrTooLong, ErrBusy and the context's error.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, h.dummy)
	return err
}

// derive runs argon2id in a hashing slot.
func (h *Hasher) derive(ctx context.Context, password string, salt []byte, p Params) ([]byte, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer h.release()
	return h.idKey([]byte(password), salt, p), nil
}

// acquire takes a hashing slot. It waits at most h.wait for one, and no
// longer than ctx lasts; then it returns ErrBusy (PW-04). A context that has
// already ended returns its error without taking a slot.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	timer := time.NewTimer(h.wait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-timer.C:
		return ErrBusy
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrBusy, context.Cause(ctx))
	}
}

// release frees the slot acquire took.
func (h *Hasher) release() {
	<-h.slots
}
