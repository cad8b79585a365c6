package cilium

import (
	ciliumv2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The kinds Cilium's translators write (TrafficSplit, Canary,
// ZeroTrustPolicy); the Gateway API HTTPRoute's rule is in package gamma.
// +kubebuilder:rbac:groups=cilium.io,resources=ciliumnetworkpolicies,verbs=get;list;watch;create;update;patch;delete

// PolicyOutputKinds returns CiliumNetworkPolicy.
func (*Provider) PolicyOutputKinds() []client.Object {
	return []client.Object{
		&ciliumv2.CiliumNetworkPolicy{TypeMeta: metav1.TypeMeta{APIVersion: ciliumv2.SchemeGroupVersion.String(), Kind: "CiliumNetworkPolicy"}},
	}
}
