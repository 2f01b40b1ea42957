package redis

import (
	"encoding/binary"
	"testing"

	"github.com/tetherauth/tether/session"
)

func TestOwners(t *testing.T) {
	var o owners
	hash := func(i int) (h session.Hash) {
		binary.BigEndian.PutUint64(h[:], uint64(i))
		return h
	}
	if got := o.get(hash(1)); got != "" {
		t.Fatalf("get on an empty cache: %q, want \"\"", got)
	}
	o.put(hash(1), "alice")
	if got := o.get(hash(1)); got != "alice" {
		t.Fatalf("get after put: %q, want alice", got)
	}
	for i := range maxOwners {
		o.put(hash(i), "bob")
	}
	if len(o.m) != maxOwners {
		t.Fatalf("%d entries, want %d", len(o.m), maxOwners)
	}
	o.put(hash(maxOwners), "carol") // full: starts over
	if len(o.m) != 1 || o.get(hash(maxOwners)) != "carol" || o.get(hash(1)) != "" {
		t.Fatalf("after a put into a full cache: %d entries; want only the new one", len(o.m))
	}
}
