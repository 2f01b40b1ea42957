package revocation

import (
	"context"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/session"
)

// Journal is the durable copy of the token denylist's jti entries:
// account.Revocations, which the account store implements.
type Journal interface {
	RecordRevocation(ctx context.Context, jti string, exp time.Time) error
	RevocationRecorded(ctx context.Context, jti string) (bool, error)
	RecordedRevocations(ctx context.Context, now time.Time) ([]account.RecordedRevocation, error)
}

// Durable is the revocation state of tokens with the session store's
// denylist backed by the account store's Journal: a Source for a View,
// and what revokes tokens. The denylist lives in the session store, whose
// feed carries each revocation to every node and stream within
// milliseconds; but where that store's data is lost for good (Redis
// without persistence, a wiped disk), sessions end and nobody is let in,
// while a revoked access token, which carries all it needs to verify,
// would be accepted again. So RevokeToken writes a jti to the Journal
// first, and TokenRevoked and Revocations read both: after such a loss,
// the View's snapshot (and so the revocation stream's) has every
// revocation again. A subject's generation is the session store's alone:
// the server reads the clients and the people, whose disabling and
// deletion end their tokens, from the account store anyway.
type Durable struct {
	*session.Manager
	Journal Journal
}

var _ Source = Durable{}

// RevokeToken puts r on the denylist: a jti in the Journal first, then in
// the session store, whose feed tells every verifier. An error means it
// may not be revoked everywhere yet; trying again is harmless.
func (d Durable) RevokeToken(ctx context.Context, r session.Revocation) error {
	if r.JTI != "" {
		if err := d.Journal.RecordRevocation(ctx, r.JTI, r.Exp); err != nil {
			return err
		}
	}
	return d.Manager.RevokeToken(ctx, r)
}

// TokenRevoked reports whether jti is on the session store's denylist or
// in the Journal.
func (d Durable) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	if revoked, err := d.Manager.TokenRevoked(ctx, jti); err != nil || revoked {
		return revoked, err
	}
	return d.Journal.RevocationRecorded(ctx, jti)
}

// Revocations returns the session store's denylist with the Journal's
// entries: a jti in both comes twice, which a View merges.
func (d Durable) Revocations(ctx context.Context) ([]session.Revocation, error) {
	list, err := d.Manager.Revocations(ctx)
	if err != nil {
		return nil, err
	}
	recorded, err := d.Journal.RecordedRevocations(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	for _, r := range recorded {
		list = append(list, session.Revocation{JTI: r.JTI, Exp: r.Exp})
	}
	return list, nil
}
