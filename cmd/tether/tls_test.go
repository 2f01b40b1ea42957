package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCert is a self-signed certificate and its key, written to PEM files.
type testCert struct {
	certFile, keyFile string
	leaf              *x509.Certificate
}

// newTestCert writes a self-signed certificate for names (host names or
// IP addresses), valid from notBefore to notAfter, and its key, to files
// in dir named after tag.
func newTestCert(t *testing.T, dir, tag string, notBefore, notAfter time.Time, names ...string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "tether test " + tag},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	c := testCert{certFile: filepath.Join(dir, tag+".crt"), keyFile: filepath.Join(dir, tag+".key"), leaf: leaf}
	writePEM(t, c.certFile, "CERTIFICATE", der)
	writePEM(t, c.keyFile, "PRIVATE KEY", keyDER)
	return c
}

func writePEM(t *testing.T, name, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A certificate that can't serve is refused at start, saying why; one that
// can but may not serve everyone is warned about.
func TestLoadCertFiles(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	good := newTestCert(t, dir, "good", now.Add(-time.Hour), now.Add(90*24*time.Hour), "auth.example.com")
	other := newTestCert(t, dir, "other", now.Add(-time.Hour), now.Add(90*24*time.Hour), "auth.example.com")
	expired := newTestCert(t, dir, "expired", now.Add(-48*time.Hour), now.Add(-time.Hour), "auth.example.com")
	future := newTestCert(t, dir, "future", now.Add(time.Hour), now.Add(48*time.Hour), "auth.example.com")
	soon := newTestCert(t, dir, "soon", now.Add(-time.Hour), now.Add(24*time.Hour), "auth.example.com")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "unreadable.pem")
	if err := os.WriteFile(unreadable, nil, 0o000); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, cert, key string
		hosts           []string
		err             string // a piece of the error; "" for none
		warn            string // a piece of the log; "" for nothing logged
	}{
		{"good", good.certFile, good.keyFile, []string{"auth.example.com"}, "", ""},
		{"missing cert", filepath.Join(dir, "nope.crt"), good.keyFile, nil, "nope.crt does not exist", ""},
		{"missing key", good.certFile, filepath.Join(dir, "nope.key"), nil, "nope.key does not exist", ""},
		{"unreadable", unreadable, good.keyFile, nil, "no permission to read it", ""},
		{"not PEM", garbage, good.keyFile, nil, "failed to find any PEM data in certificate input", ""},
		{"switched", good.keyFile, good.certFile, nil, "may have been switched", ""},
		{"another certificate's key", good.certFile, other.keyFile, nil, "private key does not match public key", ""},
		{"expired", expired.certFile, expired.keyFile, nil, "the certificate expired on", ""},
		{"not yet valid", future.certFile, future.keyFile, nil, "is this machine's clock right?", ""},
		{"expires soon", soon.certFile, soon.keyFile, nil, "", "expires soon"},
		{"names another host", good.certFile, good.keyFile, []string{"auth.example.com", "login.example.com"}, "", `host=login.example.com`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "unreadable" && os.Geteuid() == 0 {
				t.Skip("root reads any file")
			}
			var logs bytes.Buffer
			f, err := loadCertFiles(tt.cert, tt.key, tt.hosts, time.Now, slog.New(slog.NewTextHandler(&logs, nil)))
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("got %v, want an error with %q", err, tt.err)
			case tt.err == "" && f.current == nil:
				t.Fatal("no certificate")
			}
			if tt.warn == "" && logs.Len() > 0 || !strings.Contains(logs.String(), tt.warn) {
				t.Errorf("log %q, want %q", &logs, tt.warn)
			}
		})
	}
}

// A renewed certificate is served without a restart, once its files
// changed and a handshake looks (at most once a minute); a renewal that
// can't be loaded leaves the previous certificate in place, and says so.
func TestCertFilesReloadRenewed(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	clock := func() time.Time { return now }
	first := newTestCert(t, dir, "live", now.Add(-time.Hour), now.Add(90*24*time.Hour), "auth.example.com")
	var logs bytes.Buffer
	f, err := loadCertFiles(first.certFile, first.keyFile, nil, clock, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	serial := func() *big.Int {
		c, err := f.get(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber
	}
	renewed := newTestCert(t, dir, "live", now.Add(-time.Hour), now.Add(180*24*time.Hour), "auth.example.com") // the same files
	if got := serial(); got.Cmp(first.leaf.SerialNumber) != 0 {
		t.Errorf("right after the renewal: serial %v, want the first certificate's until the next look", got)
	}
	now = now.Add(certCheckInterval)
	if got := serial(); got.Cmp(renewed.leaf.SerialNumber) != 0 {
		t.Errorf("a minute after the renewal: serial %v, want the renewed %v", got, renewed.leaf.SerialNumber)
	}
	if !strings.Contains(logs.String(), "loaded a new TLS certificate") {
		t.Errorf("the reload was not logged:\n%s", &logs)
	}

	if err := os.WriteFile(renewed.keyFile, []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(certCheckInterval)
	if got := serial(); got.Cmp(renewed.leaf.SerialNumber) != 0 {
		t.Errorf("after a broken renewal: serial %v, want the last good one %v", got, renewed.leaf.SerialNumber)
	}
	if !strings.Contains(logs.String(), "still serving the previous certificate") {
		t.Errorf("the broken renewal was not logged:\n%s", &logs)
	}
}

// namedClient is an HTTPS client with a cookie jar that trusts a test
// certificate and reaches a server on 127.0.0.1 by any host name, as DNS
// would, once reach has named the server.
type namedClient struct {
	*http.Client
	roots *x509.CertPool
	addr  string // the server's host:port; "" until reach
}

func newNamedClient(t *testing.T, cert testCert) *namedClient {
	t.Helper()
	c := &namedClient{roots: x509.NewCertPool()}
	c.roots.AddCert(cert.leaf)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Client = &http.Client{Jar: jar, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: c.roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, to string) (net.Conn, error) {
			if c.addr != "" {
				to = c.addr
			}
			return (&net.Dialer{}).DialContext(ctx, network, to)
		},
	}}
	return c
}

// reach sends every later request of c to s, which listens over TLS, and
// returns its port.
func (c *namedClient) reach(t *testing.T, s *testServer) string {
	t.Helper()
	if !strings.HasPrefix(s.url, "https://127.0.0.1:") {
		t.Fatalf("listening on %s, want https://127.0.0.1:PORT", s.url)
	}
	c.addr = strings.TrimPrefix(s.url, "https://")
	_, port, _ := net.SplitHostPort(c.addr)
	return port
}

// tether serve --tls-cert --tls-key serves HTTPS (TLS 1.2 or later,
// HTTP/2, HSTS), and a real client signs in at a host name other than
// localhost: the __Host- Secure cookie it gets comes back with the next
// request, which over plain HTTP it would not.
func TestServeTLS_SignInOverHTTPS(t *testing.T) {
	dir := t.TempDir()
	cert := newTestCert(t, dir, "auth", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "auth.test", "127.0.0.1")
	data := initDB(t)
	mustTether(t, data, "correct horse battery staple\n", "user", "add", "alice", "--password-stdin")

	client := newNamedClient(t, cert)
	s := startServeWith(t, client.Client, data, "--hosts", "auth.test", "--tls-cert", cert.certFile, "--tls-key", cert.keyFile)
	port := client.reach(t, s)
	base := "https://auth.test:" + port

	res, err := client.Post(base+"/api/v1/login", "application/json",
		strings.NewReader(`{"username":"alice","password":"correct horse battery staple"}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.ProtoMajor != 2 {
		t.Fatalf("sign in: got %s over %s, want 200 over HTTP/2", res.Status, res.Proto)
	}
	if res.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS over TLS (MISC-01)")
	}
	var secure bool
	for _, c := range res.Cookies() {
		secure = secure || c.Name == "__Host-tether" && c.Secure
	}
	if !secure {
		t.Fatalf("sign in: cookies %v, want a Secure __Host-tether", res.Cookies())
	}
	res, err = client.Get(base + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /api/v1/me with the cookie jar: got %s, want 200 (signed in)", res.Status)
	}

	old := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: client.roots, MaxVersion: tls.VersionTLS11},
		DialContext:     client.Transport.(*http.Transport).DialContext,
	}}
	if _, err := old.Get(base + "/healthz"); err == nil {
		t.Error("a TLS 1.1 client was served, want TLS 1.2 or later only")
	}
}

// A certificate that can't serve stops serve before it creates or opens
// anything.
func TestServeTLS_BadCertificateRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	expired := newTestCert(t, dir, "expired", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour), "localhost")
	data := dbPath(t)
	_, err := tether(t.Context(), t, data, "", "serve", "--addr", "127.0.0.1:0", "--tls-cert", expired.certFile, "--tls-key", expired.keyFile)
	if err == nil || !strings.Contains(err.Error(), "the certificate expired on") {
		t.Fatalf("got %v, want an error saying the certificate expired", err)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("serve created %s before refusing the certificate (%v)", data, err)
	}
}

// Plain HTTP for a public name, with no TLS proxy named in front, is
// warned about at start: browsers would keep no sign-in cookie.
func TestServePlainHTTPWarnedAtStart(t *testing.T) {
	const warning = "serving plain HTTP for a host other than localhost"
	for _, tt := range []struct {
		name  string
		flags []string
		warn  bool
	}{
		{"loopback", nil, false},
		{"public name", []string{"--hosts", "auth.example.com"}, true},
		{"public name behind a proxy", []string{"--hosts", "auth.example.com", "--trusted-proxies", "10.0.0.2"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServe(t, dbPath(t), tt.flags...)
			if got := strings.Contains(s.stderr.String(), warning); got != tt.warn {
				t.Errorf("warned %v, want %v:\n%s", got, tt.warn, s.stderr)
			}
		})
	}
}
