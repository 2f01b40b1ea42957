package browser

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tetherauth/tether/e2e/internal/proxy"
	"github.com/tetherauth/tether/e2e/internal/web"
	"github.com/tetherauth/tether/internal/testkit/proc"
)

// TestForwardAuthRedirectAcrossHosts walks the forward-auth redirect dance
// in Chromium across two host names of one site (issue 12): the app at
// https://app.tether.test, served by nginx with
// examples/nginx/forward-auth.conf.tmpl in front of examples/upstream, and
// tether at https://auth.tether.test (behind a TLS front end), started
// with --cookie-domain tether.test. Opening the app's URL leads to the
// sign-in page on the auth host; signing in there leads back to the app's
// URL, where the upstream shows who signed in: the session cookie of the
// auth host reached the app's host, and nginx's check.
func TestForwardAuthRedirectAcrossHosts(t *testing.T) {
	t.Parallel()
	b := newBrowser(t, "alice") // skips without Chromium
	nginxBin := proxy.NeedNginx(t)

	// The auth host's front end listens first: tether's issuer, where the
	// sign-in page is, names its port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	authURL := "https://" + authHost + ":" + port
	srv := startTether(t, []user{{"alice", alicePW}}, "--hosts", authHost, "--issuer", authURL,
		"--cookie-domain", siteDomain, "--allowed-hosts", appHost, "--trusted-proxies", "127.0.0.1")
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewUnstartedServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host
		r.SetXForwarded() // X-Forwarded-Proto: https, believed from 127.0.0.1
	}})
	front.Listener.Close()
	front.Listener = l
	front.TLS = &tls.Config{Certificates: []tls.Certificate{e2e.siteCert.cert}}
	front.StartTLS()
	t.Cleanup(front.Close)

	run := proc.NewRun(t, "tether-browser-forwardauth-")
	cert, key := writeSiteCert(t, run.Dir)
	// nginx serves HTTPS: the readiness probe's plain request to its TLS
	// port is answered 400 once it listens.
	app := proxy.Nginx(t, run, web.NewClient(t), nginxBin, "../../examples/nginx/forward-auth.conf.tmpl", map[string]any{
		"Tether": strings.TrimPrefix(srv.URL, "http://"), "TetherHost": authHost,
		"Upstream": proxy.Upstream(t, run), "Audience": url.QueryEscape("https://" + appHost),
		"TLSCert": cert, "TLSKey": key,
	}, "/", http.StatusBadRequest)

	appURL := "https://" + appHost + ":" + portOf(t, app.Listen) + "/reports?q=1"
	b.open(appURL)
	if loc, want := b.location(), authURL+"/login?return="+url.QueryEscape(appURL); loc != want {
		t.Fatalf("opening the app: at %s, want the sign-in page %s; the page says:\n%s", loc, want, b.text())
	}
	b.do(
		chromedp.SendKeys(chromedp.ID("username"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), alicePW),
	)
	// The sign-in page's CSP allows the return address's origin in
	// form-action, which Chromium applies to the redirect after the form
	// too: with 'self' alone it stops the 303 to the app's host.
	b.navigateBy(chromedp.Click(chromedp.CSS(`form[action^="/login"] button[type=submit]`), chromedp.NodeVisible))
	if loc := b.location(); loc != appURL {
		t.Fatalf("after signing in: at %s, want back at %s; the page says:\n%s", loc, appURL, b.text())
	}
	var seen struct {
		Host   string              `json:"host"`
		URI    string              `json:"uri"`
		Tether map[string][]string `json:"tether"`
	}
	if err := json.Unmarshal([]byte(b.text()), &seen); err != nil {
		t.Fatalf("the app's page is not the upstream's answer: %v\n%s", err, b.text())
	}
	if u := seen.Tether["X-Tether-User"]; len(u) != 1 || u[0] != "alice" || seen.URI != "/reports?q=1" {
		t.Errorf("the upstream saw %+v, want alice at /reports?q=1", seen)
	}
}

// portOf is the port of addr (host:port).
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// writeSiteCert writes the site's certificate and key as PEM files into
// dir, for nginx, and returns their paths.
func writeSiteCert(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(e2e.siteCert.cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "site.crt"), filepath.Join(dir, "site.key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e2e.siteCert.cert.Certificate[0]}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}
