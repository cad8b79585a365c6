package cilium

import "github.com/meshplane/meshplane/internal/mesh"

// Explain says why Cilium lacks a capability (mesh.Explainer).
func (*Provider) Explain(c mesh.Capability) string {
	if c == mesh.CapPolicyAudit {
		return "Cilium has no per-policy audit mode (cilium/cilium#9580): its policy audit mode is set per endpoint or for the whole agent " +
			"(policy-audit-mode), so one CiliumNetworkPolicy cannot run in audit while others enforce; set spec.enforcement to Enforce"
	}
	return ""
}
