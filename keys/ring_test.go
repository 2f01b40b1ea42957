package keys

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// newRing is a ring over st with cfg, on a fixed clock unless cfg has one.
func newRing(t *testing.T, st Storage, cfg Config) *Ring {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = testkit.NewClock(t0).Now
	}
	r, err := NewRing(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// jwksKids is what the ring's JWKS holds now, checked by ParseJWKS.
func jwksKids(t *testing.T, r *Ring) []string {
	t.Helper()
	out, err := r.JWKS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	keys, skipped, err := ParseJWKS(out)
	if err != nil || len(skipped) > 0 {
		t.Fatalf("the ring's JWKS %s: %v, %v", out, skipped, err)
	}
	var kids []string
	for _, k := range keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

func signingKid(t *testing.T, r *Ring) string {
	t.Helper()
	kid, _, _, err := r.SigningKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

func TestKEY02_RotationTimeline(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(t0)
	st := NewMemoryStorage()
	cfg := Config{CacheLifetime: 15 * time.Minute, MaxTokenTTL: time.Hour, RotateEvery: 720 * time.Hour, Now: clk.Now}
	r := newRing(t, st, cfg)
	if _, _, _, err := r.SigningKey(ctx); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("a new ring: got %v, want ErrNoSigningKey", err)
	}
	if _, version, _ := st.Load(ctx); version != 0 {
		t.Fatal("NewRing wrote to the storage")
	}

	// The first key signs at once.
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	a := signingKid(t, r)
	step := func(name string, wantSigner string, wantJWKS ...string) {
		t.Helper()
		if err := r.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
		if got := signingKid(t, r); got != wantSigner {
			t.Errorf("%s: signs with %s, want %s", name, got, wantSigner)
		}
		if got := jwksKids(t, r); !slices.Equal(got, wantJWKS) {
			t.Errorf("%s: JWKS %v, want %v", name, got, wantJWKS)
		}
	}
	step("first key", a, a)

	// Not due until the new key can be published a cache lifetime ahead.
	clk.Advance(720*time.Hour - 15*time.Minute - time.Second)
	step("just before due", a, a)
	clk.Advance(time.Second)
	if !r.Due(clk.Now()) {
		t.Fatal("not due")
	}
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	infos, _ := r.List(ctx)
	if len(infos) != 2 || infos[1].State != Pending || infos[0].State != Signing {
		t.Fatalf("after the rotation: %+v", infos)
	}
	b := infos[1].Kid
	step("b published, a signs", a, a, b)
	if _, _, err := r.PublicKey(ctx, b); err != nil {
		t.Errorf("a published key does not verify: %v", err)
	}

	clk.Advance(15*time.Minute - time.Second)
	step("b still waits", a, a, b)
	clk.Advance(time.Second)
	step("b signs, a published for its tokens", b, a, b)

	// a's last token, signed just before b took over, lives MaxTokenTTL and
	// may be accepted MaxLeeway after.
	clk.Advance(time.Hour + MaxLeeway - time.Second)
	step("a's last token still verifies", b, a, b)
	if _, _, err := r.PublicKey(ctx, a); err != nil {
		t.Errorf("a: %v", err)
	}
	clk.Advance(time.Second)
	step("a removed", b, b)
	if _, key, err := r.PublicKey(ctx, a); key != nil || err != nil {
		t.Errorf("a after removal: got %v, %v; want no key and no error (token.KeySet)", key, err)
	}
	recs, _, _ := st.Load(ctx)
	for _, rec := range recs {
		if rec.Kid == a && len(rec.Private) > 0 {
			t.Error("a's private key outlived its removal")
		}
	}
	infos, _ = r.List(ctx)
	if infos[0].State != Removed || infos[1].State != Signing {
		t.Errorf("at the end: %+v", infos)
	}
}

func TestKEY02_RetireNow(t *testing.T) {
	ctx := context.Background()
	st := NewMemoryStorage()
	r := newRing(t, st, Config{})
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	a := signingKid(t, r)
	b, err := r.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Retire(ctx, a, true); err != nil {
		t.Fatal(err)
	}
	if got := jwksKids(t, r); !slices.Equal(got, []string{b}) {
		t.Errorf("JWKS %v, want only %s", got, b)
	}
	if got := signingKid(t, r); got != b {
		t.Errorf("signs with %s, want the waiting key %s", got, b)
	}
	if _, key, err := r.PublicKey(ctx, a); key != nil || err != nil {
		t.Errorf("got %v, %v; want no key and no error (token.KeySet)", key, err)
	}
	recs, _, _ := st.Load(ctx)
	if i := indexOf(recs, a); len(recs[i].Private) > 0 {
		t.Error("the private key of a key removed at once was kept")
	}
	// The last key may go too: then nothing signs until a rotation.
	if err := r.Retire(ctx, b, true); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.SigningKey(ctx); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("got %v, want ErrNoSigningKey", err)
	}
	if got := jwksKids(t, r); len(got) != 0 {
		t.Errorf("JWKS %v, want empty", got)
	}
	c, err := r.Rotate(ctx)
	if err != nil || signingKid(t, r) != c {
		t.Errorf("after a rotation: %v, want %s to sign", err, c)
	}
	if err := r.Retire(ctx, a, true); err != nil {
		t.Errorf("retiring a removed key: %v", err)
	}
	if err := r.Retire(ctx, "nope", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
}

func TestKEY02_RetireKeepsTokensVerifiable(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(t0)
	r := newRing(t, NewMemoryStorage(), Config{Now: clk.Now})
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	a := signingKid(t, r)
	if err := r.Retire(ctx, a, false); !errors.Is(err, ErrLastKey) {
		t.Fatalf("the only key: got %v, want ErrLastKey", err)
	}
	b, err := r.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Retire(ctx, a, false); !errors.Is(err, ErrLastKey) {
		t.Fatalf("with the new key waiting: got %v, want ErrLastKey", err)
	}
	if _, err := r.Rotate(ctx); !errors.Is(err, ErrRotationPending) {
		t.Errorf("a second rotation: got %v, want ErrRotationPending", err)
	}
	clk.Advance(r.MaxAge())
	c, err := r.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// b signs; retiring it hands over to c early? No: c waits, so refused.
	if err := r.Retire(ctx, b, false); !errors.Is(err, ErrLastKey) {
		t.Errorf("got %v, want ErrLastKey", err)
	}
	clk.Advance(r.MaxAge())
	if err := r.Retire(ctx, b, false); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour + MaxLeeway - time.Second)
	if got := jwksKids(t, r); !slices.Equal(got, []string{b, c}) {
		t.Errorf("JWKS %v, want %v", got, []string{b, c})
	}
	clk.Advance(time.Second)
	if got := jwksKids(t, r); !slices.Equal(got, []string{c}) {
		t.Errorf("JWKS %v, want %v", got, []string{c})
	}
}

func TestRingImport(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(t0)
	r := newRing(t, NewMemoryStorage(), Config{Now: clk.Now})
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	k, err := ParsePEM(pemCases(t)[2].in) // P-256 in SEC 1
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Import(ctx, k); err != nil {
		t.Fatal(err)
	}
	clk.Advance(r.MaxAge())
	kid, alg, signer, err := r.SigningKey(ctx)
	if err != nil || kid != k.Kid() || alg != ES256 {
		t.Fatalf("got %s %s %v, want the imported key", kid, alg, err)
	}
	sum := sha256.Sum256([]byte("x"))
	sig, _ := signer.Sign(rand.Reader, sum[:], nil)
	if alg, pub, err := r.PublicKey(ctx, kid); err != nil || alg != ES256 || !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sum[:], sig) {
		t.Errorf("the imported key does not verify its signature: %v", err)
	}
	clk.Advance(r.MaxAge())
	if err := r.Import(ctx, k); !errors.Is(err, ErrKeyExists) {
		t.Errorf("imported twice: got %v, want ErrKeyExists", err)
	}
}

func TestRingSignsAndVerifiesEdDSA(t *testing.T) {
	ctx := context.Background()
	r := newRing(t, NewMemoryStorage(), Config{})
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	kid, alg, signer, err := r.SigningKey(ctx)
	if err != nil || alg != EdDSA {
		t.Fatalf("got %s, %v", alg, err)
	}
	sig := ed25519.Sign(signer.(ed25519.PrivateKey), []byte("x"))
	if alg, pub, err := r.PublicKey(ctx, kid); err != nil || alg != EdDSA || !ed25519.Verify(pub.(ed25519.PublicKey), []byte("x"), sig) {
		t.Errorf("does not verify: %v", err)
	}
}

// hookStorage runs beforeSave (once) before each Save reaches the storage.
type hookStorage struct {
	Storage
	once       sync.Once
	beforeSave func()
}

func (h *hookStorage) Save(ctx context.Context, version uint64, recs []Record) (uint64, error) {
	h.once.Do(h.beforeSave)
	return h.Storage.Save(ctx, version, recs)
}

// Two nodes decide on the same scheduled rotation at once: node 2 saves
// between node 1's read and node 1's write. One key is added, not two.
func TestKEY02_TwoNodesOneRotation(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(t0)
	mem := NewMemoryStorage()
	cfg := Config{Now: clk.Now}
	first := newRing(t, mem, cfg)
	if err := first.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(720 * time.Hour)

	for _, name := range []string{"Maintain", "Rotate"} {
		t.Run(name, func(t *testing.T) {
			st := &hookStorage{Storage: mem}
			node1 := newRing(t, st, cfg)
			node2 := newRing(t, mem, cfg)
			var node2Err error
			st.beforeSave = func() {
				if name == "Maintain" {
					node2Err = node2.Maintain(ctx)
				} else {
					_, node2Err = node2.Rotate(ctx)
				}
			}
			before, _, _ := mem.Load(ctx)
			var err error
			if name == "Maintain" {
				err = node1.Maintain(ctx)
			} else {
				_, err = node1.Rotate(ctx)
				if !errors.Is(err, ErrRotationPending) {
					t.Errorf("node 1: got %v, want ErrRotationPending", err)
				}
				err = nil
			}
			if err != nil || node2Err != nil {
				t.Fatalf("node 1: %v, node 2: %v", err, node2Err)
			}
			after, _, _ := mem.Load(ctx)
			if len(after) != len(before)+1 {
				t.Fatalf("%d keys added, want 1", len(after)-len(before))
			}
			if k1, k2 := signingKid(t, node1), signingKid(t, node2); k1 != k2 {
				t.Errorf("the nodes sign with %s and %s", k1, k2)
			}
			clk.Advance(720 * time.Hour)
		})
	}
}

func TestNewRingRefusesConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Alg: "RS256"},
		{Alg: "none"},
		{CacheLifetime: -time.Second},
		{MaxTokenTTL: -time.Second},
		{RotateEvery: time.Hour, CacheLifetime: 2 * time.Hour},
	} {
		if _, err := NewRing(context.Background(), NewMemoryStorage(), cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

// A wall clock stepping back does not bring a removed key back: its
// private key is gone, and the ring serves none of it.
func TestRingClockStepsBack(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(t0)
	r := newRing(t, NewMemoryStorage(), Config{Now: clk.Now})
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	a := signingKid(t, r)
	if err := r.Retire(ctx, a, true); err != nil {
		t.Fatal(err)
	}
	clk.Advance(-time.Second)
	if _, _, _, err := r.SigningKey(ctx); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("got %v, want ErrNoSigningKey", err)
	}
	if got := jwksKids(t, r); len(got) != 0 {
		t.Errorf("JWKS %v, want empty", got)
	}
}

// KEY-02: MaintainReport says what the schedule changed (for the audit
// log): the key it added, the private keys it destroyed, the keys it
// sealed; a run that changed nothing reports nothing.
func TestKEY02_MaintainReport(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(t0)
	st := NewMemoryStorage()
	cfg := Config{CacheLifetime: 15 * time.Minute, MaxTokenTTL: time.Hour, RotateEvery: 720 * time.Hour, Now: clk.Now}
	run := func(r *Ring, name string, want Maintenance) Maintenance {
		t.Helper()
		got, err := r.MaintainReport(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want.Added == "?" {
			want.Added = got.Added
		}
		if got.Added == "" && want.Added != "" || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
		return got
	}
	r := newRing(t, st, cfg)
	a := run(r, "first key", Maintenance{Added: "?"}).Added
	if a == "" || a != signingKid(t, r) {
		t.Fatalf("reported %q, signs with %s", a, signingKid(t, r))
	}
	run(r, "nothing due", Maintenance{})
	clk.Advance(720*time.Hour - 15*time.Minute)
	b := run(r, "due", Maintenance{Added: "?"}).Added
	if b == "" || b == a {
		t.Fatalf("rotation reported %q", b)
	}
	clk.Advance(15*time.Minute + time.Hour + MaxLeeway)
	run(r, "a removed", Maintenance{Destroyed: []string{a}})

	master, _ := ParseMasterKey(NewMasterKey())
	cfg.MasterKey = master
	run(newRing(t, st, cfg), "sealed", Maintenance{Sealed: []string{b}})
}

// Loaded answers from what the ring loaded, reading no storage: a key
// another node's ring added shows after a Reload (List does one).
func TestLoadedReadsNoStorage(t *testing.T) {
	ctx := context.Background()
	st := NewMemoryStorage()
	r, other := newRing(t, st, Config{}), newRing(t, st, Config{})
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := other.Loaded(); len(got) != 0 {
		t.Fatalf("before a reload: got %+v, want no key", got)
	}
	infos, err := other.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := other.Loaded(); !slices.Equal(got, infos) || len(got) != 1 || got[0].State != Signing || !got[0].Created.Equal(t0) {
		t.Errorf("after List: got %+v, want %+v: one signing key created at %v", got, infos, t0)
	}
}

// KEY-04: Describe reports a sealed ring without the master key: the
// keys as List shows them, and the schedule by Due's rule (the next key
// is added from NextRotation on, none while one waits or when rotation
// is on demand only).
func TestKEY04_DescribeNeedsNoMasterKey(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock(t0)
	st := NewMemoryStorage()
	master, _ := ParseMasterKey(NewMasterKey())
	cfg := Config{CacheLifetime: 15 * time.Minute, RotateEvery: 720 * time.Hour, MasterKey: master, Now: clk.Now}
	r := newRing(t, st, cfg)
	plain := cfg
	plain.MasterKey = nil
	d, err := Describe(ctx, st, plain)
	if err != nil || len(d.Keys) != 0 || !d.NextRotation.Equal(t0) {
		t.Errorf("an empty ring: got %+v, %v; want no key, a rotation due now", d, err)
	}
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRing(ctx, st, plain); !errors.Is(err, ErrMasterKeyRequired) {
		t.Fatalf("NewRing without the master key: got %v, want ErrMasterKeyRequired", err)
	}
	for _, step := range []struct {
		name    string
		advance time.Duration
		due     bool
	}{
		{"a new key", 0, false},
		{"just before due", 720*time.Hour - 15*time.Minute - time.Second, false},
		{"due", time.Second, true},
	} {
		clk.Advance(step.advance)
		d, err := Describe(ctx, st, plain)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		list, err := r.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(d.Keys, list) || !d.Keys[0].Sealed {
			t.Errorf("%s: got %+v, want what List shows, sealed: %+v", step.name, d.Keys, list)
		}
		if got := !clk.Now().Before(d.NextRotation); got != step.due || got != r.Due(clk.Now()) {
			t.Errorf("%s: next rotation %v, due %v; want due %v (Due %v)", step.name, d.NextRotation, got, step.due, r.Due(clk.Now()))
		}
	}
	if _, err := r.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if d, err := Describe(ctx, st, plain); err != nil || !d.NextRotation.IsZero() {
		t.Errorf("a key waiting: got next rotation %v, %v; want none", d.NextRotation, err)
	}
}
