package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BreakGlassPhase is the step of a BreakGlass.
// +kubebuilder:validation:Enum=Pending;Engaging;Engaged;Restoring;Restored;Failed
type BreakGlassPhase string

const (
	// BreakGlassPending: accepted, nothing recorded yet.
	BreakGlassPending BreakGlassPhase = "Pending"
	// BreakGlassEngaging: prior state recorded, actions being applied.
	BreakGlassEngaging BreakGlassPhase = "Engaging"
	// BreakGlassEngaged: every action took effect.
	BreakGlassEngaged BreakGlassPhase = "Engaged"
	// BreakGlassRestoring: the recorded state is being put back.
	BreakGlassRestoring BreakGlassPhase = "Restoring"
	// BreakGlassRestored: the recorded state is back (expired BreakGlasses
	// stay in this phase until deleted).
	BreakGlassRestored BreakGlassPhase = "Restored"
	// BreakGlassFailed: an action could not be applied; see conditions.
	BreakGlassFailed BreakGlassPhase = "Failed"
)

// BreakGlassTarget names the mesh to disable: a MeshInstall or a provider.
// +kubebuilder:validation:XValidation:rule="has(self.meshInstallRef) != has(self.provider)",message="set exactly one of target.meshInstallRef and target.provider"
type BreakGlassTarget struct {
	// meshInstallRef names the MeshInstall of the mesh.
	// +optional
	MeshInstallRef *LocalObjectReference `json:"meshInstallRef,omitempty"`

	// provider names the mesh when it was not installed by Meshplane.
	// +optional
	Provider Provider `json:"provider,omitempty"`
}

// BreakGlassScope selects the namespaces affected. Empty means every
// namespace the target mesh serves.
// +kubebuilder:validation:XValidation:rule="!(has(self.namespaceSelector) && has(self.namespaces))",message="set at most one of scope.namespaceSelector and scope.namespaces"
type BreakGlassScope struct {
	// namespaceSelector selects namespaces by label.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// namespaces lists namespaces by name.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespaces []string `json:"namespaces,omitempty"`
}

// BreakGlassActions selects what is disabled. Each action is on unless
// noted.
type BreakGlassActions struct {
	// detachInjection removes injection labels and annotations from the
	// namespaces in scope and neutralises the mesh's mutating webhooks, so
	// new pods start without sidecars even while the control plane is down;
	// for Ambient the dataplane-mode label is removed.
	// +optional
	// +kubebuilder:default=true
	DetachInjection *bool `json:"detachInjection,omitempty"`

	// relaxPolicies sets mTLS to Permissive and suspends default-deny for
	// what Meshplane generated.
	// +optional
	// +kubebuilder:default=true
	RelaxPolicies *bool `json:"relaxPolicies,omitempty"`

	// includeForeignPolicies also relaxes mesh policies Meshplane did not
	// create (recorded first, restored after). Off by default.
	// +optional
	IncludeForeignPolicies bool `json:"includeForeignPolicies,omitempty"`

	// pinTraffic routes TrafficSplits and Canaries in scope 100% to their
	// stable backend or primary, and pauses canaries.
	// +optional
	// +kubebuilder:default=true
	PinTraffic *bool `json:"pinTraffic,omitempty"`

	// restartWorkloads rollout-restarts Deployments, StatefulSets and
	// DaemonSets in scope so running pods drop their sidecars. Off by
	// default.
	// +optional
	RestartWorkloads bool `json:"restartWorkloads,omitempty"`

	// restartBatchSize is the number of workloads restarted at once.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	RestartBatchSize int32 `json:"restartBatchSize,omitempty"`
}

// BreakGlassSpec disables a mesh during an incident. Only reason and
// expiresAfter may change once created: the recorded prior state covers
// exactly the scope and actions it was engaged with.
// +kubebuilder:validation:XValidation:rule="has(self.scope) == has(oldSelf.scope)",message="scope is immutable; delete this BreakGlass (which restores) and create another"
// +kubebuilder:validation:XValidation:rule="self.actions == oldSelf.actions",message="actions are immutable; delete this BreakGlass (which restores) and create another"
type BreakGlassSpec struct {
	// reason is why the glass was broken; shown in status and Events.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason"`

	// target is the mesh to disable. Immutable.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="target is immutable; delete this BreakGlass and create another"
	Target BreakGlassTarget `json:"target"`

	// scope selects the namespaces; every namespace the mesh serves when
	// empty. Immutable.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="scope is immutable; delete this BreakGlass (which restores) and create another"
	Scope *BreakGlassScope `json:"scope,omitempty"`

	// actions select what is disabled.
	// +optional
	// +kubebuilder:default={}
	Actions BreakGlassActions `json:"actions,omitempty"`

	// expiresAfter restores automatically this long after engaging.
	// Bounds 1m..8760h (a year): an incident measure, not a permanent state.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1m') && duration(self) <= duration('8760h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'expiresAfter must be between 1m and 8760h; got ' + self : 'expiresAfter "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	ExpiresAfter *metav1.Duration `json:"expiresAfter,omitempty"`
}

// BreakGlassCounts counts what a BreakGlass touched.
type BreakGlassCounts struct {
	// namespaces whose labels or annotations were changed.
	// +optional
	Namespaces int32 `json:"namespaces"`
	// webhooks neutralised.
	// +optional
	Webhooks int32 `json:"webhooks"`
	// policies relaxed.
	// +optional
	Policies int32 `json:"policies"`
	// trafficRoutes pinned (TrafficSplits and Canaries).
	// +optional
	TrafficRoutes int32 `json:"trafficRoutes"`
	// workloads restarted.
	// +optional
	Workloads int32 `json:"workloads"`
}

// FieldConflict is a field someone else changed during the incident; the
// restore left it as they set it.
type FieldConflict struct {
	// object is kind/namespace/name.
	// +required
	// +kubebuilder:validation:MaxLength=512
	Object string `json:"object"`
	// field path, e.g. metadata.labels.istio-injection.
	// +required
	// +kubebuilder:validation:MaxLength=512
	Field string `json:"field"`
	// message says what was found and what was kept.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// BreakGlassRecordCopy is what a BreakGlass keeps in its status of the
// record Secret it restores from.
type BreakGlassRecordCopy struct {
	// sha256 is the hex SHA-256 of the Secret's record.json.gz.
	// +required
	// +kubebuilder:validation:MaxLength=64
	SHA256 string `json:"sha256"`
	// namespaces in scope, as recorded.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10000
	// +kubebuilder:validation:items:MaxLength=63
	Namespaces []string `json:"namespaces,omitempty"`
	// data is record.json.gz itself (base64 in JSON) when it is at most
	// 64 KiB; empty for larger records.
	// +optional
	// +kubebuilder:validation:MaxLength=87384
	Data []byte `json:"data,omitempty"`
}

// BreakGlassStatus is the observed state of a BreakGlass.
type BreakGlassStatus struct {
	CommonStatus `json:",inline"`

	// phase of the BreakGlass.
	// +optional
	Phase BreakGlassPhase `json:"phase,omitempty"`

	// provider of the disabled mesh.
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// startTime is when engaging began.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// engagedTime is when every action had taken effect.
	// +optional
	EngagedTime *metav1.Time `json:"engagedTime,omitempty"`

	// expiryTime is when the BreakGlass restores by itself.
	// +optional
	ExpiryTime *metav1.Time `json:"expiryTime,omitempty"`

	// recordSecretRef names the Secret (in the operator namespace) holding
	// the recorded prior state.
	// +optional
	RecordSecretRef *ObjectReference `json:"recordSecretRef,omitempty"`

	// record is a copy of the record Secret, written before anything is
	// changed: its digest (so a deleted or replaced Secret is detected),
	// the namespaces in scope and, when small enough, the record itself
	// (to recreate the Secret from).
	// +optional
	Record *BreakGlassRecordCopy `json:"record,omitempty"`

	// touched counts what was changed.
	// +optional
	Touched BreakGlassCounts `json:"touched,omitempty"`

	// conflicts are fields others changed during the incident.
	// +optional
	// +kubebuilder:validation:MaxItems=128
	Conflicts []FieldConflict `json:"conflicts,omitempty"`
}

// BreakGlass disables a mesh now, during an incident, and restores exactly
// the recorded prior state when deleted.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=bg,categories=meshplane
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.status.provider`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Namespaces",type=integer,JSONPath=`.status.touched.namespaces`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.spec.reason`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BreakGlass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired break-glass.
	// +required
	Spec BreakGlassSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status BreakGlassStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// BreakGlassList is a list of BreakGlasses.
type BreakGlassList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BreakGlass `json:"items"`
}

func init() {
	register(&BreakGlass{}, &BreakGlassList{})
}
