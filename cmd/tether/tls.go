package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// HTTPS. tether's cookies are __Host- and Secure (SES-05): a browser keeps
// them only from an https:// page (or localhost), so a server reached by
// any other name needs HTTPS, served here with --tls-cert and --tls-key,
// or by a proxy in front.

const (
	// certCheckInterval is how often, at most, a handshake looks whether
	// the certificate's files changed (a renewal), and loads them again.
	certCheckInterval = time.Minute
	// certExpiryWarning: a certificate this close to its end is warned
	// about at start and at every reload.
	certExpiryWarning = 14 * 24 * time.Hour
)

// certFiles serves the certificate of a PEM certificate chain file and
// its key file, and loads them again when either changes, so that a
// renewed certificate (certbot's, say) is served without a restart. A
// renewal that fails to load (a half-written file, a key that doesn't
// match) is logged, and the certificate before it stays. It is safe for
// concurrent use.
type certFiles struct {
	certFile, keyFile string
	hosts             []string // --hosts, each of which the certificate should name
	now               func() time.Time
	log               *slog.Logger

	mu      sync.Mutex       // guards the fields below
	current *tls.Certificate // what handshakes get
	stamp   string           // the files' sizes and modification times when current was loaded
	checked time.Time        // when the files were last looked at
}

// loadCertFiles loads certFile and keyFile, or says what is wrong with
// them: a file missing or unreadable, no PEM in it, a key that doesn't
// match the certificate, or a certificate outside its validity period.
// It warns about a certificate that ends within certExpiryWarning, or
// that doesn't name one of hosts.
func loadCertFiles(certFile, keyFile string, hosts []string, now func() time.Time, log *slog.Logger) (*certFiles, error) {
	f := &certFiles{certFile: certFile, keyFile: keyFile, hosts: hosts, now: now, log: log}
	stamp, err := f.stamps()
	if err != nil {
		return nil, err
	}
	if f.current, err = f.load(); err != nil {
		return nil, err
	}
	f.stamp, f.checked = stamp, now()
	return f, nil
}

// config returns the TLS configuration to serve with: TLS 1.2 or later,
// Go's defaults otherwise (HTTP/2 is on), the certificate from f.
func (f *certFiles) config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: f.get}
}

// get is tls.Config.GetCertificate: the current certificate, loaded again
// first if the files changed since, looked at most once a
// certCheckInterval.
func (f *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := f.now(); now.Sub(f.checked) >= certCheckInterval {
		f.checked = now
		f.reloadLocked()
	}
	return f.current, nil
}

// reloadLocked loads the files again if they changed. f.mu is held.
func (f *certFiles) reloadLocked() {
	stamp, err := f.stamps()
	if err == nil && stamp == f.stamp {
		return
	}
	var cert *tls.Certificate
	if err == nil {
		cert, err = f.load()
	}
	if err != nil {
		f.log.Error("the TLS certificate's files changed but can't be loaded: still serving the previous certificate", "err", err)
		return
	}
	f.current, f.stamp = cert, stamp
	f.log.Info("loaded a new TLS certificate", "cert", f.certFile, "not_after", cert.Leaf.NotAfter.UTC())
}

// stamps describes the files' sizes and modification times, to notice a
// change.
func (f *certFiles) stamps() (string, error) {
	var stamp string
	for _, name := range []string{f.certFile, f.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return "", certError(name, err)
		}
		stamp += fmt.Sprintf("%d %d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return stamp, nil
}

// load reads and checks the files (see loadCertFiles).
func (f *certFiles) load() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(f.certFile)
	if err != nil {
		return nil, certError(f.certFile, err)
	}
	keyPEM, err := os.ReadFile(f.keyFile)
	if err != nil {
		return nil, certError(f.keyFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %w (want a PEM certificate chain, leaf first, and its PEM private key)", f.certFile, f.keyFile, err)
	}
	leaf, now := cert.Leaf, f.now()
	switch {
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("--tls-cert %s: the certificate expired on %s: renew it (browsers refuse it)", f.certFile, leaf.NotAfter.UTC().Format(time.DateTime))
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("--tls-cert %s: the certificate is valid only from %s: is this machine's clock right?", f.certFile, leaf.NotBefore.UTC().Format(time.DateTime))
	case leaf.NotAfter.Sub(now) < certExpiryWarning:
		f.log.Warn("the TLS certificate expires soon: renew it (tether loads the renewed files by itself)", "cert", f.certFile, "not_after", leaf.NotAfter.UTC())
	}
	for _, h := range f.hosts {
		if err := leaf.VerifyHostname(h); err != nil {
			f.log.Warn("the TLS certificate does not name a host of --hosts: browsers will refuse it there", "cert", f.certFile, "host", h)
		}
	}
	return &cert, nil
}

// certError says which file could not be read, and why.
func certError(name string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("TLS file %s does not exist: give the path of the PEM file", name)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("TLS file %s: no permission to read it: run tether as a user who may", name)
	}
	return fmt.Errorf("TLS file %s: %w", name, err)
}
