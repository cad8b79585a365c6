package linkerd

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Minimal typed structs for Linkerd's policy kinds. linkerd2's own
// policy/v1alpha1 and policy/v1beta3 packages do not compile against a
// current Gateway API (DESIGN.md §6), so Meshplane declares the fields it
// writes, and the envtest tests check every object against Linkerd's real
// CRDs. Server comes from linkerd2's server/v1beta3 package, which compiles.

// +kubebuilder:object:generate=true

// PolicyGroup is Linkerd's policy API group.
const PolicyGroup = "policy.linkerd.io"

var (
	// PolicyV1alpha1 holds AuthorizationPolicy, MeshTLSAuthentication and
	// NetworkAuthentication.
	PolicyV1alpha1 = schema.GroupVersion{Group: PolicyGroup, Version: "v1alpha1"}
	// PolicyV1beta3 holds HTTPRoute.
	PolicyV1beta3 = schema.GroupVersion{Group: PolicyGroup, Version: "v1beta3"}
)

// AddToScheme registers the policy kinds declared here.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(PolicyV1alpha1, &AuthorizationPolicy{}, &AuthorizationPolicyList{},
		&MeshTLSAuthentication{}, &MeshTLSAuthenticationList{}, &NetworkAuthentication{}, &NetworkAuthenticationList{},
		&EgressNetwork{}, &EgressNetworkList{})
	metav1.AddToGroupVersion(s, PolicyV1alpha1)
	s.AddKnownTypes(PolicyV1beta3, &HTTPRoute{}, &HTTPRouteList{})
	metav1.AddToGroupVersion(s, PolicyV1beta3)
	return nil
}

// PolicyReference names a policy object (targetRef, authentication refs,
// identity refs).
type PolicyReference struct {
	// Group of the referent; core when empty.
	Group string `json:"group,omitempty"`
	// Kind of the referent.
	Kind string `json:"kind"`
	// Name of the referent.
	Name string `json:"name,omitempty"`
	// Namespace of the referent; the object's own when empty.
	Namespace string `json:"namespace,omitempty"`
}

// AuthorizationPolicySpec authorizes clients that satisfy every required
// authentication to reach the target (a Server or an HTTPRoute).
type AuthorizationPolicySpec struct {
	// TargetRef is the Server or HTTPRoute the policy applies to.
	TargetRef PolicyReference `json:"targetRef"`
	// RequiredAuthenticationRefs must all be satisfied.
	RequiredAuthenticationRefs []PolicyReference `json:"requiredAuthenticationRefs"`
}

// +kubebuilder:object:root=true

// AuthorizationPolicy is policy.linkerd.io/v1alpha1 AuthorizationPolicy.
type AuthorizationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec is the policy.
	Spec AuthorizationPolicySpec `json:"spec"`
}

// +kubebuilder:object:root=true

// AuthorizationPolicyList is a list of AuthorizationPolicies.
type AuthorizationPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuthorizationPolicy `json:"items"`
}

// MeshTLSAuthenticationSpec lists mTLS identities, literally or by
// reference (ServiceAccount, Namespace).
type MeshTLSAuthenticationSpec struct {
	// Identities are proxy identity strings; "*" is any authenticated client.
	Identities []string `json:"identities,omitempty"`
	// IdentityRefs reference ServiceAccounts or Namespaces.
	IdentityRefs []PolicyReference `json:"identityRefs,omitempty"`
}

// +kubebuilder:object:root=true

// MeshTLSAuthentication is policy.linkerd.io/v1alpha1 MeshTLSAuthentication.
type MeshTLSAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec is the authentication.
	Spec MeshTLSAuthenticationSpec `json:"spec"`
}

// +kubebuilder:object:root=true

// MeshTLSAuthenticationList is a list of MeshTLSAuthentications.
type MeshTLSAuthenticationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshTLSAuthentication `json:"items"`
}

// Network is a CIDR a NetworkAuthentication accepts.
type Network struct {
	// CIDR of the network.
	CIDR string `json:"cidr"`
	// Except lists networks excluded from CIDR.
	Except []string `json:"except,omitempty"`
}

// NetworkAuthenticationSpec lists client networks.
type NetworkAuthenticationSpec struct {
	// Networks accepted.
	Networks []Network `json:"networks"`
}

// +kubebuilder:object:root=true

// NetworkAuthentication is policy.linkerd.io/v1alpha1 NetworkAuthentication.
type NetworkAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec is the authentication.
	Spec NetworkAuthenticationSpec `json:"spec"`
}

// +kubebuilder:object:root=true

// NetworkAuthenticationList is a list of NetworkAuthentications.
type NetworkAuthenticationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NetworkAuthentication `json:"items"`
}

// HTTPPathMatch matches a request path.
type HTTPPathMatch struct {
	// Type is Exact or PathPrefix.
	Type string `json:"type,omitempty"`
	// Value is the path.
	Value string `json:"value,omitempty"`
}

// HTTPRouteMatch is one match of a policy HTTPRoute rule.
type HTTPRouteMatch struct {
	// Path matches the request path.
	Path *HTTPPathMatch `json:"path,omitempty"`
	// Method matches the request method.
	Method string `json:"method,omitempty"`
}

// HTTPRouteRule is one rule of a policy HTTPRoute.
type HTTPRouteRule struct {
	// Matches are ORed.
	Matches []HTTPRouteMatch `json:"matches,omitempty"`
}

// HTTPRouteSpec attaches rules to Servers.
type HTTPRouteSpec struct {
	// ParentRefs are the Servers the route attaches to.
	ParentRefs []PolicyReference `json:"parentRefs,omitempty"`
	// Rules of the route.
	Rules []HTTPRouteRule `json:"rules,omitempty"`
}

// +kubebuilder:object:root=true

// HTTPRoute is policy.linkerd.io/v1beta3 HTTPRoute, used to authorize by
// method and path on a Server.
type HTTPRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec is the route.
	Spec HTTPRouteSpec `json:"spec"`
}

// +kubebuilder:object:root=true

// HTTPRouteList is a list of policy HTTPRoutes.
type HTTPRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []HTTPRoute `json:"items"`
}
