package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/promtest"
)

// serve with --metrics-addr serves /metrics there, on a listener of its
// own, and not on the public one; the metrics move with the public
// listener's requests and follow the session feed and the key ring.
func TestServeMetricsOnTheirOwnListener(t *testing.T) {
	port, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	s := startServe(t, dbPath(t), "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", port))
	if !strings.Contains(s.stderr.String(), "metrics on "+metricsURL) {
		t.Errorf("the log does not say where the metrics are:\n%s", s.stderr)
	}
	if res := s.do(t, "GET", "/metrics", "", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the public listener: got %s, want 404", res.Status)
	}

	before := promtest.Fetch(t, metricsURL)
	if res := s.do(t, "POST", "/api/v1/login", `{"username":"nobody","password":"not the password"}`, nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a sign-in of nobody: got %s, want 403", res.Status)
	}
	after := promtest.Fetch(t, metricsURL)
	for _, d := range []struct {
		name   string
		labels []string
	}{
		{"tether_signins_total", []string{"outcome", "failure", "reason", "unknown_user"}},
		{"tether_http_requests_total", []string{"route", "POST /api/v1/login", "code", "403"}},
	} {
		if got := after.Value(t, d.name, d.labels...) - before.Value(t, d.name, d.labels...); got != 1 {
			t.Errorf("%s%v: moved by %v, want 1", d.name, d.labels, got)
		}
	}
	for _, name := range []string{"tether_session_feed_up", "tether_session_feed_current"} {
		if v := after.Value(t, name); v != 1 {
			t.Errorf("%s: %v, want 1", name, v)
		}
	}
	if n := len(after["tether_signing_key_age_seconds"].GetMetric()); n != 1 {
		t.Errorf("%d signing key ages, want the first key's", n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(metricsURL, "/metrics")+"/login", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /login on the metrics listener: got %s, want 404", res.Status)
	}
}
