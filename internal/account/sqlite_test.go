package account

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

func newStore(t *testing.T) *SQLite {
	t.Helper()
	s, err := NewSQLite(t.Context(), testkit.OpenSQLite(t, filepath.Join(t.TempDir(), "tether.db")))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustCreate(t *testing.T, s *SQLite, u *User) *User {
	t.Helper()
	if err := s.Create(t.Context(), u); err != nil {
		t.Fatalf("Create(%q): %v", u.Name, err)
	}
	return u
}

func TestPW08_FreshStoreHasNoAccounts(t *testing.T) {
	s := newStore(t)
	n, err := s.Count(t.Context())
	if err != nil || n != 0 {
		t.Fatalf("Count() = %d, %v; want 0, nil", n, err)
	}
	users, err := s.List(t.Context())
	if err != nil || users == nil || len(users) != 0 {
		t.Fatalf("List() = %v, %v; want an empty slice, nil", users, err)
	}
}

func TestCreateAndLookUp(t *testing.T) {
	s := newStore(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	s.now = func() time.Time { return now }
	u := mustCreate(t, s, &User{Name: " Alice ", PasswordHash: "$argon2id$x", Admin: true})
	if u.Name != "alice" {
		t.Errorf("Name = %q, want %q", u.Name, "alice")
	}
	if len(u.ID) != 24 || u.ID[:2] != "u_" {
		t.Errorf("ID = %q, want u_ and 22 base64url characters", u.ID)
	}
	if !u.Created.Equal(now) {
		t.Errorf("Created = %v, want %v", u.Created, now)
	}
	for _, name := range []string{"alice", "ALICE", "\talice"} {
		got, err := s.ByName(t.Context(), name)
		if err != nil || !reflect.DeepEqual(got, u) {
			t.Errorf("ByName(%q) = %+v, %v; want %+v", name, got, err, u)
		}
	}
	got, err := s.ByID(t.Context(), u.ID)
	if err != nil || !reflect.DeepEqual(got, u) {
		t.Errorf("ByID(%q) = %+v, %v; want %+v", u.ID, got, err, u)
	}
	if n, err := s.Count(t.Context()); n != 1 || err != nil {
		t.Errorf("Count() = %d, %v; want 1, nil", n, err)
	}
}

func TestCreateErrors(t *testing.T) {
	s := newStore(t)
	mustCreate(t, s, &User{Name: "alice"})
	tests := []struct {
		name string
		want error
	}{
		{"alice", ErrExists},
		{"ALICE", ErrExists},
		{"\u212Aelvin", nil},
		{"kelvin", ErrExists},
		{"", ErrInvalidName},
		{"a b", ErrInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &User{Name: tt.name}
			if err := s.Create(t.Context(), u); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Create(%q) = %v, want %v", tt.name, err, tt.want)
			}
			if tt.want != nil && u.ID != "" {
				t.Errorf("Create(%q) failed but set ID %q", tt.name, u.ID)
			}
		})
	}
	if n, err := s.Count(t.Context()); n != 2 || err != nil {
		t.Errorf("Count() = %d, %v; want 2, nil", n, err)
	}
}

func TestNotFound(t *testing.T) {
	s := newStore(t)
	mustCreate(t, s, &User{Name: "alice"})
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
	}{
		{"ByName unknown", func() error { _, err := s.ByName(ctx, "bob"); return err }},
		{"ByName invalid", func() error { _, err := s.ByName(ctx, "no such/name"); return err }},
		{"ByID unknown", func() error { _, err := s.ByID(ctx, "u_nope"); return err }},
		{"SetPassword unknown", func() error { return s.SetPassword(ctx, "u_nope", "h") }},
		{"SetDisabled unknown", func() error { return s.SetDisabled(ctx, "u_nope", true) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, ErrNotFound) {
				t.Fatalf("got %v, want ErrNotFound", err)
			}
		})
	}
}

func TestUpdates(t *testing.T) {
	s := newStore(t)
	u := mustCreate(t, s, &User{Name: "alice", PasswordHash: "old"})
	ctx := t.Context()
	if err := s.SetPassword(ctx, u.ID, "new"); err != nil {
		t.Fatal(err)
	}
	for _, disabled := range []bool{true, true, false} {
		if err := s.SetDisabled(ctx, u.ID, disabled); err != nil {
			t.Fatalf("SetDisabled(%v): %v", disabled, err)
		}
		got, err := s.ByID(ctx, u.ID)
		if err != nil || got.Disabled != disabled || got.PasswordHash != "new" {
			t.Fatalf("after SetDisabled(%v): got %+v, %v; want disabled %v, hash %q", disabled, got, err, disabled, "new")
		}
	}
}

func TestListOrderedByName(t *testing.T) {
	s := newStore(t)
	for _, name := range []string{"carol", "Alice", "bob"} {
		mustCreate(t, s, &User{Name: name})
	}
	users, err := s.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range users {
		got = append(got, u.Name)
	}
	if want := []string{"alice", "bob", "carol"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List() names = %v, want %v", got, want)
	}
}

func TestSecret(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	a, err := s.Secret(ctx, "csrf", 32)
	if err != nil || len(a) != 32 {
		t.Fatalf("Secret(csrf, 32) = %x, %v; want 32 bytes", a, err)
	}
	again, err := s.Secret(ctx, "csrf", 32)
	if err != nil || string(again) != string(a) {
		t.Fatalf("second Secret(csrf, 32) = %x, %v; want %x", again, err, a)
	}
	other, err := s.Secret(ctx, "other", 32)
	if err != nil || string(other) == string(a) {
		t.Fatalf("Secret(other, 32) = %x, %v; want fresh bytes", other, err)
	}
	if _, err := s.Secret(ctx, "csrf", 16); err == nil {
		t.Fatal("Secret(csrf, 16) after Secret(csrf, 32): got no error, want one")
	}
	if _, err := s.Secret(ctx, "zero", 0); err == nil {
		t.Fatal("Secret(zero, 0): got no error, want one")
	}
}

// Concurrent first calls from two connections pools on one file (as from
// two processes) must agree on the secret.
func TestSecretConcurrentFirstCalls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tether.db")
	var stores [2]*SQLite
	for i := range stores {
		s, err := NewSQLite(t.Context(), testkit.OpenSQLite(t, path))
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	const callers = 8
	secrets := make([][]byte, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { secrets[i], errs[i] = stores[i%2].Secret(t.Context(), "csrf", 32) })
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || string(secrets[i]) != string(secrets[0]) {
			t.Errorf("caller %d: got %x, %v; want %x", i, secrets[i], errs[i], secrets[0])
		}
	}
}

// Two processes creating the same name at once: exactly one wins.
func TestCreateRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tether.db")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		s, err := NewSQLite(t.Context(), testkit.OpenSQLite(t, path))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { errs[i] = s.Create(context.Background(), &User{Name: "alice"}) })
	}
	wg.Wait()
	var won int
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrExists):
			t.Errorf("creator %d: got %v, want nil or ErrExists", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("got %d successful creations, want 1", won)
	}
}
