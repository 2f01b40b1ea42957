package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/session"
	"github.com/tetherauth/tether/token"
)

// The client commands: OAuth 2.0 clients of the client credentials grant
// (issue 11). A client's secret is shown once, when it is made; the store
// keeps its SHA-256 only.

// clientAdd registers a client and prints its secret, once.
func clientAdd(ctx context.Context, e *env, fs *flag.FlagSet, args []string) (err error) {
	var scopes, audiences []string
	fs.Func("scopes", "comma-separated scopes the client may ask for (required)", func(v string) (err error) {
		scopes, err = parseList(v, checkScope)
		return err
	})
	fs.Func("audience", "comma-separated audiences (the APIs' URIs) its tokens may name; the first is the default (required)", func(v string) (err error) {
		audiences, err = parseList(v, checkAudience)
		return err
	})
	maxTTL := fs.Duration("max-ttl", 0, "the longest lifetime of its tokens; 0: --token-max-ttl's")
	c, id, err := e.parseClientID(fs, args)
	if err != nil {
		return err
	}
	var missing []string
	if len(scopes) == 0 {
		missing = append(missing, "--scopes")
	}
	if len(audiences) == 0 {
		missing = append(missing, "--audience")
	}
	if *maxTTL < 0 || *maxTTL > maxTokenTTL {
		return usageError{err: fmt.Errorf("client add: --max-ttl %v: must be from 0 to %v", *maxTTL, maxTokenTTL)}
	}
	if len(missing) > 0 {
		fs.Usage()
		return usageError{err: fmt.Errorf("client add: %s required", strings.Join(missing, " and "))}
	}
	if err := e.openAudit(c); err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, e.auditClient(ctx, c, "client-add", id, err, "scopes", scopes, "audiences", audiences))
	}()
	return withClients(ctx, c, func(cl account.Clients, _ *session.Manager) error {
		secret, h := account.NewClientSecret()
		slices.Sort(scopes)
		slices.Sort(audiences[1:]) // the first stays the default
		client := &account.Client{ID: id, SecretHash: h, Scopes: slices.Compact(scopes), Audiences: audiences, MaxTTL: *maxTTL}
		if err := cl.CreateClient(ctx, client); errors.Is(err, account.ErrClientExists) {
			return fmt.Errorf("client %q exists already: see tether client list", id)
		} else if err != nil {
			return err
		}
		if got, err := cl.Client(ctx, id); err != nil || got.SecretHash != h {
			return fmt.Errorf("client %s: could not read it back: %v", id, err)
		}
		fmt.Fprintf(e.stdout, "created client %s\nclient_id=%s\nclient_secret=%s\n", id, id, secret)
		fmt.Fprintln(e.stderr, "tether: the secret is shown this once: keep it in the client's secret store")
		return nil
	})
}

// clientList prints every client.
func clientList(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	c, err := e.parseNoArgs(fs, args, storeSettings...)
	if err != nil {
		return err
	}
	return withClients(ctx, c, func(cl account.Clients, _ *session.Manager) error {
		list, err := cl.ClientList(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT ID\tSCOPES\tAUDIENCES\tMAX TTL\tSTATE\tCREATED")
		for _, x := range list {
			state, ttl := "enabled", "-"
			if x.Disabled {
				state = "disabled"
			}
			if x.MaxTTL > 0 {
				ttl = x.MaxTTL.String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, strings.Join(x.Scopes, ","), strings.Join(x.Audiences, ","),
				ttl, state, stamp(x.Created))
		}
		return tw.Flush()
	})
}

// clientRotateSecret gives a client a new secret, printed once; the old
// one stops working at once. With --revoke, the tokens issued before end
// too.
func clientRotateSecret(ctx context.Context, e *env, fs *flag.FlagSet, args []string) (err error) {
	revoke := fs.Bool("revoke", false, "also end every token issued to the client so far (the old secret leaked)")
	c, id, err := e.parseClientID(fs, args)
	if err != nil {
		return err
	}
	if err := e.openAudit(c); err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, e.auditClient(ctx, c, "client-rotate-secret", id, err, "revoke", *revoke))
	}()
	return withClients(ctx, c, func(cl account.Clients, m *session.Manager) error {
		secret, h := account.NewClientSecret()
		if err := cl.SetClientSecret(ctx, id, h); err != nil {
			return clientErr(id, err)
		}
		if got, err := cl.Client(ctx, id); err != nil || got.SecretHash != h {
			return fmt.Errorf("client %s: could not read the new secret back: %v", id, err)
		}
		done := "the old one no longer works"
		if *revoke {
			if err := revokeClientTokens(ctx, m, id); err != nil {
				return fmt.Errorf("set a new secret for %s (client_secret=%s), but: %w", id, secret, err)
			}
			done += ", and every token issued before has ended"
		}
		fmt.Fprintf(e.stdout, "new secret for client %s: %s\nclient_id=%s\nclient_secret=%s\n", id, done, id, secret)
		return nil
	})
}

// clientDisable stops a client from getting tokens and ends those it has.
func clientDisable(ctx context.Context, e *env, fs *flag.FlagSet, args []string) (err error) {
	c, id, err := e.parseClientID(fs, args)
	if err != nil {
		return err
	}
	if err := e.openAudit(c); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.auditClient(ctx, c, "client-disable", id, err)) }()
	return withClients(ctx, c, func(cl account.Clients, m *session.Manager) error {
		if err := setDisabled(ctx, cl, id, true); err != nil {
			return err
		}
		if err := revokeClientTokens(ctx, m, id); err != nil {
			return fmt.Errorf("disabled %s, but: %w", id, err)
		}
		fmt.Fprintf(e.stdout, "disabled client %s and ended every token it had\n", id)
		return nil
	})
}

// clientEnable lets a disabled client get tokens again; the tokens it had
// stay ended.
func clientEnable(ctx context.Context, e *env, fs *flag.FlagSet, args []string) (err error) {
	c, id, err := e.parseClientID(fs, args)
	if err != nil {
		return err
	}
	if err := e.openAudit(c); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.auditClient(ctx, c, "client-enable", id, err)) }()
	return withClients(ctx, c, func(cl account.Clients, _ *session.Manager) error {
		if err := setDisabled(ctx, cl, id, false); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "enabled client %s\n", id)
		return nil
	})
}

// clientDelete removes a client and ends every token it had. A client
// made later with the same id gets none of them back: they carry an older
// generation of the subject.
func clientDelete(ctx context.Context, e *env, fs *flag.FlagSet, args []string) (err error) {
	c, id, err := e.parseClientID(fs, args)
	if err != nil {
		return err
	}
	if err := e.openAudit(c); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.auditClient(ctx, c, "client-delete", id, err)) }()
	return withClients(ctx, c, func(cl account.Clients, m *session.Manager) error {
		// The tokens end first: a failure leaves the client in the list,
		// where the command can be run again, not tokens of a client that
		// is gone.
		if _, err := cl.Client(ctx, id); err != nil {
			return clientErr(id, err)
		}
		if err := revokeClientTokens(ctx, m, id); err != nil {
			return err
		}
		if err := cl.DeleteClient(ctx, id); err != nil {
			return clientErr(id, err)
		}
		fmt.Fprintf(e.stdout, "deleted client %s and ended every token it had\n", id)
		return nil
	})
}

// setDisabled sets or clears client id's disabled flag and reads it back:
// a command says it did so only once the store shows it (ADM-01).
func setDisabled(ctx context.Context, cl account.Clients, id string, disabled bool) error {
	if err := cl.SetClientDisabled(ctx, id, disabled); err != nil {
		return clientErr(id, err)
	}
	if c, err := cl.Client(ctx, id); err != nil || c.Disabled != disabled {
		return fmt.Errorf("client %s: could not read its disabled flag back as %t: %v; run the command again", id, disabled, err)
	}
	return nil
}

// revokeClientTokens ends every token of client id, in one write (CHG-03),
// and checks the session store holds the new generation before it says so.
func revokeClientTokens(ctx context.Context, m *session.Manager, id string) error {
	subject := token.ClientSubject(id)
	gen, err := m.RevokeSubject(ctx, subject)
	if err != nil {
		return fmt.Errorf("could not end the tokens of %s: %w; run the command again", id, err)
	}
	if now, err := m.SubjectGeneration(ctx, subject); err != nil || now < gen {
		return fmt.Errorf("could not check that the tokens of %s ended (generation %d, want %d or more): %v; run the command again", id, now, gen, err)
	}
	return nil
}

// clientErr says what to do about err, a store's answer about client id.
func clientErr(id string, err error) error {
	if errors.Is(err, account.ErrClientNotFound) {
		return fmt.Errorf("no client %q: see tether client list", id)
	}
	return err
}

// withClients opens the stores c names as an admin command does and calls
// do with the clients and a session manager over the session store (for
// the revocations), every store call bounded by adminStoreTimeout.
func withClients(ctx context.Context, c config, do func(cl account.Clients, m *session.Manager) error) (err error) {
	st, err := openForAdmin(ctx, c)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	m, err := session.NewManager(st.sessions, session.Config{TokenMaxLifetime: c.TokenMaxTTL})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, adminStoreTimeout)
	defer cancel()
	return do(st.accounts, m)
}

// parseClientID parses the command line of a client command that takes
// one client id, and returns it in canonical form.
func (e *env) parseClientID(fs *flag.FlagSet, args []string) (config, string, error) {
	c, rest, err := parseConfig(fs, args, e.getenv, slices.Concat(changeSettings, []*setting{tokenMaxTTLSetting})...)
	if err != nil {
		return c, "", err
	}
	ids, err := canonicalArgs(fs, rest, account.CanonicalClientID, "ID")
	if err != nil {
		return c, "", err
	}
	return c, ids[0], nil
}

// checkScope returns what is wrong with s as a scope (RFC 6749 §3.3:
// printable ASCII but space, " and \).
func checkScope(s string) (string, error) {
	if len(s) > 128 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' || r == '"' || r == '\\' }) {
		return "", errors.New(`a scope is 1 to 128 printable ASCII characters but space, " and \`)
	}
	return s, nil
}

// checkAudience returns what is wrong with s as an audience: an absolute
// URI (RFC 8707's resource indicators are), with no fragment.
func checkAudience(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Fragment != "" || len(s) > 512 {
		return "", errors.New("an audience is an absolute URI of at most 512 bytes, with no fragment, such as https://api.example.com or api://billing")
	}
	return s, nil
}

// auditClient writes the audit event of a client command on client id.
func (e *env) auditClient(ctx context.Context, c config, event, id string, err error, attrs ...any) error {
	return e.auditCLI(ctx, c, event, "", []any{"client_id", id}, err, attrs...)
}
