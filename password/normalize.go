package password

import (
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Normalize returns pw in Unicode normalization form NFKC, as NIST SP
// 800-63B advises (PW-09): the form that Hash, Verify and Policy.Check work
// on, so that every spelling of the same text is the same password whatever
// keyboard, browser or terminal typed it. A composed "é" and "e" followed by
// a combining acute accent become the same, and so do compatibility
// characters and what they stand for: the ligature "ﬁ" becomes "fi", the
// full-width "Ａ" becomes "A", a no-break space becomes a space. Nothing is
// trimmed and case is kept.
//
// Normalize returns ErrInvalidUTF8 when pw is not valid UTF-8: such bytes
// are not text and have no normal form. On success the result is valid
// UTF-8, and normalising it again changes nothing. It can be longer than pw
// (at most 11 times in bytes, for U+FDFA), so bound pw's length first, as
// Hash, Verify and Policy.Check do (PW-04).
func Normalize(pw string) (string, error) {
	if !utf8.ValidString(pw) {
		return "", ErrInvalidUTF8
	}
	return norm.NFKC.String(pw), nil
}
