package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/tetherauth/tether/internal/account"
)

// sessionsList prints the live sessions of a user, oldest first (SES-10).
func sessionsList(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	c, name, err := e.parseUser(fs, args, storeSettings...)
	if err != nil {
		return err
	}
	return withUser(ctx, c, name, func(a admin, u *account.User) error {
		list, err := a.sessions.List(ctx, u.ID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tLAST SEEN\tUSER AGENT\tIP")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID(), s.Created().UTC().Format(time.RFC3339),
				s.LastSeen().UTC().Format(time.RFC3339), printable(s.UserAgent()), printable(s.IP()))
		}
		return tw.Flush()
	})
}

// sessionsRevoke ends every session of a user at once (SES-10).
func sessionsRevoke(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	c, name, err := e.parseUser(fs, args, changeSettings...)
	if err != nil {
		return err
	}
	return e.act(ctx, c, "sessions-revoke", name, func(a admin, u *account.User) error {
		if err := a.sessions.RevokeUser(ctx, u.ID, nil); err != nil {
			return err
		}
		if err := a.verifyRevoked(ctx, u); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "ended all sessions of %s\n", u.Name)
		return nil
	})
}

// parseUser is parseName for the sessions commands, which also take the
// user as --user NAME, their first style: deprecated, with a warning.
func (e *env) parseUser(fs *flag.FlagSet, args []string, use ...*setting) (config, string, error) {
	var byFlag []string
	fs.Func("user", "deprecated: give NAME as the argument", func(v string) error {
		byFlag = append(byFlag, v)
		return nil
	})
	c, rest, err := parseConfig(fs, args, e.getenv, use...)
	if err != nil {
		return c, "", err
	}
	if len(byFlag) > 0 {
		fmt.Fprintf(e.stderr, "tether: %s: --user is deprecated: write tether %[1]s NAME\n", commandName(fs))
		rest = append(rest, byFlag...)
	}
	names, err := userNames(fs, rest, "NAME")
	if err != nil {
		return c, "", err
	}
	return c, names[0], nil
}

// printable replaces the characters of s that a terminal could take for
// commands (escape sequences in a user agent an attacker chose) or that
// would break the columns, such as tabs and line breaks.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
}
