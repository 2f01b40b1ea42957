package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/user"
	"slices"
	"strconv"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/audit"
)

// changeSettings are the settings of a command that changes something:
// where the data is, and where its audit event goes.
var changeSettings = append(slices.Clip(storeSettings), logFormatSetting, auditLogSetting)

// openAuditLog opens where c sends the audit events (PW-07): the
// --audit-log file, standard error ("-"), both as JSON lines, or by
// default the main log, main, in its format.
func openAuditLog(c config, main *slog.Logger, stderr io.Writer) (*audit.Logger, error) {
	if c.AuditLog == "" {
		return audit.New(main.Handler()), nil
	}
	return audit.Open(c.AuditLog, stderr)
}

// openAudit opens where the command writes its audit event, before it
// changes anything: a command that could not record what it did does
// nothing. Without --audit-log, that is standard error in the
// --log-format the server uses, so that whatever collects the server's
// logs (journald, a container runtime) collects these too.
func (e *env) openAudit(c config) error {
	if e.auditTo != nil {
		return nil
	}
	l, err := openAuditLog(c, newLogger(e.stderr, slog.LevelInfo, c.LogFormat), e.stderr)
	if err != nil {
		return err
	}
	e.auditTo = l
	return nil
}

// audit writes the audit event of a command that changed, or failed to
// change, the user called name, with id userID ("" when unknown), as
// auditCLI does.
func (e *env) audit(ctx context.Context, c config, event, name, userID string, err error, attrs ...any) error {
	return e.auditCLI(ctx, c, event, name, []any{"user_id", userID}, err, attrs...)
}

// auditCLI writes the audit event of a command that changed, or failed to
// change, something of user's ("" for none: a key, a client): ids (what
// it acted on: the user's id, the key's kid, ...), the outcome (with err as
// the reason of a failure), actor=cli, the operating-system user who ran
// the command and the host it ran on, then attrs. Never a password or a
// secret. It returns the error of a record not written, which fails the
// command.
func (e *env) auditCLI(ctx context.Context, c config, event, user string, ids []any, err error, attrs ...any) error {
	if oerr := e.openAudit(c); oerr != nil {
		return oerr
	}
	outcome := []any{"outcome", "success"}
	if err != nil {
		outcome = []any{"outcome", "failure", "reason", err.Error()}
	}
	host, _ := os.Hostname()
	return e.auditTo.Write(ctx, event, user, slices.Concat(ids, outcome, []any{"actor", "cli", "os_user", osUser(), "host", host}, attrs)...)
}

// act runs do as withUser does, on the user called name, and writes the
// audit event of what it did, with attrs. It opens the audit log first.
func (e *env) act(ctx context.Context, c config, event, name string, do func(a admin, u *account.User) error, attrs ...any) error {
	if err := e.openAudit(c); err != nil {
		return err
	}
	var id string
	err := withUser(ctx, c, name, func(a admin, u *account.User) error {
		id = u.ID
		return do(a, u)
	})
	return errors.Join(err, e.audit(ctx, c, event, name, id, err, attrs...))
}

// osUser returns the name of the operating-system user running tether, or
// its uid when it has no name.
func osUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(os.Getuid())
}
