package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// DefaultTokenMaxLifetime is Config.TokenMaxLifetime's default.
const DefaultTokenMaxLifetime = time.Hour

// RevokeToken puts r on the store's token denylist until r.Exp: one token
// by its jti (JWT-09), or every token of r.Subject older than r.Gen (see
// RevokeSubject, which makes those). It returns once the store has made
// the revocation durable (SES-15); every node's feed, and so every
// Config.OnEvent, gets it as a TokenRevoked event.
func (m *Manager) RevokeToken(ctx context.Context, r Revocation) error {
	if err := m.store.RevokeToken(ctx, r); err != nil {
		return fmt.Errorf("session: revoke token: %w", err)
	}
	return nil
}

// TokenRevoked reports whether the token with id jti is on the denylist.
// A store error is an error, never "not revoked": the caller fails closed.
func (m *Manager) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	revoked, err := m.store.TokenRevoked(ctx, jti)
	if err != nil {
		return false, fmt.Errorf("session: token revoked: %w", err)
	}
	return revoked, nil
}

// Revocations returns the denylist's entries that have not expired by
// Config.Now: the snapshot a verifier reads before it trusts the feed.
func (m *Manager) Revocations(ctx context.Context) ([]Revocation, error) {
	now := m.cfg.Now()
	list, err := m.store.Revocations(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("session: revocations: %w", err)
	}
	return slices.DeleteFunc(list, func(r Revocation) bool { return !r.Exp.After(now) }), nil
}

// SubjectGeneration returns the current generation of a token subject
// ("client:billing", "user:u_..."): a token issued now carries it, and is
// dead once RevokeSubject has moved the subject past it.
func (m *Manager) SubjectGeneration(ctx context.Context, subject string) (uint64, error) {
	if subject == "" {
		return 0, errors.New("session: subject generation: empty subject")
	}
	gen, err := m.store.Generation(ctx, subject)
	if err != nil {
		return 0, fmt.Errorf("session: subject generation: %w", err)
	}
	return gen, nil
}

// RevokeSubject kills every token of subject issued so far, including one
// issued in the same second (CHG-03): it bumps the subject's generation
// (the store's RevokeUser, which also ends sessions kept under that id),
// then puts the new generation on the denylist until Config.Now plus
// Config.TokenMaxLifetime, so that a verifier that follows only the
// denylist (a remote one) learns of it too. It returns the new
// generation; a token must carry at least it to be live. If the second
// write fails, the generation has moved all the same, and the error says
// so: call it again.
func (m *Manager) RevokeSubject(ctx context.Context, subject string) (uint64, error) {
	if subject == "" {
		return 0, errors.New("session: revoke subject: empty subject")
	}
	if err := m.store.RevokeUser(ctx, subject, nil); err != nil {
		return 0, fmt.Errorf("session: revoke subject: %w", err)
	}
	gen, err := m.store.Generation(ctx, subject)
	if err != nil {
		return 0, fmt.Errorf("session: revoke subject: generation moved, but reading it: %w", err)
	}
	r := Revocation{Subject: subject, Gen: gen, Exp: m.cfg.Now().Add(m.cfg.TokenMaxLifetime)}
	if err := m.store.RevokeToken(ctx, r); err != nil {
		return 0, fmt.Errorf("session: revoke subject: generation moved, but putting it on the denylist: %w", err)
	}
	return gen, nil
}

// Current reports whether the store's feed is up and was vouched current
// within Config.MaxStaleness: what the near-cache needs to serve (SES-14),
// and what a view of the denylist kept from Config.OnEvent needs to be
// trusted. It is false until Run has the feed up.
func (m *Manager) Current() bool { return m.cache.serving() }
