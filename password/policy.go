package password

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"golang.org/x/text/unicode/norm"
)

// Policy's bounds (PW-01).
const (
	defaultMinLength = 8  // and the least MinLength may be
	leastMaxLength   = 64 // the least MaxLength may be
)

// How Check judges how guessable a password is (PW-02); the package doc
// says why these numbers.
const (
	// minGuesses is the fewest guesses zxcvbn may estimate an attacker
	// needs: its score 2 and above.
	minGuesses = 1e6
	// estimatedRunes is how many code points of the normalised password
	// zxcvbn judges, since its time grows with the cube of the length: as
	// many as the longest password of its list of common ones has.
	estimatedRunes = 20
)

// Policy says which new passwords are acceptable (PW-01, PW-02). The zero
// value is the default policy. It has no composition rules and allows every
// character; it judges the password in the form Hash stores, normalised
// with Normalize (PW-09), and neither trims it nor folds its case.
type Policy struct {
	// MinLength is the fewest Unicode code points (not bytes) a password
	// may have once normalised. Default and least 8; 15 is recommended
	// when the password is the only factor.
	MinLength int
	// MaxLength is the most bytes a password may have as received, before
	// it is normalised: the bound comes before any work (PW-04). Default
	// MaxBytes (1024); at least 64 and at most MaxBytes.
	MaxLength int
}

// withDefaults replaces each zero field with its default.
func (p Policy) withDefaults() Policy {
	if p.MinLength == 0 {
		p.MinLength = defaultMinLength
	}
	if p.MaxLength == 0 {
		p.MaxLength = MaxBytes
	}
	return p
}

// Validate reports, wrapped in ErrInvalidConfig, every field of p that PW-01
// doesn't allow. Call it at start-up; Check refuses every password while p is
// invalid.
func (p Policy) Validate() error {
	p = p.withDefaults()
	var errs []error
	if p.MinLength < defaultMinLength {
		errs = append(errs, fmt.Errorf("MinLength=%d, want at least %d", p.MinLength, defaultMinLength))
	}
	if p.MaxLength < leastMaxLength || p.MaxLength > MaxBytes {
		errs = append(errs, fmt.Errorf("MaxLength=%d is outside %d..%d", p.MaxLength, leastMaxLength, MaxBytes))
	}
	if p.MinLength > p.MaxLength {
		errs = append(errs, fmt.Errorf("MinLength=%d is more than MaxLength=%d", p.MinLength, p.MaxLength))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: Policy: %w", ErrInvalidConfig, err)
	}
	return nil
}

// Check returns nil when password is acceptable as a new password for the
// account username, and otherwise, in this order: ErrTooLong (more than
// MaxLength bytes as received), ErrInvalidUTF8 (not valid UTF-8, PW-09),
// ErrTooShort (fewer than MinLength code points once normalised), ErrBlank
// (only white space), ErrRepeated (one character repeated),
// ErrMatchesUsername (the username, ignoring case and the username's
// surrounding spaces) or ErrCommon (too easy to guess: zxcvbn estimates
// fewer than a million guesses, judging the first 20 code points and
// knowing the username). Each is wrapped with a sentence the user can act
// on. The password is judged in its normalised form (Normalize), the form
// Hash stores. Pass the canonical username; an empty one is not compared.
// While p is invalid, Check returns Validate's error whatever the password.
// Check is safe for concurrent use.
func (p Policy) Check(password, username string) error {
	if err := p.Validate(); err != nil {
		return err
	}
	p = p.withDefaults()
	if len(password) > p.MaxLength {
		return tooLong(p.MaxLength)
	}
	password, err := Normalize(password)
	if err != nil {
		return err
	}
	if utf8.RuneCountInString(password) < p.MinLength {
		return fmt.Errorf("%w: use at least %d characters", ErrTooShort, p.MinLength)
	}
	if strings.TrimFunc(password, unicode.IsSpace) == "" {
		return fmt.Errorf("%w: use letters, digits or other characters too, for example a few unrelated words", ErrBlank)
	}
	// zxcvbn misses some of these (eight times one emoji), and a plain
	// answer helps more than "too common".
	if first, _ := utf8.DecodeRuneInString(password); strings.Trim(password, string(first)) == "" {
		return fmt.Errorf("%w: use different characters, for example a few unrelated words", ErrRepeated)
	}
	username = norm.NFKC.String(strings.TrimSpace(username))
	if username != "" && strings.EqualFold(password, username) {
		return fmt.Errorf("%w: choose a password that is not your username", ErrMatchesUsername)
	}
	if guesses(password, username) < minGuesses {
		return fmt.Errorf("%w: attackers try it early (common passwords, words, names, dates, keyboard patterns, your username); choose another, for example a few unrelated words", ErrCommon)
	}
	return nil
}

// guesses is zxcvbn's estimate of how many guesses an attacker needs to
// find password, judged on its first estimatedRunes code points, when the
// attacker knows the username, its parts and the name of this service.
func guesses(password, username string) float64 {
	known := []string{"tether"}
	if username != "" {
		known = append(known, username)
		known = append(known, strings.FieldsFunc(username, func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
		})...)
	}
	return zxcvbn.PasswordStrength(prefix(password, estimatedRunes), known).Guesses
}

// prefix returns the first n code points of s.
func prefix(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}
