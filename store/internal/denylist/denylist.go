// Package denylist is what the backends under store/ share of the token
// denylist (session.Store.RevokeToken): which entries a store accepts, how
// two entries under one key merge, and the text form in which an entry
// travels on a feed or in a change log.
//
//	if err := denylist.Check(r); err != nil { // before any write
//		return err
//	}
//	msg := denylist.Encode(r)     // on the feed
//	r, err := denylist.Parse(msg) // an error wrapping ErrCorrupt if it is not one
//
// An entry is either one token (JTI) or every token of a subject older
// than a generation (Subject and Gen), never both, so that each entry has
// one key: a store keeps one entry per key, the later Exp and the greater
// Gen winning (Merge).
package denylist

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tetherauth/tether/session"
)

// Errors of the package.
var (
	// ErrInvalid: an entry a store refuses to keep (Check says why).
	ErrInvalid = errors.New("invalid token revocation")
	// ErrCorrupt: a text that is not an entry's Encode.
	ErrCorrupt = errors.New("corrupt token revocation")
)

// MaxIDLen bounds a JTI or a subject, in bytes: a notification of
// PostgreSQL (8,000 bytes) holds an entry with room to spare.
const MaxIDLen = 1024

// Check returns an error wrapping ErrInvalid unless r names exactly one of
// a JTI and a Subject, has no Gen with a JTI, and has an Exp (an entry that
// never expires would never leave the list). The id must be valid UTF-8
// without NUL, of at most MaxIDLen bytes: PostgreSQL's text holds nothing
// else.
func Check(r session.Revocation) error {
	id, what := r.JTI, "jti"
	switch {
	case r.JTI == "" && r.Subject == "":
		return fmt.Errorf("%w: neither a jti nor a subject", ErrInvalid)
	case r.JTI != "" && r.Subject != "":
		return fmt.Errorf("%w: both a jti and a subject: revoke the token and the subject apart", ErrInvalid)
	case r.JTI != "" && r.Gen != 0:
		return fmt.Errorf("%w: a jti with a generation", ErrInvalid)
	case r.Exp.IsZero():
		return fmt.Errorf("%w: no expiry", ErrInvalid)
	case r.Subject != "":
		id, what = r.Subject, "subject"
	}
	switch {
	case len(id) > MaxIDLen:
		return fmt.Errorf("%w: %s of %d bytes, more than %d", ErrInvalid, what, len(id), MaxIDLen)
	case !utf8.ValidString(id) || strings.ContainsRune(id, 0):
		return fmt.Errorf("%w: %s is not UTF-8 text without NUL", ErrInvalid, what)
	}
	return nil
}

// Key is r's key: entries of one key merge. A jti and a subject spelled
// alike have different keys. It is the entry's kind as Encode writes it
// ('j' or 's'), a colon and the id: store/redis's script rebuilds the
// entry's Encode from it.
func Key(r session.Revocation) string {
	if r.JTI != "" {
		return "j:" + r.JTI
	}
	return "s:" + r.Subject
}

// Merge returns the entry that stands once b is put over a, of the same
// key: the later Exp and the greater Gen.
func Merge(a, b session.Revocation) session.Revocation {
	if a.Exp.After(b.Exp) {
		b.Exp = a.Exp
	}
	b.Gen = max(a.Gen, b.Gen)
	return b
}

// Encode returns r's text form: 'j' and the JTI's entry, or 's' and the
// subject's, as the kind, then Gen in decimal, a space, Exp in Unix
// microseconds in decimal (the precision the stores keep), a space and the
// id. r must pass Check.
func Encode(r session.Revocation) string {
	kind, id := "j", r.JTI
	if r.JTI == "" {
		kind, id = "s", r.Subject
	}
	return kind + strconv.FormatUint(r.Gen, 10) + " " + strconv.FormatInt(r.Exp.UnixMicro(), 10) + " " + id
}

// Parse reads what Encode wrote, Exp in UTC. It accepts only Encode's
// canonical form of an entry that passes Check: anything else (anyone who
// can write on a feed can write anything) is an error wrapping ErrCorrupt.
func Parse(s string) (session.Revocation, error) {
	var r session.Revocation
	if s == "" {
		return r, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	gen, rest, ok := strings.Cut(s[1:], " ")
	exp, id, ok2 := strings.Cut(rest, " ")
	if !ok || !ok2 {
		return r, fmt.Errorf("%w: not kind, generation, expiry and id", ErrCorrupt)
	}
	switch s[0] {
	case 'j':
		r.JTI = id
	case 's':
		r.Subject = id
	default:
		return r, fmt.Errorf("%w: kind %q", ErrCorrupt, s[0])
	}
	var err error
	if r.Gen, err = strconv.ParseUint(gen, 10, 64); err != nil {
		return session.Revocation{}, fmt.Errorf("%w: generation: %w", ErrCorrupt, err)
	}
	us, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return session.Revocation{}, fmt.Errorf("%w: expiry: %w", ErrCorrupt, err)
	}
	r.Exp = time.UnixMicro(us).UTC()
	if err := Check(r); err != nil {
		return session.Revocation{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if Encode(r) != s { // a leading zero or plus sign, say
		return session.Revocation{}, fmt.Errorf("%w: not in canonical form", ErrCorrupt)
	}
	return r, nil
}
