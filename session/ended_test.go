package session

import "testing"

// ended holds the last endedSize hashes and forgets the oldest first.
func TestEndedForgetsOldest(t *testing.T) {
	e := newEnded()
	hash := func(i int) Hash { return Hash{byte(i), byte(i >> 8), byte(i >> 16)} }
	for i := range endedSize + 2 {
		e.add(hash(i))
		e.add(hash(i)) // twice is once
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
	none.add(hash(1))
	if none.has(hash(1)) {
		t.Error("the nil ended remembered a hash")
	}
}
