package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/internal/denylist"
)

// revokeTokenScript: KEYS the denylist's entries and its expiry index;
// ARGV the entry's key (denylist.Key), its generation, its Exp in Unix µs
// and in Unix ms, the channel and the message. It first forgets the
// entries that expired by Redis's clock, then merges the entry with the
// one of its key (the greater generation, the later Exp, compared as
// numbers but kept as the strings they were written as: Lua's numbers
// would print 1.9e15 as 1.9e+15), stores it as denylist.Encode writes it,
// and publishes.
var revokeTokenScript = newScript(libLua + `
local now = now()
for _, k in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)) do
	redis.call('HDEL', KEYS[1], k)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)
local gen, exp = ARGV[2], ARGV[3]
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
	local g, e = string.match(old, '^.(%d+) (%-?%d+) ')
	if g and tonumber(g) > tonumber(gen) then gen = g end
	if e and tonumber(e) > tonumber(exp) then exp = e end
end
redis.call('HSET', KEYS[1], ARGV[1], string.sub(ARGV[1], 1, 1) .. gen .. ' ' .. exp .. ' ' .. string.sub(ARGV[1], 3))
redis.call('ZADD', KEYS[2], 'GT', ARGV[4], ARGV[1])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 0
`)

// RevokeToken puts r on the token denylist: one script in the denylist's
// slot, replicated per Options.MinReplicas like RevokeUser (SES-15),
// which publishes it on the feed. This process's watchers get it before
// RevokeToken returns, even if it failed (see the package documentation).
func (s *Store) RevokeToken(ctx context.Context, r session.Revocation) error {
	const op = "revoke token"
	if s.watches.Closed() {
		return closedError(op)
	}
	if err := denylist.Check(r); err != nil {
		return fmt.Errorf("redis store: %s: %w", op, err)
	}
	defer s.hub.Publish(session.Event{Kind: session.TokenRevoked, Revocation: r}) // even if it failed
	res := s.runReplicated(ctx, call{
		script: revokeTokenScript,
		keys:   []string{s.keys.denylist(), s.keys.denylistExpiry()},
		args: []string{denylist.Key(r), strconv.FormatUint(r.Gen, 10), itoa(r.Exp.UnixMicro()), itoa(expireAt(r.Exp)),
			s.keys.channel(), s.message(tokenRevokedMsg, []byte(denylist.Encode(r)))},
	})
	if err := res.Error(); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// TokenRevoked reports whether jti is on the denylist: one HEXISTS, sent
// again after a network error as Get's reads are.
func (s *Store) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	const op = "read token denylist"
	if s.watches.Closed() {
		return false, closedError(op)
	}
	key := denylist.Key(session.Revocation{JTI: jti})
	revoked, err := s.client.Do(ctx, s.client.B().Hexists().Key(s.keys.denylist()).Field(key).Build()).AsBool()
	if err != nil {
		return false, s.fail(op, err)
	}
	return revoked, nil
}

// Revocations returns the denylist's entries whose Exp is after now: one
// HVALS.
func (s *Store) Revocations(ctx context.Context, now time.Time) ([]session.Revocation, error) {
	const op = "read token denylist"
	if s.watches.Closed() {
		return nil, closedError(op)
	}
	vals, err := s.client.Do(ctx, s.client.B().Hvals().Key(s.keys.denylist()).Build()).AsStrSlice()
	if err != nil {
		return nil, s.fail(op, err)
	}
	var out []session.Revocation
	for _, v := range vals {
		r, err := denylist.Parse(v)
		if err != nil {
			return nil, s.fail(op, fmt.Errorf("%w: %w", errCorrupt, err))
		}
		if r.Exp.After(now) {
			out = append(out, r)
		}
	}
	return out, nil
}
