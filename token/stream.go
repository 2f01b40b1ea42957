package token

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// RevocationStreamConfig configures a RevocationStream.
type RevocationStreamConfig struct {
	// URL is the stream's: the issuer's /oauth2/revocations. Required.
	URL string
	// Client makes the requests. Its Timeout must be 0 (it would cut the
	// stream): the stream bounds the connection itself (see
	// MaxStaleness). Default: a Client of http.DefaultTransport that
	// follows no redirect (the credentials go to URL only).
	Client *http.Client
	// Authorize adds the client's credentials to each request, e.g.
	// r.SetBasicAuth(clientID, secret). nil: none.
	Authorize func(*http.Request) error
	// MaxStaleness is how long after the stream's last heartbeat Check
	// still trusts what it was told; later it fails with
	// ErrRevocationsStale. A connection that carries nothing for that
	// long (headers included) is given up and made again. The server
	// sends a heartbeat every second while it can vouch for its own view,
	// which is itself at most its feed's bound (1 s by default) behind:
	// a revocation reaches this verifier within about that plus
	// MaxStaleness, and usually within milliseconds. Default 5 s.
	MaxStaleness time.Duration
	// ReconnectDelay is the wait before reconnecting after a failure,
	// doubled on each failure in a row up to 5 s (a follower cut off
	// fails closed, so it should not wait long once the server is back),
	// with jitter. Default
	// 100 ms.
	ReconnectDelay time.Duration
	// Revocations receives what the stream says. Default: a new
	// MemoryRevocations.
	Revocations *MemoryRevocations
	// Now is the clock of the staleness bound. Default time.Now.
	Now func() time.Time
	// Logger gets the stream's failures. Default slog.Default().
	Logger *slog.Logger
}

// maxReconnectDelay caps RevocationStreamConfig.ReconnectDelay's growth.
const maxReconnectDelay = 5 * time.Second

// RevocationStream follows a tether server's revocation stream and keeps a
// MemoryRevocations up to date with it, so that a resource server's
// Verifier refuses a revoked token within a bound, with no call to the
// server per token. It implements Revocations, failing closed once the
// stream has not been heard within MaxStaleness. Run follows the stream;
// Check is safe for concurrent use with it.
type RevocationStream struct {
	cfg   RevocationStreamConfig
	mem   *MemoryRevocations
	log   *slog.Logger
	start time.Time    // origin of heard, by cfg.Now
	heard atomic.Int64 // when the last heartbeat came: ns since start
	// lastID is the id of the last event that had one: where a new
	// connection resumes. Only Run's goroutine uses it.
	lastID string
}

var _ Revocations = (*RevocationStream)(nil)

// NewRevocationStream checks cfg and returns a RevocationStream that has
// heard nothing yet: Check fails until Run has received a heartbeat.
func NewRevocationStream(cfg RevocationStreamConfig) (*RevocationStream, error) {
	var errs []error
	if u, err := url.Parse(cfg.URL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		errs = append(errs, fmt.Errorf("URL %q is not an http(s) URL", cfg.URL))
	}
	if cfg.Client != nil && cfg.Client.Timeout != 0 {
		errs = append(errs, errors.New("Client.Timeout must be 0: it would cut the stream"))
	}
	if cfg.MaxStaleness < 0 || cfg.ReconnectDelay < 0 {
		errs = append(errs, errors.New("MaxStaleness and ReconnectDelay must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("token.NewRevocationStream: %w", err)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	cfg.MaxStaleness = cmp.Or(cfg.MaxStaleness, 5*time.Second)
	cfg.ReconnectDelay = cmp.Or(cfg.ReconnectDelay, 100*time.Millisecond)
	cfg.Revocations = cmp.Or(cfg.Revocations, NewMemoryRevocations(cfg.Now))
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &RevocationStream{cfg: cfg, mem: cfg.Revocations, log: cfg.Logger.With("component", "revocation-stream"), start: cfg.Now()}
	s.heard.Store(-int64(cfg.MaxStaleness) - 1)
	return s, nil
}

// Check implements Revocations: ErrRevoked when the stream said so, else
// ErrRevocationsStale when it has not been heard within MaxStaleness
// (the verifier refuses the token: fail closed), else nil.
func (s *RevocationStream) Check(ctx context.Context, subject string, generation uint64, jti string) error {
	if err := s.mem.Check(ctx, subject, generation, jti); err != nil {
		return err
	}
	if !s.Current() {
		return ErrRevocationsStale
	}
	return nil
}

// Current reports whether the stream's last heartbeat came within
// MaxStaleness: what a resource server's readiness check may report.
func (s *RevocationStream) Current() bool {
	return int64(s.cfg.Now().Sub(s.start))-s.heard.Load() <= int64(s.cfg.MaxStaleness)
}

// Run follows the stream until ctx is done, then returns nil: it connects,
// resumes from the last event id it got (Last-Event-ID), and reconnects
// after a failure with a growing delay.
func (s *RevocationStream) Run(ctx context.Context) error {
	delay := s.cfg.ReconnectDelay
	for {
		beats, err := s.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if beats {
			delay = s.cfg.ReconnectDelay
		}
		wait := delay/2 + rand.N(delay/2+1)
		s.log.Warn("revocation stream lost; reconnecting", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		delay = min(2*delay, maxReconnectDelay)
	}
}

// follow makes one connection and reads it until it fails; beats says
// whether it carried a heartbeat.
func (s *RevocationStream) follow(ctx context.Context) (beats bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(s.cfg.MaxStaleness, cancel)
	defer idle.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.URL, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if s.lastID != "" {
		req.Header.Set("Last-Event-ID", s.lastID)
	}
	if s.cfg.Authorize != nil {
		if err := s.cfg.Authorize(req); err != nil {
			return false, fmt.Errorf("authorize: %w", err)
		}
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("revocation stream answered %s", resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, fmt.Errorf("%w: Content-Type %q", errStream, truncate([]byte(resp.Header.Get("Content-Type"))))
	}
	return s.read(resp.Body, func() { idle.Reset(s.cfg.MaxStaleness) })
}

// read applies the events of one connection until it ends, calling
// progress after each; beats says whether one was a heartbeat.
func (s *RevocationStream) read(body io.Reader, progress func()) (beats bool, err error) {
	r := newEventReader(body)
	unsent := 0 // revoke events without id since the last snapshot event: a snapshot's
	for {
		e, err := r.next()
		if err != nil {
			return beats, err
		}
		progress()
		switch e.kind {
		case "revoke":
			w, err := parseRevocation(e.data)
			if err != nil {
				return beats, err
			}
			w.apply(s.mem)
			if e.id == "" {
				unsent++
			} else if unsent > 0 {
				return beats, fmt.Errorf("%w: a revocation with an id inside a snapshot", errStream)
			} else {
				s.lastID = e.id
			}
		case "snapshot":
			n, err := parseCount(e.data)
			if err != nil {
				return beats, err
			}
			if e.id == "" || n != unsent {
				return beats, fmt.Errorf("%w: a snapshot of %d entries without an id, or announced as %q", errStream, unsent, e.data)
			}
			s.lastID, unsent = e.id, 0
		case "heartbeat":
			if unsent > 0 {
				return beats, fmt.Errorf("%w: a heartbeat inside a snapshot", errStream)
			}
			beats = true
			s.heard.Store(int64(s.cfg.Now().Sub(s.start)))
		default:
			return beats, fmt.Errorf("%w: unknown event %q", errStream, truncate([]byte(e.kind)))
		}
	}
}
