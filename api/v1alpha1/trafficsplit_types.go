package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TrafficOutput selects the kind of resources a TrafficSplit becomes.
// +kubebuilder:validation:Enum=Native;GatewayAPI
type TrafficOutput string

const (
	// OutputNative uses the mesh's own routing API where it has one
	// (Istio VirtualService); Linkerd and Cilium always use Gateway API.
	OutputNative TrafficOutput = "Native"
	// OutputGatewayAPI uses a Gateway API HTTPRoute with a Service parentRef
	// (GAMMA) on every mesh.
	OutputGatewayAPI TrafficOutput = "GatewayAPI"
)

// WeightedBackend is a Service that receives a share of the traffic.
type WeightedBackend struct {
	// name of the backend Service, in the TrafficSplit's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// port of the backend Service; the root Service's port when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`

	// weight is the percentage of the traffic, 0 to 100. The weights of a
	// backend list add up to 100.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Weight int32 `json:"weight"`
}

// TrafficRule routes the requests its matches select. Rules are evaluated
// in order; the first that matches wins; spec.backends takes the rest.
// +kubebuilder:validation:XValidation:rule="self.backends.map(b, b.weight).sum() == 100",message="rule backend weights must add up to 100"
// +kubebuilder:validation:XValidation:rule="self.backends.all(b, self.backends.exists_one(c, c.name == b.name))",message="rule backend names must be unique"
type TrafficRule struct {
	// name of the rule, used in output resource names and status.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// matches select requests; any one matching is enough.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Matches []HTTPMatch `json:"matches"`

	// backends receive the matched requests by weight.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Backends []WeightedBackend `json:"backends"`
}

// MirrorPolicy copies a share of the requests to a shadow backend whose
// responses are discarded.
type MirrorPolicy struct {
	// backend is the Service receiving the copies.
	// +required
	Backend ServiceReference `json:"backend"`

	// percent of the requests mirrored, 0 to 100; 100 when unset.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent *int32 `json:"percent,omitempty"`
}

// TrafficSplitSpec routes a root Service's traffic to backend Services.
// +kubebuilder:validation:XValidation:rule="self.backends.map(b, b.weight).sum() == 100",message="backend weights must add up to 100"
// +kubebuilder:validation:XValidation:rule="self.backends.all(b, self.backends.exists_one(c, c.name == b.name))",message="backend names must be unique"
// +kubebuilder:validation:XValidation:rule="!has(self.stableBackend) || self.backends.exists(b, b.name == self.stableBackend)",message="stableBackend must name one of spec.backends"
// +kubebuilder:validation:XValidation:rule="!has(self.rules) || self.rules.all(r, !has(r.name) || self.rules.exists_one(s, has(s.name) && s.name == r.name))",message="rule names must be unique"
// +kubebuilder:validation:XValidation:rule="!has(self.output) || self.output == 'GatewayAPI' || !has(self.provider) || self.provider == 'Istio'",message="output Native is only meaningful for provider Istio; Linkerd and Cilium always use GatewayAPI (leave output unset)"
type TrafficSplitSpec struct {
	MeshSelection `json:",inline"`

	// output selects the kind of resources produced; Native by default
	// (Istio VirtualService), GatewayAPI for HTTPRoute on Istio.
	// +optional
	Output TrafficOutput `json:"output,omitempty"`

	// service is the root Service clients address.
	// +required
	Service ServiceReference `json:"service"`

	// backends receive the traffic no rule matched, by weight.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Backends []WeightedBackend `json:"backends"`

	// stableBackend is the backend a BreakGlass pins all traffic to (and
	// that keeps serving if the others fail); the first backend when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	StableBackend string `json:"stableBackend,omitempty"`

	// rules route matching requests (A/B tests, header canaries), in order.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Rules []TrafficRule `json:"rules,omitempty"`

	// mirror copies a share of the requests to a shadow backend.
	// +optional
	Mirror *MirrorPolicy `json:"mirror,omitempty"`

	// timeout for a whole request, retries included.
	// Bounds 1ms..1h: meshes' proxies count in milliseconds.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1ms') && duration(self) <= duration('1h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'timeout must be between 1ms and 1h; got ' + self : 'timeout "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// retries failed requests.
	// +optional
	Retries *RetryPolicy `json:"retries,omitempty"`
}

// TrafficSplitStatus is the observed state of a TrafficSplit.
type TrafficSplitStatus struct {
	CommonStatus `json:",inline"`

	// provider is the mesh the split was translated for.
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// weights summarises the effective default weights, e.g.
	// "app-v1=90,app-v2=10".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Weights string `json:"weights,omitempty"`

	// inventory lists the objects written for this split, so outputs no
	// longer desired are pruned exactly.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Inventory []ObjectReference `json:"inventory,omitempty"`
}

// TrafficSplit routes a root Service to weighted backend Services, with
// ordered match rules, mirroring, timeouts and retries, on any mesh.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ts,categories=meshplane
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.spec.service.name`
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.status.provider`
// +kubebuilder:printcolumn:name="Weights",type=string,JSONPath=`.status.weights`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TrafficSplit struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired routing.
	// +required
	Spec TrafficSplitSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status TrafficSplitStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// TrafficSplitList is a list of TrafficSplits.
type TrafficSplitList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrafficSplit `json:"items"`
}

func init() {
	register(&TrafficSplit{}, &TrafficSplitList{})
}
