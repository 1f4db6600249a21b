// Package e2e holds end-to-end tests: they build the real kumo binary,
// start `kumo serve` on a throwaway data directory and a free port, and
// drive it the way users do, with gophercloud and the openstack CLI.
//
// Run them with `go test ./test/e2e/`. KUMO_E2E_BIN names a prebuilt
// binary to use instead of building one. Tests that need something from
// the machine (the openstack CLI, PostgreSQL through
// KUMO_TEST_POSTGRES_DSN) skip without it, except under CI=true, where a
// missing dependency fails the test.
package e2e

// The tests run a binary they build themselves, so `go test` cannot see
// that they depend on the server's code. Importing the package that
// assembles the server makes every change to it (and to what it imports)
// invalidate cached e2e results.
import _ "github.com/kumo-cloud/kumo/internal/server"
