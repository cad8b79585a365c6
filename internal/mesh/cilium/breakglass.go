package cilium

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// A BreakGlass relaxes (patches) the policy kinds PolicyKinds returns.
// +kubebuilder:rbac:groups=cilium.io,resources=ciliumnetworkpolicies,verbs=get;list;watch;patch

// PolicyKinds returns CiliumNetworkPolicy.
func (*Provider) PolicyKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{{Group: "cilium.io", Version: "v2", Kind: "CiliumNetworkPolicy"}}
}

// RelaxPolicy suspends a CiliumNetworkPolicy: its selector is kept and its
// rules are replaced by allow-all rules in the directions it governed
// (ingress from, egress to, the entity "all"), so the selected endpoints
// stay in the same enforcement mode but nothing is denied. A policy using
// spec.specs (several rules) is not relaxed: its replacement would not be
// exact to describe, and Meshplane never generates one.
func (*Provider) RelaxPolicy(obj map[string]any) (map[string]any, bool) {
	spec, _ := obj["spec"].(map[string]any)
	if spec == nil {
		return nil, false
	}
	out := map[string]any{}
	for _, k := range []string{"endpointSelector", "nodeSelector", "description"} {
		if v, ok := spec[k]; ok {
			out[k] = v
		}
	}
	_, in := spec["ingress"]
	_, inDeny := spec["ingressDeny"]
	_, eg := spec["egress"]
	_, egDeny := spec["egressDeny"]
	if in || inDeny {
		out["ingress"] = []any{map[string]any{"fromEntities": []any{"all"}}}
	}
	if eg || egDeny {
		out["egress"] = []any{map[string]any{"toEntities": []any{"all"}}}
	}
	if !in && !inDeny && !eg && !egDeny {
		return nil, false
	}
	return out, true
}

// RelaxedNamespaceAnnotations returns nothing for Cilium.
func (*Provider) RelaxedNamespaceAnnotations() map[string]string { return nil }
