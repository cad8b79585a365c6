package linkerd

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EgressNetworkSpec is the traffic policy for destinations outside the
// cluster, and which networks they are (every address outside the
// cluster's networks when empty).
type EgressNetworkSpec struct {
	// TrafficPolicy is Allow or Deny for traffic no attached route
	// describes.
	TrafficPolicy string `json:"trafficPolicy"`
	// Networks the EgressNetwork covers.
	Networks []Network `json:"networks,omitempty"`
}

// +kubebuilder:object:root=true

// EgressNetwork is policy.linkerd.io/v1alpha1 EgressNetwork (Linkerd 2.17
// and later): egress traffic of its namespace's clients, which
// gateway.networking.k8s.io routes attach to.
type EgressNetwork struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec is the network.
	Spec EgressNetworkSpec `json:"spec"`
}

// +kubebuilder:object:root=true

// EgressNetworkList is a list of EgressNetworks.
type EgressNetworkList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EgressNetwork `json:"items"`
}
