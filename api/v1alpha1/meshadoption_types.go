package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MeshAdoptionSpec brings namespaces into a MeshInstall's data plane in
// waves, each behind a health gate.
// +kubebuilder:validation:XValidation:rule="has(self.namespaces) != has(self.namespaceSelector)",message="set exactly one of spec.namespaces (a list, enrolled in list order) and spec.namespaceSelector (enrolled in name order)"
type MeshAdoptionSpec struct {
	// meshInstallRef names the MeshInstall whose data plane the namespaces
	// join.
	// +required
	MeshInstallRef LocalObjectReference `json:"meshInstallRef"`

	// mode is the data-plane mode the namespaces join (Istio only:
	// Sidecar or Ambient); the MeshInstall's profile when unset. Ambient
	// needs a MeshInstall with profile Ambient (ztunnel).
	// +optional
	// +kubebuilder:validation:Enum=Sidecar;Ambient
	Mode Profile `json:"mode,omitempty"`

	// namespaces to enrol, in this order.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespaces []string `json:"namespaces,omitempty"`

	// namespaceSelector picks the namespaces to enrol, in name order.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// waves says how many namespaces move at once and how each wave is
	// judged.
	// +optional
	Waves AdoptionWaves `json:"waves,omitempty"`

	// paused stops before the next wave; a wave in flight finishes.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// AdoptionWaves is the wave plan of a MeshAdoption.
type AdoptionWaves struct {
	// size is the number of namespaces per wave.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Size int32 `json:"size,omitempty"`

	// pause waits after a healthy wave before the next. Bounds 0s..24h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('0s') && duration(self) <= duration('24h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'pause must be between 0s and 24h; got ' + self : 'pause "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	Pause *metav1.Duration `json:"pause,omitempty"`

	// healthTimeout is how long a wave's restarted workloads have to become
	// Ready; a wave that misses it is moved back (labels restored from the
	// record, workloads restarted out of the mesh) and the adoption holds.
	// Bounds 1s..24h; 5m by default.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('24h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'healthTimeout must be between 1s and 24h; got ' + self : 'healthTimeout "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	HealthTimeout *metav1.Duration `json:"healthTimeout,omitempty"`

	// restartWorkloads restarts a wave's workloads where the mode needs it
	// (sidecars are injected at pod creation); true by default. With false,
	// only the labels move and pods join on their next restart.
	// +optional
	// +kubebuilder:default=true
	RestartWorkloads *bool `json:"restartWorkloads,omitempty"`

	// audit, when set, runs each wave's ZeroTrustPolicies in Audit for a
	// window after the wave is healthy, and promotes them to their own
	// spec.enforcement (Enforce by default) only if a Prometheus query of
	// would-be denials stays at zero for the whole window.
	// +optional
	Audit *AdoptionAudit `json:"audit,omitempty"`
}

// AdoptionAudit is the audit-first promotion gate of a wave. While a wave
// audits, its namespaces carry the annotation meshplane.io/audit-hold and
// every ZeroTrustPolicy in them is translated in Audit, whatever its
// spec.enforcement says; the policies' specs are never written.
// +kubebuilder:validation:XValidation:rule="!has(self.metricsServer.secretRef)",message="audit.metricsServer.secretRef is not supported on a cluster-scoped MeshAdoption; use a metrics API that needs no credentials from the operator, or a Canary's metricsServer"
type AdoptionAudit struct {
	// window is how long the wave's policies stay in Audit once the wave
	// is healthy. Bounds 1s..720h.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('720h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'audit.window must be between 1s and 720h; got ' + self : 'audit.window "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	Window metav1.Duration `json:"window"`

	// metricsServer is the Prometheus-compatible API the query runs
	// against.
	// +required
	MetricsServer MetricsServer `json:"metricsServer"`

	// query counts the requests the namespace's policies would have
	// denied; it must return one number. {{ namespace }} is the
	// namespace and {{ interval }} the time the wave has audited so far.
	// The mesh's built-in query when unset (docs/adoption.md).
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Query string `json:"query,omitempty"`
}

// MeshAdoptionPhase is where an adoption stands.
// +kubebuilder:validation:Enum=Pending;Enrolling;Paused;Held;Completed
type MeshAdoptionPhase string

// MeshAdoption phases.
const (
	// AdoptionPending: no wave started yet.
	AdoptionPending MeshAdoptionPhase = "Pending"
	// AdoptionEnrolling: a wave is in flight or the next one is due.
	AdoptionEnrolling MeshAdoptionPhase = "Enrolling"
	// AdoptionPaused: spec.paused, or a BreakGlass holds the mesh.
	AdoptionPaused MeshAdoptionPhase = "Paused"
	// AdoptionHeld: a wave failed its health gate and was moved back.
	AdoptionHeld MeshAdoptionPhase = "Held"
	// AdoptionCompleted: every namespace is enrolled.
	AdoptionCompleted MeshAdoptionPhase = "Completed"
)

// AdoptionWavePhase is where one wave stands.
// +kubebuilder:validation:Enum=Enrolling;Auditing;Enrolled;MovedBack
type AdoptionWavePhase string

// Wave phases.
const (
	// WaveEnrolling: labelled and restarted, waiting for its gate.
	WaveEnrolling AdoptionWavePhase = "Enrolling"
	// WaveAuditing: healthy, its policies held in Audit for the audit
	// window before promotion.
	WaveAuditing AdoptionWavePhase = "Auditing"
	// WaveEnrolled: passed its health gate (and, with spec.waves.audit,
	// its policies were promoted).
	WaveEnrolled AdoptionWavePhase = "Enrolled"
	// WaveMovedBack: failed its gate and was moved back.
	WaveMovedBack AdoptionWavePhase = "MovedBack"
)

// AdoptionWaveStatus is one wave's progress.
type AdoptionWaveStatus struct {
	// index of the wave, from 1.
	Index int32 `json:"index"`
	// namespaces of the wave.
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=63
	Namespaces []string `json:"namespaces"`
	// phase of the wave.
	Phase AdoptionWavePhase `json:"phase"`
	// startTime is when the wave was labelled.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// completionTime is when the wave passed its gate or was moved back.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// waypoints are the namespaces of the wave given a waypoint before
	// they moved (their objects need L7 in the target data plane).
	// +optional
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=63
	Waypoints []string `json:"waypoints,omitempty"`
	// auditStartTime is when the wave's audit window began.
	// +optional
	AuditStartTime *metav1.Time `json:"auditStartTime,omitempty"`
	// wouldBeDenied is the number of requests the wave's policies would
	// have denied in the audit window so far, from the last query.
	// +optional
	WouldBeDenied *int64 `json:"wouldBeDenied,omitempty"`
	// promotionTime is when the wave's policies were promoted from Audit.
	// +optional
	PromotionTime *metav1.Time `json:"promotionTime,omitempty"`
	// message explains what the wave waits for, or why it moved back.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// MeshAdoptionStatus is the observed state of a MeshAdoption.
type MeshAdoptionStatus struct {
	CommonStatus `json:",inline"`

	// phase of the adoption.
	// +optional
	Phase MeshAdoptionPhase `json:"phase,omitempty"`

	// provider of the MeshInstall the namespaces join.
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// totalNamespaces is the number of namespaces the spec selects.
	// +optional
	TotalNamespaces int32 `json:"totalNamespaces,omitempty"`

	// enrolledNamespaces is the number of them in the data plane.
	// +optional
	EnrolledNamespaces int32 `json:"enrolledNamespaces,omitempty"`

	// waves started so far, oldest first (the last 64).
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Waves []AdoptionWaveStatus `json:"waves,omitempty"`
}

// MeshAdoption brings namespaces into a mesh's data plane in waves behind
// health gates, moving a failed wave back exactly.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=madopt,categories=meshplane
// +kubebuilder:printcolumn:name="Mesh",type=string,JSONPath=`.spec.meshInstallRef.name`
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.status.provider`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Enrolled",type=integer,JSONPath=`.status.enrolledNamespaces`
// +kubebuilder:printcolumn:name="Total",type=integer,JSONPath=`.status.totalNamespaces`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MeshAdoption struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired adoption.
	// +required
	Spec MeshAdoptionSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status MeshAdoptionStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// MeshAdoptionList is a list of MeshAdoptions.
type MeshAdoptionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshAdoption `json:"items"`
}

func init() {
	register(&MeshAdoption{}, &MeshAdoptionList{})
}

// GetCommonStatus returns the conditions and observedGeneration.
func (in *MeshAdoption) GetCommonStatus() *CommonStatus { return &in.Status.CommonStatus }

// UnmarshalJSON decodes a MeshAdoption; fields stored before a rule existed
// that cannot be decoded are left out and noted in Status.DecodeError.
func (in *MeshAdoption) UnmarshalJSON(b []byte) error {
	type plain MeshAdoption
	note, err := decodeTolerant(b, (*plain)(in))
	in.Status.undecodable = note
	return err
}
