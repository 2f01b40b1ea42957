package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"

	"github.com/tetherauth/tether/internal/metrics"
)

// listenMetrics opens the listener of --metrics-addr, a listener of its
// own, never the public one: the metrics tell anyone who reads them how
// many sign-ins fail and which keys sign, so the operator decides who can
// reach them (a private interface, a firewall). It returns nil metrics
// and no listener when the setting is empty, the default.
func listenMetrics(c config, root *slog.Logger) (*metrics.Metrics, net.Listener, error) {
	if c.MetricsAddr == "" {
		return nil, nil, nil
	}
	ln, err := net.Listen("tcp", c.MetricsAddr)
	if err != nil {
		return nil, nil, err
	}
	root.Info("metrics on "+listenURL(ln.Addr(), false)+"/metrics", "component", "serve")
	return metrics.New(), ln, nil
}

// metricsWorker serves m's GET /metrics on ln, as serveHTTP serves the
// public listener: with its limits (MISC-03) until ctx is done, then
// shutting down within shutdownTimeout.
func metricsWorker(ln net.Listener, m *metrics.Metrics, root *slog.Logger) worker {
	return worker{name: "metrics", run: func(ctx context.Context) error {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Handler())
		return serveHTTP(ctx, ln, nil, mux, root)
	}}
}
