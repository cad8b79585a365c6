// Package setup is the one list of Meshplane's controllers. cmd/manager,
// the end-to-end tests and the demo all register controllers through it,
// so a test never runs a different set than the operator.
package setup

import (
	"fmt"

	"github.com/meshplane/meshplane/controllers/trafficsplit"
	"github.com/meshplane/meshplane/controllers/zerotrustpolicy"
	"github.com/meshplane/meshplane/internal/manager"
)

// Controller registers one reconciler with the manager.
type Controller struct {
	// Name is the kind the controller reconciles.
	Name string
	// Setup adds the controller to mgr.
	Setup func(mgr *manager.Manager) error
}

// Controllers lists every controller, one entry per kind.
var Controllers = []Controller{
	// Each kind's controller registers itself here as it lands.
	{Name: "TrafficSplit", Setup: trafficsplit.Setup},
	{Name: "ZeroTrustPolicy", Setup: zerotrustpolicy.Setup},
}

// All registers every controller with mgr.
func All(mgr *manager.Manager) error {
	for _, c := range Controllers {
		if err := c.Setup(mgr); err != nil {
			return fmt.Errorf("setting up the %s controller: %w", c.Name, err)
		}
	}
	return nil
}
