package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tetherauth/tether/internal/audit"
	"github.com/tetherauth/tether/internal/server"
	"github.com/tetherauth/tether/internal/sometimes"
	"github.com/tetherauth/tether/keys"
)

// The settings of machine tokens (issue 11) and the keys commands.

// The range of --token-max-ttl: a token shorter than a minute is renewed
// more often than it is worth; one past a day is no longer short-lived
// (JWT-04: token.Verifier refuses exp - iat past 24 h).
const (
	minTokenTTL = time.Minute
	maxTokenTTL = 24 * time.Hour
)

// minKeyRotation is the shortest --key-rotation: a key must sign for
// longer than the JWKS cache lifetime it is published ahead of.
const minKeyRotation = time.Hour

// checkTokens adds to p what is wrong with c's token settings.
func (c *config) checkTokens(p problems) {
	if c.Issuer != "" {
		if err := server.CheckIssuer(c.Issuer); err != nil {
			p.add(issuerSetting, "%q: %v", c.Issuer, err)
		}
	}
	if c.TokenMaxTTL < minTokenTTL || c.TokenMaxTTL > maxTokenTTL {
		p.add(tokenMaxTTLSetting, "%v: must be from %v to %v", c.TokenMaxTTL, minTokenTTL, maxTokenTTL)
	}
	if c.KeyRotation != 0 && c.KeyRotation < minKeyRotation {
		p.add(keyRotationSetting, "%v: must be 0 (only on tether keys rotate) or at least %v", c.KeyRotation, minKeyRotation)
	}
	if c.KeyAlg != keys.EdDSA && c.KeyAlg != keys.ES256 {
		p.add(keyAlgSetting, "%q: want %s or %s", c.KeyAlg, keys.EdDSA, keys.ES256)
	}
}

// issuer returns the issuer identifier of a server configured by c that
// listens at listen (listenURL's): --issuer, else https:// and the first of
// --hosts, else listen.
func (c *config) issuer(listen string) string {
	switch {
	case c.Issuer != "":
		return strings.TrimSuffix(c.Issuer, "/")
	case len(c.Hosts) > 0:
		return "https://" + hostPort(c.Hosts[0])
	}
	return listen
}

// hostPort returns host as a URL's host: an IPv6 address in brackets.
func hostPort(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// ringConfig returns the configuration of the key ring c and the
// environment describe: the master key, if set, from keys.MasterKeyEnv.
// It has no flag: a flag's value shows in the process list.
func ringConfig(c config, getenv func(string) string) (keys.Config, error) {
	cfg := keys.Config{Alg: c.KeyAlg, MaxTokenTTL: c.TokenMaxTTL, RotateEvery: c.KeyRotation}
	if c.KeyRotation == 0 {
		cfg.RotateEvery = -1
	}
	if v := getenv(keys.MasterKeyEnv); v != "" {
		mk, err := keys.ParseMasterKey(v)
		if err != nil {
			return cfg, fmt.Errorf("%s: %w", keys.MasterKeyEnv, err)
		}
		cfg.MasterKey = mk
	}
	return cfg, nil
}

// openRing loads the key ring of st, as c and the environment configure
// it; a ring sealed with a master key not given is refused (KEY-04).
func openRing(ctx context.Context, st *stores, c config, getenv func(string) string) (*keys.Ring, error) {
	cfg, err := ringConfig(c, getenv)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, adminStoreTimeout)
	defer cancel()
	return keys.NewRing(ctx, st.accounts.KeyStorage(), cfg)
}

// withRing opens the stores c names as an admin command does and calls do
// with their key ring.
func (e *env) withRing(ctx context.Context, c config, do func(r *keys.Ring) error) (err error) {
	st, err := openForAdmin(ctx, c)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	r, err := openRing(ctx, st, c, e.getenv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, adminStoreTimeout)
	defer cancel()
	return do(r)
}

// keySettings are the settings the keys commands take.
var keySettings = slices.Concat(changeSettings, []*setting{tokenMaxTTLSetting, keyRotationSetting, keyAlgSetting})

// keysList prints the signing keys, oldest first, with their states.
func keysList(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	c, err := e.parseNoArgs(fs, args, keySettings...)
	if err != nil {
		return err
	}
	return e.withRing(ctx, c, func(r *keys.Ring) error {
		return printKeys(ctx, e, r)
	})
}

// printKeys prints r's keys as keys list does.
func printKeys(ctx context.Context, e *env, r *keys.Ring) error {
	list, err := r.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tSEALED\tCREATED\tSIGNS FROM\tSIGNS UNTIL\tUNPUBLISHED AT")
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%s\t%s\t%s\n", k.Kid, k.Alg, k.State, k.Sealed,
			stamp(k.Created), stamp(k.SignFrom), stamp(k.SignUntil), stamp(k.RemoveAt))
	}
	return tw.Flush()
}

// stamp formats t for a listing: "-" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// keysRotate adds a signing key: it is published at once and signs once
// every verifier's cached JWKS holds it (KEY-02).
func keysRotate(ctx context.Context, e *env, fs *flag.FlagSet, args []string) (err error) {
	c, err := e.parseNoArgs(fs, args, keySettings...)
	if err != nil {
		return err
	}
	var kid string
	if err := e.openAudit(c); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.auditKey(ctx, c, "keys-rotate", kid, err)) }()
	return e.withRing(ctx, c, func(r *keys.Ring) error {
		if kid, err = r.Rotate(ctx); err != nil {
			return err
		}
		k, err := keyInfo(ctx, r, kid)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "added key %s (%s): published now, signs from %s\n", kid, k.Alg, stamp(k.SignFrom))
		return nil
	})
}

// keyInfo reads the ring back and returns the key kid as it is stored: a
// command reports a change only once it sees it there.
func keyInfo(ctx context.Context, r *keys.Ring, kid string) (keys.Info, error) {
	list, err := r.List(ctx)
	if err != nil {
		return keys.Info{}, fmt.Errorf("could not read the key ring back: %w", err)
	}
	for _, k := range list {
		if k.Kid == kid {
			return k, nil
		}
	}
	return keys.Info{}, fmt.Errorf("key %s is not in the key ring read back", kid)
}

// kidsLast returns args with the key ids that begin with "-" moved after
// "--", so that they are read as arguments and not taken for flags: a kid
// is a SHA-256 thumbprint in base64url, which begins with "-" once in 64.
// Arguments that already hold a "--" are left as they are.
func kidsLast(args []string) []string {
	if slices.Contains(args, "--") {
		return args
	}
	var rest, kids []string
	for _, a := range args {
		if b, err := base64.RawURLEncoding.Strict().DecodeString(a); err == nil && len(b) == sha256.Size && strings.HasPrefix(a, "-") {
			kids = append(kids, a)
		} else {
			rest = append(rest, a)
		}
	}
	return append(append(rest, "--"), kids...)
}

// keysRetire stops a key signing; with --now it is unpublished and its
// private key destroyed at once (KEY-02).
func keysRetire(ctx context.Context, e *env, fs *flag.FlagSet, args []string) (err error) {
	now := fs.Bool("now", false, "remove the key from the JWKS and destroy it at once (a leaked key): tokens it signed stop verifying")
	c, rest, err := parseConfig(fs, kidsLast(args), e.getenv, keySettings...)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fs.Usage()
		return usageError{err: errors.New("keys retire: KID is required, and only one")}
	}
	kid := rest[0]
	if err := e.openAudit(c); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.auditKey(ctx, c, "keys-retire", kid, err, "now", *now)) }()
	return e.withRing(ctx, c, func(r *keys.Ring) error {
		if err := r.Retire(ctx, kid, *now); err != nil {
			return err
		}
		k, err := keyInfo(ctx, r, kid)
		if err != nil {
			return err
		}
		if *now {
			if k.State != keys.Removed {
				return fmt.Errorf("key %s still %s after removal", kid, k.State)
			}
			fmt.Fprintf(e.stdout, "removed key %s: out of the JWKS now; verifiers drop it within their cache lifetime\n", kid)
			return nil
		}
		fmt.Fprintf(e.stdout, "retired key %s: signs no more; published until %s, when the last token it signed has expired\n", kid, stamp(k.RemoveAt))
		return nil
	})
}

// keysImport adds an existing private key (an operator migrating from
// another issuer) to the ring; it signs once it is published long enough.
func keysImport(ctx context.Context, e *env, fs *flag.FlagSet, args []string) (err error) {
	c, rest, err := parseConfig(fs, args, e.getenv, keySettings...)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		fs.Usage()
		return usageError{err: errors.New("keys import: FILE.pem is required, and only one")}
	}
	data, err := os.ReadFile(rest[0])
	if err != nil {
		return err
	}
	k, err := keys.ParsePEM(data)
	if err != nil {
		return fmt.Errorf("%s: %w", rest[0], err)
	}
	if err := e.openAudit(c); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.auditKey(ctx, c, "keys-import", k.Kid(), err)) }()
	return e.withRing(ctx, c, func(r *keys.Ring) error {
		if err := r.Import(ctx, k); err != nil {
			return err
		}
		info, err := keyInfo(ctx, r, k.Kid())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "imported key %s (%s): published now, signs from %s\n", k.Kid(), k.Alg(), stamp(info.SignFrom))
		return nil
	})
}

// keysMasterKey prints a new random master key for keys.MasterKeyEnv.
func keysMasterKey(_ context.Context, e *env, fs *flag.FlagSet, args []string) error {
	if _, err := e.parseNoArgs(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s=%s\n", keys.MasterKeyEnv, keys.NewMasterKey())
	return nil
}

// auditKey writes the audit event of a keys command on the key kid.
func (e *env) auditKey(ctx context.Context, c config, event, kid string, err error, attrs ...any) error {
	return e.auditCLI(ctx, c, event, "", []any{"kid", kid}, err, attrs...)
}

// ringRefresh is how often serve runs the key ring's schedule, which
// reads the ring again: a key retired --now on one node, or by a command,
// stops verifying on every node within it, and a rotation is seen well
// within the JWKS cache lifetime it waits.
const ringRefresh = 5 * time.Second

// startRing opens the key ring of st for serve and runs its schedule once,
// so that a new deployment has a key to sign with before it serves. It
// warns when the private keys are kept unsealed (KEY-04).
func startRing(ctx context.Context, st *stores, c config, getenv func(string) string, log *slog.Logger, auditLog *audit.Logger) (*keys.Ring, error) {
	r, err := openRing(ctx, st, c, getenv)
	if err != nil {
		return nil, fmt.Errorf("key ring: %w", err)
	}
	if getenv(keys.MasterKeyEnv) == "" {
		log.Warn("the token signing keys are kept unsealed in the account store: set "+keys.MasterKeyEnv+
			" (tether keys master-key makes one) to seal them (KEY-04)", "component", "serve")
	}
	ctx, cancel := context.WithTimeout(ctx, adminStoreTimeout)
	defer cancel()
	m, err := r.MaintainReport(ctx)
	if err != nil {
		return nil, fmt.Errorf("key ring: %w", err)
	}
	return r, auditSchedule(ctx, auditLog, m, c.NodeName)
}

// auditSchedule writes the audit events of what a run of the key ring's
// schedule on the node called node changed (m): a key added
// (keys-rotate), private keys destroyed (keys-destroy), keys sealed
// (keys-seal), with actor=schedule, as the keys commands write theirs
// with actor=cli.
func auditSchedule(ctx context.Context, l *audit.Logger, m keys.Maintenance, node string) error {
	var errs []error
	host, _ := os.Hostname() // which machine, when --node-name names none
	write := func(event, kid string) {
		errs = append(errs, l.Write(ctx, event, "", "kid", kid, "outcome", "success", "actor", "schedule", "node", node, "host", host))
	}
	if m.Added != "" {
		write("keys-rotate", m.Added)
	}
	for _, kid := range m.Destroyed {
		write("keys-destroy", kid)
	}
	for _, kid := range m.Sealed {
		write("keys-seal", kid)
	}
	return errors.Join(errs...)
}

// maintainRing runs r's schedule every ringRefresh until ctx is done,
// each run bounded by adminStoreTimeout, and writes the audit events of
// what it changed to auditLog (auditSchedule; node is the node's name); a
// failed run is logged, at most once a minute, and tried again at the
// next.
func maintainRing(ctx context.Context, r *keys.Ring, log *slog.Logger, auditLog *audit.Logger, node string) error {
	log = log.With("component", "keys")
	failures := sometimes.New(time.Minute, nil)
	t := time.NewTicker(ringRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		mctx, cancel := context.WithTimeout(ctx, adminStoreTimeout)
		m, err := r.MaintainReport(mctx)
		if err == nil {
			err = auditSchedule(mctx, auditLog, m, node)
		}
		cancel()
		if err == nil || ctx.Err() != nil {
			continue
		}
		if held, ok := failures.Let(); ok {
			log.Warn("key ring schedule failed; trying again", "err", err, "retry_in", ringRefresh, "failures_not_logged", held)
		}
	}
}
