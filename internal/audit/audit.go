// Package audit writes tether's audit events (PW-07): one log record per
// event, with the same message and leading attributes whoever writes it —
// the server for what people do over HTTP and what its key schedule does,
// the command line for what an operator does — so that one query
// (msg=audit) finds them all.
//
// Events go where the operator's --audit-log says (Open): a file of their
// own, or standard error, as JSON lines; without it, to the main log, in
// the log format the deployment chose (New over its handler).
//
// Usage:
//
//	l, err := audit.Open("/var/log/tether/audit.log", os.Stderr)
//	...
//	defer l.Close()
//	err = l.Write(ctx, "sign-in", "alice", "outcome", "success", "user_id", u.ID)
//
// writes one line:
//
//	{"time":"...","level":"INFO","msg":"audit","event":"sign-in","user":"alice","outcome":"success","user_id":"u_..."}
//
// Never pass a password, a token, a secret, a hash of one, or a cookie
// value.
package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// Message is the message of every audit record.
const Message = "audit"

// Stderr is the --audit-log that names standard error.
const Stderr = "-"

// Logger writes audit events to a slog handler. It is safe for concurrent
// use if its handler is (slog's are).
type Logger struct {
	h      slog.Handler
	closer io.Closer // the file Open opened, or nil
}

// New returns a Logger that writes to h (a main logger's handler),
// whatever level h is enabled for: an audit event is never filtered out.
func New(h slog.Handler) *Logger { return &Logger{h: h} }

// Open returns a Logger that writes JSON lines to path: Stderr ("-") for
// stderr, else the file, created readable and writable by its owner only
// (MISC-06) if missing, and opened for appending only, so that a server
// and the admin commands, writing whole lines, never overwrite each
// other's. A file that can't be opened is an error naming it.
func Open(path string, stderr io.Writer) (*Logger, error) {
	if path == Stderr {
		return &Logger{h: slog.NewJSONHandler(stderr, nil)}, nil
	}
	if path == "" {
		return nil, errors.New("audit log: no file named: give a path, or - for standard error")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &Logger{h: slog.NewJSONHandler(f, nil), closer: f}, nil
}

// Write writes the audit event called event (what happened: "sign-in",
// "user-delete") about user (the canonical name it concerns, "" when there
// is none), at level Info, followed by attrs, key-value pairs as slog
// takes them ("outcome", "success", "user_id", id, ...). It returns the
// handler's error: a record that could not be written.
func (l *Logger) Write(ctx context.Context, event, user string, attrs ...any) error {
	r := slog.NewRecord(time.Now(), slog.LevelInfo, Message, 0)
	r.Add("event", event, "user", user)
	r.Add(attrs...)
	if err := l.h.Handle(ctx, r); err != nil {
		return fmt.Errorf("audit log: could not write the %s event: %w", event, err)
	}
	return nil
}

// Close closes the file Open opened; it does nothing for other Loggers.
func (l *Logger) Close() error {
	if l.closer == nil {
		return nil
	}
	return l.closer.Close()
}
