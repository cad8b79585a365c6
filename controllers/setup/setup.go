// Package setup is the one list of Meshplane's controllers. cmd/manager,
// the end-to-end tests and the demo all register controllers through it,
// so a test never runs a different set than the operator.
package setup

import (
	"fmt"
	"os"
	"path/filepath"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/meshplane/meshplane/controllers/breakglass"
	"github.com/meshplane/meshplane/controllers/canary"
	"github.com/meshplane/meshplane/controllers/egresspolicy"
	"github.com/meshplane/meshplane/controllers/ingressgateway"
	"github.com/meshplane/meshplane/controllers/meshadoption"
	"github.com/meshplane/meshplane/controllers/meshfederation"
	"github.com/meshplane/meshplane/controllers/meshinstall"
	"github.com/meshplane/meshplane/controllers/meshrevision"
	"github.com/meshplane/meshplane/controllers/proxypolicy"
	"github.com/meshplane/meshplane/controllers/resiliencepolicy"
	"github.com/meshplane/meshplane/controllers/telemetrypolicy"
	"github.com/meshplane/meshplane/controllers/trafficsplit"
	"github.com/meshplane/meshplane/controllers/zerotrustpolicy"
	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/internal/manager"
)

// Controller registers one reconciler (or a few sharing state) with the
// manager.
type Controller struct {
	// Name describes the controller in errors.
	Name string
	// Kinds are the kinds it reconciles; Name alone when empty.
	Kinds []string
	// Setup adds the controller to mgr.
	Setup func(mgr *manager.Manager) error
}

// ReconciledKinds lists every kind a controller in Controllers reconciles.
func ReconciledKinds() []string {
	var out []string
	for _, c := range Controllers {
		if len(c.Kinds) == 0 {
			out = append(out, c.Name)
			continue
		}
		out = append(out, c.Kinds...)
	}
	return out
}

// Controllers lists every controller, one entry per kind.
var Controllers = []Controller{
	// Each kind's controller registers itself here as it lands.
	{Name: "MeshInstall and MeshRevision", Kinds: []string{"MeshInstall", "MeshRevision"}, Setup: setupInstall},
	{Name: "MeshFederation", Setup: meshfederation.Setup},
	{Name: "TrafficSplit", Setup: trafficsplit.Setup},
	{Name: "ZeroTrustPolicy", Setup: zerotrustpolicy.Setup},
	{Name: "Canary", Setup: canary.Setup},
	{Name: "BreakGlass", Setup: breakglass.Setup},
	{Name: "TelemetryPolicy", Setup: telemetrypolicy.Setup},
	{Name: "MeshAdoption", Setup: meshadoption.Setup},
	{Name: "ResiliencePolicy", Setup: resiliencepolicy.Setup},
	{Name: "EgressPolicy", Setup: egresspolicy.Setup},
	{Name: "IngressGateway", Setup: ingressgateway.Setup},
	{Name: "ProxyPolicy", Setup: proxypolicy.Setup},
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

// setupInstall registers the MeshInstall and MeshRevision controllers with
// one shared Helm engine (its chart caches and per-release locks span both).
func setupInstall(mgr *manager.Manager) error {
	cacheDir := os.Getenv("MESHPLANE_CACHE_DIR")
	if cacheDir == "" {
		cacheDir = filepath.Join(os.TempDir(), "meshplane-helm")
	}
	engine, err := helm.New(mgr.GetConfig(), helm.Options{CacheDir: cacheDir, Logger: ctrl.Log.WithName("helm")})
	if err != nil {
		return err
	}
	if err := meshinstall.Setup(mgr, engine); err != nil {
		return err
	}
	return meshrevision.Setup(mgr, engine)
}
