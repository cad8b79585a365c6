package cilium

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// Conditions are what Cilium's capabilities depend on in the install:
//   - mTLS Strict means authenticated and encrypted. Cilium's mutual
//     authentication (authentication.mode required) only authenticates
//     identities out of band; the traffic itself is encrypted only by
//     WireGuard or IPsec transparent encryption, so Strict needs both
//     spec.cilium.mutualAuth and spec.cilium.encryption
//     (https://docs.cilium.io/en/stable/network/servicemesh/mutual-authentication/mutual-authentication/).
//     Without mutual authentication enabled the agent drops traffic an
//     authentication.mode required rule selects.
//   - L7 HTTP rules (methods, paths) are enforced by Cilium's Envoy proxy;
//     without it they cannot be enforced.
//   - Routing is GAMMA HTTPRoute, enforced by Cilium's Gateway API support
//     and Envoy, and needs the Gateway API CRDs.
func (*Provider) Conditions() []mesh.Condition {
	return []mesh.Condition{
		{
			Capabilities: []mesh.Capability{mesh.CapMTLSStrict},
			Doc:          "spec.cilium.mutualAuth and spec.cilium.encryption",
			Holds:        func(s mesh.Scope) bool { return s.Install.MutualAuth && s.Install.Encryption != "" },
			Fix:          strictFix,
		},
		{
			Capabilities: []mesh.Capability{mesh.CapAllowHTTPMethodPath},
			Doc:          "spec.cilium.envoy",
			Holds:        func(s mesh.Scope) bool { return s.Install.Envoy },
			Fix: func(s mesh.Scope) string {
				return "set spec.cilium.envoy to true on " + installName(s) + " (L7 HTTP rules are enforced by Cilium's Envoy proxy)"
			},
		},
		{
			Capabilities: mesh.TrafficCapabilities,
			Doc:          "spec.cilium.gatewayAPI, spec.cilium.envoy and the Gateway API CRDs",
			Holds: func(s mesh.Scope) bool {
				return s.Install.GatewayAPI && s.Install.Envoy && s.Install.GatewayAPICRDs
			},
			Fix: routingFix,
		},
		ingressCondition(),
	}
}

// installName names the MeshInstall to change, or asks for one.
func installName(s mesh.Scope) string {
	if s.Install.MeshInstall == "" {
		return "a MeshInstall of Cilium (this Cilium was not installed by Meshplane, so its settings are unknown)"
	}
	return "MeshInstall " + s.Install.MeshInstall
}

func strictFix(s mesh.Scope) string {
	var missing []string
	if !s.Install.MutualAuth {
		missing = append(missing, "spec.cilium.mutualAuth")
	}
	if s.Install.Encryption == "" {
		missing = append(missing, "spec.cilium.encryption")
	}
	return fmt.Sprintf("set %s on %s (mTLS Strict means authenticated and encrypted), or use mtls.mode Permissive",
		strings.Join(missing, " and "), installName(s))
}

func routingFix(s mesh.Scope) string {
	var fix []string
	if !s.Install.GatewayAPI || !s.Install.Envoy {
		fix = append(fix, "set spec.cilium.gatewayAPI and spec.cilium.envoy to true on "+installName(s))
	}
	if !s.Install.GatewayAPICRDs {
		fix = append(fix, "install the Gateway API CRDs (HTTPRoute gateway.networking.k8s.io/v1 is not served)")
	}
	return strings.Join(fix, " and ")
}

// Enforcement says what a ZeroTrustPolicy Cilium accepted is enforced as:
// identity-based policy always; authentication only with Strict (which is
// accepted only with mutual authentication); encryption only with
// transparent encryption on.
func (*Provider) Enforcement(s mesh.Scope, spec *meshv1alpha1.ZeroTrustPolicySpec) string {
	msg := "identity-based L3/L4 policy enforced"
	if hasL7(spec) {
		msg += ", L7 HTTP rules by Cilium's Envoy"
	}
	auth := "mutually authenticated"
	switch {
	case spec.MTLS != nil && spec.MTLS.Mode == meshv1alpha1.MTLSPermissive && s.Install.MutualAuth:
		auth = "not authenticated (mtls.mode Permissive)"
	case spec.MTLS != nil && spec.MTLS.Mode == meshv1alpha1.MTLSPermissive:
		auth = "not authenticated (mutual auth off)"
	}
	enc := "not encrypted (encryption off)"
	if s.Install.Encryption != "" {
		enc = "encrypted (" + string(s.Install.Encryption) + ")"
	}
	return msg + "; traffic " + auth + " and " + enc
}

func hasL7(spec *meshv1alpha1.ZeroTrustPolicySpec) bool {
	return slices.ContainsFunc(spec.Rules, func(r meshv1alpha1.AllowRule) bool {
		return slices.ContainsFunc(r.To, func(t meshv1alpha1.TrafficDestination) bool { return len(t.Methods) > 0 || len(t.Paths) > 0 })
	})
}

// DataPlane is Cilium's node datapath for every namespace.
func (*Provider) DataPlane(ns *corev1.Namespace) mesh.NamespaceFacts {
	return mesh.NamespaceFacts{Name: ns.Name, Mode: mesh.CiliumNode}
}

var (
	_ mesh.Conditional        = (*Provider)(nil)
	_ mesh.Enforcer           = (*Provider)(nil)
	_ mesh.DataPlaneDescriber = (*Provider)(nil)
)
