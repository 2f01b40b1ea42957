package revocation

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/session"
)

// event is one Server-Sent Event as a test reads it.
type event struct{ kind, id, data string }

// follower reads a stream the plain way: a test's own reading of the wire
// format, apart from token.RevocationStream's.
type follower struct {
	resp *http.Response
	r    *bufio.Reader
}

// letFollow is a StreamConfig.Authorize that lets every request follow.
func letFollow(http.ResponseWriter, *http.Request) bool { return true }

// refuseUnless is a StreamConfig.Authorize that lets a request follow when
// ok says so, and answers 401 otherwise.
func refuseUnless(ok func(*http.Request) bool) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !ok(r) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return false
		}
		return true
	}
}

// serve starts a server of v's stream, which lets a request follow when
// it carries the header X-Test-Auth.
func serve(t *testing.T, v *View, cfg StreamConfig) *httptest.Server {
	t.Helper()
	cfg.Logger = quiet
	cfg.Authorize = refuseUnless(func(r *http.Request) bool { return r.Header.Get("X-Test-Auth") != "" })
	st, err := NewStream(v, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(st)
	t.Cleanup(srv.Close)
	return srv
}

// connect follows srv's stream from lastID ("" none) and wants status.
func connect(t *testing.T, srv *httptest.Server, lastID string, status int) *follower {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("X-Test-Auth", "yes")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != status {
		t.Fatalf("got status %d, want %d", resp.StatusCode, status)
	}
	return &follower{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads the next event; heartbeats are skipped unless beats.
func (f *follower) next(t *testing.T, beats bool) event {
	t.Helper()
	for {
		var e event
		for {
			line, err := f.r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			line = strings.TrimSuffix(line, "\n")
			if line == "" {
				break
			}
			name, value, _ := strings.Cut(line, ": ")
			switch name {
			case "event":
				e.kind = value
			case "id":
				e.id = value
			case "data":
				e.data = value
			}
		}
		if beats || e.kind != "heartbeat" {
			return e
		}
	}
}

// want reads the next events (heartbeats included when listed) and
// compares them with want; an id "*" matches any but none.
func (f *follower) want(t *testing.T, want ...event) []event {
	t.Helper()
	beats := false
	for _, w := range want {
		beats = beats || w.kind == "heartbeat"
	}
	var got []event
	for _, w := range want {
		e := f.next(t, beats)
		got = append(got, e)
		idOK := e.id == w.id
		if w.id == "*" {
			idOK = e.id != ""
		}
		if e.kind != w.kind || e.data != w.data || !idOK {
			t.Fatalf("got event %+v, want %+v", e, w)
		}
	}
	return got
}

func revokeEvent(id, data string) event { return event{"revoke", id, data} }

func TestJWT09_StreamSnapshotThenRevocations(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{})
	s.revokeJTI(t, "j1")
	g := s.revokeSubject(t, "client:billing")
	srv := serve(t, v, StreamConfig{})
	f := connect(t, srv, "", http.StatusOK)
	if ct := f.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("got Content-Type %q", ct)
	}
	exp := s.clk.Now().Add(time.Hour).Unix()
	// The snapshot's order is the map's: read both, then compare.
	got := map[string]bool{}
	for range 2 {
		e := f.next(t, false)
		if e.kind != "revoke" || e.id != "" {
			t.Fatalf("got %+v, want a revoke event without id", e)
		}
		got[e.data] = true
	}
	for _, d := range []string{fmt.Sprintf(`{"jti":"j1","exp":%d}`, exp), fmt.Sprintf(`{"sub":"client:billing","gen":%d,"exp":%d}`, g, exp)} {
		if !got[d] {
			t.Fatalf("snapshot %v lacks %s", got, d)
		}
	}
	snap := f.want(t, event{"snapshot", "*", "2"}, event{"heartbeat", "", ""})[0]
	epoch, seq, err := parseID(snap.id)
	if err != nil {
		t.Fatal(err)
	}
	s.revokeJTI(t, "j2")
	f.want(t, revokeEvent(formatID(epoch, seq+1), fmt.Sprintf(`{"jti":"j2","exp":%d}`, exp)))
}

func TestStreamResumes(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{History: 2})
	srv := serve(t, v, StreamConfig{})
	exp := s.clk.Now().Add(time.Hour).Unix()
	jtiData := func(jti string) string { return fmt.Sprintf(`{"jti":%q,"exp":%d}`, jti, exp) }

	f := connect(t, srv, "", http.StatusOK)
	last := f.want(t, event{"snapshot", "*", "0"})[0].id
	f.resp.Body.Close()
	s.revokeJTI(t, "j1")
	s.revokeJTI(t, "j2")

	// Within the history: what was missed, then the heartbeat.
	f = connect(t, srv, last, http.StatusOK)
	got := f.want(t, revokeEvent("*", jtiData("j1")), revokeEvent("*", jtiData("j2")), event{"heartbeat", "", ""})
	last, lastButOne := got[1].id, got[0].id
	f.resp.Body.Close()
	f = connect(t, srv, lastButOne, http.StatusOK)
	f.want(t, revokeEvent(last, jtiData("j2")), event{"heartbeat", "", ""})
	f.resp.Body.Close()
	f = connect(t, srv, last, http.StatusOK) // nothing missed
	f.want(t, event{"heartbeat", "", ""})
	f.resp.Body.Close()

	s.revokeJTI(t, "j3") // the history of 2 holds j2 and j3
	epoch, seq, _ := parseID(last)
	for _, id := range []string{
		formatID(epoch, seq-2), // older than the history
		formatID(epoch, seq+2), // ahead of the node
		formatID(epoch+1, seq), // another node's, or of before the feed was lost
		"not an id", "0-1", last + "0x",
	} {
		t.Run(id, func(t *testing.T) {
			f := connect(t, srv, id, http.StatusOK)
			for range 3 {
				f.next(t, false)
			}
			f.want(t, event{"snapshot", formatID(epoch, seq+1), "3"})
		})
	}
}

func TestStreamRefusals(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{})
	srv := serve(t, v, StreamConfig{MaxSubscribers: 1})

	resp, err := srv.Client().Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: got %d, want 405", resp.StatusCode)
	}

	resp, err = srv.Client().Get(srv.URL) // no credentials
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without credentials: got %d, want 401", resp.StatusCode)
	}

	f := connect(t, srv, "", http.StatusOK)
	f.want(t, event{"snapshot", "*", "0"})
	full := connect(t, srv, "", http.StatusServiceUnavailable) // past MaxSubscribers
	if full.resp.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	f.resp.Body.Close()
	testkit.WaitFor(t, "the subscriber to be gone", func() bool { return subscribers(v) == 0 })
	connect(t, srv, "", http.StatusOK).resp.Body.Close()

	s.stale.Store(true) // the View can't vouch for its memory
	connect(t, srv, "", http.StatusServiceUnavailable)
}

func subscribers(v *View) int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.hub.subs)
}

// A lost feed ends every subscription, and the stream is refused until the
// feed is back and the snapshot loaded; the next connection gets a
// snapshot, its old id being of another epoch.
func TestSES14_StreamEndsWhenFeedLost(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{})
	srv := serve(t, v, StreamConfig{})
	f := connect(t, srv, "", http.StatusOK)
	last := f.want(t, event{"snapshot", "*", "0"})[0].id
	s.unfollow()
	if _, err := f.r.ReadString('\x00'); err == nil {
		t.Fatal("the stream went on after the feed was lost")
	}
	connect(t, srv, last, http.StatusServiceUnavailable)
	s.follow(t, v)
	testkit.WaitFor(t, "the snapshot to be loaded", v.loaded.Load)
	f = connect(t, srv, last, http.StatusOK)
	if got := f.want(t, event{"snapshot", "*", "0"})[0].id; got == last {
		t.Fatalf("the new snapshot's id %s is the old one's", got)
	}
}

// EndStreams, at a server's shutdown, ends every subscription, which would
// otherwise hold the graceful shutdown until its deadline, and refuses new
// ones with 503, so that followers go elsewhere.
func TestEndStreams(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{})
	srv := serve(t, v, StreamConfig{})
	f := connect(t, srv, "", http.StatusOK)
	f.want(t, event{"snapshot", "*", "0"})
	v.EndStreams()
	if _, err := f.r.ReadString('\x00'); err == nil {
		t.Fatal("the stream went on after EndStreams")
	}
	connect(t, srv, "", http.StatusServiceUnavailable)
	if err := v.Check(t.Context(), "client:a", 0, "j1"); err != nil {
		t.Errorf("Check after EndStreams: %v", err)
	}
}

// Heartbeats stop while the View is not current: a follower's staleness
// bound runs from the last one.
func TestSES14_NoHeartbeatWhileStale(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{})
	srv := serve(t, v, StreamConfig{Heartbeat: time.Millisecond})
	f := connect(t, srv, "", http.StatusOK)
	f.want(t, event{"snapshot", "*", "0"}, event{"heartbeat", "", ""})
	s.stale.Store(true)
	s.revokeJTI(t, "j1")
	for f.next(t, true).kind == "heartbeat" { // the ones written before
	}
	s.revokeJTI(t, "j2")
	if e := f.next(t, true); e.kind != "revoke" {
		t.Fatalf("got %+v while stale, want the revocation", e)
	}
	s.stale.Store(false)
	f.want(t, event{"heartbeat", "", ""})
}

// A subscription that outlived a loss of the feed gets no heartbeat, even
// once the View is current again: it may have missed revocations (its
// handler, slow to see that it was dropped, must not vouch for it).
func TestSES14_NoHeartbeatAcrossFeedLoss(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{})
	sub, _, err := v.subscribe("", 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !v.vouches(sub) {
		t.Fatal("no heartbeat for a live subscription")
	}
	s.unfollow()
	s.follow(t, v)
	testkit.WaitFor(t, "the snapshot to be loaded again", v.loaded.Load)
	if v.vouches(sub) {
		t.Fatal("a heartbeat for a subscription from before the feed was lost")
	}
}

// A subscriber whose queue is full is dropped, not waited for.
func TestStreamDropsSlowSubscriber(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{})
	sub, _, err := v.subscribe("", 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	s.revokeJTI(t, "j1")
	select {
	case <-sub.gone:
		t.Fatal("dropped with room in its queue")
	default:
	}
	s.revokeJTI(t, "j2")
	<-sub.gone
	if n := subscribers(v); n != 0 {
		t.Fatalf("%d subscribers left", n)
	}
}

// stuckWriter is a connection whose peer takes no bytes: each Write
// blocks until the deadline set before it.
type stuckWriter struct {
	header   http.Header
	deadline time.Time
	writes   int
}

func (w *stuckWriter) Header() http.Header { return w.header }
func (w *stuckWriter) WriteHeader(int)     {}
func (w *stuckWriter) Flush() error        { return nil }

func (w *stuckWriter) SetWriteDeadline(d time.Time) error { w.deadline = d; return nil }

func (w *stuckWriter) Write(b []byte) (int, error) {
	w.writes++
	if w.deadline.IsZero() {
		panic("a write without a deadline")
	}
	time.Sleep(time.Until(w.deadline)) // the network's wait, not the test's
	return 0, os.ErrDeadlineExceeded
}

// MISC-05: every write has a deadline, and a subscriber that takes no
// bytes is dropped when one passes.
func TestMISC05_StreamWriteDeadline(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{})
	st, err := NewStream(v, StreamConfig{Logger: quiet, Authorize: letFollow, WriteTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w := &stuckWriter{header: http.Header{}}
	st.ServeHTTP(w, httptest.NewRequest("GET", "/oauth2/revocations", nil))
	if w.writes != 1 || subscribers(v) != 0 {
		t.Fatalf("got %d writes, %d subscribers; want 1 write, then the subscriber dropped", w.writes, subscribers(v))
	}
}

// MISC-03: the server's read and write timeouts, which every tether
// server has, don't cut the stream short.
func TestMISC03_StreamOutlivesServerTimeouts(t *testing.T) {
	s := newSource(t)
	v := newView(t, s, ViewConfig{})
	st, err := NewStream(v, StreamConfig{Logger: quiet, Authorize: letFollow, Heartbeat: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(st)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 20*time.Millisecond, 20*time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	f := connect(t, srv, "", http.StatusOK)
	f.want(t, event{"snapshot", "*", "0"})
	start := time.Now()
	for time.Since(start) < 100*time.Millisecond { // five times the timeouts
		f.want(t, event{"heartbeat", "", ""})
	}
	s.revokeJTI(t, "j1")
	if e := f.next(t, false); e.kind != "revoke" {
		t.Fatalf("got %+v", e)
	}
}

func TestNewStreamConfig(t *testing.T) {
	v := newView(t, newSource(t), ViewConfig{})
	for name, c := range map[string]struct {
		v   *View
		cfg StreamConfig
	}{
		"no View":      {nil, StreamConfig{Authorize: letFollow}},
		"no Authorize": {v, StreamConfig{}},
		"negative":     {v, StreamConfig{Logger: quiet, Authorize: letFollow, Buffer: -1}},
	} {
		if _, err := NewStream(c.v, c.cfg); err == nil {
			t.Errorf("%s: got no error", name)
		}
	}
}

func TestWireRevocation(t *testing.T) {
	exp := time.Unix(1767225600, 0)
	for _, c := range []struct {
		name string
		r    session.Revocation
		want string
	}{
		{"jti", session.Revocation{JTI: "j1", Exp: exp}, `{"jti":"j1","exp":1767225600}`},
		{"subject", session.Revocation{Subject: "user:u_1", Gen: 7, Exp: exp}, `{"sub":"user:u_1","gen":7,"exp":1767225600}`},
		{"exp rounded up", session.Revocation{JTI: "j1", Exp: exp.Add(time.Millisecond)}, `{"jti":"j1","exp":1767225601}`},
		{"newline escaped", session.Revocation{JTI: "a\nb", Exp: exp}, `{"jti":"a\nb","exp":1767225600}`},
		{"invalid UTF-8", session.Revocation{JTI: "a\xffb", Exp: exp}, `{"jti":"a` + "\ufffd" + `b","exp":1767225600}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out sse
			out.revocation("x-1", c.r)
			if want := "event: revoke\nid: x-1\ndata: " + c.want + "\n\n"; string(out.buf) != want {
				t.Fatalf("got %q, want %q", out.buf, want)
			}
		})
	}
}

func TestParseID(t *testing.T) {
	for _, c := range []struct {
		in         string
		epoch, seq uint64
		ok         bool
	}{
		{"00000000000000ff-0", 255, 0, true},
		{"ffffffffffffffff-18446744073709551615", 1<<64 - 1, 1<<64 - 1, true},
		{"0123456789abcdef-42", 0x0123456789abcdef, 42, true},
		{"", 0, 0, false},
		{"0123456789abcdef", 0, 0, false},
		{"0123456789abcdef-", 0, 0, false},
		{"0123456789ABCDEF-1", 0, 0, false},
		{"123456789abcdef-1", 0, 0, false},
		{"0123456789abcdef-01", 0, 0, false},
		{"0123456789abcdef-+1", 0, 0, false},
		{"0123456789abcdef--1", 0, 0, false},
		{"0123456789abcdef-1-2", 0, 0, false},
		{"0123456789abcdef-18446744073709551616", 0, 0, false},
		{"0123456789abcdef-1_0", 0, 0, false},
		{"+123456789abcdef-1", 0, 0, false},
	} {
		epoch, seq, err := parseID(c.in)
		if (err == nil) != c.ok || epoch != c.epoch || seq != c.seq {
			t.Errorf("parseID(%q) = %x, %d, %v; want %x, %d, ok %v", c.in, epoch, seq, err, c.epoch, c.seq, c.ok)
		}
	}
}

// FuzzLastEventID: a client's Last-Event-ID never panics the parser, and
// what it accepts is exactly what formatID writes.
func FuzzLastEventID(f *testing.F) {
	for _, s := range []string{"0123456789abcdef-42", "ffffffffffffffff-18446744073709551615", "0-1", "0123456789abcdef-01", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		epoch, seq, err := parseID(s)
		if err == nil && formatID(epoch, seq) != s {
			t.Fatalf("accepted %q, which formats as %q", s, formatID(epoch, seq))
		}
	})
}

// A response writer that can't take write deadlines (a middleware's
// wrapper without Unwrap) is refused, rather than streamed to without
// deadlines.
func TestMISC05_StreamNeedsWriteDeadlines(t *testing.T) {
	v := newView(t, newSource(t), ViewConfig{})
	st, err := NewStream(v, StreamConfig{Logger: quiet, Authorize: letFollow})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	st.ServeHTTP(w, httptest.NewRequest("GET", "/oauth2/revocations", nil))
	if w.Code != http.StatusInternalServerError || subscribers(v) != 0 {
		t.Fatalf("got %d with %d subscribers, want 500 and none", w.Code, subscribers(v))
	}
}
