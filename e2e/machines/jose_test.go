package machines

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/testkit"
	"github.com/tetherauth/tether/internal/testkit/proc"
)

// npmTimeout bounds npm ci, which downloads jose from the npm registry
// (into npm's cache, the first time).
const npmTimeout = 3 * time.Minute

// nodeTimeout bounds one run of verify.mjs, whose JWKS fetch has its own
// deadline of 10 s.
const nodeTimeout = 30 * time.Second

// A jose is testdata/verify.mjs, installed with its pinned jose in dir.
type jose struct {
	node, npm, dir string
}

// needNode finds node and npm; without them the test skips, or fails
// under TETHER_TEST_REQUIRE_SERVICES=1.
func needNode(t *testing.T) *jose {
	t.Helper()
	node, err := exec.LookPath("node")
	testkit.NeedService(t, "Node.js (apt-get install -y nodejs)", err)
	npm, err := exec.LookPath("npm")
	testkit.NeedService(t, "npm (apt-get install -y npm)", err)
	return &jose{node: node, npm: npm}
}

// install installs testdata's package (jose, at the version its
// package-lock.json pins) into a directory of the run with npm ci. When
// npm ci fails (no registry), the test skips, or fails under
// TETHER_TEST_REQUIRE_SERVICES=1.
func (j *jose) install(t *testing.T, h *harness) {
	t.Helper()
	dir := filepath.Join(h.run.Dir, "jose")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"package.json", "package-lock.json", "verify.mjs"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, j.npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir, cmd.Env = dir, proc.CleanEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		testkit.NeedService(t, "jose from the npm registry (npm ci)", errors.New(strings.TrimSpace(err.Error()+"\n"+string(out))))
	}
	j.dir = dir
}

// A verdict is what verify.mjs printed.
type verdict struct {
	OK       bool   `json:"ok"`
	Sub      string `json:"sub"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Kid      string `json:"kid"`
	Code     string `json:"code"`
	Message  string `json:"message"`
}

// verify runs verify.mjs on tok: jose's jwtVerify, with a key set fetched
// afresh from jwksURL, the issuer, the audience, typ at+jwt and EdDSA.
func (j *jose) verify(t *testing.T, jwksURL, issuer, audience, tok string) verdict {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, j.node, "verify.mjs", jwksURL, issuer, audience)
	cmd.Dir, cmd.Env = j.dir, proc.CleanEnv()
	cmd.Stdin = strings.NewReader(tok) // not an argument: a token has no place in the process list
	out, err := cmd.Output()
	var v verdict
	if err == nil {
		err = json.Unmarshal(out, &v)
	}
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node verify.mjs: %v\n%s%s", err, out, stderr)
	}
	return v
}

// TestJoseVerifies: Node's jose verifies a token of tether's with the key
// set at the jwks_uri of tether's metadata, checking issuer, audience,
// typ at+jwt and the algorithm EdDSA; it refuses the token for another
// audience, and once `tether keys retire KID --now` has taken the token's
// key out of the JWKS (tether's ring reads the change within its refresh,
// 5 s), a fresh fetch of the key set no longer verifies it; the next
// token, signed with a new key, verifies.
func TestJoseVerifies(t *testing.T) {
	j := needNode(t)
	h := newHarness(t, sessionsInSQLite)
	j.install(t, h)
	secret := h.addClient(t, "reports", whoamiScope)
	cc, ctx := h.credentials(t, "reports", secret, whoamiScope)
	tok := token(t, ctx, cc)
	jwks := h.metadata(t).JWKSURI

	v := j.verify(t, jwks, h.url, apiAudience, tok)
	if !v.OK || v.Sub != "client:reports" || v.ClientID != "reports" || v.Scope != whoamiScope || v.Kid == "" {
		t.Fatalf("jose: got %+v, want the token of client:reports verified", v)
	}
	for _, tt := range []struct{ name, issuer, audience, code string }{
		{"another audience", h.url, "https://other.example.com", "ERR_JWT_CLAIM_VALIDATION_FAILED"},
		{"another issuer", "https://auth.example.com", apiAudience, "ERR_JWT_CLAIM_VALIDATION_FAILED"},
	} {
		if got := j.verify(t, jwks, tt.issuer, tt.audience, tok); got.OK || got.Code != tt.code {
			t.Errorf("%s: jose said %+v, want %s", tt.name, got, tt.code)
		}
	}

	retired := v.Kid
	out := h.cli(t, "keys", "retire", retired, "--now")
	if !strings.Contains(out, "removed key "+retired) {
		t.Fatalf("tether keys retire %s --now: %s", retired, out)
	}
	var last verdict
	took := testkit.WaitFor(t, "jose to refuse a token whose key was retired --now", func() bool {
		last = j.verify(t, jwks, h.url, apiAudience, tok)
		return !last.OK
	})
	if last.Code != "ERR_JWKS_NO_MATCHING_KEY" {
		t.Errorf("jose refused the token with %+v, want ERR_JWKS_NO_MATCHING_KEY", last)
	}
	record(t, "Node's jose refused a token %v after tether keys retire %s --now (a fresh JWKS fetch each time; tether reads its ring every 5 s)", ms(took), retired)

	// tether signs with another key, which jose finds in the JWKS.
	if v := j.verify(t, jwks, h.url, apiAudience, token(t, ctx, cc)); !v.OK || v.Kid == retired {
		t.Errorf("a token issued after the removal: jose said %+v, want it verified, with another key", v)
	}
}
