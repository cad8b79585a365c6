package linkerd

import (
	linkerdserver "github.com/linkerd/linkerd2/controller/gen/apis/server/v1beta3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The kinds Linkerd's translators write (TrafficSplit, Canary,
// ZeroTrustPolicy); the Gateway API HTTPRoute's rule is in package gamma.
// The namespace's default-inbound-policy annotation is a field of a
// Namespace, patched by the ZeroTrustPolicy controller under its own rule.
// +kubebuilder:rbac:groups=policy.linkerd.io,resources=servers;authorizationpolicies;meshtlsauthentications;networkauthentications;httproutes,verbs=get;list;watch;create;update;patch;delete

// PolicyOutputKinds returns Server, AuthorizationPolicy,
// MeshTLSAuthentication, NetworkAuthentication and Linkerd's policy
// HTTPRoute. The Namespace whose annotation the policy sets is shared, not
// owned, and not listed.
func (*Provider) PolicyOutputKinds() []client.Object {
	return []client.Object{
		&linkerdserver.Server{TypeMeta: metav1.TypeMeta{APIVersion: "policy.linkerd.io/v1beta3", Kind: "Server"}},
		&AuthorizationPolicy{TypeMeta: metav1.TypeMeta{APIVersion: PolicyV1alpha1.String(), Kind: "AuthorizationPolicy"}},
		&MeshTLSAuthentication{TypeMeta: metav1.TypeMeta{APIVersion: PolicyV1alpha1.String(), Kind: "MeshTLSAuthentication"}},
		&NetworkAuthentication{TypeMeta: metav1.TypeMeta{APIVersion: PolicyV1alpha1.String(), Kind: "NetworkAuthentication"}},
		&HTTPRoute{TypeMeta: metav1.TypeMeta{APIVersion: PolicyV1beta3.String(), Kind: "HTTPRoute"}},
	}
}
