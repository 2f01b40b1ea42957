package redis

import (
	"testing"

	"github.com/redis/rueidis"

	"github.com/tetherauth/tether/session"
)

// What the tests of package redis_test (which use session.Manager) need.

// Nodes returns n Stores on the machine's Redis that share a fresh key
// prefix, each a node of its own (as if in n processes). They are closed,
// and their keys removed, when the test ends.
func Nodes(t testing.TB, n int) []*Store {
	t.Helper()
	tg := sharedRedis(t)
	prefix := testPrefix(t, tg)
	nodes := make([]*Store, n)
	for i := range nodes {
		nodes[i] = openStore(t, tg, Options{KeyPrefix: prefix}, "node"+string(rune('a'+i)))
		t.Cleanup(func() { nodes[i].Close() })
	}
	return nodes
}

// Client returns the rueidis client of s.
func (s *Store) Client() rueidis.Client { return s.client }

// RecordKey returns the key of the record r in s.
func (s *Store) RecordKey(r *session.Record) string {
	return recordKey(s.keys.user(r.UserID), hexHash(r.Hash))
}
