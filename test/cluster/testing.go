package cluster

import (
	"errors"
	"os"
	"testing"

	"k8s.io/client-go/rest"
)

// EnvCI is the environment variable CI systems set to "true". When it is,
// missing cluster binaries fail tests instead of skipping them.
const EnvCI = "CI"

// SkipOrFail ends the test for a non-nil err from a Start function: it skips
// when the cluster binaries are missing (ErrAssetsMissing) outside CI, and
// fails otherwise. In CI ($CI=true) missing binaries are a failure, so a
// broken `make test-assets` cannot make a suite pass by skipping it.
func SkipOrFail(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ErrAssetsMissing) && os.Getenv(EnvCI) != "true" {
		tb.Skipf("skipping: %v", err)
	}
	tb.Fatal(err)
}

// UseEnvtest starts an envtest API server for the test, stops it when the
// test ends, and returns its admin REST config. See SkipOrFail for what
// happens when binaries are missing.
func UseEnvtest(tb testing.TB, opts EnvtestOptions) *rest.Config {
	tb.Helper()
	return UseServer(tb, opts).Config
}

// UseServer is UseEnvtest returning the Server.
func UseServer(tb testing.TB, opts EnvtestOptions) *Server {
	tb.Helper()
	skipShort(tb)
	s, err := StartServer(opts)
	SkipOrFail(tb, err)
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("stopping envtest: %v", err)
		}
	})
	return s
}

// UseMulti starts n envtest API servers for the test and stops them when the
// test ends.
func UseMulti(tb testing.TB, n int, opts EnvtestOptions) *Multi {
	tb.Helper()
	skipShort(tb)
	m, err := StartMulti(n, opts)
	SkipOrFail(tb, err)
	tb.Cleanup(func() {
		if err := m.Stop(); err != nil {
			tb.Errorf("stopping envtest servers: %v", err)
		}
	})
	return m
}

// UseSimulated starts a simulated cluster for the test and stops it when the
// test ends. If the test failed, the cluster directory is kept and its
// location logged.
func UseSimulated(tb testing.TB, opts SimulatedOptions) *Simulated {
	tb.Helper()
	skipShort(tb)
	s, err := StartSimulated(opts)
	SkipOrFail(tb, err)
	tb.Cleanup(func() {
		if tb.Failed() {
			s.KeepDir = true
			tb.Logf("simulated cluster kept for inspection in %s (logs in %s/logs)", s.Dir, s.Dir)
		}
		if err := s.Stop(); err != nil {
			tb.Errorf("stopping simulated cluster: %v", err)
		}
	})
	return s
}

// skipShort skips tests that need a cluster under go test -short (make
// test-unit).
func skipShort(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs a cluster; skipped with -short")
	}
}
