package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TracingSettings turns span reporting on or off for the selected
// workloads, with a sampling percentage and custom tags.
// +kubebuilder:validation:XValidation:rule="self.enabled || (!has(self.samplingPercentage) && !has(self.customTags))",message="tracing.samplingPercentage and tracing.customTags need tracing.enabled true"
type TracingSettings struct {
	// enabled reports spans; false stops span reporting.
	// +required
	Enabled bool `json:"enabled"`

	// samplingPercentage is the share of requests traced, 0 to 100 with
	// up to two decimals, e.g. "1" or "0.25". The mesh's default when
	// unset.
	// +optional
	// +kubebuilder:validation:MaxLength=6
	// +kubebuilder:validation:Pattern=`^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$`
	SamplingPercentage string `json:"samplingPercentage,omitempty"`

	// customTags are added to every span.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	CustomTags []CustomTag `json:"customTags,omitempty"`
}

// CustomTag is one span tag: a literal value or a request header's value.
// +kubebuilder:validation:XValidation:rule="has(self.literal) != has(self.requestHeader)",message="a custom tag needs exactly one of literal and requestHeader"
type CustomTag struct {
	// name of the tag.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-zA-Z_][a-zA-Z0-9_.-]*$`
	Name string `json:"name"`

	// literal is a fixed value.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Literal *string `json:"literal,omitempty"`

	// requestHeader names the request header whose value the tag takes.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9!#$%&'*+\-.^_|~]+$`
	RequestHeader *string `json:"requestHeader,omitempty"`
}

// AccessLogSettings turns the proxies' access logs on or off.
// +kubebuilder:validation:XValidation:rule="self.enabled || !has(self.filter)",message="accessLogging.filter needs accessLogging.enabled true"
type AccessLogSettings struct {
	// enabled writes an access-log entry per request.
	// +required
	Enabled bool `json:"enabled"`

	// filter narrows which requests are logged.
	// +optional
	Filter *AccessLogFilter `json:"filter,omitempty"`
}

// AccessLogFilter narrows which requests are logged.
type AccessLogFilter struct {
	// minResponseCode logs only requests answered with this HTTP status
	// code or a higher one, e.g. 400 for client and server errors.
	// +required
	// +kubebuilder:validation:Minimum=100
	// +kubebuilder:validation:Maximum=599
	MinResponseCode int32 `json:"minResponseCode"`
}

// MetricsSettings bounds the cardinality of the proxies' metrics.
type MetricsSettings struct {
	// removeTags are metric labels removed from every standard mesh
	// metric (both client and server side), e.g. request_protocol.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z_][a-z0-9_]*$`
	RemoveTags []string `json:"removeTags"`
}

// TelemetryPolicySpec is the tracing, access logging and metrics
// configuration of the workloads a selector picks.
// +kubebuilder:validation:XValidation:rule="has(self.tracing) || has(self.accessLogging) || has(self.metrics)",message="a TelemetryPolicy needs tracing, accessLogging or metrics"
type TelemetryPolicySpec struct {
	MeshSelection `json:",inline"`

	// selector picks the workloads (pods) configured; the whole namespace
	// when unset. A workload policy overrides the namespace-wide one for
	// the fields it sets.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// tracing configures span reporting.
	// +optional
	Tracing *TracingSettings `json:"tracing,omitempty"`

	// accessLogging configures access logs.
	// +optional
	AccessLogging *AccessLogSettings `json:"accessLogging,omitempty"`

	// metrics bounds metric cardinality.
	// +optional
	Metrics *MetricsSettings `json:"metrics,omitempty"`
}

// TelemetryPolicyStatus is the observed state of a TelemetryPolicy.
type TelemetryPolicyStatus struct {
	CommonStatus `json:",inline"`

	// provider is the mesh the policy was translated for.
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// inventory lists the objects written for this policy.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Inventory []ObjectReference `json:"inventory,omitempty"`

	// sharedFields lists the fields of objects Meshplane did not create
	// that this policy set (Linkerd's namespace access-log annotation),
	// with their previous values; deleting the policy restores them.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	SharedFields []SharedField `json:"sharedFields,omitempty"`
}

// TelemetryPolicy configures tracing, access logs and metric cardinality
// for a namespace or workloads, on any mesh.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tmp,categories=meshplane
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.status.provider`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TelemetryPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired telemetry.
	// +required
	Spec TelemetryPolicySpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status TelemetryPolicyStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// TelemetryPolicyList is a list of TelemetryPolicies.
type TelemetryPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TelemetryPolicy `json:"items"`
}

// GetCommonStatus returns the conditions and observedGeneration.
func (in *TelemetryPolicy) GetCommonStatus() *CommonStatus { return &in.Status.CommonStatus }

// UnmarshalJSON decodes a TelemetryPolicy; fields stored before a rule
// existed that cannot be decoded are left out and noted in
// Status.DecodeError.
func (in *TelemetryPolicy) UnmarshalJSON(b []byte) error {
	type plain TelemetryPolicy
	note, err := decodeTolerant(b, (*plain)(in))
	in.Status.undecodable = note
	return err
}

func init() {
	register(&TelemetryPolicy{}, &TelemetryPolicyList{})
}
