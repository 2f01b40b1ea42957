package password

import (
	"errors"
	"fmt"
)

// MaxBytes is the longest password, in bytes, that Hash, Verify and
// VerifyDummy accept: a longer one is refused with ErrTooLong before any
// hashing (PW-04). It is also the largest Policy.MaxLength.
const MaxBytes = 1024

// Errors of the package. Policy errors are wrapped with a sentence a user can
// act on, so err.Error() can be shown as is; test them with errors.Is.
var (
	// ErrBusy: every hashing slot stayed taken for HasherConfig.Wait, the
	// context ended while waiting for one, or the queue of waiting calls was
	// full (HasherConfig.MaxWaiting) of calls of the same or a higher
	// Priority (PW-04). Answer 503 (or 429) and let the client retry.
	ErrBusy = errors.New("password: server busy, try again in a moment")
	// ErrMismatch: Check found the password wrong, or no such user; as
	// the message says, the two are answered alike (PW-05).
	ErrMismatch = errors.New("wrong username or password")
	// ErrMalformedHash: a stored hash is not an argon2id PHC string this
	// package accepts; the error wraps the reason.
	ErrMalformedHash = errors.New("password: malformed hash")
	// ErrInvalidConfig: NewHasher's configuration or a Policy is outside what
	// PW-01 and PW-03 allow; the error says which field and why.
	ErrInvalidConfig = errors.New("password: invalid configuration")
	// ErrInvalidUTF8: the password is not valid UTF-8, so it has no
	// normalised form (PW-09). Normalize, Hash, Verify, VerifyDummy and
	// Policy.Check all refuse it with this error, before any hashing.
	ErrInvalidUTF8 = errors.New("password is not valid UTF-8 text: set your terminal or client to UTF-8 and type it again")

	// ErrTooShort: fewer code points than Policy.MinLength (PW-01).
	ErrTooShort = errors.New("password is too short")
	// ErrTooLong: more bytes than Policy.MaxLength, or than MaxBytes for
	// Hash, Verify and VerifyDummy (PW-01, PW-04).
	ErrTooLong = errors.New("password is too long")
	// ErrCommon: the password is commonly used or easy to guess: zxcvbn
	// estimates that an attacker finds it in fewer than a million guesses
	// (PW-02).
	ErrCommon = errors.New("password is too common")
	// ErrMatchesUsername: the password is the username (PW-02).
	ErrMatchesUsername = errors.New("password is the same as the username")
	// ErrBlank: the password is only white space: spaces, tabs, line
	// breaks (PW-02).
	ErrBlank = errors.New("password is only spaces")
	// ErrRepeated: the password is one character repeated, such as
	// "aaaaaaaa" (PW-02).
	ErrRepeated = errors.New("password is one character repeated")
)

// tooLong is ErrTooLong with what to do about it.
func tooLong(maxBytes int) error {
	return fmt.Errorf("%w: use at most %d characters (fewer if some are not plain ASCII)", ErrTooLong, maxBytes)
}
