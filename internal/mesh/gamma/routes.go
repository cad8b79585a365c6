package gamma

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/meshplane/meshplane/internal/mesh"
)

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;update;patch;delete

// OutputKind is the kind HTTPRoute returns, for a provider's
// TrafficOutputKinds.
func OutputKind() client.Object {
	return &gatewayv1.HTTPRoute{TypeMeta: metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"}}
}

// IsRoute reports whether u is a Gateway API HTTPRoute.
func IsRoute(u *unstructured.Unstructured) bool {
	gk := u.GroupVersionKind().GroupKind()
	return gk.Group == gatewayv1.GroupName && gk.Kind == "HTTPRoute"
}

// CanaryShare reads a Gateway API HTTPRoute (unstructured) and reports the
// highest weight any rule gives the Service backend and whether any rule
// mirrors requests to it (mesh.RouteReader). Any other object is an error
// wrapping mesh.ErrNotARoute.
func CanaryShare(u *unstructured.Unstructured, backend string) (weight int64, mirrored bool, err error) {
	if !IsRoute(u) {
		return 0, false, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), mesh.ErrNotARoute)
	}
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	for _, r := range rules {
		rm, _ := r.(map[string]any)
		refs, _, _ := unstructured.NestedSlice(rm, "backendRefs")
		for _, b := range refs {
			bm, _ := b.(map[string]any)
			if name, _, _ := unstructured.NestedString(bm, "name"); name == backend {
				w, found, _ := unstructured.NestedFieldNoCopy(bm, "weight")
				if !found {
					w = int64(1) // Gateway API's default weight
				}
				weight = max(weight, Weight(w, len(refs)))
			}
		}
		filters, _, _ := unstructured.NestedSlice(rm, "filters")
		for _, f := range filters {
			fm, _ := f.(map[string]any)
			if name, _, _ := unstructured.NestedString(fm, "requestMirror", "backendRef", "name"); name == backend {
				mirrored = true
			}
		}
	}
	return weight, mirrored, nil
}

// Weight reads a weight of an unstructured route; an absent weight (nil)
// means the only destination of a rule (n == 1) gets everything.
func Weight(v any, n int) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case nil:
		if n == 1 {
			return 100
		}
	}
	return 0
}

// Routes is embedded by a provider whose traffic outputs are GAMMA
// HTTPRoutes (Linkerd, Cilium): it gives the provider the traffic output
// kinds and the route reader of mesh.TrafficOutputs and mesh.RouteReader.
type Routes struct{}

// TrafficOutputKinds returns the Gateway API HTTPRoute.
func (Routes) TrafficOutputKinds() []client.Object { return []client.Object{OutputKind()} }

// CanaryShare reads a Gateway API HTTPRoute (see CanaryShare).
func (Routes) CanaryShare(u *unstructured.Unstructured, backend string) (int64, bool, error) {
	return CanaryShare(u, backend)
}
