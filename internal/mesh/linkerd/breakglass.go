package linkerd

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// A BreakGlass relaxes (patches) the policy kinds PolicyKinds returns.
// +kubebuilder:rbac:groups=policy.linkerd.io,resources=servers;authorizationpolicies,verbs=get;list;watch;patch

// AllUnauthenticated is the most permissive default inbound policy.
const AllUnauthenticated = "all-unauthenticated"

// PolicyKinds returns Server, AuthorizationPolicy and EgressNetwork (egress
// allow-list).
func (*Provider) PolicyKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{
		{Group: PolicyGroup, Version: "v1beta3", Kind: "Server"},
		PolicyV1alpha1.WithKind("AuthorizationPolicy"),
		PolicyV1alpha1.WithKind("EgressNetwork"),
	}
}

// RelaxPolicy sets a Server's accessPolicy (the default for traffic no
// AuthorizationPolicy authorizes) to all-unauthenticated, and suspends an
// AuthorizationPolicy by requiring no authentication (an empty
// requiredAuthenticationRefs authorizes every client).
func (*Provider) RelaxPolicy(obj map[string]any) (map[string]any, bool) {
	spec, _ := obj["spec"].(map[string]any)
	spec = runtime.DeepCopyJSON(map[string]any{"s": spec})["s"].(map[string]any)
	if spec == nil {
		spec = map[string]any{}
	}
	switch obj["kind"] {
	case "Server":
		spec["accessPolicy"] = AllUnauthenticated
		return spec, true
	case "AuthorizationPolicy":
		spec["requiredAuthenticationRefs"] = []any{}
		return spec, true
	case "EgressNetwork":
		// Traffic no route describes is allowed: the allow-list is lifted.
		if spec["trafficPolicy"] == "Allow" {
			return nil, false
		}
		spec["trafficPolicy"] = "Allow"
		return spec, true
	}
	return nil, false
}

// RelaxedNamespaceAnnotations sets the namespace's default inbound policy
// to all-unauthenticated (read by proxies when they are injected).
func (*Provider) RelaxedNamespaceAnnotations() map[string]string {
	return map[string]string{DefaultInboundPolicyAnnotation: AllUnauthenticated}
}
