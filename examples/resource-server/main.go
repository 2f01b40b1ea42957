// Command resource-server is a small API that accepts tether's access
// tokens: it verifies them offline with token.Verifier, the issuer's keys
// from keys.Remote (its JWKS, cached), and learns of revocations from
// token.RevocationStream (tether's GET /oauth2/revocations), so a revoked
// token is refused within milliseconds with no call to tether per request.
//
// Its routes:
//
//	GET /whoami   the caller's subject, client_id and scopes, as JSON; needs
//	              a token with the scope -scope (403 insufficient_scope
//	              without it, 401 invalid_token for a bad token, 503 while
//	              the revocation stream has been lost past -max-staleness)
//	GET /healthz  200 while the process runs
//	GET /readyz   200 while the revocation stream is current, else 503
//
// Try it against a local tether (README, "Machines"):
//
//	tether client add reports --scopes whoami:read --audience https://api.example.com
//	tether client add api --scopes revocations --audience https://api.example.com  # the server's own credentials
//	RESOURCE_SERVER_CLIENT_SECRET=... go run ./examples/resource-server \
//		-tether http://127.0.0.1:8080 -audience https://api.example.com -client-id api
//	TOKEN=$(curl -s -u reports:SECRET -d grant_type=client_credentials -d scope=whoami:read \
//		http://127.0.0.1:8080/oauth2/token | jq -r .access_token)
//	curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8090/whoami
//	curl -u reports:SECRET -d token=$TOKEN http://127.0.0.1:8080/oauth2/revoke  # then /whoami answers 401
//
// Its client secret is read from the environment (SecretEnv) or from a
// file (-client-secret-file), never from a flag, whose value anyone on the
// host can read in the process list. It logs JSON to its standard error,
// "listening on URL" once it listens.
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
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tetherauth/tether/keys"
	"github.com/tetherauth/tether/token"
)

// SecretEnv holds the resource server's own client secret, with which it
// follows the revocation stream.
const SecretEnv = "RESOURCE_SERVER_CLIENT_SECRET"

// The tether endpoints the server uses, under its -tether URL.
const (
	jwksPath   = "/.well-known/jwks.json"
	streamPath = "/oauth2/revocations"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "resource-server:", err)
		os.Exit(1)
	}
}

// config is what the flags and the environment say.
type config struct {
	addr         string        // where to listen
	tether       string        // tether's URL: its JWKS and revocation stream are under it
	issuer       string        // the iss to accept; default tether
	audience     string        // this server's identifier, in the tokens' aud
	scope        string        // the scope GET /whoami requires
	clientID     string        // the server's own client, for the stream
	secret       string        // its secret
	maxStaleness time.Duration // how long the stream may be silent before every token is refused
}

// parseConfig reads the flags in args and the secret from getenv or the
// file the flags name; it returns every problem at once.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	var secretFile string
	fs := flag.NewFlagSet("resource-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8090", "address to listen on, host:port (port 0 picks a free one)")
	fs.StringVar(&c.tether, "tether", "", "tether's URL, such as https://auth.example.com (required)")
	fs.StringVar(&c.issuer, "issuer", "", "the issuer (iss) tether's tokens name; default: -tether")
	fs.StringVar(&c.audience, "audience", "", "this server's identifier: tokens must name it in aud (required)")
	fs.StringVar(&c.scope, "scope", "whoami:read", "the scope GET /whoami requires")
	fs.StringVar(&c.clientID, "client-id", "", "this server's own tether client, to follow the revocation stream (required)")
	fs.StringVar(&secretFile, "client-secret-file", "", "file holding the client's secret; default: $"+SecretEnv)
	fs.DurationVar(&c.maxStaleness, "max-staleness", 5*time.Second, "refuse every token (503) once the revocation stream has been silent this long")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if u, err := url.Parse(c.tether); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		errs = append(errs, fmt.Errorf("-tether %q: want tether's http(s) URL", c.tether))
	}
	c.tether = strings.TrimSuffix(c.tether, "/")
	if c.issuer == "" {
		c.issuer = c.tether
	}
	if c.audience == "" {
		errs = append(errs, errors.New("-audience is required"))
	}
	if c.clientID == "" {
		errs = append(errs, errors.New("-client-id is required"))
	}
	c.secret = getenv(SecretEnv)
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("-client-secret-file: %w", err))
		}
		c.secret = strings.TrimSpace(string(b))
	}
	if c.secret == "" {
		errs = append(errs, fmt.Errorf("the client secret is required: set $%s or -client-secret-file", SecretEnv))
	}
	if c.maxStaleness <= 0 {
		errs = append(errs, fmt.Errorf("-max-staleness %v: must be positive", c.maxStaleness))
	}
	return c, errors.Join(errs...)
}

// run serves until ctx is done: it follows tether's revocation stream,
// verifies tokens with tether's keys, and answers the routes.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	c, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	revocations, err := token.NewRevocationStream(token.RevocationStreamConfig{
		URL: c.tether + streamPath,
		Authorize: func(r *http.Request) error {
			r.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.secret)) // RFC 6749 §2.3.1
			return nil
		},
		MaxStaleness: c.maxStaleness,
		Logger:       log,
	})
	if err != nil {
		return err
	}
	jwks, err := keys.NewRemote(keys.RemoteConfig{URL: c.tether + jwksPath, Logger: log})
	if err != nil {
		return err
	}
	v, err := token.NewVerifier(token.VerifierConfig{
		Issuer: c.issuer, Audience: c.audience, Keys: jwks, Revocations: revocations,
	})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	followed := make(chan error, 1)
	go func() { followed <- revocations.Run(ctx) }()

	l, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newHandler(v, revocations, c.scope),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	log.Info("listening on http://"+l.Addr().String(), "tether", c.tether, "audience", c.audience)

	select {
	case err = <-served:
	case <-ctx.Done():
		shutdown, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer done()
		err = srv.Shutdown(shutdown)
	}
	cancel()
	return errors.Join(err, <-followed)
}

// A readiness is what GET /readyz reports: token.RevocationStream.
type readiness interface{ Current() bool }

// newHandler returns the server's routes: GET /whoami with v and scope,
// the health checks with ready.
func newHandler(v *token.Verifier, ready readiness, scope string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /whoami", v.Middleware(scope, http.HandlerFunc(whoami)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Current() {
			http.Error(w, "revocation stream not current", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	return mux
}

// Identity is GET /whoami's answer.
type Identity struct {
	Subject  string   `json:"subject"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
}

// whoami answers the verified caller's identity.
func whoami(w http.ResponseWriter, r *http.Request) {
	c := token.FromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(Identity{Subject: c.Subject, ClientID: c.ClientID, Scopes: strings.Fields(c.Scope)})
}
