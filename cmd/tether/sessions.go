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
	return e.forUser(ctx, fs, args, func(a admin, u *account.User) error {
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
	return e.forUser(ctx, fs, args, func(a admin, u *account.User) error {
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

// forUser parses the command line of a command that takes --user NAME and
// calls do with an admin and that user.
func (e *env) forUser(ctx context.Context, fs *flag.FlagSet, args []string, do func(a admin, u *account.User) error) error {
	user := fs.String("user", "", "the user's name (required)")
	c, err := e.parseNoArgs(fs, args, storeSettings...)
	if err != nil {
		return err
	}
	name, err := account.CanonicalName(*user)
	if err != nil {
		fs.Usage()
		return usageError{err: fmt.Errorf("--user %q: %w", *user, err)}
	}
	return withUser(ctx, c, name, do)
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
