// Command upstream is the application of the forward-auth examples
// (examples/nginx/forward-auth.conf.tmpl, examples/caddy/Caddyfile.tmpl):
// a backend that knows nothing of sessions or tokens and believes the
// X-Tether-* identity headers its reverse proxy sends, which the proxy
// took from tether's answer to GET /auth/verify (GW-02).
//
// Every request, whatever its method and path, is answered 200 with JSON
// that shows what arrived:
//
//	{"method":"GET","host":"app.example.com","uri":"/reports?q=1",
//	 "tether":{"X-Tether-User":["alice"],"X-Tether-Subject-Type":["user"],...}}
//
// "tether" holds every header whose name starts with X-Tether-, each with
// all its values, so that a copy a client slipped past the proxy shows up
// next to tether's; and every header a framework could take for one of
// them: a name spelt with underscores (X_Tether_User), which CGI, PHP,
// WSGI and Rack turn into the same HTTP_X_TETHER_USER, is shown under its
// own name. The end-to-end tests in e2e/forwardauth read it.
//
//	go run ./examples/upstream -addr 127.0.0.1:8081
//
// It logs JSON to its standard error, "listening on URL" once it listens.
// It listens on loopback by default: anything that reaches it directly,
// not through the proxy, can claim to be anyone.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// headerPrefix is the prefix of tether's identity headers.
const headerPrefix = "X-Tether-"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "address to listen on, host:port (port 0 picks a free one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(echo),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	log.Info("listening on http://" + l.Addr().String())
	select {
	case err = <-served:
	case <-ctx.Done():
		shutdown, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer done()
		err = srv.Shutdown(shutdown)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// An Echo is what the upstream answers: the request as it arrived.
type Echo struct {
	Method string              `json:"method"`
	Host   string              `json:"host"`
	URI    string              `json:"uri"`
	Tether map[string][]string `json:"tether"` // the X-Tether-* headers, canonical names
}

// echo answers any request with its Echo.
func echo(w http.ResponseWriter, r *http.Request) {
	e := Echo{Method: r.Method, Host: r.Host, URI: r.RequestURI, Tether: map[string][]string{}}
	for name, values := range r.Header {
		if strings.HasPrefix(strings.ReplaceAll(strings.ToUpper(name), "_", "-"), strings.ToUpper(headerPrefix)) {
			e.Tether[name] = values
		}
	}
	w.Header().Set("Content-Type", "application/json")
	// The answer depends on who asked: never cache it (SES-09).
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(e)
}
