package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetherauth/tether/csrf"
	"github.com/tetherauth/tether/internal/audit"
	"github.com/tetherauth/tether/internal/metrics"
	"github.com/tetherauth/tether/internal/revocation"
	"github.com/tetherauth/tether/internal/server"
	"github.com/tetherauth/tether/localdev"
	"github.com/tetherauth/tether/password"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/store/sqlite"
)

// The HTTP server's limits (MISC-03). Request bodies are capped by the
// handler itself.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 16 << 10
	// shutdownTimeout is how long requests in flight get to finish once
	// the server is asked to stop.
	shutdownTimeout = 10 * time.Second
	// durabilityTimeout bounds asking the session store, at start, how
	// durable its revocations are.
	durabilityTimeout = 5 * time.Second
	// setupTTL is how long the first-admin setup link is valid.
	setupTTL = time.Hour
)

// serve runs the server until ctx is done, then shuts it down gracefully.
func serve(ctx context.Context, e *env, fs *flag.FlagSet, args []string) (err error) {
	c, err := e.parseNoArgs(fs, args, allSettings...)
	if err != nil {
		return err
	}
	root := newLogger(e.stderr, c.LogLevel, c.LogFormat)
	slog.SetDefault(root)
	// The audit log opens first: a server that could not record what
	// happens does not start (PW-07).
	auditLog, err := openAuditLog(c, root.With("component", "server"), e.stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, auditLog.Close()) }()
	// The certificate is checked before anything is opened or created.
	var tlsConfig *tls.Config
	if c.TLSCert != "" {
		certs, err := loadCertFiles(c.TLSCert, c.TLSKey, c.Hosts, time.Now, root.With("component", "serve"))
		if err != nil {
			return err
		}
		tlsConfig = certs.config()
	}

	st, err := openStores(ctx, c, root)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	if st.data != "" {
		if err := sqlite.CheckPermissions(st.data); err != nil { // MISC-06
			root.Warn("data file permissions", "component", "serve", "err", err)
		}
	}
	if err := checkDurability(ctx, st, c, root); err != nil {
		return err
	}
	// The revocation view follows the manager's feed (OnEvent); it is
	// set before the manager runs, and so before any event.
	met, metricsLn, err := listenMetrics(c, root)
	if err != nil {
		return err
	}
	if metricsLn != nil {
		defer metricsLn.Close() // in case serving never starts
	}
	var view *revocation.View
	var pats *server.PATCheck
	sessionConfig := session.Config{
		IdleTimeout:      c.IdleTimeout,
		MaxPerUser:       c.MaxSessions,
		AbsoluteTimeout:  c.AbsoluteTimeout,
		MaxStaleness:     c.MaxStaleness,
		StoreTimeout:     c.StoreTimeout,
		CookieName:       server.SessionCookie,
		CookieDomain:     c.CookieDomain,
		TokenMaxLifetime: c.TokenMaxTTL,
		OnEvent:          func(e session.Event) { view.Handle(e); pats.Handle(e); met.FeedEvent(e) },
		Logger:           root,
	}
	if met != nil { // nil costs the session check nothing
		sessionConfig.OnLoad = met.SessionLoad
	}
	sessions, err := session.NewManager(st.sessions, sessionConfig)
	if err != nil {
		return err
	}
	met.WatchFeed(sessions.Current)
	revs := revocation.Durable{Manager: sessions, Journal: st.accounts}
	if view, err = revocation.NewView(revs, revocation.ViewConfig{Timeout: c.StoreTimeout, Logger: root}); err != nil {
		return err
	}
	pats, err = server.NewPATCheck(server.PATCheckConfig{PATs: st.accounts, Revocations: server.StoreRevocations{Manager: sessions},
		StoreTimeout: c.StoreTimeout, Logger: root})
	if err != nil {
		return err
	}
	// Once the stores passed serve's checks: a node that refuses to
	// start leaves the record alone.
	stopRecord, err := recordServe(ctx, st.accounts, c, root) // ADM-01
	if err != nil {
		return err
	}
	defer stopRecord()
	startCtx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	setupToken, err := firstAdminSetup(startCtx, st)
	if err != nil {
		return err
	}
	ring, err := startRing(startCtx, st, c, e.getenv, root, auditLog)
	if err != nil {
		return err
	}
	met.WatchKeys(ring)

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	defer ln.Close() // in case serving never starts; closing twice is harmless
	url := listenURL(ln.Addr(), tlsConfig != nil)
	tokens := &server.Tokens{
		Issuer:      c.issuer(url),
		Keys:        ring,
		Clients:     st.accounts,
		Revocations: tokenState{view, revs},
		Feed:        view,
		PATs:        pats,
		MaxTTL:      c.TokenMaxTTL,
	}
	h, err := newHandler(startCtx, c, st, sessions, tokens, met, root, auditLog)
	if err != nil {
		return err
	}
	if c.NodeName != "" {
		h = withNodeName(h, c.NodeName)
	}
	hosts := c.publicHosts()
	root.Info("listening on "+url, "component", "serve", "data", c.Data, "hosts", strings.Join(hosts, ","))
	if tlsConfig == nil && len(c.TrustedProxies) == 0 && slices.ContainsFunc(hosts, func(h string) bool { return !localdev.Host(h) }) {
		root.Warn("serving plain HTTP for a host other than localhost, with no --trusted-proxies for a TLS proxy in front: "+
			"browsers will keep no sign-in cookie there; give --tls-cert and --tls-key (see HTTPS in the README)", "component", "serve")
	}
	if setupToken != "" {
		// Only here, never in the logs; "1h" is setupTTL.
		fmt.Fprintf(e.stdout, "setup: open %s within 1h to create the first admin\n", setupLink(url, hosts, setupToken))
	}
	workers := []worker{
		{"session manager", sessions.Run, nil},
		{"revocation view", view.Run, view.EndStreams},
		{"personal access tokens", pats.Run, nil},
		{"key ring", func(ctx context.Context) error { return maintainRing(ctx, ring, root, auditLog, c.NodeName) }, nil},
	}
	if metricsLn != nil {
		workers = append(workers, metricsWorker(metricsLn, met, root))
	}
	return serveHTTP(ctx, ln, tlsConfig, h, root, workers...)
}

// tokenState is the revocation state of access tokens the server's OAuth
// endpoints use (server.TokenRevocations): the node's view for checks,
// Durable for revocations (the session store's denylist and the account
// store's journal) and generations.
type tokenState struct {
	*revocation.View
	revocation.Durable
}

// Check is the view's: the ambiguity of the two embedded types' methods
// is settled here.
func (t tokenState) Check(ctx context.Context, subject string, gen uint64, jti string) error {
	return t.View.Check(ctx, subject, gen, jti)
}

// firstAdminSetup returns the token of a new one-time link that creates
// the first admin when there is no user at all (PW-08), or "". Every node
// on the same account store opens it: each node starting on an empty
// store prints a link of its own, and whichever is used first spends
// them all.
func firstAdminSetup(ctx context.Context, st *stores) (string, error) {
	n, err := st.accounts.Count(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	return server.NewSetup(ctx, st.accounts, time.Now(), setupTTL)
}

// newHandler builds the server's handler and what it depends on.
func newHandler(ctx context.Context, c config, st *stores, sessions *session.Manager, tokens *server.Tokens, met *metrics.Metrics, log *slog.Logger, auditLog *audit.Logger) (http.Handler, error) {
	hasher, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		return nil, err
	}
	secret, err := st.accounts.Secret(ctx, "csrf", 32)
	if err != nil {
		return nil, err
	}
	protector, err := csrf.New(secret, csrf.WithPreSessionCookie(server.PreSessionCookie))
	if err != nil {
		return nil, err
	}
	deviceSecret, err := st.accounts.Secret(ctx, "device", 32)
	if err != nil {
		return nil, err
	}
	return server.New(server.Config{
		Logger:   log,
		Audit:    auditLog,
		Sessions: sessions,
		Accounts: st.accounts,
		Throttle: st.throttle,
		Hasher:   hasher,
		Policy:   password.Policy{MinLength: c.MinPassword},

		KeepTokensOnPasswordChange: c.KeepTokens,
		CSRF:                       protector,
		DeviceSecret:               deviceSecret,
		TrustedProxies:             c.TrustedProxies,
		Hosts:                      c.publicHosts(),
		AllowedHosts:               c.AllowedHosts,
		Assertions:                 c.Assertions,
		Ready:                      st.ready,
		StoreTimeout:               c.StoreTimeout,
		Tokens:                     tokens,
		PATs:                       st.accounts,
		PATMaxTTL:                  c.PATMaxTTL,
		Metrics:                    met,
	})
}

// A worker is something serve runs beside the HTTP server until it stops:
// the session manager's invalidation feed, the revocation view, the key
// ring's schedule.
type worker struct {
	name string
	run  func(ctx context.Context) error
	// shutdown, if set, is called as the HTTP server starts shutting
	// down, to end the long requests the worker serves (the revocation
	// streams), which the graceful shutdown would otherwise wait for.
	shutdown func()
}

// serveHTTP serves h on ln, over TLS with tlsConfig unless it is nil, and
// runs workers, until ctx is done or serving fails. Then it gives the
// requests in flight shutdownTimeout to finish, stops the workers and
// waits for them. root is the root logger.
func serveHTTP(ctx context.Context, ln net.Listener, tlsConfig *tls.Config, h http.Handler, root *slog.Logger, workers ...worker) error {
	log := root.With("component", "serve")
	srv := newHTTPServer(h, tlsConfig, root)
	// The workers outlive ctx until the requests in flight are done.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	var wg sync.WaitGroup
	for _, w := range workers {
		if w.shutdown != nil {
			srv.RegisterOnShutdown(w.shutdown)
		}
		wg.Go(func() {
			if err := w.run(runCtx); err != nil && runCtx.Err() == nil {
				log.Error(w.name+" stopped", "err", err)
			}
		})
	}
	served := make(chan error, 1)
	wg.Go(func() {
		if tlsConfig != nil {
			served <- srv.ServeTLS(ln, "", "") // the certificate comes from tlsConfig; HTTP/2 is on
			return
		}
		served <- srv.Serve(ln)
	})

	var err error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "addr", ln.Addr().String()) // the public listener or the metrics one
	case err = <-served:
		err = fmt.Errorf("serve: %w", err)
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(shutCtx); serr != nil {
		err = errors.Join(err, fmt.Errorf("shutdown: %w", serr))
	}
	stopRun()
	wg.Wait()
	return err
}

// newHTTPServer returns a server of h with the limits of MISC-03, over
// TLS with tlsConfig unless it is nil, logging to root.
func newHTTPServer(h http.Handler, tlsConfig *tls.Config, root *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		TLSConfig:         tlsConfig,
		ErrorLog:          slog.NewLogLogger(root.With("component", "http").Handler(), slog.LevelWarn),
	}
}

// newLogger returns the root logger, writing to w.
func newLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// listenURL returns the http (or with TLS, https) URL of a listener's
// address, with the loopback address in place of an unspecified one
// (0.0.0.0, ::) so that it can be opened on the same machine.
func listenURL(a net.Addr, tls bool) string {
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return scheme + a.String()
	}
	if ip := ap.Addr(); ip.Is4() && ip.IsUnspecified() {
		ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), ap.Port())
	} else if ip.IsUnspecified() {
		ap = netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port())
	}
	return scheme + ap.String()
}

// setupLink returns where to open the first-admin setup link: on the
// listening address url when the server answers for its host, else on the
// first of hosts, whose scheme and port (behind a proxy, say) tether can't
// know.
func setupLink(url string, hosts []string, token string) string {
	path := "/setup?token=" + token
	_, hostport, _ := strings.Cut(url, "://")
	listening, _, _ := net.SplitHostPort(hostport)
	for _, h := range hosts {
		if strings.EqualFold(strings.Trim(h, "[]"), listening) {
			return url + path
		}
	}
	return path + " on " + hosts[0]
}

// withNodeName names the node in every response's X-Tether-Node header, so
// that a test (or a person) can see which node behind a load balancer
// answered.
func withNodeName(h http.Handler, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Tether-Node", name)
		h.ServeHTTP(w, r)
	})
}
