package istio

import (
	"fmt"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/gamma"
)

// The kinds Istio's translators write (TrafficSplit, Canary,
// ZeroTrustPolicy); the Gateway API HTTPRoute's rule is in package gamma.
// +kubebuilder:rbac:groups=networking.istio.io,resources=virtualservices,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=security.istio.io,resources=peerauthentications;authorizationpolicies,verbs=get;list;watch;create;update;patch;delete

// TrafficOutputKinds returns VirtualService and the Gateway API HTTPRoute
// (output GatewayAPI).
func (*Provider) TrafficOutputKinds() []client.Object {
	return []client.Object{
		&istionetworking.VirtualService{TypeMeta: metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "VirtualService"}},
		gamma.OutputKind(),
	}
}

// PolicyOutputKinds returns PeerAuthentication, AuthorizationPolicy and
// RequestAuthentication (spec.jwt).
func (*Provider) PolicyOutputKinds() []client.Object {
	return []client.Object{
		&istiosecurity.PeerAuthentication{TypeMeta: metav1.TypeMeta{APIVersion: istiosecurity.SchemeGroupVersion.String(), Kind: "PeerAuthentication"}},
		&istiosecurity.AuthorizationPolicy{TypeMeta: metav1.TypeMeta{APIVersion: istiosecurity.SchemeGroupVersion.String(), Kind: "AuthorizationPolicy"}},
		&istiosecurity.RequestAuthentication{TypeMeta: metav1.TypeMeta{APIVersion: istiosecurity.SchemeGroupVersion.String(), Kind: "RequestAuthentication"}},
	}
}

// CanaryShare reads a VirtualService, or a Gateway API HTTPRoute (output
// GatewayAPI), and reports the highest weight any HTTP route gives the
// backend Service and whether any mirrors requests to it.
func (*Provider) CanaryShare(u *unstructured.Unstructured, backend string) (weight int64, mirrored bool, err error) {
	if gamma.IsRoute(u) {
		return gamma.CanaryShare(u, backend)
	}
	gk := u.GroupVersionKind().GroupKind()
	if gk.Group != istionetworking.SchemeGroupVersion.Group || gk.Kind != "VirtualService" {
		return 0, false, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), mesh.ErrNotARoute)
	}
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "http")
	for _, r := range rules {
		rm, _ := r.(map[string]any)
		routes, _, _ := unstructured.NestedSlice(rm, "route")
		for _, d := range routes {
			dm, _ := d.(map[string]any)
			if host, _, _ := unstructured.NestedString(dm, "destination", "host"); host == backend {
				w, _, _ := unstructured.NestedFieldNoCopy(dm, "weight")
				weight = max(weight, gamma.Weight(w, len(routes)))
			}
		}
		if host, _, _ := unstructured.NestedString(rm, "mirror", "host"); host == backend {
			mirrored = true
		}
	}
	return weight, mirrored, nil
}
