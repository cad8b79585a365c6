// Package controlplane holds what the MeshInstall and MeshRevision
// controllers share: the dependencies of a controller that installs a
// mesh's control plane with Helm. Their phases stay in
// controllers/meshinstall and controllers/meshrevision.
package controlplane

import (
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/mesh"
)

// Deps are what a control-plane controller needs.
type Deps struct {
	client.Client
	// APIReader reads uncached (Secrets in the operator namespace: chart
	// credentials, generated identity).
	APIReader client.Reader
	// Registry resolves providers (fails closed).
	Registry *mesh.Registry
	// Helm installs and upgrades charts; one engine for both controllers
	// (one chart cache, per-release locks).
	Helm helm.Releaser
	// Events records an Event per write.
	Events events.EventRecorder
	// Clock is the controller's time.
	Clock clock.PassiveClock
	// OperatorNamespace holds chart credentials and generated identity
	// Secrets.
	OperatorNamespace string
}

// NewDeps builds the Deps of the named controller (its lower-case kind)
// from mgr, installing with h. Every error of h has the userinfo of its
// URLs redacted (helm.Redacting) before it reaches a condition, an Event
// or a log.
func NewDeps(mgr *manager.Manager, h helm.Releaser, name string) Deps {
	return Deps{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Registry: mgr.Registry, Helm: helm.Redacting(h),
		Events: mgr.EventRecorder(name), Clock: mgr.Clock, OperatorNamespace: mgr.Options.OperatorNamespace,
	}
}
