package e2e

import (
	"fmt"
	"os"
	"testing"
)

// concurrent is how many end-to-end tests run at once. Each starts its own
// simulated cluster and mostly waits on it; one at a time, the package
// took 14 minutes of a CI run on two cores. TestCanary, which bounds a
// rollback to 1 s, runs alone before the others (it does not call
// parallel).
const concurrent = 3

var slots = make(chan struct{}, concurrent)

// parallel runs t beside the other parallel tests, at most concurrent at
// once.
func parallel(t *testing.T) {
	t.Helper()
	t.Parallel()
	slots <- struct{}{}
	t.Cleanup(func() { <-slots })
}

// TestMain gives every manager of the package one Helm cache directory:
// testenv.StartManager sets a directory per test with t.Setenv only when
// none is set, which a parallel test may not.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meshplane-e2e-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = os.Setenv("MESHPLANE_CACHE_DIR", dir)
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
