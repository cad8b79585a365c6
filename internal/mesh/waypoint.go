package mesh

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Waypoint is one waypoint proxy a MeshInstall asks its mesh to deploy.
type Waypoint struct {
	// Field is the spec path of the entry, for messages, e.g.
	// spec.istio.waypoints[0].
	Field string
	// Namespace the waypoint serves, and Name of its Gateway.
	Namespace, Name string
	// For is the traffic it handles (service, workload or all).
	For string
}

// WaypointInstaller is implemented by meshes whose MeshInstall deploys
// waypoint proxies (Istio ambient): per waypoint an object in the
// namespace and a namespace label that sends its traffic through it.
type WaypointInstaller interface {
	Installer
	DataPlaneDescriber
	// Waypoints reads the waypoints mi asks for.
	Waypoints(mi *meshv1alpha1.MeshInstall) []Waypoint
	// WaypointObject is the object that deploys w.
	WaypointObject(w Waypoint) client.Object
	// WaypointNamespaceLabel is the namespace label naming the waypoint
	// that serves the namespace.
	WaypointNamespaceLabel() string
	// WaypointProgrammed reads whether the mesh programmed w, and if not,
	// why (for status). A missing object is not programmed.
	WaypointProgrammed(ctx context.Context, r client.Reader, w Waypoint) (bool, string, error)
}
