// Package harness runs Meshplane's manager with every controller from
// controllers/setup against a test cluster, for the end-to-end suites. It
// is test/testenv plus the controllers; a controller's own tests use
// testenv directly (importing setup from there would be an import cycle).
package harness

import (
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/meshplane/meshplane/controllers/setup"
	"github.com/meshplane/meshplane/test/testenv"
)

// OperatorNamespace is the operator namespace of managers started here.
const OperatorNamespace = testenv.OperatorNamespace

// Manager is a running manager.
type Manager = testenv.Manager

// StartManager builds the manager with every controller, creates the
// operator namespace and runs it until the test ends.
func StartManager(t testing.TB, cfg *rest.Config) *Manager {
	t.Helper()
	o := testenv.ManagerOptions{}
	o.Options.SyncPeriod = 10 * time.Minute
	return testenv.StartManager(t, cfg, o, setup.All)
}

// Eventually polls check every 100ms until it returns nil or timeout
// passes, then fails the test with the last error.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	testenv.Eventually(t, timeout, what, check)
}

// Errorf is fmt.Errorf, for checks.
var Errorf = testenv.Errorf
