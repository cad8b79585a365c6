package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IngressProtocol is what a listener of an IngressGateway serves.
// +kubebuilder:validation:Enum=HTTP;HTTPS
type IngressProtocol string

const (
	// IngressHTTP is plain HTTP.
	IngressHTTP IngressProtocol = "HTTP"
	// IngressHTTPS is HTTP over TLS terminated at the gateway with the
	// listener's certificateRefs.
	IngressHTTPS IngressProtocol = "HTTPS"
)

// IngressRouteNamespaces says which namespaces' routes (HTTPRoutes) may
// attach to the gateway.
// +kubebuilder:validation:Enum=Same;All
type IngressRouteNamespaces string

const (
	// IngressRoutesSame admits routes of the gateway's namespace only
	// (default).
	IngressRoutesSame IngressRouteNamespaces = "Same"
	// IngressRoutesAll admits routes of every namespace.
	IngressRoutesAll IngressRouteNamespaces = "All"
)

// MeshInjection says whether the gateway's pods join the mesh's data
// plane where that is a choice (Linkerd).
// +kubebuilder:validation:Enum=Enabled;Disabled
type MeshInjection string

const (
	// MeshInjectionEnabled marks the gateway's pods for the mesh's proxy
	// (default).
	MeshInjectionEnabled MeshInjection = "Enabled"
	// MeshInjectionDisabled leaves the gateway's pods out of the mesh.
	MeshInjectionDisabled MeshInjection = "Disabled"
)

// BackendMTLS answers whether a gateway reaches its backends over mutual
// TLS.
// +kubebuilder:validation:Enum=Yes;No;Unknown
type BackendMTLS string

const (
	// BackendMTLSYes: the gateway is in the mesh and its connections to
	// meshed backends are mutually authenticated and encrypted.
	BackendMTLSYes BackendMTLS = "Yes"
	// BackendMTLSNo: the gateway reaches its backends without mutual TLS.
	BackendMTLSNo BackendMTLS = "No"
	// BackendMTLSUnknown: Meshplane cannot tell yet (e.g. no gateway pod
	// runs).
	BackendMTLSUnknown BackendMTLS = "Unknown"
)

// IngressGateway conditions and reasons.
const (
	// GatewayAcceptedCondition copies the Accepted condition of the
	// Gateway Meshplane wrote, as its GatewayClass's controller reports it.
	GatewayAcceptedCondition = "GatewayAccepted"
	// GatewayProgrammedCondition copies the Gateway's Programmed
	// condition: the gateway's data plane is configured and reachable.
	GatewayProgrammedCondition = "GatewayProgrammed"
	// BackendMTLSCondition is True when the gateway reaches its backends
	// over mutual TLS, False when not, Unknown when Meshplane cannot tell.
	BackendMTLSCondition = "BackendMTLS"
	// GatewayClassNotAcceptedReason: the GatewayClass that should serve the
	// gateway does not exist or its controller has not accepted it.
	GatewayClassNotAcceptedReason = "GatewayClassNotAccepted"
	// GatewayNotAcceptedReason: the GatewayClass's controller refused the
	// Gateway.
	GatewayNotAcceptedReason = "GatewayNotAccepted"
	// GatewayNotProgrammedReason: the Gateway is written and waits for its
	// controller to program it.
	GatewayNotProgrammedReason = "GatewayNotProgrammed"
)

// IngressListener is one port the gateway listens on.
// +kubebuilder:validation:XValidation:rule="self.protocol == 'HTTPS' ? has(self.certificateRefs) : !has(self.certificateRefs)",message="an HTTPS listener needs certificateRefs (Secrets of type kubernetes.io/tls in the gateway's namespace); an HTTP listener takes none"
type IngressListener struct {
	// name of the listener, unique in the gateway (the Gateway's listener
	// name, which routes name in sectionName).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// port the gateway listens on.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// protocol is HTTP or HTTPS (TLS terminated at the gateway).
	// +required
	Protocol IngressProtocol `json:"protocol"`

	// hostname the listener serves, exact (shop.example.com) or with one
	// leading wildcard label (*.example.com); every host when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Hostname string `json:"hostname,omitempty"`

	// certificateRefs name the Secrets (type kubernetes.io/tls, keys
	// tls.crt and tls.key) in the gateway's namespace that hold the
	// listener's certificate; required for HTTPS.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	CertificateRefs []LocalObjectReference `json:"certificateRefs,omitempty"`
}

// IngressInfrastructure is metadata for what the gateway's implementation
// creates (its Deployment, Service, pods): Gateway API's
// spec.infrastructure.
type IngressInfrastructure struct {
	// labels for the gateway's resources. Keys under meshplane.io/ are
	// reserved.
	// +optional
	// +kubebuilder:validation:MaxProperties=6
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('meshplane.io/'))",message="label keys under meshplane.io/ are reserved for Meshplane"
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k].size() <= 63)",message="label values may have at most 63 characters"
	Labels map[string]string `json:"labels,omitempty"`

	// annotations for the gateway's resources. linkerd.io/inject is set by
	// spec.meshInjection.
	// +optional
	// +kubebuilder:validation:MaxProperties=8
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('meshplane.io/'))",message="annotation keys under meshplane.io/ are reserved for Meshplane"
	// +kubebuilder:validation:XValidation:rule="!('linkerd.io/inject' in self)",message="set spec.meshInjection rather than the linkerd.io/inject annotation"
	// +kubebuilder:validation:XValidation:rule="self.all(k, self[k].size() <= 1024)",message="annotation values may have at most 1024 characters"
	Annotations map[string]string `json:"annotations,omitempty"`
}

// IngressGatewaySpec is a meshed ingress: a Gateway API Gateway served by
// the mesh's gateway implementation (Istio, Cilium) or, on Linkerd, by an
// implementation of the user's choice whose pods join the mesh.
// +kubebuilder:validation:XValidation:rule="self.listeners.all(l, self.listeners.exists_one(m, m.name == l.name))",message="listener names must be unique"
// +kubebuilder:validation:XValidation:rule="self.listeners.all(l, self.listeners.exists_one(m, m.port == l.port && has(m.hostname) == has(l.hostname) && (!has(l.hostname) || m.hostname == l.hostname)))",message="two listeners may not share a port and hostname"
// +kubebuilder:validation:XValidation:rule="self.listeners.all(l, self.listeners.all(m, m.port != l.port || m.protocol == l.protocol))",message="listeners on one port must share its protocol"
type IngressGatewaySpec struct {
	MeshSelection `json:",inline"`

	// gatewayClassName is the GatewayClass that serves the gateway. Istio
	// and Cilium serve their own (istio, cilium) and need it unset or set
	// to that; Linkerd ships no ingress, so on Linkerd it is required and
	// names the class of the implementation you installed (e.g. Envoy
	// Gateway's).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	GatewayClassName string `json:"gatewayClassName,omitempty"`

	// meshInjection says whether the gateway's pods get the mesh's proxy:
	// on Linkerd, Enabled (default) sets linkerd.io/inject: enabled on the
	// Gateway's spec.infrastructure.annotations, which the implementation
	// copies to its pods. Istio's gateway is itself an Istio proxy and
	// Cilium's is its node Envoy: there only Enabled (or unset) is valid.
	// +optional
	MeshInjection MeshInjection `json:"meshInjection,omitempty"`

	// listeners are the ports, protocols and hostnames served.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Listeners []IngressListener `json:"listeners"`

	// routeNamespaces says whose HTTPRoutes may attach: Same (default,
	// the gateway's namespace) or All.
	// +optional
	// +kubebuilder:default=Same
	RouteNamespaces IngressRouteNamespaces `json:"routeNamespaces,omitempty"`

	// infrastructure is metadata for the resources the implementation
	// creates for the gateway.
	// +optional
	Infrastructure *IngressInfrastructure `json:"infrastructure,omitempty"`
}

// IngressGatewayStatus is the observed state of an IngressGateway.
type IngressGatewayStatus struct {
	CommonStatus `json:",inline"`

	// provider is the mesh the gateway was translated for.
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// gatewayClassName is the GatewayClass that serves the gateway.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	GatewayClassName string `json:"gatewayClassName,omitempty"`

	// addresses are the Gateway's addresses as its controller reports them.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=253
	Addresses []string `json:"addresses,omitempty"`

	// backendMTLS says whether the gateway reaches its backends over mutual
	// TLS; the BackendMTLS condition says why.
	// +optional
	BackendMTLS BackendMTLS `json:"backendMTLS,omitempty"`

	// inventory lists the objects written for this gateway.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	Inventory []ObjectReference `json:"inventory,omitempty"`
}

// IngressGateway is a meshed ingress through Gateway API, on any mesh.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=igw,categories=meshplane
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.status.provider`
// +kubebuilder:printcolumn:name="Class",type=string,JSONPath=`.status.gatewayClassName`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="GatewayProgrammed")].status`
// +kubebuilder:printcolumn:name="mTLS",type=string,JSONPath=`.status.backendMTLS`
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.status.addresses[0]`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 50",message="an IngressGateway's name may have at most 50 characters: the gateway implementation derives its Deployment and Service names (at most 63) from it"
type IngressGateway struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired gateway.
	// +required
	Spec IngressGatewaySpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status IngressGatewayStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// IngressGatewayList is a list of IngressGateways.
type IngressGatewayList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IngressGateway `json:"items"`
}

func init() {
	register(&IngressGateway{}, &IngressGatewayList{})
}
