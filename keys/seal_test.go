package keys

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

var masterKeyCases = []struct {
	name string
	in   string
	ok   bool
}{
	{"valid", "qgVx3kNhoGy3oVl0Hq5S8cYhR1hcXk5JqT0G2dFbY-A", true},
	{"trailing newline", "qgVx3kNhoGy3oVl0Hq5S8cYhR1hcXk5JqT0G2dFbY-A\n", true},
	{"surrounding spaces", "  qgVx3kNhoGy3oVl0Hq5S8cYhR1hcXk5JqT0G2dFbY-A\t", true},
	{"padded", "qgVx3kNhoGy3oVl0Hq5S8cYhR1hcXk5JqT0G2dFbY-A=", false},
	{"standard base64", "qgVx3kNhoGy3oVl0Hq5S8cYhR1hcXk5JqT0G2dFbY+A", false},
	{"non-zero padding bits", "qgVx3kNhoGy3oVl0Hq5S8cYhR1hcXk5JqT0G2dFbY-B", false},
	{"too short", "qgVx3kNhoGy3oVl0Hq5S8cYhR1hcXk5JqT0G2dFbY-", false},
	{"too long", "qgVx3kNhoGy3oVl0Hq5S8cYhR1hcXk5JqT0G2dFbY-AA", false},
	{"16 bytes", "qgVx3kNhoGy3oVl0Hq5S8c", false},
	{"all zeros", strings.Repeat("A", 43), false},
	{"inner space", "qgVx3kNhoGy3oVl0Hq5S8cYh R1hcXk5JqT0G2dFbY-A", false},
	{"empty", "", false},
}

func TestParseMasterKey(t *testing.T) {
	for _, c := range masterKeyCases {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseMasterKey(c.in)
			if (err == nil) != c.ok || (m != nil) != c.ok {
				t.Fatalf("got %v, %v; want ok %v", m, err, c.ok)
			}
			if err != nil && !strings.Contains(err.Error(), MasterKeyEnv) {
				t.Errorf("error %q does not name %s", err, MasterKeyEnv)
			}
		})
	}
	if _, err := ParseMasterKey(NewMasterKey()); err != nil {
		t.Errorf("NewMasterKey: %v", err)
	}
}

func FuzzParseMasterKey(f *testing.F) {
	for _, c := range masterKeyCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		m, err := ParseMasterKey(in)
		if err != nil {
			return
		}
		if len(strings.TrimSpace(in)) != masterKeyLen {
			t.Fatalf("took %q", in)
		}
		if plain, err := m.open("k", m.seal("k", []byte("x"))); err != nil || string(plain) != "x" {
			t.Fatalf("seal and open: %q, %v", plain, err)
		}
	})
}

func TestKEY04_SealedAtRest(t *testing.T) {
	ctx := context.Background()
	st := NewMemoryStorage()
	master, _ := ParseMasterKey(NewMasterKey())
	r := newRing(t, st, Config{MasterKey: master})
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _, _ := st.Load(ctx)
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1", len(recs))
	}
	kid, _, signer, _ := r.SigningKey(ctx)
	der, _ := (&Key{priv: signer}).marshal()
	if !recs[0].Sealed || bytes.Contains(recs[0].Private, der) || recs[0].Kid != kid {
		t.Fatalf("record %+v: want sealed, without the PKCS#8 key", recs[0])
	}
	// Another node with the master key reads it.
	other := newRing(t, st, Config{MasterKey: master})
	if otherKid, _, _, err := other.SigningKey(ctx); err != nil || otherKid != kid {
		t.Fatalf("got %s, %v; want %s", otherKid, err, kid)
	}
}

func TestKEY04_SealedRingRefusedWithoutItsMasterKey(t *testing.T) {
	ctx := context.Background()
	st := NewMemoryStorage()
	master, _ := ParseMasterKey(NewMasterKey())
	if err := newRing(t, st, Config{MasterKey: master}).Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRing(ctx, st, Config{}); !errors.Is(err, ErrMasterKeyRequired) {
		t.Errorf("no master key: got %v, want ErrMasterKeyRequired", err)
	}
	wrong, _ := ParseMasterKey(NewMasterKey())
	if _, err := NewRing(ctx, st, Config{MasterKey: wrong}); !errors.Is(err, ErrMasterKeyWrong) {
		t.Errorf("another master key: got %v, want ErrMasterKeyWrong", err)
	}
}

// A sealed key copied into another record (another kid) does not open
// there: the kid is the seal's additional data.
func TestKEY04_SealedKeyBoundToItsKid(t *testing.T) {
	ctx := context.Background()
	st := NewMemoryStorage()
	master, _ := ParseMasterKey(NewMasterKey())
	r := newRing(t, st, Config{MasterKey: master})
	if err := r.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	recs, version, _ := st.Load(ctx)
	recs[0].Private = recs[1].Private
	if _, err := st.Save(ctx, version, recs[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRing(ctx, st, Config{MasterKey: master}); !errors.Is(err, ErrMasterKeyWrong) {
		t.Errorf("got %v, want ErrMasterKeyWrong", err)
	}
}

// Keys stored plain before a master key was configured are sealed by the
// next Maintain with one.
func TestKEY04_PlainKeysSealedOnceConfigured(t *testing.T) {
	ctx := context.Background()
	st := NewMemoryStorage()
	if err := newRing(t, st, Config{}).Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if recs, _, _ := st.Load(ctx); recs[0].Sealed {
		t.Fatal("sealed without a master key")
	}
	master, _ := ParseMasterKey(NewMasterKey())
	if err := newRing(t, st, Config{MasterKey: master}).Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if recs, _, _ := st.Load(ctx); len(recs) != 1 || !recs[0].Sealed {
		t.Fatalf("got %+v, want the one key sealed", recs)
	}
	if _, err := NewRing(ctx, st, Config{}); !errors.Is(err, ErrMasterKeyRequired) {
		t.Errorf("got %v, want ErrMasterKeyRequired", err)
	}
}
