package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// EgressMode says what happens to traffic to destinations no rule names.
// +kubebuilder:validation:Enum=AllowList;Audit
type EgressMode string

const (
	// EgressAllowList blocks traffic to every external destination no rule
	// names (default).
	EgressAllowList EgressMode = "AllowList"
	// EgressAudit lets every destination through; the named ones are
	// registered with the mesh so its telemetry tells them apart from the
	// rest (what an allow-list would block).
	EgressAudit EgressMode = "Audit"
)

// EgressProtocol is how the mesh recognises a destination on a port.
// +kubebuilder:validation:Enum=HTTP;TLS;TCP
type EgressProtocol string

const (
	// EgressHTTP is plain HTTP, matched by the Host header.
	EgressHTTP EgressProtocol = "HTTP"
	// EgressTLS is TLS (HTTPS and others), matched by the SNI of the
	// client's handshake; the mesh does not terminate it.
	EgressTLS EgressProtocol = "TLS"
	// EgressTCP is opaque TCP: matched by address (cidrs), or by the
	// addresses the names resolved to where the mesh tracks DNS.
	EgressTCP EgressProtocol = "TCP"
)

// EgressPort is a destination port and its protocol.
type EgressPort struct {
	// number of the port.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Number int32 `json:"number"`

	// protocol on the port: HTTP, TLS (matched by SNI) or TCP.
	// +required
	Protocol EgressProtocol `json:"protocol"`
}

// EgressRule allows external destinations: hosts or cidrs, on ports.
// +kubebuilder:validation:XValidation:rule="has(self.hosts) != has(self.cidrs)",message="a rule needs exactly one of hosts or cidrs"
// +kubebuilder:validation:XValidation:rule="!has(self.cidrs) || self.ports.all(p, p.protocol == 'TCP')",message="cidrs match addresses, not names: their ports must have protocol TCP"
// +kubebuilder:validation:XValidation:rule="self.ports.all(p, self.ports.exists_one(q, q.number == p.number))",message="a port number may appear once per rule"
type EgressRule struct {
	// name of the rule, used in output names and messages.
	// +optional
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// hosts are fully qualified domain names, exact (api.example.com) or
	// with one leading wildcard label (*.example.com: any subdomain, not
	// example.com itself).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$`
	Hosts []string `json:"hosts,omitempty"`

	// cidrs are IPv4 or IPv6 networks, e.g. 203.0.113.0/24.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:items:XValidation:rule="isCIDR(self) && cidr(self) == cidr(self).masked()",message="must be a network in CIDR notation with no host bits set, e.g. 203.0.113.0/24"
	CIDRs []string `json:"cidrs,omitempty"`

	// ports the rule allows, with their protocol.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Ports []EgressPort `json:"ports"`
}

// EgressGateway routes the allowed traffic through a fixed egress. Each
// mesh uses the fields it understands and refuses the policy when the one
// it needs is missing.
// +kubebuilder:validation:XValidation:rule="has(self.name) || has(self.nodeSelector)",message="an egress gateway needs name (Istio: a waypoint) or nodeSelector (Cilium: gateway nodes)"
type EgressGateway struct {
	// name of the gateway: on Istio in an ambient namespace the waypoint
	// (a Gateway of class istio-waypoint) the destinations' traffic
	// passes; in a sidecar namespace the Service (and Deployment, label
	// app=<name>) of the egress gateway the user deploys, e.g.
	// istio-egressgateway.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// namespace of the gateway; the policy's own when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`

	// nodeSelector picks the gateway nodes (Cilium egress gateway): traffic
	// to the cidrs leaves through the first matching node.
	// +optional
	// +kubebuilder:validation:MaxProperties=8
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// egressIP is the source address the gateway node uses (Cilium); the
	// first address of its default-route interface when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4",message="egressIP must be an IPv4 address"
	EgressIP string `json:"egressIP,omitempty"`
}

// EgressPolicySpec is which external destinations the namespace's
// workloads (or those a selector picks) may reach.
// +kubebuilder:validation:XValidation:rule="!has(self.gateway) || !has(self.gateway.nodeSelector) || self.rules.exists(r, has(r.cidrs))",message="gateway.nodeSelector routes cidrs through gateway nodes: add a rule with cidrs"
type EgressPolicySpec struct {
	MeshSelection `json:",inline"`

	// selector picks the workloads (pods) whose egress the policy controls;
	// the whole namespace when unset.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// mode is AllowList (default: every external destination no rule names
	// is blocked) or Audit (nothing is blocked).
	// +optional
	// +kubebuilder:default=AllowList
	Mode EgressMode `json:"mode,omitempty"`

	// rules name the allowed destinations.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Rules []EgressRule `json:"rules"`

	// gateway routes the allowed traffic through a fixed egress.
	// +optional
	Gateway *EgressGateway `json:"gateway,omitempty"`
}

// EgressPolicyStatus is the observed state of an EgressPolicy.
type EgressPolicyStatus struct {
	CommonStatus `json:",inline"`

	// provider is the mesh the policy was translated for.
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// mode is the effective mode, e.g. "AllowList".
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Mode string `json:"mode,omitempty"`

	// inventory lists the objects written for this policy.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Inventory []ObjectReference `json:"inventory,omitempty"`
}

// EgressPolicy says which external hosts and networks workloads may reach,
// on any mesh.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=egp,categories=meshplane
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.status.provider`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.status.mode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type EgressPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired policy.
	// +required
	Spec EgressPolicySpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status EgressPolicyStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// EgressPolicyList is a list of EgressPolicies.
type EgressPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EgressPolicy `json:"items"`
}

func init() {
	register(&EgressPolicy{}, &EgressPolicyList{})
}
