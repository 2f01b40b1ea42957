// Package audit writes tether's audit events (PW-07): one log record per
// event, with the same message and leading attributes whoever writes it —
// the server for what people do over HTTP, the command line for what an
// operator does — so that one query (msg=audit) finds them all, in the
// log format the deployment chose.
//
// Usage:
//
//	audit.Log(ctx, logger, "sign-in", "alice", "outcome", "success", "user_id", u.ID)
//
// writes, with a text handler:
//
//	time=... level=INFO msg=audit event=sign-in user=alice outcome=success user_id=u_...
//
// Never pass a password, a token or a cookie value.
package audit

import (
	"context"
	"log/slog"
)

// Message is the message of every audit record.
const Message = "audit"

// Log writes the audit event called event (what happened: "sign-in",
// "user-delete") about user (the canonical name it concerns, "" when
// there is none) to log, at level Info, followed by attrs, key-value
// pairs as slog takes them ("outcome", "success", "user_id", id, ...).
func Log(ctx context.Context, log *slog.Logger, event, user string, attrs ...any) {
	log.InfoContext(ctx, Message, append([]any{"event", event, "user", user}, attrs...)...)
}
