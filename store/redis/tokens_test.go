package redis

import (
	"testing"
	"time"

	"github.com/tetherauth/tether/session"
)

// The denylist stays small: every RevokeToken forgets the entries that
// expired by Redis's clock, from both of its keys.
func TestRevokeTokenPrunesExpired(t *testing.T) {
	tg := sharedRedis(t)
	s := openStore(t, tg, Options{KeyPrefix: testPrefix(t, tg)}, "")
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	past := time.Now().Add(-time.Minute)
	for _, r := range []session.Revocation{{JTI: "old", Exp: past}, {Subject: "client:old", Gen: 1, Exp: past}} {
		if err := s.RevokeToken(ctx, r); err != nil {
			t.Fatalf("RevokeToken: %v", err)
		}
	}
	if err := s.RevokeToken(ctx, session.Revocation{JTI: "new", Exp: time.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	c := s.Client()
	entries, err := c.Do(ctx, c.B().Hkeys().Key(s.keys.denylist()).Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	byExp, err := c.Do(ctx, c.B().Zrange().Key(s.keys.denylistExpiry()).Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0] != "j:new" || len(byExp) != 1 || byExp[0] != "j:new" {
		t.Errorf("denylist after a write: entries %q, expiry index %q; want only j:new in both", entries, byExp)
	}
}
