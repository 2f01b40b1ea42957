package testkit_test

import (
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

func TestBufferLines(t *testing.T) {
	tests := []struct {
		name    string
		written []string
		want    []string
	}{
		{"empty", nil, nil},
		{"no line end yet", []string{"half"}, nil},
		{"one line", []string{"a\n"}, []string{"a"}},
		{"across writes", []string{"a", "b\nc", "\n", "d"}, []string{"ab", "c"}},
		{"empty line", []string{"\n\n"}, []string{"", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b testkit.Buffer
			for _, w := range tt.written {
				b.Write([]byte(w))
			}
			if got := b.Lines(); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// A Logger's records come back through Records, while other goroutines
// write (go test -race checks the locking).
func TestBufferRecords(t *testing.T) {
	var b testkit.Buffer
	log := b.Logger()
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() { log.Info("hello", "n", i) })
		wg.Go(func() { b.Contains("hello") })
	}
	wg.Wait()
	log.Warn("other")
	if got := len(b.Records(t, "hello")); got != 10 {
		t.Errorf("records of hello: got %d, want 10", got)
	}
	if recs := b.Records(t, "other"); len(recs) != 1 || recs[0]["level"] != "WARN" {
		t.Errorf("records of other: got %v, want one at WARN", recs)
	}
}

func TestWaitFor(t *testing.T) {
	calls := 0
	testkit.WaitFor(t, "the third call", func() bool { calls++; return calls == 3 }, testkit.Within(time.Minute))
	if calls != 3 {
		t.Errorf("calls: got %d, want 3", calls)
	}
}

func TestFreePort(t *testing.T) {
	port, err := testkit.FreePort(10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{port, port + 10000} {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Errorf("port %d: %v", p, err)
			continue
		}
		l.Close()
	}
}

func TestClock(t *testing.T) {
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := testkit.NewClock(start)
	c.Advance(time.Hour)
	c.Advance(-time.Minute)
	if got, want := c.Now(), start.Add(59*time.Minute); !got.Equal(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
