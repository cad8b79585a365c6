package v1alpha1

// ExportFailover is how calls to an exported service choose between the
// clusters that export it.
// +kubebuilder:validation:Enum=None;LocalFirst
type ExportFailover string

// The failover preferences of exported services.
const (
	// FailoverNone leaves balancing across clusters to the mesh's default.
	FailoverNone ExportFailover = "None"
	// FailoverLocalFirst prefers the caller's own locality, then the
	// others', with outlier detection.
	FailoverLocalFirst ExportFailover = "LocalFirst"
)

// ServicesExportedCondition (MeshFederation) is True when every exported
// service is imported by every member that federates services with its
// exporters, with its scope and failover enforced; False names what is
// missing per service.
const ServicesExportedCondition = "ServicesExported"

// ExportedServiceStatus is one exported service of the cluster set: a
// namespace and name exported (ServiceExport) by one or more members.
type ExportedServiceStatus struct {
	// namespace of the exported Service (the same in every member).
	// +required
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// name of the exported Service.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// type of the import: ClusterSetIP or Headless.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	Type string `json:"type,omitempty"`
	// exportedBy are the members whose ServiceExport exports the service.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	ExportedBy []string `json:"exportedBy,omitempty"`
	// importedBy are the members that hold its ServiceImport.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=63
	ImportedBy []string `json:"importedBy,omitempty"`
	// reachable is true when at least one exporter has a ready endpoint
	// and every importer reads that exporter (its remote credential is
	// linked).
	// +optional
	Reachable bool `json:"reachable,omitempty"`
	// gatewayAddresses are the east-west gateway addresses of the
	// exporters, as other networks reach them (exporter=address).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=320
	GatewayAddresses []string `json:"gatewayAddresses,omitempty"`
	// scope is how the mesh scopes the service in each exporter
	// (exporter: what is in force).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Scope string `json:"scope,omitempty"`
	// ready is true when nothing is missing.
	// +optional
	Ready bool `json:"ready,omitempty"`
	// message says what is missing, and how to fix it.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// TopologyConfiguredCondition (MeshFederation, per cluster) is True when
// the member's mesh, as its MeshInstall installs it, carries the mesh ID,
// cluster name and network service federation gives it; False names the
// MeshInstall fields and values to set. Meshplane does not write them
// into the MeshInstall (its spec belongs to whoever applies it).
const TopologyConfiguredCondition = "TopologyConfigured"

// Reasons of service export.
const (
	// TopologyMismatchReason (TopologyConfigured): the member's install does
	// not carry the mesh ID, cluster name or network federation gives it.
	TopologyMismatchReason = "TopologyMismatch"
	// NotInstalledByMeshplaneReason (TopologyConfigured, Unknown): the
	// member's mesh has no MeshInstall, so its values cannot be checked.
	NotInstalledByMeshplaneReason = "NotInstalledByMeshplane"
	// ScopeNotEnforcedReason (ServicesExported): the mesh makes services
	// that are not exported reachable from peers too, or keeps an exported
	// one local.
	ScopeNotEnforcedReason = "ScopeNotEnforced"
)
