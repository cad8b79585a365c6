package linkerd

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshplane/meshplane/internal/mesh"
)

// release is a Linkerd stable release and the first edge release of its
// month, for feature gates.
type release struct {
	stable int
	// edgeYear and edgeMonth are the edge release (edge-YY.M.x) from which
	// the feature is present.
	edgeYear, edgeMonth int
}

var (
	// gammaRelease: 2.14 routes with gateway.networking.k8s.io HTTPRoute
	// with a Service parent (https://linkerd.io/2.14/features/httproute/).
	gammaRelease = release{stable: 14, edgeYear: 23, edgeMonth: 8}
	// annotationsRelease: 2.16 configures retries and timeouts with
	// retry.linkerd.io/timeout.linkerd.io annotations on HTTPRoutes
	// (https://linkerd.io/2.16/tasks/configuring-retries/).
	annotationsRelease = release{stable: 16, edgeYear: 24, edgeMonth: 8}
)

func (r release) String() string {
	return fmt.Sprintf("2.%d (edge-%d.%d)", r.stable, r.edgeYear, r.edgeMonth)
}

// atLeast reports whether Linkerd version v (2.N.x, stable-2.N.x,
// enterprise-2.N.x or edge-YY.M.x) has r's features. An unknown or
// unparsable version (a Linkerd installed outside Meshplane) is taken as
// current.
func atLeast(v string, r release) bool {
	if rest, ok := strings.CutPrefix(v, "edge-"); ok {
		var yy, m int
		if _, err := fmt.Sscanf(rest, "%d.%d", &yy, &m); err != nil {
			return true
		}
		return yy > r.edgeYear || (yy == r.edgeYear && m >= r.edgeMonth)
	}
	if i := strings.LastIndex(v, "-"); i >= 0 {
		v = v[i+1:]
	}
	var major, minor int
	if _, err := fmt.Sscanf(strings.TrimPrefix(v, "v"), "%d.%d", &major, &minor); err != nil {
		return true
	}
	return major > 2 || (major == 2 && minor >= r.stable)
}

// Conditions are Linkerd's version gates and the Gateway API CRDs its
// routing needs.
func (*Provider) Conditions() []mesh.Condition {
	return append([]mesh.Condition{
		versionGate(mesh.TrafficCapabilities, gammaRelease, "Gateway API HTTPRoute routing"),
		versionGate([]mesh.Capability{mesh.CapRequestTimeout, mesh.CapRetries, mesh.CapRetryPerTryTimeout, mesh.CapRetryConditions},
			annotationsRelease, "retry and timeout annotations"),
		{
			Capabilities: mesh.TrafficCapabilities,
			Doc:          "the Gateway API CRDs",
			Holds:        func(s mesh.Scope) bool { return s.Install.GatewayAPICRDs },
			Fix: func(mesh.Scope) string {
				return "install the Gateway API CRDs (HTTPRoute gateway.networking.k8s.io/v1 is not served)"
			},
		},
	}, append(egressConditions(), ingressCondition())...)
}

func versionGate(caps []mesh.Capability, r release, what string) mesh.Condition {
	return mesh.Condition{
		Capabilities: caps,
		Doc:          "Linkerd " + r.String() + " or later",
		Holds:        func(s mesh.Scope) bool { return atLeast(s.Install.Version, r) },
		Fix: func(s mesh.Scope) string {
			return fmt.Sprintf("upgrade MeshInstall %s to Linkerd %s or later (it runs %s, which has no %s)",
				s.Install.MeshInstall, r, s.Install.Version, what)
		},
	}
}

// DataPlane is Linkerd's proxy for every meshed namespace.
func (*Provider) DataPlane(ns *corev1.Namespace) mesh.NamespaceFacts {
	return mesh.NamespaceFacts{Name: ns.Name, Mode: mesh.LinkerdProxy}
}

var (
	_ mesh.Conditional        = (*Provider)(nil)
	_ mesh.DataPlaneDescriber = (*Provider)(nil)
)
