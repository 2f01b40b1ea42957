package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/account"
	"github.com/tetherauth/tether/internal/testkit"
)

// countingLoader is an account store's ByID that counts its calls.
type countingLoader struct {
	calls int
	err   error
}

func (l *countingLoader) byID(_ context.Context, id string) (*account.User, error) {
	l.calls++
	if l.err != nil {
		return nil, l.err
	}
	return &account.User{ID: id, Name: "user-" + id}, nil
}

func TestUserCache(t *testing.T) {
	ctx := t.Context()
	clock := testkit.NewClock(time.Unix(1e9, 0))
	newCache := func(ttl time.Duration) (*userCache, *countingLoader) {
		l := &countingLoader{}
		return newUserCache(ttl, clock.Now, l.byID), l
	}
	get := func(t *testing.T, c *userCache, id string) *account.User {
		t.Helper()
		u, err := c.get(ctx, id)
		if err != nil || u.ID != id {
			t.Fatalf("get(%q) = %v, %v", id, u, err)
		}
		return u
	}

	t.Run("FreshEntryServed", func(t *testing.T) {
		c, l := newCache(0) // the default: DefaultUserCacheTTL
		get(t, c, "a")
		clock.Advance(DefaultUserCacheTTL - time.Nanosecond)
		get(t, c, "a")
		if l.calls != 1 {
			t.Fatalf("store reads: %d, want 1", l.calls)
		}
		clock.Advance(time.Nanosecond)
		get(t, c, "a")
		if l.calls != 2 {
			t.Fatalf("store reads once the entry is ttl old: %d, want 2", l.calls)
		}
	})
	t.Run("Forget", func(t *testing.T) {
		c, l := newCache(time.Minute)
		get(t, c, "a")
		c.forget("a")
		get(t, c, "a")
		if l.calls != 2 {
			t.Fatalf("store reads after forget: %d, want 2", l.calls)
		}
	})
	t.Run("NoPasswordHashKept", func(t *testing.T) {
		c := newUserCache(time.Minute, clock.Now, func(_ context.Context, id string) (*account.User, error) {
			return &account.User{ID: id, PasswordHash: "$argon2id$..."}, nil
		})
		for _, read := range []string{"the store's", "the cache's"} {
			if got := get(t, c, "a").PasswordHash; got != "" {
				t.Fatalf("%s user: hash %q, want none", read, got)
			}
		}
	})
	t.Run("CallerOwnsTheUser", func(t *testing.T) {
		c, _ := newCache(time.Minute)
		get(t, c, "a").Disabled = true
		if get(t, c, "a").Disabled {
			t.Fatal("a change to a returned user reached the cache")
		}
	})
	t.Run("ErrorsNotCached", func(t *testing.T) {
		c, l := newCache(time.Minute)
		l.err = account.ErrNotFound
		for range 2 {
			if _, err := c.get(ctx, "a"); !errors.Is(err, account.ErrNotFound) {
				t.Fatalf("get: %v, want ErrNotFound", err)
			}
		}
		if l.calls != 2 {
			t.Fatalf("store reads: %d, want 2", l.calls)
		}
	})
	t.Run("NegativeTTLDisables", func(t *testing.T) {
		c, l := newCache(-1)
		get(t, c, "a")
		get(t, c, "a")
		if l.calls != 2 {
			t.Fatalf("store reads: %d, want 2", l.calls)
		}
	})
	t.Run("Bounded", func(t *testing.T) {
		c, l := newCache(time.Minute)
		for i := range maxCachedUsers + 1 {
			get(t, c, strconv.Itoa(i))
		}
		if len(c.entries) > maxCachedUsers {
			t.Fatalf("%d entries, want at most %d", len(c.entries), maxCachedUsers)
		}
		// Full of fresh entries, the cache starts over rather than grow.
		get(t, c, "0")
		if l.calls != maxCachedUsers+2 {
			t.Fatalf("store reads: %d, want %d", l.calls, maxCachedUsers+2)
		}
	})
}

// A password check reads the user afresh: a password changed by another
// process (an admin's tether user passwd, another node) counts at once,
// even while this node has the user cached. CHG-01 through the cache.
func TestCHG01_CurrentPasswordCheckedAgainstStore(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	u := h.addUser("alice", alicePW, false)
	c := h.client()
	token := c.login("alice", alicePW)
	if res, _ := c.me(); res.status != http.StatusOK { // alice is cached now
		t.Fatalf("me: status %d", res.status)
	}
	hash, err := h.hasher.Hash(t.Context(), newPW)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.accounts.SetPassword(t.Context(), u.ID, u.PasswordHash, hash); err != nil {
		t.Fatal(err)
	}
	res := c.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: alicePW, New: "a third password, long enough"}, token)
	if res.status != http.StatusForbidden || res.errorCode(t) != "invalid_credentials" {
		t.Fatalf("the replaced password as current: %d %s, want 403 invalid_credentials", res.status, res.body)
	}
	res = c.json(http.MethodPost, "/api/v1/password", passwordRequest{Current: newPW, New: "a third password, long enough"}, token)
	if res.status != http.StatusOK {
		t.Fatalf("the stored password as current: %d %s, want 200", res.status, res.body)
	}
}
