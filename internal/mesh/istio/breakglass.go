package istio

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// A BreakGlass relaxes (patches) the policy kinds PolicyKinds returns.
// +kubebuilder:rbac:groups=security.istio.io,resources=peerauthentications;authorizationpolicies,verbs=get;list;watch;patch

// PolicyKinds returns PeerAuthentication, AuthorizationPolicy,
// RequestAuthentication (JWT) and Sidecar (egress allow-list).
func (*Provider) PolicyKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{
		{Group: "security.istio.io", Version: "v1", Kind: "PeerAuthentication"},
		{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy"},
		{Group: "security.istio.io", Version: "v1", Kind: "RequestAuthentication"},
		{Group: "networking.istio.io", Version: "v1", Kind: "Sidecar"},
	}
}

// RelaxPolicy sets a PeerAuthentication's mTLS mode (and every port-level
// mode) to PERMISSIVE; suspends an ALLOW AuthorizationPolicy by giving it
// one empty rule (which matches every request) and a DENY one by removing
// its rules (a DENY policy without rules never matches). CUSTOM and AUDIT
// policies are left alone.
func (*Provider) RelaxPolicy(obj map[string]any) (map[string]any, bool) {
	spec, _ := obj["spec"].(map[string]any)
	spec = runtime.DeepCopyJSON(map[string]any{"s": spec})["s"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
	}
	switch obj["kind"] {
	case "PeerAuthentication":
		spec["mtls"] = map[string]any{"mode": "PERMISSIVE"}
		if ports, ok := spec["portLevelMtls"].(map[string]any); ok {
			for k := range ports {
				ports[k] = map[string]any{"mode": "PERMISSIVE"}
			}
		}
		return spec, true
	case "AuthorizationPolicy":
		switch spec["action"] {
		case nil, "", "ALLOW":
			spec["rules"] = []any{map[string]any{}}
			return spec, true
		case "DENY":
			delete(spec, "rules")
			return spec, true
		}
	}
	return relaxEgress(obj["kind"], spec)
}

// RelaxedNamespaceAnnotations returns nothing: Istio's policies are
// objects, not namespace annotations.
func (*Provider) RelaxedNamespaceAnnotations() map[string]string { return nil }
