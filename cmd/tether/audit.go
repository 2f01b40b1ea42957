package main

import (
	"context"
	"log/slog"
	"os"
	"os/user"
	"slices"
	"strconv"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/audit"
)

// changeSettings are the settings of a command that changes a user: where
// the data is, and the format of its audit event.
var changeSettings = append(slices.Clip(storeSettings), logFormatSetting)

// auditLog returns where commands write their audit events: standard
// error, in the --log-format the server uses, so that whatever collects
// the server's logs (journald, a container runtime) can collect these too.
// It is the one place to change to send them elsewhere.
func (e *env) auditLog(c config) *slog.Logger {
	return newLogger(e.stderr, slog.LevelInfo, c.LogFormat)
}

// audit writes the audit event of a command that changed, or failed to
// change, the user called name, with id userID ("" when unknown), as
// auditCLI does.
func (e *env) audit(ctx context.Context, c config, event, name, userID string, err error, attrs ...any) {
	e.auditCLI(ctx, c, event, name, []any{"user_id", userID}, err, attrs...)
}

// auditCLI writes the audit event of a command that changed, or failed to
// change, something of user's ("" for none: a key, a client): ids (what
// it acted on: the user's id, the key's kid, ...), the outcome (with err as
// the reason of a failure), actor=cli and the operating-system user who
// ran the command, then attrs. Never a password or a secret.
func (e *env) auditCLI(ctx context.Context, c config, event, user string, ids []any, err error, attrs ...any) {
	outcome := []any{"outcome", "success"}
	if err != nil {
		outcome = []any{"outcome", "failure", "reason", err.Error()}
	}
	audit.Log(ctx, e.auditLog(c), event, user, slices.Concat(ids, outcome, []any{"actor", "cli", "os_user", osUser()}, attrs)...)
}

// act runs do as withUser does, on the user called name, and writes the
// audit event of what it did, with attrs.
func (e *env) act(ctx context.Context, c config, event, name string, do func(a admin, u *account.User) error, attrs ...any) error {
	var id string
	err := withUser(ctx, c, name, func(a admin, u *account.User) error {
		id = u.ID
		return do(a, u)
	})
	e.audit(ctx, c, event, name, id, err, attrs...)
	return err
}

// osUser returns the name of the operating-system user running tether, or
// its uid when it has no name.
func osUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(os.Getuid())
}
