package token

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

func TestEventReader(t *testing.T) {
	long := strings.Repeat("x", maxEventLine)
	for _, c := range []struct {
		name, in string
		want     []sseEvent
		err      error // after want; nil: io.EOF
	}{
		{"revoke", "event: revoke\nid: e-1\ndata: {}\n\n", []sseEvent{{"revoke", "e-1", "{}"}}, nil},
		{"two, CRLF", "event: heartbeat\r\ndata:\r\n\r\nevent: snapshot\r\nid: e-2\r\ndata: 0\r\n\r\n",
			[]sseEvent{{"heartbeat", "", ""}, {"snapshot", "e-2", "0"}}, nil},
		{"comments, blank lines, retry", "\n: keep-alive\n\nretry: 10\nevent: heartbeat\n: in between\ndata\n\n\n",
			[]sseEvent{{"heartbeat", "", ""}}, nil},
		{"no space after the colon", "event:revoke\ndata:{}\n\n", []sseEvent{{"revoke", "", "{}"}}, nil},
		{"value keeps its second space", "event: heartbeat\ndata:  x\n\n", []sseEvent{{"heartbeat", "", " x"}}, nil},
		{"empty", "", nil, nil},
		{"end inside an event", "event: heartbeat\n", nil, io.ErrUnexpectedEOF},
		{"end inside a line", "event: heartbeat\n\nevent: hea", []sseEvent{{"heartbeat", "", ""}}, io.ErrUnexpectedEOF},
		{"no event type", "data: {}\n\n", nil, errStream},
		{"unknown field", "event: revoke\nfoo: bar\n\n", nil, errStream},
		{"field twice", "event: revoke\nevent: revoke\n\n", nil, errStream},
		{"data twice", "event: revoke\ndata: a\ndata: b\n\n", nil, errStream},
		{"id twice", "event: revoke\nid: a\nid: a\n\n", nil, errStream},
		{"lone CR", "event: heartbeat\rdata:\n\n", nil, errStream},
		{"empty id", "event: revoke\nid:\n\n", nil, errStream},
		{"id with a space", "event: revoke\nid: a b\n\n", nil, errStream},
		{"id not ASCII", "event: revoke\nid: é\n\n", nil, errStream},
		{"id with NUL", "event: revoke\nid: a\x00\n\n", nil, errStream},
		{"id too long", "event: revoke\nid: " + strings.Repeat("a", maxEventID+1) + "\n\n", nil, errStream},
		{"line too long", "event: revoke\ndata: " + long + "\n\n", nil, errStream},
		{"BOM", "\ufeffevent: heartbeat\n\n", nil, errStream},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newEventReader(strings.NewReader(c.in))
			for _, w := range c.want {
				e, err := r.next()
				if err != nil || e != w {
					t.Fatalf("got %+v, %v; want %+v", e, err, w)
				}
			}
			wantErr := c.err
			if wantErr == nil {
				wantErr = io.EOF
			}
			if e, err := r.next(); !errors.Is(err, wantErr) {
				t.Fatalf("got %+v, %v; want %v", e, err, wantErr)
			}
		})
	}
}

func TestParseRevocation(t *testing.T) {
	for _, c := range []struct {
		in   string
		want wireRevocation
		ok   bool
	}{
		{`{"jti":"j1","exp":1767225600}`, wireRevocation{JTI: "j1", Exp: 1767225600}, true},
		{`{"sub":"client:a","gen":3,"exp":1767225600}`, wireRevocation{Sub: "client:a", Gen: 3, Exp: 1767225600}, true},
		{`{"exp":1767225600,"jti":"j1"}`, wireRevocation{JTI: "j1", Exp: 1767225600}, true},
		{`{"jti":"j1"}`, wireRevocation{}, false},
		{`{"jti":"j1","exp":0}`, wireRevocation{}, false},
		{`{"jti":"j1","exp":-5}`, wireRevocation{}, false},
		{`{"jti":"j1","exp":1.5}`, wireRevocation{}, false},
		{`{"jti":"j1","exp":"1767225600"}`, wireRevocation{}, false},
		{`{"jti":"j1","jti":"j2","exp":1}`, wireRevocation{}, false},
		{`{"JTI":"j1","exp":1}`, wireRevocation{}, false},
		{`{"jti":"j1","exp":1,"extra":true}`, wireRevocation{}, false},
		{`{"jti":"j1","sub":"client:a","gen":1,"exp":1}`, wireRevocation{}, false},
		{`{"jti":"j1","gen":1,"exp":1}`, wireRevocation{}, false},
		{`{"sub":"client:a","exp":1}`, wireRevocation{}, false},
		{`{"sub":"client:a","gen":0,"exp":1}`, wireRevocation{}, false},
		{`{"sub":"client:a","gen":-1,"exp":1}`, wireRevocation{}, false},
		{`{"exp":1}`, wireRevocation{}, false},
		{`{"jti":null,"exp":1}`, wireRevocation{}, false},
		{`{"jti":"\ud800","exp":1}`, wireRevocation{}, false},
		{"{\"jti\":\"a\xffb\",\"exp\":1}", wireRevocation{}, false},
		{`[]`, wireRevocation{}, false},
		{``, wireRevocation{}, false},
		{`{"jti":"j1","exp":1} x`, wireRevocation{}, false},
	} {
		got, err := parseRevocation(c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("parseRevocation(%s) = %+v, %v; want %+v, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestParseCount(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "7": 7, "123456789": 123456789,
		"": -1, "01": -1, "-1": -1, "-0": -1, "+1": -1, "1 ": -1, "1234567890": -1, "x": -1} {
		n, err := parseCount(in)
		if (err == nil) != (want >= 0) || (err == nil && n != want) {
			t.Errorf("parseCount(%q) = %d, %v; want %d", in, n, err, want)
		}
	}
}

// newStream returns a RevocationStream of url at t0 on a test clock.
func newStream(t testing.TB, url string, edit func(*RevocationStreamConfig)) (*RevocationStream, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(t0)
	cfg := RevocationStreamConfig{URL: url, Now: clk.Now, MaxStaleness: time.Hour, ReconnectDelay: time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}
	if edit != nil {
		edit(&cfg)
	}
	s, err := NewRevocationStream(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func TestRevocationStreamRead(t *testing.T) {
	const snap = "event: revoke\ndata: {\"jti\":\"j1\",\"exp\":1893553445}\n\n" +
		"event: revoke\ndata: {\"sub\":\"user:u\",\"gen\":2,\"exp\":1893553445}\n\n" +
		"event: snapshot\nid: e-2\ndata: 2\n\n"
	const beat = "event: heartbeat\ndata:\n\n"
	for _, c := range []struct {
		name, in string
		lastID   string
		current  bool
		err      error // nil: io.EOF
	}{
		{"snapshot and heartbeat", snap + beat, "e-2", true, nil},
		{"snapshot, no heartbeat", snap, "e-2", false, nil},
		{"resumed", "event: revoke\nid: e-3\ndata: {\"jti\":\"j1\",\"exp\":1}\n\n" + beat, "e-3", true, nil},
		{"heartbeat inside a snapshot", "event: revoke\ndata: {\"jti\":\"j1\",\"exp\":1}\n\n" + beat, "", false, errStream},
		{"id inside a snapshot", "event: revoke\ndata: {\"jti\":\"j1\",\"exp\":1}\n\nevent: revoke\nid: e-3\ndata: {\"jti\":\"j1\",\"exp\":1}\n\n", "", false, errStream},
		{"count too high", strings.Replace(snap, "data: 2", "data: 3", 1) + beat, "", false, errStream},
		{"count too low", strings.Replace(snap, "data: 2", "data: 1", 1) + beat, "", false, errStream},
		{"snapshot without id", strings.Replace(snap, "id: e-2\n", "", 1) + beat, "", false, errStream},
		{"bad revoke", "event: revoke\ndata: {}\n\n", "", false, errStream},
		{"bad count", "event: snapshot\nid: e\ndata: two\n\n", "", false, errStream},
		{"unknown event", "event: message\ndata: hi\n\n", "", false, errStream},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := newStream(t, "http://unused", nil)
			_, err := s.read(strings.NewReader(c.in), func() {})
			want := c.err
			if want == nil {
				want = io.EOF
			}
			if !errors.Is(err, want) || s.lastID != c.lastID || s.Current() != c.current {
				t.Fatalf("got %v, last id %q, current %v; want %v, %q, %v", err, s.lastID, s.Current(), want, c.lastID, c.current)
			}
		})
	}
	s, _ := newStream(t, "http://unused", nil)
	s.read(strings.NewReader(snap+beat), func() {})
	ctx := context.Background()
	for _, c := range []struct {
		sub  string
		gen  uint64
		jti  string
		want error
	}{
		{"user:u", 2, "j1", ErrRevoked}, {"user:u", 1, "j2", ErrRevoked}, {"user:u", 2, "j2", nil}, {"user:v", 0, "j2", nil},
	} {
		if err := s.Check(ctx, c.sub, c.gen, c.jti); !errors.Is(err, c.want) {
			t.Errorf("Check(%q, %d, %q) = %v, want %v", c.sub, c.gen, c.jti, err, c.want)
		}
	}
}

// sseServer is a hand-written revocation stream: each connection gets
// what the test sends on the channel of the moment, and the server
// records the Last-Event-ID of each.
type sseServer struct {
	*httptest.Server
	mu      sync.Mutex
	lastIDs []string
	conns   chan chan string // each connection takes one: what it writes until closed
}

func newSSEServer(t *testing.T, status int, contentType string) *sseServer {
	s := &sseServer{conns: make(chan chan string)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.lastIDs = append(s.lastIDs, r.Header.Get("Last-Event-ID"))
		s.mu.Unlock()
		if r.Header.Get("Authorization") != "Basic c3ZjOnNlY3JldA==" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var out chan string
		select {
		case out = <-s.conns:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		for {
			select {
			case msg, ok := <-out:
				if !ok {
					return
				}
				io.WriteString(w, msg)
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sseServer) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lastIDs...)
}

func basicAuth(r *http.Request) error { r.SetBasicAuth("svc", "secret"); return nil }

// runStream runs s until the test ends.
func runStream(t *testing.T, s *RevocationStream) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// checkWithin waits for s.Check's answer to be want.
func checkWithin(t *testing.T, s *RevocationStream, sub string, gen uint64, jti string, want error) {
	t.Helper()
	testkit.WaitFor(t, fmt.Sprintf("Check(%q, %d, %q) to be %v", sub, gen, jti, want), func() bool {
		err := s.Check(context.Background(), sub, gen, jti)
		return errors.Is(err, want) && (want != nil || err == nil)
	})
}

func TestJWT09_RevocationStreamFollows(t *testing.T) {
	srv := newSSEServer(t, http.StatusOK, "text/event-stream; charset=utf-8")
	s, _ := newStream(t, srv.URL, func(c *RevocationStreamConfig) { c.Authorize = basicAuth })
	if err := s.Check(context.Background(), "client:a", 0, "j0"); !errors.Is(err, ErrRevocationsStale) {
		t.Fatalf("before anything was heard: got %v, want ErrRevocationsStale", err)
	}
	runStream(t, s)
	conn := make(chan string)
	srv.conns <- conn
	conn <- "event: revoke\ndata: {\"jti\":\"j1\",\"exp\":1893553445}\n\nevent: snapshot\nid: e-1\ndata: 1\n\nevent: heartbeat\ndata:\n\n"
	checkWithin(t, s, "client:a", 0, "j2", nil)
	checkWithin(t, s, "client:a", 0, "j1", ErrRevoked)
	conn <- "event: revoke\nid: e-2\ndata: {\"sub\":\"client:a\",\"gen\":1,\"exp\":1893553445}\n\n"
	checkWithin(t, s, "client:a", 0, "j2", ErrRevoked)
	checkWithin(t, s, "client:a", 1, "j2", nil)

	// The connection ends; the next one resumes from e-2.
	close(conn)
	conn = make(chan string)
	srv.conns <- conn
	defer close(conn)
	if ids := srv.ids(); len(ids) != 2 || ids[0] != "" || ids[1] != "e-2" {
		t.Fatalf("got Last-Event-IDs %q, want none, then e-2", ids)
	}
}

// SES-14's bound, for a remote verifier: once the stream has not been
// heard within MaxStaleness, Check fails closed with ErrRevocationsStale,
// which a Verifier turns into a 503, not a pass and not a 401.
func TestSES14_RevocationStreamStaleFailsClosed(t *testing.T) {
	srv := newSSEServer(t, http.StatusOK, "text/event-stream")
	s, clk := newStream(t, srv.URL, func(c *RevocationStreamConfig) { c.Authorize = basicAuth; c.MaxStaleness = 5 * time.Second })
	runStream(t, s)
	conn := make(chan string)
	defer close(conn)
	srv.conns <- conn
	conn <- "event: snapshot\nid: e-0\ndata: 0\n\nevent: heartbeat\ndata:\n\n"
	checkWithin(t, s, "client:a", 0, "j1", nil)
	clk.Advance(5 * time.Second)
	checkWithin(t, s, "client:a", 0, "j1", nil) // at the bound: still current
	clk.Advance(time.Millisecond)
	checkWithin(t, s, "client:a", 0, "j1", ErrRevocationsStale)

	v, _ := newVerifier(t, func(c *VerifierConfig) { c.Revocations = s; c.Now = clk.Now })
	_, err := v.Verify(context.Background(), good(claimsJSON(map[string]any{"exp": clk.Now().Add(time.Minute).Unix()})))
	if !errors.Is(err, ErrRevocationsStale) || errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrRevocationsStale and not ErrInvalid", err)
	}
	w := httptest.NewRecorder()
	WriteError(w, err)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("got %d, want 503", w.Code)
	}

	conn <- "event: heartbeat\ndata:\n\n" // heard again
	checkWithin(t, s, "client:a", 0, "j1", nil)
}

// A refused request, a response that is not an event stream and a
// connection that goes silent are all retried.
func TestRevocationStreamReconnects(t *testing.T) {
	for _, c := range []struct {
		name        string
		status      int
		contentType string
		auth        func(*http.Request) error
	}{
		{"401", http.StatusOK, "text/event-stream", nil},
		{"503", http.StatusServiceUnavailable, "text/event-stream", basicAuth},
		{"not an event stream", http.StatusOK, "text/html", basicAuth},
		{"silent", http.StatusOK, "text/event-stream", basicAuth},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newSSEServer(t, c.status, c.contentType)
			s, _ := newStream(t, srv.URL, func(cfg *RevocationStreamConfig) {
				cfg.Authorize = c.auth
				cfg.MaxStaleness = 10 * time.Millisecond // the silent one is given up after that
			})
			runStream(t, s)
			go func() {
				for {
					conn := make(chan string) // never written to, never closed
					select {
					case srv.conns <- conn:
					case <-t.Context().Done():
						return
					}
				}
			}()
			testkit.WaitFor(t, "three attempts", func() bool { return len(srv.ids()) >= 3 })
			if s.Current() {
				t.Fatal("current without a heartbeat")
			}
		})
	}
}

func TestNewRevocationStreamConfig(t *testing.T) {
	for name, cfg := range map[string]RevocationStreamConfig{
		"no URL":         {},
		"not http":       {URL: "ftp://a.example/x"},
		"relative":       {URL: "/oauth2/revocations"},
		"client timeout": {URL: "https://a.example", Client: &http.Client{Timeout: time.Second}},
		"negative":       {URL: "https://a.example", MaxStaleness: -1},
	} {
		if _, err := NewRevocationStream(cfg); err == nil {
			t.Errorf("%s: got no error", name)
		}
	}
}

// FuzzRevocationStream: a hostile stream never panics the follower, never
// makes it current without a heartbeat, and never leaves it an id it
// could not send back as a header.
func FuzzRevocationStream(f *testing.F) {
	for _, s := range []string{
		"event: revoke\ndata: {\"jti\":\"j1\",\"exp\":1893553445}\n\nevent: snapshot\nid: e-1\ndata: 1\n\nevent: heartbeat\ndata:\n\n",
		"event: revoke\nid: 3f9c0a1b2c3d4e5f-42\ndata: {\"sub\":\"client:a\",\"gen\":3,\"exp\":1}\n\n",
		"event: heartbeat\r\ndata:\r\n\r\n",
		": comment\n\nretry: 5\nevent: snapshot\nid: x\ndata: 0\n\n",
		"event: revoke\ndata: {\"jti\":\"j1\",\"exp\":1}\n\nevent: heartbeat\n\n",
		"event: revoke\nid: a\nid: b\n\n",
		"data: x\n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, _ := newStream(t, "http://unused", nil)
		s.read(strings.NewReader(in), func() {})
		if s.Current() && !strings.Contains(in, "heartbeat") {
			t.Fatal("current without a heartbeat")
		}
		if len(s.lastID) > maxEventID || !printable([]byte(s.lastID)) {
			t.Fatalf("last id %q", s.lastID)
		}
	})
}
