package testkit

import (
	"os"
	"testing"
)

// RequireServicesEnv names the environment variable that turns a missing
// service from a skip into a failure; CI sets it to 1.
const RequireServicesEnv = "TETHER_TEST_REQUIRE_SERVICES"

// NeedService is for a test that needs a service (Redis, PostgreSQL, nginx,
// a browser): err says why the service can't be had. With err nil it does
// nothing; otherwise the test skips, saying what is missing, or fails when
// TETHER_TEST_REQUIRE_SERVICES=1.
func NeedService(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv(RequireServicesEnv) == "1" {
		t.Fatalf("%s is required (%s=1) but unavailable: %v", what, RequireServicesEnv, err)
	}
	t.Skipf("skipping: %s unavailable: %v (set %s=1 to fail instead)", what, err, RequireServicesEnv)
}

// SkipShort skips t under go test -short, saying why it is slow: a test
// that starts processes, a browser or a cluster, or hashes hundreds of
// passwords. go test -short ./... is the fast run; CI runs everything.
func SkipShort(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("skipping with -short: %s", why)
	}
}
