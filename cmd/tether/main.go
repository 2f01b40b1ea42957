// Command tether runs the tether server and administers its database.
//
// Usage:
//
//	tether serve                           # http://127.0.0.1:8080, data in ./tether.db
//	tether init                            # or: create the database and exit
//	tether user add alice --admin          # asks for the password twice
//	echo "$PW" | tether user passwd alice --password-stdin
//	tether user disable alice              # also signs alice out everywhere
//	tether user rename alice alicia        # her sessions go on
//	tether user delete alicia              # asks first; --yes does not
//	tether sessions list alice
//	tether status                          # exit status 1 when unhealthy
//	tether version
//
// Every command reads the store settings (--data, --sessions, --accounts,
// --redis-prefix, --redis-min-replicas) from its flags or else the same
// TETHER_* environment as serve, and works while a server runs on the same
// stores. serve records in the account store where the sessions live; the
// admin commands refuse to run with other settings than that record, and
// only serve, init and "user add --create" create a database (ADM-01). Run
// "tether help" for the list and "tether COMMAND -h" for a command's flags.
//
// A command that changes something (the user, sessions, tokens, client
// and keys commands) writes one audit event (PW-07): the same record the
// server writes for what people do over HTTP (package internal/audit),
// with actor=cli, the operating-system user who ran it and the host. It
// goes where --audit-log (TETHER_AUDIT_LOG) says, a file of JSON lines or
// "-" for standard error, else to standard error in the server's
// --log-format; a command whose audit log can't be opened changes nothing,
// and one whose record can't be written fails.
//
// tether status reports, from serve's settings, whether the stores answer,
// the session store's feed comes up, the key ring has a key signing on
// schedule, and what the stores hold; its exit status is 1 when something
// is unhealthy.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/tetherauth/tether/internal/audit"
	"github.com/tetherauth/tether/keys"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// env is what run was given: the process's surroundings, which every
// command uses instead of the os package's.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer // results
	stderr io.Writer // prompts, usage, logs
	// auditTo is where the command writes its audit events, once
	// openAudit opened it; runCommand closes it.
	auditTo *audit.Logger
}

// A command is one of tether's commands.
type command struct {
	name  string // "user add"
	args  string // its arguments, for the usage text
	about string
	// run runs the command with args, the command line after its name. fs
	// is empty, for the command's flags. It parses them before it does
	// anything else: "tether help COMMAND" runs it with -h.
	run func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error
}

var commands = []command{
	{"serve", "[flags]", "run the server", serve},
	{"init", "[flags]", "create the database and record where sessions live, then exit", initCmd},
	{"user add", "NAME [--admin] [--password-stdin] [--create]", "create a user", userAdd},
	{"user passwd", "NAME [--password-stdin]", "set a user's password and end their sessions", userPasswd},
	{"user disable", "NAME", "stop a user from signing in and end their sessions", userDisable},
	{"user enable", "NAME", "let a disabled user sign in again", userEnable},
	{"user rename", "OLD NEW", "change the name a user signs in with; their sessions go on", userRename},
	{"user delete", "NAME [--yes]", "delete a user and end their sessions (asks first on a terminal)", userDelete},
	{"user list", "", "list the users", userList},
	{"sessions list", "NAME", "list a user's sessions", sessionsList},
	{"sessions revoke", "NAME", "end all of a user's sessions (SES-10)", sessionsRevoke},
	{"tokens list", "NAME", "list a user's personal access tokens", tokensList},
	{"tokens revoke", "NAME ID", "revoke one of a user's personal access tokens, everywhere at once", tokensRevoke},
	{"client add", "ID --scopes S1,S2 --audience URI[,URI] [--max-ttl 10m]", "register a machine client (OAuth 2.0 client credentials); prints its secret once", clientAdd},
	{"client list", "", "list the machine clients", clientList},
	{"client rotate-secret", "ID [--revoke]", "give a client a new secret, printed once; the old one stops working", clientRotateSecret},
	{"client disable", "ID", "stop a client getting tokens and end those it has", clientDisable},
	{"client enable", "ID", "let a disabled client get tokens again", clientEnable},
	{"client delete", "ID", "delete a client and end every token it has", clientDelete},
	{"keys list", "", "list the token signing keys and their states", keysList},
	{"keys rotate", "", "add a signing key: published now, it signs once verifiers' cached key sets hold it (KEY-02)", keysRotate},
	{"keys retire", "KID [--now]", "stop a key signing; --now: unpublish and destroy it at once, for a leaked key (KEY-02)", keysRetire},
	{"keys import", "FILE.pem", "add an existing Ed25519 or P-256 private key to the ring, to sign once published long enough", keysImport},
	{"keys master-key", "", "print a new random master key for " + keys.MasterKeyEnv + ", which seals the signing keys at rest (KEY-04)", keysMasterKey},
	{"status", "[flags]", "report the stores' health, the invalidation feed, the key ring and what the stores hold, from serve's settings; exit status 1 when unhealthy", status},
	{"version", "", "print tether's version, VCS revision and Go version", version},
}

// run runs the command named by args[1:] (args[0] is the program name).
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	args = args[min(1, len(args)):]
	if len(args) > 0 {
		switch args[0] {
		case "help", "-h", "-help", "--help":
			return e.help(ctx, args[1:])
		case "-version", "--version":
			args = append([]string{"version"}, args[1:]...)
		}
	}
	if c, rest, ok := findCommand(args); ok {
		return e.runCommand(ctx, c, rest)
	}
	e.usage(e.stderr, commands)
	if len(args) == 0 {
		return usageError{err: errors.New("no command"), shown: true}
	}
	return usageError{err: fmt.Errorf("unknown command %q", strings.Join(args, " "))}
}

// findCommand returns the command args name and the arguments after its name.
func findCommand(args []string) (command, []string, bool) {
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			return c, args[len(words):], true
		}
	}
	return command{}, nil, false
}

// runCommand runs c with args. What its flag set prints goes to standard
// output when the command line asked for help (-h), and the command
// succeeds; after a mistake, it goes to standard error.
func (e *env) runCommand(ctx context.Context, c command, args []string) error {
	var out bytes.Buffer
	err := c.run(ctx, e, e.flagSet(c, &out), args)
	if e.auditTo != nil {
		err = errors.Join(err, e.auditTo.Close())
		e.auditTo = nil
	}
	if errors.Is(err, flag.ErrHelp) {
		_, err = out.WriteTo(e.stdout)
		return err
	}
	_, werr := out.WriteTo(e.stderr)
	return errors.Join(err, werr)
}

// help shows, on standard output, the usage (no words), a command's help
// (tether help user add), or the commands that start with words (tether
// help user).
func (e *env) help(ctx context.Context, words []string) error {
	if len(words) == 0 {
		e.usage(e.stdout, commands)
		return nil
	}
	if c, rest, ok := findCommand(words); ok && len(rest) == 0 {
		return e.runCommand(ctx, c, []string{"-h"})
	}
	var group []command
	for _, c := range commands {
		if names := strings.Fields(c.name); len(names) > len(words) && slices.Equal(names[:len(words)], words) {
			group = append(group, c)
		}
	}
	if len(group) > 0 {
		e.usage(e.stdout, group)
		return nil
	}
	e.usage(e.stderr, commands)
	return usageError{err: fmt.Errorf("help: unknown command %q", strings.Join(words, " "))}
}

// usage prints the command line of each of cmds, and how to learn more, to
// w.
func (e *env) usage(w io.Writer, cmds []command) {
	fmt.Fprintln(w, "Usage:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  tether %s\n    \t%s\n", strings.TrimSpace(c.name+" "+c.args), c.about)
	}
	fmt.Fprintf(w, "Every command takes --data FILE (env %s, default %s), and --sessions, --accounts and --redis-prefix to keep those elsewhere:\n"+
		"give an admin command the server's settings (the same TETHER_* environment); it refuses others, and creates no database.\n", dataSetting.env, dataSetting.def)
	fmt.Fprintln(w, `Run "tether help COMMAND" for a command's flags.`)
}

// flagSet returns an empty FlagSet for c, printing to out, whose usage
// describes c.
func (e *env) flagSet(c command, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tether "+c.name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: tether %s\n  %s\n", strings.TrimSpace(c.name+" "+c.args), c.about)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(out, "Flags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// usageError is a mistake in the command line or the configuration: main
// exits with status 2.
type usageError struct {
	err   error
	shown bool // already printed (by the flag package, or help)
}

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// exitCode prints err to stderr unless it was shown already, and returns the
// exit status for it: 0 for none, 2 for a usage error, else 1.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var u usageError
	isUsage := errors.As(err, &u)
	if !isUsage || !u.shown {
		fmt.Fprintf(stderr, "tether: %v\n", err)
	}
	if isUsage {
		return 2
	}
	return 1
}
