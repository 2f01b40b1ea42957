// Command tether runs the tether server and administers its database.
//
// Usage:
//
//	tether serve                           # http://127.0.0.1:8080, data in ./tether.db
//	tether init                            # or: create the database and exit
//	tether user add alice --admin          # asks for the password twice
//	echo "$PW" | tether user passwd alice --password-stdin
//	tether user disable alice              # also signs alice out everywhere
//	tether sessions list --user alice
//
// Every command reads the store settings (--data, --sessions, --accounts,
// --redis-prefix, --redis-min-replicas) from its flags or else the same
// TETHER_* environment as serve, and works while a server runs on the same
// stores. serve records in the account store where the sessions live; the
// admin commands refuse to run with other settings than that record, and
// only serve, init and "user add --create" create a database (ADM-01). Run
// "tether help" for the list and "tether COMMAND -h" for a command's flags.
package main

import (
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
}

// A command is one of tether's commands.
type command struct {
	name  string // "user add"
	args  string // its arguments, for the usage text
	about string
	// run runs the command with args, the command line after its name. fs
	// is empty, for the command's flags.
	run func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error
}

var commands = []command{
	{"serve", "[flags]", "run the server", serve},
	{"init", "[flags]", "create the database and record where sessions live, then exit", initCmd},
	{"user add", "NAME [--admin] [--password-stdin] [--create]", "create a user", userAdd},
	{"user passwd", "NAME [--password-stdin]", "set a user's password and end their sessions", userPasswd},
	{"user disable", "NAME", "stop a user from signing in and end their sessions", userDisable},
	{"user enable", "NAME", "let a disabled user sign in again", userEnable},
	{"user list", "", "list the users", userList},
	{"sessions list", "--user NAME", "list a user's sessions", sessionsList},
	{"sessions revoke", "--user NAME", "end all of a user's sessions (SES-10)", sessionsRevoke},
}

// run runs the command named by args[1:] (args[0] is the program name).
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	args = args[min(1, len(args)):]
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			return c.run(ctx, e, e.flagSet(c), args[len(words):])
		}
	}
	e.usage()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		return usageError{err: flag.ErrHelp, shown: true}
	}
	return usageError{err: fmt.Errorf("unknown command %q", strings.Join(args, " "))}
}

func (e *env) usage() {
	fmt.Fprintln(e.stderr, "Usage:")
	for _, c := range commands {
		fmt.Fprintf(e.stderr, "  tether %s\n    \t%s\n", strings.TrimSpace(c.name+" "+c.args), c.about)
	}
	fmt.Fprintf(e.stderr, "Every command takes --data FILE (env %s, default %s), and --sessions, --accounts and --redis-prefix to keep those elsewhere:\n"+
		"give an admin command the server's settings (the same TETHER_* environment); it refuses others, and creates no database.\n", dataSetting.env, dataSetting.def)
	fmt.Fprintln(e.stderr, `Run "tether COMMAND -h" for a command's flags.`)
}

// flagSet returns an empty FlagSet for c whose usage describes c.
func (e *env) flagSet(c command) *flag.FlagSet {
	fs := flag.NewFlagSet("tether "+c.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: tether %s\n  %s\nFlags:\n", strings.TrimSpace(c.name+" "+c.args), c.about)
		fs.PrintDefaults()
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
