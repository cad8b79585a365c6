package istio

import (
	"slices"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// waypointUseLabel names the waypoint that serves a namespace (or
// Service) in ambient mode.
const waypointUseLabel = "istio.io/use-waypoint"

// DataPlane tells sidecar from ambient the way NamespaceMembership does,
// and reads the namespace's waypoint.
func (p *Provider) DataPlane(ns *corev1.Namespace) mesh.NamespaceFacts {
	f := mesh.NamespaceFacts{Name: ns.Name, Mode: mesh.Sidecar}
	if p.NamespaceMembership(ns).Profile == meshv1alpha1.ProfileAmbient {
		f.Mode, f.Waypoint = mesh.Ambient, ns.Labels[waypointUseLabel]
	}
	return f
}

// Conditions are what Istio's capabilities depend on:
//   - In ambient mode, ztunnel enforces L4 only: routing
//     (VirtualService/HTTPRoute) and L7 authorization are enforced by a
//     waypoint proxy, and an ALLOW rule with L7 attributes bound to
//     ztunnel denies everything
//     (https://istio.io/latest/docs/ambient/usage/l4-policy/,
//     https://istio.io/latest/docs/ambient/usage/waypoint/).
//   - An ambient namespace needs an install with profile Ambient (ztunnel
//     and the CNI node agent); otherwise nothing enforces anything there.
//   - Gateway API output needs the Gateway API CRDs.
func (*Provider) Conditions() []mesh.Condition {
	l7 := append(slices.Clone(mesh.TrafficCapabilities), mesh.CapAllowHTTPMethodPath)
	all := append(slices.Clone(mesh.TrafficCapabilities), mesh.PolicyCapabilities...)
	return append([]mesh.Condition{
		{
			Capabilities: all,
			Doc:          "ambient namespaces: MeshInstall spec.profile Ambient",
			Holds: func(s mesh.Scope) bool {
				return s.Namespace.Mode != mesh.Ambient || s.Install.MeshInstall == "" || s.Install.Profile == meshv1alpha1.ProfileAmbient
			},
			Fix: func(s mesh.Scope) string {
				return "set spec.profile Ambient on MeshInstall " + s.Install.MeshInstall + " (namespace " + s.Namespace.Name +
					" is labelled " + DataplaneModeLabel + "=" + DataplaneModeAmbient + " but ztunnel is not installed)"
			},
		},
		{
			Capabilities: l7,
			Doc:          "ambient namespaces: a waypoint (" + waypointUseLabel + ") that serves the Service",
			// Listed for the capability document; decided by the ambient
			// translation (ambient.go), which reads the waypoints that exist
			// (Gateways of class istio-waypoint, the Services' own labels and
			// opt-outs), so its refusal names the Service or the rule and the
			// Gateway to create. A namespace label alone says too little.
			Holds: func(mesh.Scope) bool { return true },
			Fix:   func(mesh.Scope) string { return "" },
		},
		{
			Capabilities: []mesh.Capability{mesh.CapGatewayAPIOutput},
			Doc:          "the Gateway API CRDs",
			Holds:        func(s mesh.Scope) bool { return s.Install.GatewayAPICRDs },
			Fix: func(mesh.Scope) string {
				return "install the Gateway API CRDs (HTTPRoute gateway.networking.k8s.io/v1 is not served)"
			},
		},
		{
			// TelemetryPolicy: ztunnel produces no L7 telemetry, and
			// Meshplane writes no Telemetry targeting a waypoint.
			Capabilities: mesh.TelemetryCapabilities,
			Doc:          "sidecar namespaces (ambient: ztunnel has no L7 telemetry)",
			Holds:        func(s mesh.Scope) bool { return s.Namespace.Mode != mesh.Ambient },
			Fix: func(s mesh.Scope) string {
				return "configure telemetry in a sidecar namespace (namespace " + s.Namespace.Name + " is ambient), or attach a Telemetry to its waypoint yourself"
			},
		},
	}, append(append(egressConditions(), ingressCondition()), proxyConditions()...)...)
}

var (
	_ mesh.Conditional        = (*Provider)(nil)
	_ mesh.DataPlaneDescriber = (*Provider)(nil)
)
