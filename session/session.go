package session

import (
	"bytes"
	"context"
	"maps"
	"strconv"
	"time"
)

// Session is one signed-in person's session: an immutable snapshot. Methods
// of Manager that change a session return a new snapshot and leave the old
// one as it was, so a Session can be shared between goroutines (the
// near-cache hands the same one to every request) without locks. Its fields
// are read through methods, and Get copies what it returns, so that no
// handler can change what later requests see.
type Session struct {
	id        string
	userID    string
	created   time.Time
	lastSeen  time.Time
	userAgent string
	ip        string

	hash    Hash
	gen     uint64
	version uint64
	idle    time.Time
	abs     time.Time
	expires int64 // the earlier deadline in Unix ns, for the cache's quick check
	data    map[string][]byte
}

// newSession makes a snapshot of r and takes over r.Data.
func newSession(r *Record) *Session {
	return &Session{
		id:        r.ID,
		userID:    r.UserID,
		created:   r.Created,
		lastSeen:  r.LastSeen,
		userAgent: r.UserAgent,
		ip:        r.IP,
		hash:      r.Hash,
		gen:       r.Gen,
		version:   r.Version,
		idle:      r.IdleDeadline,
		abs:       r.AbsDeadline,
		expires:   r.Expiry().UnixNano(),
		data:      r.Data,
	}
}

// record returns a Record for s that the caller may change.
func (s *Session) record() *Record {
	return &Record{
		Hash:         s.hash,
		ID:           s.id,
		UserID:       s.userID,
		Gen:          s.gen,
		Version:      s.version,
		Created:      s.created,
		LastSeen:     s.lastSeen,
		IdleDeadline: s.idle,
		AbsDeadline:  s.abs,
		UserAgent:    s.userAgent,
		IP:           s.ip,
		Data:         maps.Clone(s.data),
	}
}

// ID is the session's public id: safe to show, never the token or its hash.
func (s *Session) ID() string { return s.id }

// UserID is the id of the user the session belongs to.
func (s *Session) UserID() string { return s.userID }

// Created is when the session was created (sign-in).
func (s *Session) Created() time.Time { return s.created }

// LastSeen is when the idle deadline was last written back: the session was
// in use then.
func (s *Session) LastSeen() time.Time { return s.lastSeen }

// UserAgent is the user agent of the request that created the session
// (SES-10), at most 256 bytes.
func (s *Session) UserAgent() string { return s.userAgent }

// IP is the client address the session was created from (SES-10).
func (s *Session) IP() string { return s.ip }

// IdleDeadline is when the session ends unless it is used again (SES-07).
func (s *Session) IdleDeadline() time.Time { return s.idle }

// AbsDeadline is when the session ends however busy it is (SES-07).
func (s *Session) AbsDeadline() time.Time { return s.abs }

// expiry is the earlier of s's deadlines.
func (s *Session) expiry() time.Time { return time.Unix(0, s.expires) }

// live reports whether s is within both of its deadlines at now.
func (s *Session) live(now time.Time) bool {
	return now.Before(s.idle) && now.Before(s.abs)
}

// Get returns a copy of the value stored under key.
func (s *Session) Get(key string) ([]byte, bool) {
	v, ok := s.data[key]
	if !ok {
		return nil, false
	}
	return bytes.Clone(v), true
}

// String returns the value under key as a string, "" when there is none.
func (s *Session) String(key string) string {
	return string(s.data[key])
}

// Int returns the value stored under key by Manager.PutInt; ok is false when
// there is none or it is not an integer.
func (s *Session) Int(key string) (n int64, ok bool) {
	v, ok := s.data[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

type ctxKey struct{}

// WithSession returns a copy of ctx carrying s. The middleware uses it; tests
// and other middleware may too.
func WithSession(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// FromContext returns the session the middleware loaded for this request, or
// nil when the request has none.
func FromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(ctxKey{}).(*Session)
	return s
}
