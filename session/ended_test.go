package session

import (
	"testing"
	"time"
)

// ended holds the last endedSize hashes and forgets the oldest first.
func TestEndedForgetsOldest(t *testing.T) {
	now := time.Now()
	e := newEnded(func() time.Time { return now })
	hash := func(i int) Hash { return Hash{byte(i), byte(i >> 8), byte(i >> 16)} }
	for i := range endedSize + 2 {
		e.add(hash(i), now.Add(time.Hour))
		e.add(hash(i), now.Add(time.Minute)) // twice is once
	}
	for i, want := range map[int]bool{0: false, 1: false, 2: true, endedSize + 1: true, endedSize + 2: false} {
		if got := e.has(hash(i)); got != want {
			t.Errorf("hash %d: got %v, want %v", i, got, want)
		}
	}
	if len(e.set) != endedSize {
		t.Errorf("got %d hashes, want %d", len(e.set), endedSize)
	}
	var none *ended
	none.add(hash(1), now.Add(time.Hour))
	if none.has(hash(1)) {
		t.Error("the nil ended remembered a hash")
	}
}
