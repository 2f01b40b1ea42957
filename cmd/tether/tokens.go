package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/session"
)

// tokensList prints a user's personal access tokens, oldest first: never
// a token or its hash, which the store doesn't have.
func tokensList(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	c, name, err := e.parseName(fs, args, storeSettings...)
	if err != nil {
		return err
	}
	return withUser(ctx, c, name, func(a admin, u *account.User) error {
		ctx, cancel := context.WithTimeout(ctx, adminStoreTimeout)
		defer cancel()
		list, err := a.pats.PATList(ctx, u.ID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tEXPIRES\tLAST USED")
		for _, p := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, printable(p.Name), strings.Join(p.Scopes, ","),
				stamp(p.Created), stamp(p.Expires), stamp(p.LastUsed))
		}
		return tw.Flush()
	})
}

// tokensRevoke revokes one of a user's personal access tokens, as the
// account page does: its id goes on the token denylist until its expiry
// (JWT-09), which every node's cache hears of, then its record goes. It
// checks both before it says so (ADM-01).
func tokensRevoke(ctx context.Context, e *env, fs *flag.FlagSet, args []string) (err error) {
	c, rest, err := parseConfig(fs, args, e.getenv, changeSettings...)
	if err != nil {
		return err
	}
	words, err := canonicalArgs(fs, rest, func(s string) (string, error) { return s, nil }, "NAME", "ID")
	if err != nil {
		return err
	}
	name, _ := account.CanonicalName(words[0]) // "" when it can't be a name: not found
	id := words[1]
	return e.act(ctx, c, "pat-revoke", name, func(a admin, u *account.User) error {
		ctx, cancel := context.WithTimeout(ctx, adminStoreTimeout)
		defer cancel()
		pats, m := a.pats, a.sessions
		list, err := pats.PATList(ctx, u.ID)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(list, func(p *account.PAT) bool { return p.ID == id })
		if i < 0 {
			return fmt.Errorf("%s has no personal access token %q: see tether tokens list %s", u.Name, id, u.Name)
		}
		p := list[i]
		if err := m.RevokeToken(ctx, session.Revocation{JTI: p.ID, Exp: p.Expires}); err != nil {
			return fmt.Errorf("could not revoke %s: %w; run the command again", p.ID, err)
		}
		if revoked, err := m.TokenRevoked(ctx, p.ID); err != nil || !revoked {
			return fmt.Errorf("could not check that %s is on the denylist (%v): run the command again", p.ID, err)
		}
		if _, err := pats.DeletePAT(ctx, u.ID, p.ID); err != nil && !errors.Is(err, account.ErrPATNotFound) {
			return fmt.Errorf("revoked %s, but deleting it: %w; run the command again", p.ID, err)
		}
		if _, err := pats.PATByHash(ctx, p.Hash); !errors.Is(err, account.ErrPATNotFound) {
			return fmt.Errorf("revoked %s, but could not check it is deleted (%v): run the command again", p.ID, err)
		}
		fmt.Fprintf(e.stdout, "revoked personal access token %s (%s) of %s\n", p.ID, printable(p.Name), u.Name)
		return nil
	}, "pat_id", id)
}
