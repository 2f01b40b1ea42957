package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/password"
)

// userAdd creates a user (the first admin among them: there are no default
// accounts, PW-08).
func userAdd(ctx context.Context, e *env, fs *flag.FlagSet, args []string) (err error) {
	admin := fs.Bool("admin", false, "make the user an administrator")
	create := fs.Bool("create", false, "create the database first if it is missing, as tether init does")
	fromStdin := passwordStdinFlag(fs)
	c, name, err := e.parseName(fs, args, slices.Concat(changeSettings, []*setting{minPasswordSetting})...)
	if err != nil {
		return err
	}
	u := &account.User{Name: name, Admin: *admin}
	if err := e.openAudit(c); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.audit(ctx, c, "user-add", name, u.ID, err, "admin", u.Admin)) }()
	var st *stores
	if *create {
		st, err = openForSetup(ctx, c, "user add --create", e.stderr)
	} else {
		st, err = openForAdmin(ctx, c)
	}
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	if _, err := st.users().ByName(ctx, name); err == nil {
		return fmt.Errorf("user %q exists already", name)
	} else if !errors.Is(err, account.ErrNotFound) {
		return err
	}
	hash, err := e.newPasswordHash(ctx, *fromStdin, name, c.MinPassword)
	if err != nil {
		return err
	}
	u.PasswordHash = hash
	if err := st.users().Create(ctx, u); err != nil {
		return err
	}
	role := "user"
	if u.Admin {
		role = "admin"
	}
	fmt.Fprintf(e.stdout, "created %s %s\n", role, u.Name)
	return nil
}

// userPasswd sets a user's password and ends all their sessions (CHG-02),
// through the credential service, which orders both against sign-ins
// racing them (SES-12) and changes nothing if the sessions can't be ended
// (CHG-04).
func userPasswd(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	fromStdin := passwordStdinFlag(fs)
	c, name, err := e.parseName(fs, args, slices.Concat(changeSettings, []*setting{minPasswordSetting, keepTokensSetting})...)
	if err != nil {
		return err
	}
	return e.act(ctx, c, "user-passwd", name, func(a admin, u *account.User) error {
		pw, err := e.readPassword(*fromStdin)
		if err != nil {
			return err
		}
		if err := a.creds.SetPassword(ctx, u.ID, pw); err != nil {
			return passwordRefused(err)
		}
		if err := a.verifyRevoked(ctx, u); err != nil {
			return fmt.Errorf("changed the password of %s, but: %w", u.Name, err)
		}
		ended := "all their sessions and tokens"
		if c.KeepTokens {
			ended = "all their sessions (their tokens go on: --keep-tokens-on-password-change)"
		}
		fmt.Fprintf(e.stdout, "changed the password of %s and ended %s\n", u.Name, ended)
		return nil
	})
}

// userDisable stops a user from signing in and ends all their sessions: a
// running server on the same stores signs them out within the session
// store's bound (SES-10).
func userDisable(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	c, name, err := e.parseName(fs, args, changeSettings...)
	if err != nil {
		return err
	}
	return e.act(ctx, c, "user-disable", name, func(a admin, u *account.User) error {
		if err := a.creds.Disable(ctx, u.ID); err != nil {
			return fmt.Errorf("%s: %w; run tether sessions revoke %s", u.Name, err, u.Name)
		}
		if err := a.verifyRevoked(ctx, u); err != nil {
			return fmt.Errorf("disabled %s, but: %w", u.Name, err)
		}
		fmt.Fprintf(e.stdout, "disabled %s and ended all their sessions and tokens\n", u.Name)
		return nil
	})
}

// userEnable lets a disabled user sign in again.
func userEnable(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	c, name, err := e.parseName(fs, args, changeSettings...)
	if err != nil {
		return err
	}
	return e.act(ctx, c, "user-enable", name, func(a admin, u *account.User) error {
		if err := a.creds.Enable(ctx, u.ID); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "enabled %s\n", u.Name)
		return nil
	})
}

// userRename changes the name a user signs in with. Their id stays, and so
// do their sessions: a rename changes what the user types, not who they
// are.
func userRename(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	c, names, err := e.parseNames(fs, args, []string{"OLD", "NEW"}, changeSettings...)
	if err != nil {
		return err
	}
	old, name := names[0], names[1]
	if old == name {
		return usageError{err: fmt.Errorf("user rename: OLD and NEW are both %s", name)}
	}
	return e.act(ctx, c, "user-rename", old, func(a admin, u *account.User) error {
		err := a.creds.Rename(ctx, u.ID, name)
		if errors.Is(err, account.ErrExists) {
			return fmt.Errorf("user %q exists already; %s keeps its name", name, old)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "renamed %s to %s; their sessions go on\n", old, name)
		return nil
	}, "new_name", name)
}

// userDelete deletes a user and ends all their sessions, once confirmed on
// the terminal or by --yes. It refuses to delete the only admin who can
// sign in (account.ErrLastAdmin), which the store checks and applies in
// one step.
func userDelete(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	yes := fs.Bool("yes", false, "delete without asking; required when standard input is not a terminal")
	c, name, err := e.parseName(fs, args, changeSettings...)
	if err != nil {
		return err
	}
	tty, isTerminal := e.terminal()
	if !*yes && !isTerminal {
		return usageError{err: errors.New("user delete: standard input is not a terminal to confirm on: add --yes")}
	}
	return e.act(ctx, c, "user-delete", name, func(a admin, u *account.User) error {
		if !*yes {
			ok, err := e.confirm(tty, fmt.Sprintf("Delete %s and end all their sessions? This can't be undone.", u.Name))
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("not confirmed: nothing was deleted")
			}
		}
		err := a.creds.Delete(ctx, u.ID)
		if errors.Is(err, account.ErrLastAdmin) {
			return fmt.Errorf("%s is the only admin who can sign in: make another one first (tether user add NAME --admin); nothing was deleted", u.Name)
		}
		if err != nil {
			return err
		}
		if err := a.verifyRevoked(ctx, u); err != nil {
			return fmt.Errorf("deleted %s, but: %w", u.Name, err)
		}
		fmt.Fprintf(e.stdout, "deleted %s and ended all their sessions and tokens\n", u.Name)
		return nil
	})
}

// userList prints every user, one a line.
func userList(ctx context.Context, e *env, fs *flag.FlagSet, args []string) (err error) {
	c, err := e.parseNoArgs(fs, args, storeSettings...)
	if err != nil {
		return err
	}
	st, err := openForAdmin(ctx, c)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	users, err := st.users().List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADMIN\tDISABLED\tCREATED")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, yesNo(u.Admin), yesNo(u.Disabled), u.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func passwordStdinFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("password-stdin", false, "read the password from the first line of standard input instead of the terminal")
}

// newPasswordHash reads a new password for the user called name, checks it
// against the policy (PW-01, PW-02) and returns its hash.
func (e *env) newPasswordHash(ctx context.Context, fromStdin bool, name string, minLength int) (string, error) {
	pw, err := e.readPassword(fromStdin)
	if err != nil {
		return "", err
	}
	if err := (password.Policy{MinLength: minLength}).Check(pw, name); err != nil {
		return "", passwordRefused(err)
	}
	h, err := password.NewHasher(password.HasherConfig{})
	if err != nil {
		return "", err
	}
	return h.Hash(ctx, pw)
}

// passwordRefused says that a password broke a rule of the policy, when
// err is the policy's refusal; other errors pass as they are.
func passwordRefused(err error) error {
	for _, rule := range []error{password.ErrTooShort, password.ErrTooLong, password.ErrCommon, password.ErrMatchesUsername, password.ErrBlank, password.ErrRepeated, password.ErrInvalidUTF8} {
		if errors.Is(err, rule) {
			return fmt.Errorf("password refused: %w", err)
		}
	}
	return err
}

// readPassword reads a password: the first line of stdin (without its line
// ending) if fromStdin, else typed twice on the terminal without echo.
func (e *env) readPassword(fromStdin bool) (string, error) {
	if fromStdin {
		// The longest password, its CRLF and one byte more: a longer line
		// is refused as too long by the policy, not cut short.
		line, err := bufio.NewReader(io.LimitReader(e.stdin, password.MaxBytes+3)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the password from standard input: %w", err)
		}
		if line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"); line == "" {
			return "", errors.New("no password on standard input")
		}
		return line, nil
	}
	f, ok := e.terminal()
	if !ok {
		return "", usageError{err: errors.New("standard input is not a terminal: give the password on standard input with --password-stdin")}
	}
	first, err := e.prompt(f, "Password: ")
	if err != nil {
		return "", err
	}
	second, err := e.prompt(f, "Password again: ")
	if err != nil {
		return "", err
	}
	if first != second {
		return "", errors.New("the two passwords differ; nothing was changed")
	}
	return first, nil
}

func (e *env) prompt(tty *os.File, msg string) (string, error) {
	fmt.Fprint(e.stderr, msg)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return string(b), nil
}

// terminal returns standard input if it is a terminal.
func (e *env) terminal() (*os.File, bool) {
	f, ok := e.stdin.(*os.File)
	return f, ok && term.IsTerminal(int(f.Fd()))
}

// confirm asks question on the terminal tty and reports whether the answer
// was yes.
func (e *env) confirm(tty *os.File, question string) (bool, error) {
	fmt.Fprintf(e.stderr, "%s [y/N] ", question)
	answer, err := bufio.NewReader(tty).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("reading the answer: %w", err)
	}
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes", nil
}
