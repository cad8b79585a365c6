package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ProxyResources are the CPU and memory requests and limits of the
// sidecar proxy of the selected workloads, as Kubernetes quantities
// ("100m", "1", "128Mi"). A limit is never below its request.
// +kubebuilder:validation:XValidation:rule="has(self.cpuRequest) || has(self.cpuLimit) || has(self.memoryRequest) || has(self.memoryLimit)",message="resources needs at least one of cpuRequest, cpuLimit, memoryRequest and memoryLimit"
// +kubebuilder:validation:XValidation:rule="!has(self.cpuRequest) || !has(self.cpuLimit) || !isQuantity(self.cpuRequest) || !isQuantity(self.cpuLimit) || quantity(self.cpuRequest).compareTo(quantity(self.cpuLimit)) <= 0",message="resources.cpuRequest must not exceed resources.cpuLimit: lower the request or raise the limit"
// +kubebuilder:validation:XValidation:rule="!has(self.memoryRequest) || !has(self.memoryLimit) || !isQuantity(self.memoryRequest) || !isQuantity(self.memoryLimit) || quantity(self.memoryRequest).compareTo(quantity(self.memoryLimit)) <= 0",message="resources.memoryRequest must not exceed resources.memoryLimit: lower the request or raise the limit"
type ProxyResources struct {
	// cpuRequest is the proxy container's CPU request, e.g. "100m".
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",message="cpuRequest must be a positive Kubernetes quantity such as 100m or 1"
	CPURequest string `json:"cpuRequest,omitempty"`

	// cpuLimit is the proxy container's CPU limit, e.g. "1".
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",message="cpuLimit must be a positive Kubernetes quantity such as 500m or 2"
	CPULimit string `json:"cpuLimit,omitempty"`

	// memoryRequest is the proxy container's memory request, e.g. "64Mi".
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",message="memoryRequest must be a positive Kubernetes quantity such as 64Mi or 1Gi"
	MemoryRequest string `json:"memoryRequest,omitempty"`

	// memoryLimit is the proxy container's memory limit, e.g. "256Mi".
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",message="memoryLimit must be a positive Kubernetes quantity such as 256Mi or 1Gi"
	MemoryLimit string `json:"memoryLimit,omitempty"`
}

// ProxyEgressScope narrows the outbound configuration each proxy receives
// to the hosts listed (Istio's Sidecar egress hosts): a proxy then knows,
// and spends memory on, only those services.
type ProxyEgressScope struct {
	// hosts in "<namespace>/<dns name>" form: "./*" is every service of
	// the policy's namespace, "istio-system/*" every service of
	// istio-system, "*/api.example.com" one host in any namespace.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^(\.|\*|~|[a-z0-9]([-a-z0-9]*[a-z0-9])?)/(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$`
	Hosts []string `json:"hosts"`
}

// ProxyRollout says how the pod-template changes reach running pods.
// Writing a workload's pod-template annotations rolls it out (its own
// update strategy restarts its pods), so a policy's changes are rolled out
// batchSize workloads at a time, each batch only once the previous one
// has finished rolling out, or held while paused.
type ProxyRollout struct {
	// batchSize is how many workloads get their new pod-template
	// annotations at a time; the next batch waits until every workload of
	// the previous one has rolled out and is available. Every matching
	// workload at once when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	BatchSize *int32 `json:"batchSize,omitempty"`

	// paused holds every workload whose pod template does not carry the
	// policy's annotations yet (status.workloads lists them as Pending):
	// nothing is restarted until paused is false. Workloads already
	// configured keep their annotations.
	// +optional
	Paused bool `json:"paused,omitempty"`
}

// ProxyPolicySpec is the sidecar proxies' resources and outbound scope of
// the workloads a selector picks.
// +kubebuilder:validation:XValidation:rule="has(self.resources) || has(self.egressScope)",message="a ProxyPolicy needs resources or egressScope"
type ProxyPolicySpec struct {
	MeshSelection `json:",inline"`

	// selector picks the workloads (Deployments, StatefulSets and
	// DaemonSets of the namespace, by their pod-template labels); every
	// workload of the namespace when unset.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`

	// resources are the sidecar proxy's requests and limits, written as
	// the mesh's pod-template annotations.
	// +optional
	Resources *ProxyResources `json:"resources,omitempty"`

	// egressScope narrows each proxy's outbound configuration.
	// +optional
	EgressScope *ProxyEgressScope `json:"egressScope,omitempty"`

	// rollout paces the restarts pod-template changes cause.
	// +optional
	Rollout *ProxyRollout `json:"rollout,omitempty"`
}

// ProxyWorkloadState says whether a workload's pod template carries the
// policy's annotations.
// +kubebuilder:validation:Enum=Applied;Pending
type ProxyWorkloadState string

const (
	// ProxyWorkloadApplied: the pod template carries the annotations.
	ProxyWorkloadApplied ProxyWorkloadState = "Applied"
	// ProxyWorkloadPending: the pod template does not carry them yet (a
	// later batch, or the rollout is paused).
	ProxyWorkloadPending ProxyWorkloadState = "Pending"
)

// ProxyWorkloadStatus is one selected workload.
type ProxyWorkloadStatus struct {
	// kind is Deployment, StatefulSet or DaemonSet.
	// +required
	// +kubebuilder:validation:MaxLength=32
	Kind string `json:"kind"`

	// name of the workload.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// state is Applied or Pending.
	// +required
	State ProxyWorkloadState `json:"state"`

	// rolledOut is true once the workload has finished rolling out its
	// current pod template and is available.
	// +optional
	RolledOut bool `json:"rolledOut,omitempty"`
}

// ProxyPolicyStatus is the observed state of a ProxyPolicy.
type ProxyPolicyStatus struct {
	CommonStatus `json:",inline"`

	// provider is the mesh the policy was translated for.
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// inventory lists the objects written for this policy: its own
	// outputs (Istio's Sidecar) and the workloads whose pod-template
	// annotations it sets.
	// +optional
	// +kubebuilder:validation:MaxItems=1024
	Inventory []ObjectReference `json:"inventory,omitempty"`

	// sharedFields lists the pod-template annotations this policy set on
	// workloads it did not create, with their previous values; deleting
	// the policy, or a workload leaving the selector, restores them.
	// +optional
	// +kubebuilder:validation:MaxItems=4096
	SharedFields []SharedField `json:"sharedFields,omitempty"`

	// workloads lists the selected workloads and whether each carries the
	// policy's annotations.
	// +optional
	// +kubebuilder:validation:MaxItems=1024
	Workloads []ProxyWorkloadStatus `json:"workloads,omitempty"`
}

// ProxyPolicy sets the sidecar proxies' CPU and memory and their outbound
// scope for a namespace or workloads.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pxp,categories=meshplane
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.status.provider`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ProxyPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired proxy configuration.
	// +required
	Spec ProxyPolicySpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status ProxyPolicyStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ProxyPolicyList is a list of ProxyPolicies.
type ProxyPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ProxyPolicy `json:"items"`
}

// GetCommonStatus returns the conditions and observedGeneration.
func (in *ProxyPolicy) GetCommonStatus() *CommonStatus { return &in.Status.CommonStatus }

func init() {
	register(&ProxyPolicy{}, &ProxyPolicyList{})
}

// RolloutPausedReason: a ProxyPolicy's spec.rollout.paused holds
// workloads whose pod templates do not carry its settings yet.
const RolloutPausedReason = "RolloutPaused"
