// Package metrics is tether's Prometheus metrics: a registry of its own
// (never the global one), fed by hooks the library and the server already
// have or that cost nothing when unset, and served by Handler on a
// listener of its own (cmd/tether's --metrics-addr), never the public one.
//
//	m := metrics.New()
//	sessions, _ := session.NewManager(store, session.Config{
//		OnLoad:  m.SessionLoad, // session checks, near-cache hits and misses
//		OnEvent: m.FeedEvent,   // feed health, propagation delay
//	})
//	m.WatchKeys(ring)                            // key ages
//	m.WatchFeed(sessions.Current)                // whether the near-cache serves
//	h, _ := server.New(server.Config{Metrics: m, ...}) // requests, sign-ins, ...
//	go http.Serve(metricsListener, m.Handler())
//
// Every method of a nil *Metrics does nothing, so the server calls them
// whether or not metrics are on; but leave session.Config.OnLoad nil,
// not m.SessionLoad of a nil m, to keep the cached session check free.
//
// The families (README.md, Metrics, says the same for operators):
//
//	tether_http_requests_total{route,code}            requests answered, by route pattern and status
//	tether_http_request_duration_seconds{route}       their latency
//	tether_session_checks_total{outcome}              session loads: ok, malformed, unknown, expired, revoked, store_error
//	tether_session_cache_hits_total                   loads the near-cache answered
//	tether_session_cache_misses_total                 loads that asked the store
//	tether_session_feed_up                            1 while the invalidation feed is up
//	tether_session_feed_current                       1 while the near-cache serves: the feed is up and was heard within the staleness bound
//	tether_session_feed_reconnects_total              times the feed came back after the first time
//	tether_revocation_propagation_seconds             the feed's delivery delay (see below)
//	tether_signins_total{outcome,reason}              sign-ins: success, or failure and why
//	tether_throttled_total{action}                    attempts refused by the throttle (PW-06)
//	tether_csrf_refusals_total{reason}                unsafe requests refused by the CSRF checks
//	tether_tokens_issued_total{kind,outcome}          access tokens (kind access) and personal access tokens (pat) issued
//	tether_tokens_verified_total{outcome}             tokens checked: active, inactive, error
//	tether_tokens_revoked_total{kind,outcome}         revocations asked for, by outcome
//	tether_signing_key_age_seconds{kid,state}         age of each published signing key
//
// plus the Go runtime's and the process's (go_*, process_*).
//
// # Revocation propagation delay
//
// The store's feed events carry no time of the write they report, so the
// delay from a revocation's write to this node applying it is not
// measured per revocation. What is measured is the feed's heartbeat: a
// backend vouches for its feed by a round trip (a PING on the Redis
// subscription, a query on PostgreSQL's listening connection, a poll on
// SQLite) that every invalidation committed before it is delivered ahead
// of, and delivers FeedCurrent with the time the round trip began. The
// histogram observes, per heartbeat, the time from that start to this
// node having applied it (the near-cache has dropped everything it
// reported). A revocation written on any node is applied here within
// about this delay plus the heartbeat interval (100 ms) after its write;
// with SQLite, within the poll interval.
//
// # Session outcomes
//
// The store answers "not found" alike for a session never issued and one
// signed out or revoked. revoked is counted for a session this node saw
// end before it could have expired (among the last 4096), unknown for the
// rest: a session revoked on another node that this node never held in
// its near-cache counts as unknown (see session.LoadRevoked).
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/session"
)

// Metrics holds tether's metrics in a registry of its own. Its methods are
// safe for concurrent use; those of a nil *Metrics do nothing.
type Metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	series   sync.Map // routeCode to *routeSeries: the two families' children, resolved once

	loads       *loadCounts
	feedUp      prometheus.Gauge
	current     atomic.Pointer[func() bool] // WatchFeed's
	reconnects  prometheus.Counter
	everUp      atomic.Bool // the feed came up once: the next FeedUp is a reconnection
	propagation prometheus.Histogram

	signIns     *prometheus.CounterVec
	throttled   *prometheus.CounterVec
	csrf        *prometheus.CounterVec
	issued      *prometheus.CounterVec
	verified    *prometheus.CounterVec
	revoked     *prometheus.CounterVec
	keyAgeDesc  *prometheus.Desc
	watchedRing atomic.Pointer[keyRing]
}

// keyRing is what key ages are read from: *keys.Ring.
type keyRing interface {
	// Loaded returns the keys as last loaded, reading no storage.
	Loaded() []keys.Info
}

// New returns tether's metrics, every family registered and at zero.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_http_requests_total",
			Help: "HTTP requests answered, by route pattern (unmatched: none) and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tether_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9), // 100 µs to 6.6 s
		}, []string{"route"}),
		loads: newLoadCounts(),
		feedUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tether_session_feed_up",
			Help: "1 while the session store's invalidation feed is up (the near-cache may serve), else 0.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tether_session_feed_reconnects_total",
			Help: "Times the invalidation feed came back up after it was lost.",
		}),
		propagation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tether_revocation_propagation_seconds",
			Help:    "Delivery delay of the invalidation feed, per heartbeat: from the store's vouching round trip starting to this node applying it; revocations reach the node within about this plus the heartbeat interval.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12), // 0.5 ms to 1 s
		}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_signins_total",
			Help: "Sign-ins by outcome (success, failure) and, for a failure, its reason.",
		}, []string{"outcome", "reason"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_throttled_total",
			Help: "Attempts the throttle refused (PW-06), by action: sign-in, password-change, or the OAuth endpoint whose client authentication it refused (token-issue, token-revoke, token-introspect).",
		}, []string{"action"}),
		csrf: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_csrf_refusals_total",
			Help: "Unsafe requests refused by the CSRF checks, by reason.",
		}, []string{"reason"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_tokens_issued_total",
			Help: "Token requests by kind (access: OAuth access tokens; pat: personal access tokens) and outcome.",
		}, []string{"kind", "outcome"}),
		verified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_tokens_verified_total",
			Help: "Tokens checked (introspection), by outcome: active, inactive, error.",
		}, []string{"outcome"}),
		revoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tether_tokens_revoked_total",
			Help: "Token revocations asked for, by kind (access, pat) and outcome.",
		}, []string{"kind", "outcome"}),
		keyAgeDesc: prometheus.NewDesc("tether_signing_key_age_seconds",
			"Age of each signing key not yet removed from the JWKS, by kid and state (signing, pending, retired).",
			[]string{"kid", "state"}, nil),
	}
	// The series every deployment has, at zero until counted, so that
	// rates and alerts see them from the first scrape.
	m.signIns.WithLabelValues("success", "")
	for _, action := range []string{eventSignIn, eventPasswordChange, eventIssue} {
		m.throttled.WithLabelValues(action)
	}
	for _, reason := range csrfReasons {
		m.csrf.WithLabelValues(reason)
	}
	for _, kind := range []string{"access", "pat"} {
		for _, outcome := range []string{"success", "failure"} {
			m.issued.WithLabelValues(kind, outcome)
			m.revoked.WithLabelValues(kind, outcome)
		}
	}
	for _, outcome := range []string{"active", "inactive", "error"} {
		m.verified.WithLabelValues(outcome)
	}
	m.reg.MustRegister(m.requests, m.latency, m.loads, m.feedUp, m.reconnects, m.propagation,
		m.signIns, m.throttled, m.csrf, m.issued, m.verified, m.revoked, keyAges{m},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tether_session_feed_current",
			Help: "1 while the invalidation feed is up and was vouched current within --max-staleness: the near-cache serves (SES-14); else 0.",
		}, m.feedCurrent),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus' text format (or OpenMetrics,
// when asked).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// SessionLoad counts one session load: session.Config.OnLoad.
func (m *Metrics) SessionLoad(r session.LoadResult) {
	if m == nil {
		return
	}
	m.loads.add(r)
}

// FeedEvent follows the feed's health and delay: session.Config.OnEvent
// (with the other followers of the feed).
func (m *Metrics) FeedEvent(e session.Event) {
	if m == nil {
		return
	}
	switch e.Kind {
	case session.FeedUp:
		m.feedUp.Set(1)
		if m.everUp.Swap(true) {
			m.reconnects.Inc()
		}
	case session.FeedDown:
		m.feedUp.Set(0)
	case session.FeedCurrent:
		if !e.At.IsZero() {
			m.propagation.Observe(time.Since(e.At).Seconds())
		}
	}
}

// WatchFeed reports current, the session Manager's Current, as
// tether_session_feed_current at each scrape: unlike
// tether_session_feed_up, it also falls to 0 when a feed that is up has
// gone silent past the staleness bound.
func (m *Metrics) WatchFeed(current func() bool) {
	if m == nil {
		return
	}
	m.current.Store(&current)
}

// feedCurrent is tether_session_feed_current's value.
func (m *Metrics) feedCurrent() float64 {
	if f := m.current.Load(); f != nil && (*f)() {
		return 1
	}
	return 0
}

// The audit events Audit counts, as the server names them.
const (
	eventSignIn         = "sign-in"
	eventPasswordChange = "password-change"
	eventIssue          = "token-issue"
	eventRevoke         = "token-revoke"
	eventPATIssue       = "pat-create"
	eventPATRevoke      = "pat-revoke"
	reasonThrottled     = "throttled"
)

// csrfReasons are the reasons CSRFRefused is given.
var csrfReasons = []string{"cross_origin", "no_binding", "missing_token", "invalid_token", "other"}

// Audit counts an audit event of the server's (internal/audit): a
// sign-in, a token issued or revoked, and any event refused because the
// throttle said wait. outcome and reason are the event's "outcome" and
// "reason" attributes ("" when it has none). The metrics count what the
// audit log records, so the two never disagree.
func (m *Metrics) Audit(event, outcome, reason string) {
	if m == nil {
		return
	}
	if reason == reasonThrottled {
		m.throttled.WithLabelValues(event).Inc()
	}
	outcome, reason = label(outcome), label(reason)
	switch event {
	case eventSignIn:
		m.signIns.WithLabelValues(outcome, reason).Inc()
	case eventIssue:
		m.issued.WithLabelValues("access", outcome).Inc()
	case eventPATIssue:
		m.issued.WithLabelValues("pat", outcome).Inc()
	case eventRevoke:
		m.revoked.WithLabelValues("access", outcome).Inc()
	case eventPATRevoke:
		m.revoked.WithLabelValues("pat", outcome).Inc()
	}
}

// label is s as a label value: lower case, words joined by underscores.
func label(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), " ", "_")
}

// CSRFRefused counts an unsafe request the CSRF checks refused, for
// reason: cross_origin, no_binding (no session or pre-session cookie),
// missing_token, invalid_token or other.
func (m *Metrics) CSRFRefused(reason string) {
	if m == nil {
		return
	}
	m.csrf.WithLabelValues(reason).Inc()
}

// TokenVerified counts a token checked: outcome is "active", "inactive"
// or "error" (a store failed).
func (m *Metrics) TokenVerified(outcome string) {
	if m == nil {
		return
	}
	m.verified.WithLabelValues(outcome).Inc()
}

// WatchKeys reports the age of ring's keys from now on, as the ring last
// loaded them (each scrape reads no storage; the ring's schedule reloads
// it).
func (m *Metrics) WatchKeys(ring keyRing) {
	if m == nil {
		return
	}
	m.watchedRing.Store(&ring)
}

// keyAges collects tether_signing_key_age_seconds from the watched ring.
type keyAges struct{ m *Metrics }

func (k keyAges) Describe(ch chan<- *prometheus.Desc) { ch <- k.m.keyAgeDesc }

func (k keyAges) Collect(ch chan<- prometheus.Metric) {
	ring := k.m.watchedRing.Load()
	if ring == nil {
		return
	}
	for _, info := range (*ring).Loaded() {
		if info.State == keys.Removed {
			continue
		}
		ch <- prometheus.MustNewConstMetric(k.m.keyAgeDesc, prometheus.GaugeValue,
			time.Since(info.Created).Seconds(), info.Kid, string(info.State))
	}
}

// Instrument counts and times every request h answers, by its route
// ("" for none: "unmatched") and its status. The route is the pattern of
// the mux that Routes wraps inside h; for a request that never reached
// it (refused before), what route names for it.
func (m *Metrics) Instrument(h http.Handler, route func(*http.Request) string) http.Handler {
	if m == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			// Also when h panics (http.ErrAbortHandler): counted by
			// what was sent, and the panic goes on.
			pattern := sw.route
			if !sw.routed {
				pattern = route(r)
			}
			rs := m.routeSeries(routeCode{pattern, sw.status()})
			rs.requests.Inc()
			rs.latency.Observe(time.Since(start).Seconds())
		}()
		h.ServeHTTP(sw, r)
	})
}

// Routes wraps mux, the innermost handler of a chain Instrument wraps,
// so that the pattern mux matched (http.Request.Pattern) names the
// request's route for Instrument, which then makes no second lookup of
// its own. A nil *Metrics returns mux.
func (m *Metrics) Routes(mux *http.ServeMux) http.Handler {
	if m == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { routed(w, r.Pattern) }() // ServeHTTP sets r.Pattern
		mux.ServeHTTP(w, r)
	})
}

// routed records pattern on Instrument's writer under w, if there is one.
func routed(w http.ResponseWriter, pattern string) {
	for {
		switch x := w.(type) {
		case *statusWriter:
			x.route, x.routed = pattern, true
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return
		}
	}
}

// routeCode is a request's route pattern and status.
type routeCode struct {
	route string
	code  int
}

// routeSeries are the children of the request families for one
// routeCode.
type routeSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// routeSeries returns rc's children, resolving them the first time: the
// routes are the server's patterns and the codes few, so the map stays
// small.
func (m *Metrics) routeSeries(rc routeCode) *routeSeries {
	if rs, ok := m.series.Load(rc); ok {
		return rs.(*routeSeries)
	}
	name := rc.route
	if name == "" {
		name = "unmatched"
	}
	rs, _ := m.series.LoadOrStore(rc, &routeSeries{
		requests: m.requests.WithLabelValues(name, strconv.Itoa(rc.code)),
		latency:  m.latency.WithLabelValues(name),
	})
	return rs.(*routeSeries)
}

// statusWriter remembers the status a response was sent with.
type statusWriter struct {
	http.ResponseWriter
	code   int
	route  string // the pattern Routes' mux matched
	routed bool   // the request reached that mux
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 && code >= 200 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// status is the response's status: 200 when nothing set one.
func (s *statusWriter) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
