package main

import (
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// MISC-04: the dependencies linked into tether stay past their known
// advisories, and gorilla/csrf (CVE-2025-47909, unfixed) is never one.
// Both JOSE libraries must be linked (token signs and verifies with
// golang-jwt, keys reads and writes JWKs with go-jose), so the minimums
// are checked, never skipped for a library that went missing.
func TestMISC04_DependenciesPastAdvisories(t *testing.T) {
	minimum := map[string]string{
		"github.com/golang-jwt/jwt/v5":  "v5.2.2",
		"github.com/go-jose/go-jose/v4": "v4.1.4",
	}
	banned := []string{"github.com/gorilla/csrf"}

	info, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build info in the test binary")
	}
	sawSQLite := false // proves the list is the real one, not empty
	linked := map[string]bool{}
	for _, dep := range info.Deps {
		sawSQLite = sawSQLite || dep.Path == "modernc.org/sqlite"
		linked[dep.Path] = true
		if dep.Replace != nil {
			dep = dep.Replace
		}
		for _, b := range banned {
			if dep.Path == b {
				t.Errorf("%s is a dependency; it has an unfixed advisory", b)
			}
		}
		if min, ok := minimum[dep.Path]; ok && semverLess(dep.Version, min) {
			t.Errorf("%s %s is older than %s, which fixes a known advisory", dep.Path, dep.Version, min)
		}
	}
	if !sawSQLite {
		t.Fatal("build info lists no modernc.org/sqlite: the dependency list is not the binary's")
	}
	for path := range minimum {
		if !linked[path] {
			t.Errorf("%s is not linked: token and keys are built on it", path)
		}
	}
}

// semverLess compares the major.minor.patch of two vX.Y.Z versions; a
// pre-release or malformed version counts as older.
func semverLess(a, b string) bool {
	pa, pb := semverParts(a), semverParts(b)
	if pa == nil || pb == nil {
		return true
	}
	for i := range 3 {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return false
}

func semverParts(v string) []int {
	fields := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if len(fields) != 3 {
		return nil
	}
	parts := make([]int, 3)
	for i, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil
		}
		parts[i] = n
	}
	return parts
}

func TestSemverLess(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"v5.2.1", "v5.2.2", true},
		{"v5.2.2", "v5.2.2", false},
		{"v5.3.0", "v5.2.2", false},
		{"v5.10.0", "v5.9.9", false},
		{"v4.1.4-rc1", "v4.1.4", true},
		{"garbage", "v4.1.4", true},
	}
	for _, tt := range tests {
		if got := semverLess(tt.a, tt.b); got != tt.want {
			t.Errorf("semverLess(%q, %q): got %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
