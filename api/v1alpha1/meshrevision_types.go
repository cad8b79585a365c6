package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MeshRevisionSpec is one control-plane revision of a MeshInstall. Its
// metadata.name is the revision name (the istio.io/rev label value).
type MeshRevisionSpec struct {
	// meshInstallRef names the MeshInstall this revision belongs to; the
	// MeshInstall must use provider Istio. Immutable.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="meshInstallRef is immutable"
	MeshInstallRef LocalObjectReference `json:"meshInstallRef"`

	// version of the control plane this revision runs. Immutable: a new
	// version is a new revision.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="version is immutable; create a new MeshRevision for another version"
	Version string `json:"version"`

	// tags are revision tags (e.g. prod-canary) pointing at this revision.
	// The MeshInstall's default tag is moved by the MeshInstall controller
	// and must not be listed here.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Tags []string `json:"tags,omitempty"`

	// values are Helm values for this revision's istiod, merged over the
	// MeshInstall's.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	Values *apiextensionsv1.JSON `json:"values,omitempty"`
}

// MeshRevisionPhase is the life-cycle step of a revision.
// +kubebuilder:validation:Enum=Pending;Installing;Ready;InUse;Draining;Removable;Failed
type MeshRevisionPhase string

// MeshRevisionStatus is the observed state of a MeshRevision.
type MeshRevisionStatus struct {
	CommonStatus `json:",inline"`

	// phase of the revision.
	// +optional
	Phase MeshRevisionPhase `json:"phase,omitempty"`

	// tags pointing at this revision, including the default tag.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=63
	Tags []string `json:"tags,omitempty"`

	// namespaces that select this revision by label or tag (at most 256
	// listed; namespaceCount has the total).
	// +optional
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	Namespaces []string `json:"namespaces,omitempty"`

	// namespaceCount is the number of namespaces using the revision.
	// +optional
	NamespaceCount int32 `json:"namespaceCount,omitempty"`

	// podCount is the number of running pods whose proxy belongs to it.
	// +optional
	PodCount int32 `json:"podCount,omitempty"`

	// deletable is true when no namespace label, tag or running pod uses the
	// revision.
	// +optional
	Deletable bool `json:"deletable,omitempty"`

	// unusedSince is when the revision was last seen unused; it is removed
	// after the MeshInstall's revisionRetention.
	// +optional
	UnusedSince *metav1.Time `json:"unusedSince,omitempty"`

	// components are the revision's control-plane workloads.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Components []ComponentStatus `json:"components,omitempty"`
}

// MeshRevision is one control-plane revision of an Istio MeshInstall, side
// by side with others.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=mrev,categories=meshplane
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name is the istio.io/rev value and must be a DNS label (at most 63 characters)"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.tags) || !self.spec.tags.exists(t, t == 'default' || t == self.metadata.name)",message="spec.tags must not contain default (moved by the MeshInstall) or the revision's own name"
// +kubebuilder:printcolumn:name="Mesh",type=string,JSONPath=`.spec.meshInstallRef.name`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Namespaces",type=integer,JSONPath=`.status.namespaceCount`
// +kubebuilder:printcolumn:name="Pods",type=integer,JSONPath=`.status.podCount`
// +kubebuilder:printcolumn:name="Deletable",type=boolean,JSONPath=`.status.deletable`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MeshRevision struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired revision.
	// +required
	Spec MeshRevisionSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status MeshRevisionStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// MeshRevisionList is a list of MeshRevisions.
type MeshRevisionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshRevision `json:"items"`
}

func init() {
	register(&MeshRevision{}, &MeshRevisionList{})
}
