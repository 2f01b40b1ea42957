package metrics_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/metrics"
	"github.com/tetherauth/tether/internal/testkit/promtest"
	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/session"
)

// families are every family of tether's own, as README.md lists them.
var families = []string{
	"tether_http_requests_total", "tether_http_request_duration_seconds",
	"tether_session_checks_total", "tether_session_cache_hits_total", "tether_session_cache_misses_total",
	"tether_session_feed_up", "tether_session_feed_current", "tether_session_feed_reconnects_total", "tether_revocation_propagation_seconds",
	"tether_signins_total", "tether_throttled_total", "tether_csrf_refusals_total",
	"tether_tokens_issued_total", "tether_tokens_verified_total", "tether_tokens_revoked_total",
	"tether_signing_key_age_seconds",
}

// delta is what one counter moved by between two scrapes.
type delta struct {
	name   string
	labels []string
	want   float64
}

// checkDeltas checks that each counter of deltas moved by its want.
func checkDeltas(t *testing.T, before, after promtest.Scrape, deltas []delta) {
	t.Helper()
	for _, d := range deltas {
		if got := after.Value(t, d.name, d.labels...) - before.Value(t, d.name, d.labels...); got != d.want {
			t.Errorf("%s%v: moved by %v, want %v", d.name, d.labels, got, d.want)
		}
	}
}

func TestSessionLoad(t *testing.T) {
	m := metrics.New()
	before := promtest.Get(t, m.Handler())
	for _, r := range []session.LoadResult{
		{Outcome: session.LoadOK, Cached: true}, {Outcome: session.LoadOK, Cached: true}, {Outcome: session.LoadOK},
		{Outcome: session.LoadMalformed}, {Outcome: session.LoadUnknown}, {Outcome: session.LoadExpired},
		{Outcome: session.LoadRevoked}, {Outcome: session.LoadStoreError}, {Outcome: 0}, {Outcome: 200},
	} {
		m.SessionLoad(r)
	}
	checkDeltas(t, before, promtest.Get(t, m.Handler()), []delta{
		{"tether_session_checks_total", []string{"outcome", "ok"}, 3},
		{"tether_session_checks_total", []string{"outcome", "malformed"}, 1},
		{"tether_session_checks_total", []string{"outcome", "unknown"}, 1},
		{"tether_session_checks_total", []string{"outcome", "expired"}, 1},
		{"tether_session_checks_total", []string{"outcome", "revoked"}, 1},
		{"tether_session_checks_total", []string{"outcome", "store_error"}, 1},
		{"tether_session_cache_hits_total", nil, 2},
		{"tether_session_cache_misses_total", nil, 5}, // a malformed token asks no store
	})
}

func TestFeedEvent(t *testing.T) {
	m := metrics.New()
	scrape := func() promtest.Scrape { return promtest.Get(t, m.Handler()) }
	before := scrape()
	if up := before.Value(t, "tether_session_feed_up"); up != 0 {
		t.Errorf("before any event: feed up %v, want 0", up)
	}
	m.FeedEvent(session.Event{Kind: session.FeedUp})
	if up := scrape().Value(t, "tether_session_feed_up"); up != 1 {
		t.Errorf("after FeedUp: feed up %v, want 1", up)
	}
	if current := scrape().Value(t, "tether_session_feed_current"); current != 0 {
		t.Errorf("no Manager watched: feed current %v, want 0", current)
	}
	serving := true
	m.WatchFeed(func() bool { return serving })
	if current := scrape().Value(t, "tether_session_feed_current"); current != 1 {
		t.Errorf("the Manager serves: feed current %v, want 1", current)
	}
	serving = false // silent past the staleness bound, say
	if current := scrape().Value(t, "tether_session_feed_current"); current != 0 {
		t.Errorf("the Manager does not serve: feed current %v, want 0", current)
	}
	m.FeedEvent(session.Event{Kind: session.FeedDown})
	if up := scrape().Value(t, "tether_session_feed_up"); up != 0 {
		t.Errorf("after FeedDown: feed up %v, want 0", up)
	}
	m.FeedEvent(session.Event{Kind: session.FeedUp})
	m.FeedEvent(session.Event{Kind: session.FeedCurrent, At: time.Now().Add(-20 * time.Millisecond)})
	m.FeedEvent(session.Event{Kind: session.FeedCurrent}) // no time: not measured
	m.FeedEvent(session.Event{Kind: session.Changed})
	after := scrape()
	checkDeltas(t, before, after, []delta{
		{"tether_session_feed_up", nil, 1},
		{"tether_session_feed_reconnects_total", nil, 1}, // the first FeedUp is no reconnection
		{"tether_revocation_propagation_seconds", nil, 1},
	})
	if sum := after["tether_revocation_propagation_seconds"].GetMetric()[0].GetHistogram().GetSampleSum(); sum < 0.02 || sum > 10 {
		t.Errorf("propagation delay %v s, want about 0.02", sum)
	}
}

func TestAudit(t *testing.T) {
	m := metrics.New()
	before := promtest.Get(t, m.Handler())
	for _, e := range [][3]string{
		{"sign-in", "success", ""},
		{"sign-in", "failure", "wrong password"},
		{"sign-in", "failure", "throttled"},
		{"password-change", "failure", "throttled"},
		{"token-issue", "success", ""},
		{"token-issue", "failure", "throttled"},
		{"pat-create", "success", ""},
		{"token-revoke", "success", ""},
		{"token-revoke", "nothing revoked", "another client's token"},
		{"pat-revoke", "failure", "store error"},
		{"sign-out", "", ""}, // not counted
	} {
		m.Audit(e[0], e[1], e[2])
	}
	checkDeltas(t, before, promtest.Get(t, m.Handler()), []delta{
		{"tether_signins_total", []string{"outcome", "success"}, 1},
		{"tether_signins_total", []string{"outcome", "failure", "reason", "wrong_password"}, 1},
		{"tether_signins_total", []string{"outcome", "failure", "reason", "throttled"}, 1},
		{"tether_throttled_total", []string{"action", "sign-in"}, 1},
		{"tether_throttled_total", []string{"action", "password-change"}, 1},
		{"tether_throttled_total", []string{"action", "token-issue"}, 1},
		{"tether_tokens_issued_total", []string{"kind", "access", "outcome", "success"}, 1},
		{"tether_tokens_issued_total", []string{"kind", "access", "outcome", "failure"}, 1},
		{"tether_tokens_issued_total", []string{"kind", "pat", "outcome", "success"}, 1},
		{"tether_tokens_revoked_total", []string{"kind", "access", "outcome", "success"}, 1},
		{"tether_tokens_revoked_total", []string{"kind", "access", "outcome", "nothing_revoked"}, 1},
		{"tether_tokens_revoked_total", []string{"kind", "pat", "outcome", "failure"}, 1},
	})
}

func TestCSRFAndTokenVerified(t *testing.T) {
	m := metrics.New()
	before := promtest.Get(t, m.Handler())
	m.CSRFRefused("cross_origin")
	m.TokenVerified("active")
	m.TokenVerified("inactive")
	m.TokenVerified("inactive")
	checkDeltas(t, before, promtest.Get(t, m.Handler()), []delta{
		{"tether_csrf_refusals_total", []string{"reason", "cross_origin"}, 1},
		{"tether_csrf_refusals_total", []string{"reason", "invalid_token"}, 0},
		{"tether_tokens_verified_total", []string{"outcome", "active"}, 1},
		{"tether_tokens_verified_total", []string{"outcome", "inactive"}, 2},
	})
}

// fixedRing is a key ring's listing.
type fixedRing []keys.Info

func (f fixedRing) Loaded() []keys.Info { return f }

func TestKeyAges(t *testing.T) {
	m := metrics.New()
	if _, ok := promtest.Get(t, m.Handler())["tether_signing_key_age_seconds"]; ok {
		t.Error("key ages before any ring is watched")
	}
	now := time.Now()
	m.WatchKeys(fixedRing{
		{Kid: "old", State: keys.Removed, Created: now.Add(-100 * time.Hour)},
		{Kid: "a", State: keys.Retired, Created: now.Add(-2 * time.Hour)},
		{Kid: "b", State: keys.Signing, Created: now.Add(-time.Hour)},
	})
	s := promtest.Get(t, m.Handler())
	if n := len(s["tether_signing_key_age_seconds"].GetMetric()); n != 2 {
		t.Errorf("%d keys, want 2: a removed key is not published", n)
	}
	for kid, want := range map[string]float64{"a": 7200, "b": 3600} {
		if got := s.Value(t, "tether_signing_key_age_seconds", "kid", kid); got < want || got > want+60 {
			t.Errorf("key %s: age %v, want about %v", kid, got, want)
		}
	}
	if got := s.Value(t, "tether_signing_key_age_seconds", "state", "signing"); got < 3600 {
		t.Errorf("the signing key: age %v, want about 3600", got)
	}
}

func TestInstrument(t *testing.T) {
	m := metrics.New()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("GET /gone", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusGone)
		w.WriteHeader(http.StatusTeapot) // superfluous: the first status counts
	})
	mux.HandleFunc("GET /silent", func(http.ResponseWriter, *http.Request) {})
	lookup := func(r *http.Request) string { _, p := mux.Handler(r); return p }
	// With Routes, the mux's own match names the route and lookup is
	// never asked (refused is the fallback's label, never seen).
	routes := metrics.New()
	for _, c := range []struct {
		m *metrics.Metrics
		h http.Handler
	}{
		{m, m.Instrument(mux, lookup)},
		{routes, routes.Instrument(routes.Routes(mux), func(*http.Request) string { return "refused" })},
	} {
		for _, path := range []string{"/ok", "/ok", "/gone", "/silent", "/nowhere"} {
			c.h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
		}
		checkRoutes(t, c.m)
	}
	// A request refused before the mux is named by the fallback.
	refuse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refused" {
			http.Error(w, "no", http.StatusMisdirectedRequest)
			return
		}
		routes.Routes(mux).ServeHTTP(w, r)
	})
	routes.Instrument(refuse, func(*http.Request) string { return "GET /ok" }).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/refused", nil))
	if got := promtest.Get(t, routes.Handler()).Value(t, "tether_http_requests_total", "route", "GET /ok", "code", "421"); got != 1 {
		t.Errorf("a request refused before the mux: %v counted under the fallback's route, want 1", got)
	}
}

// checkRoutes checks the requests TestInstrument sends, counted by m.
func checkRoutes(t *testing.T, m *metrics.Metrics) {
	t.Helper()
	s := promtest.Get(t, m.Handler())
	for _, d := range []delta{ // from no request at all
		{"tether_http_requests_total", []string{"route", "GET /ok", "code", "200"}, 2},
		{"tether_http_requests_total", []string{"route", "GET /gone", "code", "410"}, 1},
		{"tether_http_requests_total", []string{"route", "GET /silent", "code", "200"}, 1},
		{"tether_http_requests_total", []string{"route", "unmatched", "code", "404"}, 1},
		{"tether_http_request_duration_seconds", []string{"route", "GET /ok"}, 2},
	} {
		if got := s.Value(t, d.name, d.labels...); got != d.want {
			t.Errorf("%s%v: %v, want %v", d.name, d.labels, got, d.want)
		}
	}
}

// Every family of README.md's list is in a scrape once each part fed it.
func TestFamilies(t *testing.T) {
	m := metrics.New()
	m.WatchKeys(fixedRing{{Kid: "a", State: keys.Signing, Created: time.Now()}})
	m.Instrument(http.NotFoundHandler(), func(*http.Request) string { return "" }).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	s := promtest.Get(t, m.Handler())
	for _, name := range families {
		if _, ok := s[name]; !ok {
			t.Errorf("no family %s", name)
		}
	}
	if _, ok := s["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}

// A nil *Metrics does nothing, and Instrument leaves the handler as it is.
func TestNil(t *testing.T) {
	var m *metrics.Metrics
	m.SessionLoad(session.LoadResult{Outcome: session.LoadOK})
	m.FeedEvent(session.Event{Kind: session.FeedUp})
	m.Audit("sign-in", "success", "")
	m.CSRFRefused("cross_origin")
	m.TokenVerified("active")
	m.WatchKeys(fixedRing{})
	m.WatchFeed(func() bool { return true })
	h := http.NotFoundHandler()
	if got := m.Instrument(h, nil); fmt.Sprint(got) != fmt.Sprint(h) {
		t.Errorf("Instrument of nil metrics: got %v, want the handler itself", got)
	}
}

// BenchmarkInstrument is what Instrument adds to a request (the route
// looked up again, the status, a count and a latency observation): on,
// beside off, the mux alone.
func BenchmarkInstrument(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/me", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, bb := range []struct {
		name string
		h    http.Handler
	}{
		{"off", mux},
		{"on", metrics.New().Instrument(mux, func(r *http.Request) string { _, p := mux.Handler(r); return p })},
	} {
		b.Run(bb.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/api/v1/me", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				bb.h.ServeHTTP(w, req)
			}
		})
	}
}
