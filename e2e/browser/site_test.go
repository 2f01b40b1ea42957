package browser

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"html"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// A site is one registrable domain with two apps on it, as a company runs
// them: tether at https://auth.tether.test and a sibling app at
// https://app.tether.test. Both are served by one TLS front end on a free
// 127.0.0.1 port, which forwards auth's requests to a tether server
// (keeping the Host, as a reverse proxy does) and answers app's itself.
//
// Only the shared Chromium reaches the site: it maps every name under
// siteDomain to 127.0.0.1 and accepts the site's certificate (see chromium).
// A plain HTTP client of the test can't resolve the names; it talks to the
// tether server directly.
type site struct {
	authURL, appURL string // https://NAME:PORT, no trailing slash
}

// siteDomain is the registrable domain of the site. It is under .test,
// reserved for testing (RFC 6761), so it is nobody's, and the shared
// Chromium resolves every name under it to 127.0.0.1. .test is on no public
// suffix list, but Chromium takes tether.test for a registrable domain all
// the same, the unit Clear-Site-Data's "cookies" clears: against a sign-out
// that sent "cookies", TestSES08_SignOutKeepsSiblingCookies saw the sibling
// app's cookies, host-only ones too, deleted.
const siteDomain = "tether.test"

const (
	authHost = "auth." + siteDomain // tether
	appHost  = "app." + siteDomain  // the sibling app
)

// The sibling app's cookies: a host-only session cookie, the kind most apps
// set, and one shared by the whole domain (Domain=tether.test), the kind a
// company sets for its single sign-on or preferences.
const (
	appCookie    = "__Host-app"
	domainCookie = "site-prefs"
)

// newSite starts the site's front end in front of srv. The sibling app
// answers GET /signin by setting its cookies (values from values) and
// sending the browser to /, and GET / with a page that lists the cookies
// it got, one name=value a line.
func newSite(t *testing.T, srv *tether, values map[string]string) *site {
	t.Helper()
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	auth := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
	}
	app := http.NewServeMux()
	app.HandleFunc("GET /signin", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: appCookie, Value: values[appCookie],
			Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.SetCookie(w, &http.Cookie{Name: domainCookie, Value: values[domainCookie],
			Domain: siteDomain, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	app.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		var lines []string
		for _, c := range r.Cookies() {
			lines = append(lines, html.EscapeString(c.Name+"="+c.Value))
		}
		slices.Sort(lines)
		fmt.Fprintf(w, "<!doctype html><title>app</title><pre id=cookies>%s</pre>\n", strings.Join(lines, "\n"))
	})

	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		switch host {
		case authHost:
			auth.ServeHTTP(w, r)
		case appHost:
			app.ServeHTTP(w, r)
		default:
			http.Error(w, "no such app on this site", http.StatusMisdirectedRequest)
		}
	}))
	front.TLS = &tls.Config{Certificates: []tls.Certificate{e2e.siteCert.cert}}
	front.StartTLS()
	t.Cleanup(front.Close)
	_, port, _ := net.SplitHostPort(front.Listener.Addr().String())
	return &site{
		authURL: "https://" + authHost + ":" + port,
		appURL:  "https://" + appHost + ":" + port,
	}
}

// tether returns srv as the browser reaches it on the site: at s.authURL.
// Use it with the browser's methods only (open, signIn, cookies): the
// plain-client methods of the copy can't resolve its name.
func (s *site) tether(srv *tether) *tether {
	c := *srv
	c.URL = s.authURL
	return &c
}

// A siteCert is the TLS certificate of the site's names, and what Chromium
// is told to accept it by.
type siteCert struct {
	cert tls.Certificate
	spki string // base64 of the SHA-256 of its public key
}

// newSiteCert makes a self-signed certificate for the site's names. Chromium
// accepts it because it is given its key's hash
// (--ignore-certificate-errors-spki-list), which trusts that key and no
// other: every other certificate error still counts.
func newSiteCert() (siteCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return siteCert{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return siteCert{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "tether e2e " + siteDomain},
		DNSNames:     []string{authHost, appHost},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return siteCert{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return siteCert{}, err
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return siteCert{
		cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		spki: base64.StdEncoding.EncodeToString(sum[:]),
	}, nil
}
