package revocation

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/tetherauth/tether/session"
)

// StreamConfig configures a Stream. Authorize is required; the other
// fields have defaults.
type StreamConfig struct {
	// Authorize authenticates a request to follow the stream and reports
	// whether it may; when it may not, Authorize has answered it (401 for
	// bad credentials, 503 when it could not check them, ...). Required.
	Authorize func(w http.ResponseWriter, r *http.Request) bool
	// Heartbeat is how often a heartbeat is sent while the View is current.
	// Default 1 s.
	Heartbeat time.Duration
	// MaxSubscribers caps the connections followed at once; past it a new
	// one is answered 503. Default 1024.
	MaxSubscribers int
	// Buffer is how many revocations may wait for one subscriber; one
	// that falls further behind is disconnected (it resumes with
	// Last-Event-ID). Default 1024.
	Buffer int
	// WriteTimeout is the deadline of each write to a subscriber; one that
	// doesn't take its bytes in time is disconnected. Default 10 s.
	WriteTimeout time.Duration
	// Logger gets why subscribers were refused or disconnected. Default
	// slog.Default().
	Logger *slog.Logger
}

// Stream is the handler of GET /oauth2/revocations: the View's denylist
// and every revocation after it, as Server-Sent Events (see the package
// doc for the wire format).
type Stream struct {
	view *View
	cfg  StreamConfig
	log  *slog.Logger
}

// NewStream returns the stream of v's revocations.
func NewStream(v *View, cfg StreamConfig) (*Stream, error) {
	var errs []error
	if v == nil {
		errs = append(errs, errors.New("View is required"))
	}
	if cfg.Authorize == nil {
		errs = append(errs, errors.New("Authorize is required"))
	}
	if cfg.Heartbeat < 0 || cfg.MaxSubscribers < 0 || cfg.Buffer < 0 || cfg.WriteTimeout < 0 {
		errs = append(errs, errors.New("Heartbeat, MaxSubscribers, Buffer and WriteTimeout must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("revocation.NewStream: %w", err)
	}
	cfg.Heartbeat = cmp.Or(cfg.Heartbeat, time.Second)
	cfg.MaxSubscribers = cmp.Or(cfg.MaxSubscribers, 1024)
	cfg.Buffer = cmp.Or(cfg.Buffer, 1024)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, 10*time.Second)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	return &Stream{view: v, cfg: cfg, log: cfg.Logger.With("component", "revocation")}, nil
}

// Errors of subscribe.
var (
	errNotReady = errors.New("revocation: the denylist is not current")
	errFull     = errors.New("revocation: too many subscribers")
	errEnded    = errors.New("revocation: the streams have ended: the server is stopping")
)

// start is what a new subscriber is sent before the revocations queued
// to it: the snapshot and the id it ends at, or the revocations it missed.
type start struct {
	snapshot []session.Revocation
	id       string
	missed   []item
}

// subscribe registers a subscriber that resumes after lastID (an event
// id, or "" for none) and returns what to send it first.
func (v *View) subscribe(lastID string, limit, buffer int) (*subscriber, start, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ended {
		return nil, start{}, errEnded
	}
	if !v.ready() {
		return nil, start{}, errNotReady
	}
	if len(v.hub.subs) >= limit {
		return nil, start{}, errFull
	}
	var st start
	resumed := false
	if epoch, seq, err := parseID(lastID); err == nil {
		st.missed, resumed = v.hub.since(epoch, seq)
	}
	if !resumed {
		st.snapshot, st.id = v.entries(), formatID(v.hub.epoch, v.hub.seq)
	}
	s := &subscriber{ch: make(chan item, buffer), gone: make(chan struct{})}
	v.hub.subs[s] = struct{}{}
	return s, st, nil
}

// vouches reports whether a heartbeat may be sent to s: the View is
// current and has not lost its feed since s subscribed. (A subscriber is
// dropped when the feed is lost, before the View can be current again: if
// ready saw the new up period, gone is seen closed.)
func (v *View) vouches(s *subscriber) bool {
	if !v.ready() {
		return false
	}
	select {
	case <-s.gone:
		return false
	default:
		return true
	}
}

// unsubscribe forgets s, unless the hub dropped it already.
func (v *View) unsubscribe(s *subscriber) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.hub.subs[s]; ok {
		v.hub.drop(s)
	}
}

// ServeHTTP follows the stream until the client goes, the View's feed is
// lost, or the client falls behind.
func (s *Stream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !s.cfg.Authorize(w, r) {
		return
	}
	var lastID string
	if ids := r.Header.Values("Last-Event-ID"); len(ids) == 1 {
		lastID = ids[0]
	}
	sub, st, err := s.view.subscribe(lastID, s.cfg.MaxSubscribers, s.cfg.Buffer)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "revocation stream unavailable", http.StatusServiceUnavailable)
		return
	}
	defer s.view.unsubscribe(sub)
	out := sse{w: w, rc: http.NewResponseController(w), timeout: s.cfg.WriteTimeout}
	// A stream lives longer than any request: the server's write timeout
	// gives way to a deadline per write. (Its read timeout doesn't end the
	// stream: net/http clears it once the request is read.)
	if err := out.rc.SetWriteDeadline(time.Now().Add(out.timeout)); err != nil {
		s.log.Error("revocation stream: the response writer has no write deadlines", "err", err)
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	w.WriteHeader(http.StatusOK)

	err = s.serve(r, &out, sub, st)
	if err != nil && r.Context().Err() == nil {
		s.log.Info("revocation stream: subscriber disconnected", "err", err)
	}
}

// serve writes st, then the queued revocations and the heartbeats, until
// something ends the subscription.
func (s *Stream) serve(r *http.Request, out *sse, sub *subscriber, st start) error {
	for _, rev := range st.snapshot {
		out.revocation("", rev)
		if len(out.buf) >= flushSize {
			if err := out.flush(); err != nil {
				return err
			}
		}
	}
	if st.id != "" {
		out.event("snapshot", st.id, strconv.Itoa(len(st.snapshot)))
	}
	for _, it := range st.missed {
		out.item(it)
	}
	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	for due := true; ; {
		if due && s.view.vouches(sub) {
			out.event("heartbeat", "", "")
		}
		if err := out.flush(); err != nil {
			return err
		}
		select {
		case <-r.Context().Done():
			return r.Context().Err()
		case <-sub.gone:
			return errors.New("dropped: the feed was lost, or the subscriber fell behind")
		case it := <-sub.ch:
			out.item(it)
			for more := true; more && len(out.buf) < flushSize; {
				select {
				case it := <-sub.ch:
					out.item(it)
				default:
					more = false
				}
			}
			due = false
		case <-beat.C:
			due = true
		}
	}
}
