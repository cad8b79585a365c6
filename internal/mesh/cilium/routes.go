package cilium

import (
	ciliumv2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/mesh/gamma"
)

// The kinds Cilium's translators write (TrafficSplit, Canary,
// ZeroTrustPolicy); the Gateway API HTTPRoute's rule is in package gamma.
// +kubebuilder:rbac:groups=cilium.io,resources=ciliumnetworkpolicies,verbs=get;list;watch;create;update;patch;delete

// TrafficOutputKinds returns the Gateway API HTTPRoute.
func (*Provider) TrafficOutputKinds() []client.Object {
	return []client.Object{gamma.OutputKind()}
}

// PolicyOutputKinds returns CiliumNetworkPolicy.
func (*Provider) PolicyOutputKinds() []client.Object {
	return []client.Object{
		&ciliumv2.CiliumNetworkPolicy{TypeMeta: metav1.TypeMeta{APIVersion: ciliumv2.SchemeGroupVersion.String(), Kind: "CiliumNetworkPolicy"}},
	}
}

// CanaryShare reads a Gateway API HTTPRoute (gamma.CanaryShare).
func (*Provider) CanaryShare(u *unstructured.Unstructured, backend string) (int64, bool, error) {
	return gamma.CanaryShare(u, backend)
}
