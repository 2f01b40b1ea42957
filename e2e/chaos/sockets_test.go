package chaos

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/e2e/internal/web"
)

// The hostile sockets of TestChaosSockets.
const (
	idleSockets  = 400             // connect, send nothing
	slowHeaders  = 200             // send a request's headers a byte every second (slowloris)
	slowBodies   = 100             // send a login's headers, then its body a byte every second
	hostileHold  = 7 * time.Second // past the node's read-header timeout of 5 s
	loadWorkers  = 16              // the load loop's goroutines
	loadDuration = 3 * time.Second
)

// TestChaosSockets: one node, measured by a Go load loop (GET
// /api/v1/me on one session from loadWorkers goroutines) alone, then
// beside idleSockets idle connections, slowHeaders slowloris clients and
// slowBodies slow bodies. Every request of the load is answered (I3),
// and the node's goroutines and memory come back down once the hostile
// sockets are gone (I4). The rates and p99s are reported, not asserted.
func TestChaosSockets(t *testing.T) {
	s := newScenario(t, "Slowloris, idle sockets and slow bodies beside a load",
		fmt.Sprintf("One node (SQLite), measured by a Go load loop (%d goroutines, GET /api/v1/me on one session, %v) alone, then beside "+
			"%d idle connections, %d slowloris clients (headers a byte a second) and %d slow login bodies (a byte a second).",
			loadWorkers, loadDuration, idleSockets, slowHeaders, slowBodies))
	s.flags = []string{"--data", s.dataFile("tether.db")}
	s.addUsers(users(1)...)
	n := s.startNode("node")
	x, _ := s.ledger.signIn(t.Context(), n.url, users(1)[0], password, web.NewDevice("load"))
	if x == nil {
		t.Fatal("sign-in refused")
	}
	rate, p99 := s.hammer(n.url, x)
	s.fig.note("alone: %.0f requests/s, p99 %v", rate, ms(p99))

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for i := range idleSockets + slowHeaders + slowBodies {
		wg.Go(func() { hostile(ctx, n.addr, i) })
	}
	s.fig.Faults = idleSockets + slowHeaders + slowBodies
	time.Sleep(500 * time.Millisecond) // the sockets connect
	rate, p99 = s.hammer(n.url, x)
	s.fig.note("beside %d hostile sockets: %.0f requests/s, p99 %v", s.fig.Faults, rate, ms(p99))
	s.sample(n)
	time.Sleep(max(0, hostileHold-loadDuration))
	cancel()
	wg.Wait()
	s.ledger.verify(t.Context(), n.url)
	s.finish(n)
}

// hammer loads GET /api/v1/me with x's session from loadWorkers
// goroutines for loadDuration, every answer checked by the ledger, and
// returns the rate and the p99 of the answers.
func (s *scenario) hammer(url string, x *sess) (float64, time.Duration) {
	var mu sync.Mutex
	var lat []time.Duration
	start := time.Now()
	var wg sync.WaitGroup
	for range loadWorkers {
		wg.Go(func() {
			for time.Since(start) < loadDuration {
				t0 := time.Now()
				got := s.ledger.check(s.t.Context(), url, x)
				d := time.Since(t0)
				if got != http.StatusOK {
					s.t.Errorf("the load's session check got %d, want 200", got)
					return
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	if len(lat) == 0 {
		return 0, 0
	}
	return float64(len(lat)) / elapsed.Seconds(), lat[len(lat)*99/100]
}

// hostile is the i-th hostile client of addr, until ctx ends: idle,
// slowloris or slow body, by i. When the node closes its connection (its
// read timeouts, MISC-03), it connects again, as an attacker would.
func hostile(ctx context.Context, addr string, i int) {
	var head, drip string
	switch {
	case i < idleSockets:
	case i < idleSockets+slowHeaders:
		drip = "GET /api/v1/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + strings.Repeat("a", 60)
	default:
		drip = `{"username":"user-0","password":"wrong wrong wrong wrong"}`
		head = fmt.Sprintf("POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(drip))
	}
	for ctx.Err() == nil {
		hostileConn(ctx, addr, head, drip)
	}
}

// hostileConn connects to addr, sends head, then drip a byte a second,
// then nothing, until ctx ends or the node closes the connection.
func hostileConn(ctx context.Context, addr, head, drip string) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		time.Sleep(100 * time.Millisecond)
		return
	}
	defer c.Close()
	closed := make(chan struct{})
	go func() { // the node closing the connection ends it
		defer close(closed)
		io.Copy(io.Discard, c)
	}()
	if _, err := io.WriteString(c, head); err != nil {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for j := 0; ; j++ {
		select {
		case <-ctx.Done():
			return
		case <-closed:
			return
		case <-tick.C:
		}
		if j < len(drip) {
			if _, err := c.Write([]byte{drip[j]}); err != nil {
				return
			}
		}
	}
}
