package v1alpha1

import (
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Profile is the Istio data-plane mode.
// +kubebuilder:validation:Enum=Sidecar;Ambient
type Profile string

const (
	// ProfileSidecar injects an Envoy sidecar into every meshed pod.
	ProfileSidecar Profile = "Sidecar"
	// ProfileAmbient uses ztunnel and waypoints (Istio only).
	ProfileAmbient Profile = "Ambient"
)

// UpgradeStrategyType is how a version change is rolled out.
// +kubebuilder:validation:Enum=InPlace;RevisionBased
type UpgradeStrategyType string

const (
	// UpgradeInPlace upgrades the control plane's Helm releases in place and
	// then restarts the data plane in batches.
	UpgradeInPlace UpgradeStrategyType = "InPlace"
	// UpgradeRevisionBased installs the new version as a new Istio revision
	// beside the old one and migrates namespaces in batches (Istio only).
	UpgradeRevisionBased UpgradeStrategyType = "RevisionBased"
)

// DeletionPolicy says what happens to the mesh when its MeshInstall is
// deleted.
// +kubebuilder:validation:Enum=Orphan;Uninstall
type DeletionPolicy string

const (
	// DeletionOrphan leaves the mesh running (the default).
	DeletionOrphan DeletionPolicy = "Orphan"
	// DeletionUninstall uninstalls the control plane. The mesh's CRDs are
	// never deleted, because they hold users' configuration.
	DeletionUninstall DeletionPolicy = "Uninstall"
)

// AdoptSource says what kind of existing installation is adopted.
// +kubebuilder:validation:Enum=HelmRelease;CLI
type AdoptSource string

const (
	// AdoptHelmRelease takes over existing Helm releases.
	AdoptHelmRelease AdoptSource = "HelmRelease"
	// AdoptCLI takes over resources installed by the mesh's own CLI
	// (istioctl, linkerd, cilium).
	AdoptCLI AdoptSource = "CLI"
)

// MeshInstallSpec is one mesh in this cluster.
// +kubebuilder:validation:XValidation:rule="self.provider == 'Istio' || !has(self.profile) || self.profile == 'Sidecar'",message="profile Ambient is only supported by provider Istio"
// +kubebuilder:validation:XValidation:rule="self.provider == 'Istio' || !has(self.upgrade) || !has(self.upgrade.strategy) || self.upgrade.strategy == 'InPlace'",message="upgrade.strategy RevisionBased is only supported by provider Istio (revisions are an Istio feature)"
// +kubebuilder:validation:XValidation:rule="self.provider == 'Istio' || !has(self.istio)",message="spec.istio may only be set when provider is Istio"
// +kubebuilder:validation:XValidation:rule="!has(self.istio) || !has(self.istio.waypoints) || size(self.istio.waypoints) == 0 || (has(self.profile) && self.profile == 'Ambient')",message="spec.istio.waypoints needs spec.profile Ambient (waypoints serve ambient namespaces)"
// +kubebuilder:validation:XValidation:rule="self.provider == 'Linkerd' || !has(self.linkerd)",message="spec.linkerd may only be set when provider is Linkerd"
// +kubebuilder:validation:XValidation:rule="self.provider == 'Cilium' || !has(self.cilium)",message="spec.cilium may only be set when provider is Cilium"
// +kubebuilder:validation:XValidation:rule="has(self.namespace) == has(oldSelf.namespace)",message="namespace is immutable"
// +kubebuilder:validation:XValidation:rule="(has(self.istio) && has(self.istio.revision)) == (has(oldSelf.istio) && has(oldSelf.istio.revision))",message="istio.revision is immutable; change spec.version with upgrade.strategy RevisionBased, or create a MeshRevision"
// +kubebuilder:validation:XValidation:rule="self.provider != 'Linkerd' || self.version.startsWith('edge-') || has(self.chart)",message="Linkerd versions from the official repository are edge releases (edge-YY.M.N); for stable or enterprise releases set spec.chart to their repository"
type MeshInstallSpec struct {
	// provider is the mesh to install. Immutable: create another MeshInstall
	// to change meshes.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="provider is immutable"
	Provider Provider `json:"provider"`

	// version of the mesh, e.g. "1.28.1" for Istio, "edge-26.1.1" or
	// "2.19.0" for Linkerd, "1.19.5" for Cilium. Changing it upgrades the
	// mesh according to spec.upgrade.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^(v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?|(edge|stable|enterprise)-[0-9]+\.[0-9]+\.[0-9]+)$`
	Version string `json:"version"`

	// profile is the Istio data-plane mode; Sidecar by default. Ambient adds
	// the cni and ztunnel charts.
	// +optional
	Profile Profile `json:"profile,omitempty"`

	// namespace the control plane runs in. Defaults to istio-system, linkerd
	// or kube-system by provider. Immutable.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="namespace is immutable"
	Namespace string `json:"namespace,omitempty"`

	// chart says where the mesh's charts come from; the project's official
	// repository when unset.
	// +optional
	Chart *ChartSource `json:"chart,omitempty"`

	// values are Helm values merged over Meshplane's provider and profile
	// defaults, for every chart of the mesh. Use components[].values to
	// target one chart.
	// +optional
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	Values *apiextensionsv1.JSON `json:"values,omitempty"`

	// components overrides values of single charts (for example istiod,
	// ztunnel, linkerd-control-plane).
	// +optional
	// +listType=map
	// +listMapKey=chart
	// +kubebuilder:validation:MaxItems=8
	Components []ComponentValues `json:"components,omitempty"`

	// adopt takes over an existing installation of the mesh without
	// reinstalling it and without restarting anything.
	// +optional
	Adopt *AdoptSpec `json:"adopt,omitempty"`

	// upgrade says how version changes are rolled out.
	// +optional
	Upgrade *UpgradeSpec `json:"upgrade,omitempty"`

	// deletionPolicy says what happens to the mesh when this object is
	// deleted: Orphan (default) leaves it running, Uninstall removes the
	// control plane. CRDs are never deleted.
	// +optional
	// +kubebuilder:default=Orphan
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// suspend stops reconciliation; nothing is changed while it is true.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// istio holds settings only Istio has.
	// +optional
	Istio *IstioInstallSpec `json:"istio,omitempty"`

	// linkerd holds settings only Linkerd has.
	// +optional
	Linkerd *LinkerdInstallSpec `json:"linkerd,omitempty"`

	// cilium holds settings only Cilium has.
	// +optional
	Cilium *CiliumInstallSpec `json:"cilium,omitempty"`
}

// ChartSource is where a mesh's charts are fetched from. At most one of
// repository and path is set; neither means the official repository.
// +kubebuilder:validation:XValidation:rule="!(has(self.repository) && has(self.path))",message="set at most one of repository and path"
// +kubebuilder:validation:XValidation:rule="!has(self.credentialsSecretRef) || has(self.repository)",message="credentialsSecretRef requires repository"
// +kubebuilder:validation:XValidation:rule="!has(self.repository) || !self.repository.matches('^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@')",message="spec.chart.repository must not carry credentials (user:password@host): put the username and password in a Secret in the operator namespace (keys username and password) and reference it with spec.chart.credentialsSecretRef"
type ChartSource struct {
	// repository is an HTTP(S) Helm repository (serving index.yaml) or an
	// OCI registry (oci://host/path). Credentials in the URL
	// (user:password@host) are refused; use credentialsSecretRef. (That
	// rule sits on chart, so that the refusal does not echo the URL.)
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^(https?|oci)://[^\s]+$`
	Repository string `json:"repository,omitempty"`

	// path is a directory or packaged chart archive (.tgz) on the operator's
	// filesystem, for air-gapped sites. A directory holds one sub-directory
	// or archive per chart.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	Path string `json:"path,omitempty"`

	// chartVersion overrides the chart version; by default the provider
	// maps the mesh version to its chart version (Linkerd edge releases, for
	// example, publish charts under their own SemVer).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ChartVersion string `json:"chartVersion,omitempty"`

	// credentialsSecretRef names a Secret in the operator namespace with
	// keys username and password for the repository.
	// +optional
	CredentialsSecretRef *SecretKeyReference `json:"credentialsSecretRef,omitempty"`

	// caSecretRef names a Secret whose key ca.crt holds the CA bundle of the
	// repository's TLS certificate.
	// +optional
	CASecretRef *SecretKeyReference `json:"caSecretRef,omitempty"`
}

// ComponentValues are Helm values for one chart of the mesh.
type ComponentValues struct {
	// chart is the chart name, e.g. istiod, base, cni, ztunnel,
	// linkerd-control-plane, cilium.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Chart string `json:"chart"`

	// values merged over everything else for this chart.
	// +required
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	Values apiextensionsv1.JSON `json:"values"`
}

// AdoptSpec takes over an existing installation.
type AdoptSpec struct {
	// source is what is adopted: existing Helm releases, or resources
	// installed by the mesh's CLI.
	// +required
	Source AdoptSource `json:"source"`

	// releaseNames maps chart names to existing release names when they
	// differ from Meshplane's defaults (HelmRelease only).
	// +optional
	// +kubebuilder:validation:MaxProperties=8
	ReleaseNames map[string]string `json:"releaseNames,omitempty"`
}

// UpgradeSpec says how version changes are rolled out.
type UpgradeSpec struct {
	// strategy is InPlace (default) or RevisionBased (Istio only).
	// +optional
	// +kubebuilder:default=InPlace
	Strategy UpgradeStrategyType `json:"strategy,omitempty"`

	// rollout is the plan for moving workloads to the new data plane.
	// +optional
	Rollout *WorkloadRolloutPlan `json:"rollout,omitempty"`

	// revisionRetention is how long an unused old revision is kept before
	// it is removed (RevisionBased only).
	// Bounds 0s..8760h (a year); 0s removes an unused revision at once.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('0s') && duration(self) <= duration('8760h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'revisionRetention must be between 0s and 8760h; got ' + self : 'revisionRetention "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	RevisionRetention *metav1.Duration `json:"revisionRetention,omitempty"`

	// paused holds the upgrade before its next batch; set it to false to
	// resume a stopped upgrade.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// abort returns migrated namespaces to the previous revision and stops.
	// It stays in effect until cleared or spec.version changes again.
	// +optional
	Abort bool `json:"abort,omitempty"`
}

// WorkloadRolloutPlan moves namespaces to a new data plane in batches.
type WorkloadRolloutPlan struct {
	// batchSize is the number of namespaces moved at once.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	BatchSize int32 `json:"batchSize,omitempty"`

	// pauseBetweenBatches waits after a healthy batch before the next.
	// Bounds 0s..24h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('0s') && duration(self) <= duration('24h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'pauseBetweenBatches must be between 0s and 24h; got ' + self : 'pauseBetweenBatches "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	PauseBetweenBatches *metav1.Duration `json:"pauseBetweenBatches,omitempty"`

	// healthTimeout is how long a batch's new pods have to become Ready;
	// a batch that misses it is moved back and the upgrade stops.
	// Bounds 1s..24h; 5m by default.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('24h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'healthTimeout must be between 1s and 24h; got ' + self : 'healthTimeout "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	HealthTimeout *metav1.Duration `json:"healthTimeout,omitempty"`

	// namespaceSelector limits the migration to matching namespaces; all
	// namespaces using the mesh when unset.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// restartWorkloads rollout-restarts workloads after relabelling so their
	// pods pick up the new data plane; true by default.
	// +optional
	// +kubebuilder:default=true
	RestartWorkloads *bool `json:"restartWorkloads,omitempty"`
}

// IstioInstallSpec holds Istio-only installation settings.
type IstioInstallSpec struct {
	// revision names the initial control-plane revision (istio.io/rev);
	// no revision label when empty. Later revisions are named after their
	// version (e.g. 1-28-1).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="istio.revision is immutable; change spec.version with upgrade.strategy RevisionBased, or create a MeshRevision"
	Revision string `json:"revision,omitempty"`

	// defaultTag is the revision tag that follows the active revision;
	// "default" when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	DefaultTag string `json:"defaultTag,omitempty"`

	// trustDomain of the mesh; cluster.local when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	TrustDomain string `json:"trustDomain,omitempty"`

	// meshID, network and clusterName identify this cluster in a
	// multi-cluster mesh.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	MeshID string `json:"meshID,omitempty"`

	// network is the Istio network name of this cluster.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Network string `json:"network,omitempty"`

	// clusterName is the Istio cluster name.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	ClusterName string `json:"clusterName,omitempty"`

	// waypoints are the waypoint proxies Meshplane deploys for ambient
	// namespaces (profile Ambient): per entry a Gateway of class
	// istio-waypoint in the namespace, and the namespace label
	// istio.io/use-waypoint naming it (its prior value is restored when
	// the entry or the MeshInstall goes). One waypoint per namespace.
	// +optional
	// +listType=map
	// +listMapKey=namespace
	// +kubebuilder:validation:MaxItems=64
	Waypoints []IstioWaypoint `json:"waypoints,omitempty"`
}

// WaypointFor is the traffic a waypoint handles (istio.io/waypoint-for).
// +kubebuilder:validation:Enum=service;workload;all
type WaypointFor string

// IstioWaypoint is one waypoint Meshplane deploys.
type IstioWaypoint struct {
	// namespace the waypoint serves; it must be ambient (label
	// istio.io/dataplane-mode=ambient).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`

	// name of the waypoint Gateway; "waypoint" by default.
	// +optional
	// +kubebuilder:default=waypoint
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name,omitempty"`

	// for is the traffic the waypoint handles: service (the default),
	// workload or all.
	// +optional
	// +kubebuilder:default=service
	For WaypointFor `json:"for,omitempty"`
}

// LinkerdInstallSpec holds Linkerd-only installation settings.
type LinkerdInstallSpec struct {
	// identity configures Linkerd's trust anchor and issuer. Both are
	// generated (ECDSA P-256) and stored in Secrets when unset.
	// +optional
	Identity *LinkerdIdentity `json:"identity,omitempty"`

	// highAvailability installs the control plane with Linkerd's HA values.
	// +optional
	HighAvailability bool `json:"highAvailability,omitempty"`

	// multicluster installs Linkerd's multicluster extension (the
	// linkerd-multicluster chart, release linkerd-multicluster in namespace
	// linkerd-multicluster) at the install's version. Removing it
	// uninstalls the extension (the Link CRD stays, as Helm keeps CRDs).
	// +optional
	Multicluster *LinkerdMulticluster `json:"multicluster,omitempty"`
}

// LinkerdMulticluster configures Linkerd's multicluster extension.
type LinkerdMulticluster struct {
	// gateway installs the multicluster gateway (port 4143), through which
	// linked clusters reach this one's exported services. Disable it for
	// gateway-less (flat network) and federated-service links only.
	// +optional
	// +kubebuilder:default=true
	Gateway *bool `json:"gateway,omitempty"`

	// links name the Links (multicluster.linkerd.io, in namespace
	// linkerd-multicluster) that get a service-mirror controller: since
	// Linkerd 2.18 the extension runs one controller per Link it lists.
	// A MeshFederation with spec.services writes one Link per peer, named after it.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Links []string `json:"links,omitempty"`
}

// LinkerdIdentity references or sizes Linkerd's identity certificates.
// +kubebuilder:validation:XValidation:rule="has(self.trustAnchorSecretRef) == has(self.issuerSecretRef)",message="trustAnchorSecretRef and issuerSecretRef must be set together"
// +kubebuilder:validation:XValidation:rule="!(has(self.external) && self.external) || !has(self.issuerSecretRef)",message="identity.external hands the issuer to a MeshFederation; do not also set issuerSecretRef"
type LinkerdIdentity struct {
	// trustAnchorSecretRef names a Secret holding the trust anchor
	// certificate (key ca.crt or tls.crt).
	// +optional
	TrustAnchorSecretRef *SecretKeyReference `json:"trustAnchorSecretRef,omitempty"`

	// issuerSecretRef names a kubernetes.io/tls Secret holding the issuer
	// certificate and key (tls.crt, tls.key).
	// +optional
	IssuerSecretRef *SecretKeyReference `json:"issuerSecretRef,omitempty"`

	// external hands the trust roots and the issuer to a MeshFederation:
	// the control plane is installed with identity.externalCA and issuer
	// scheme kubernetes.io/tls, so Helm upgrades never overwrite federated
	// trust material.
	// +optional
	External *bool `json:"external,omitempty"`

	// issuerLifetime of a generated issuer certificate; 8760h by default.
	// Bounds 1h..87600h (10 years).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) >= duration('1h') && duration(self) <= duration('87600h')",messageExpression=`self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') ? 'issuerLifetime must be between 1h and 87600h; got ' + self : 'issuerLifetime "' + self + '" is not a duration: write a number and a unit, such as 30s, 5m or 1h30m (units h, m, s, ms, us, ns; no days, years or sign)'`
	IssuerLifetime *metav1.Duration `json:"issuerLifetime,omitempty"`
}

// CiliumInstallSpec holds Cilium-only installation settings.
// +kubebuilder:validation:XValidation:rule="!has(self.gatewayAPI) || !self.gatewayAPI || !has(self.kubeProxyReplacement) || self.kubeProxyReplacement",message="Cilium's Gateway API and GAMMA support need kubeProxyReplacement; enable it or set gatewayAPI false"
type CiliumInstallSpec struct {
	// envoy enables Cilium's Envoy proxy for L7 policy and routing; true by
	// default.
	// +optional
	// +kubebuilder:default=true
	Envoy *bool `json:"envoy,omitempty"`

	// gatewayAPI enables Cilium's Gateway API and GAMMA support; true by
	// default.
	// +optional
	// +kubebuilder:default=true
	GatewayAPI *bool `json:"gatewayAPI,omitempty"`

	// mutualAuth enables Cilium's SPIRE-based mutual authentication, needed
	// for ZeroTrustPolicy mTLS Strict.
	// +optional
	MutualAuth bool `json:"mutualAuth,omitempty"`

	// encryption turns on Cilium's transparent encryption of pod-to-pod
	// traffic (WireGuard or IPsec). Cilium's mutual authentication
	// authenticates identities but does not encrypt the traffic itself, so
	// a ZeroTrustPolicy with mtls.mode Strict needs both mutualAuth and
	// encryption.
	// +optional
	Encryption *CiliumEncryption `json:"encryption,omitempty"`

	// kubeProxyReplacement enables Cilium's kube-proxy replacement; true
	// by default, because Cilium's Gateway API support requires it.
	// +optional
	// +kubebuilder:default=true
	KubeProxyReplacement *bool `json:"kubeProxyReplacement,omitempty"`

	// clusterMesh connects this Cilium to other clusters (ClusterMesh):
	// cluster.name and cluster.id, the clustermesh-apiserver, and the
	// peers' clustermesh-apiserver endpoints. A MeshFederation with
	// spec.services writes it (field manager meshplane-meshfederation);
	// set it by hand only without one.
	// +optional
	ClusterMesh *CiliumClusterMesh `json:"clusterMesh,omitempty"`
}

// CiliumClusterMesh are the ClusterMesh settings of one Cilium cluster.
type CiliumClusterMesh struct {
	// clusterName is Cilium's cluster.name, unique across the connected
	// clusters.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	ClusterName string `json:"clusterName"`

	// clusterID is Cilium's cluster.id, unique across the connected
	// clusters.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=255
	ClusterID int32 `json:"clusterID"`

	// peers are the other clusters' clustermesh-apiserver endpoints.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Peers []CiliumClusterMeshPeer `json:"peers,omitempty"`
}

// CiliumClusterMeshPeer is another cluster's clustermesh-apiserver, as
// Cilium's clustermesh.config.clusters lists it. Exactly one of address
// and ips is set.
// +kubebuilder:validation:XValidation:rule="has(self.address) != has(self.ips)",message="set exactly one of address and ips"
type CiliumClusterMeshPeer struct {
	// name is the peer's cluster.name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// address is the host name of the peer's clustermesh-apiserver.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Address string `json:"address,omitempty"`

	// ips are the addresses of the peer's clustermesh-apiserver.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=45
	IPs []string `json:"ips,omitempty"`

	// port of the peer's clustermesh-apiserver.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// CiliumEncryptionType is a transparent encryption method of Cilium.
// +kubebuilder:validation:Enum=WireGuard;IPsec
type CiliumEncryptionType string

// Cilium's transparent encryption methods.
const (
	// CiliumEncryptionWireGuard encrypts with WireGuard tunnels between
	// nodes; keys are generated by the agents.
	CiliumEncryptionWireGuard CiliumEncryptionType = "WireGuard"
	// CiliumEncryptionIPsec encrypts with IPsec; the keys come from a
	// Secret the platform team provides.
	CiliumEncryptionIPsec CiliumEncryptionType = "IPsec"
)

// CiliumEncryption selects Cilium's transparent encryption (chart values
// encryption.enabled, encryption.type and, for IPsec,
// encryption.ipsec.secretName and keyFile).
// +kubebuilder:validation:XValidation:rule="self.type == 'IPsec' ? has(self.ipsecKeySecretRef) : !has(self.ipsecKeySecretRef)",message="spec.cilium.encryption.ipsecKeySecretRef is required with type IPsec and only allowed with it"
type CiliumEncryption struct {
	// type is WireGuard or IPsec.
	// +required
	Type CiliumEncryptionType `json:"type"`

	// ipsecKeySecretRef names the Secret in Cilium's namespace
	// (spec.namespace, kube-system by default) that holds the IPsec keys,
	// and its key ("keys" by default), in the format Cilium documents.
	// Meshplane does not create it.
	// +optional
	IPsecKeySecretRef *SecretKeyReference `json:"ipsecKeySecretRef,omitempty"`
}

// MeshInstallStatus is the observed state of a MeshInstall.
type MeshInstallStatus struct {
	CommonStatus `json:",inline"`

	// installedVersion is the mesh version last installed successfully.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	InstalledVersion string `json:"installedVersion,omitempty"`

	// namespace the control plane runs in (spec.namespace or the default).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`

	// activeRevision is the Istio revision the default tag points at.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	ActiveRevision string `json:"activeRevision,omitempty"`

	// revisions are the MeshRevisions of this mesh.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Revisions []RevisionSummary `json:"revisions,omitempty"`

	// releases are the Helm releases Meshplane manages for this mesh.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Releases []HelmReleaseStatus `json:"releases,omitempty"`

	// components are the control-plane workloads and their health.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Components []ComponentStatus `json:"components,omitempty"`

	// adopted says what an adoption took over.
	// +optional
	Adopted *AdoptedStatus `json:"adopted,omitempty"`

	// upgrade is the progress of the current or last upgrade.
	// +optional
	Upgrade *UpgradeStatus `json:"upgrade,omitempty"`

	// waypoints are the waypoints Meshplane deployed (spec.istio.waypoints)
	// and whether the mesh programmed them.
	// +optional
	// +listType=map
	// +listMapKey=namespace
	// +kubebuilder:validation:MaxItems=64
	Waypoints []WaypointStatus `json:"waypoints,omitempty"`
}

// WaypointStatus is one waypoint Meshplane deployed.
type WaypointStatus struct {
	// namespace of the waypoint.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// name of the waypoint Gateway.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// programmed is true when the mesh reports the Gateway Programmed.
	// +optional
	Programmed bool `json:"programmed,omitempty"`
	// message says why it is not programmed (yet).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// RevisionSummary is one revision in a MeshInstall's status.
type RevisionSummary struct {
	// name of the MeshRevision (and the istio.io/rev value).
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// version the revision runs.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Version string `json:"version"`
	// ready is true when the revision's control plane is Available.
	// +optional
	Ready bool `json:"ready,omitempty"`
	// tags pointing at the revision, including the default tag.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=63
	Tags []string `json:"tags,omitempty"`
}

// HelmReleaseStatus is one Helm release Meshplane manages.
type HelmReleaseStatus struct {
	// name of the release.
	// +required
	// +kubebuilder:validation:MaxLength=53
	Name string `json:"name"`
	// namespace of the release.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
	// chart name and version, e.g. istiod-1.28.1.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	Chart string `json:"chart,omitempty"`
	// revision is Helm's release revision number.
	// +optional
	Revision int32 `json:"revision,omitempty"`
	// status is Helm's release status (deployed, failed, pending-upgrade and so on).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	Status string `json:"status,omitempty"`
	// valuesDigest is the digest of the values and chart last applied, so
	// an unchanged spec causes no Helm upgrade.
	// +optional
	// +kubebuilder:validation:MaxLength=80
	ValuesDigest string `json:"valuesDigest,omitempty"`
}

// ComponentStatus is the health of one control-plane workload.
type ComponentStatus struct {
	// kind of the workload: Deployment or DaemonSet.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Kind string `json:"kind"`
	// namespace of the workload.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`
	// name of the workload.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// ready is true when the workload is Available and fully rolled out.
	// +optional
	Ready bool `json:"ready,omitempty"`
	// message explains a component that is not ready.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// AdoptedStatus says what an adoption took over.
type AdoptedStatus struct {
	// source of the adopted installation.
	// +optional
	Source AdoptSource `json:"source,omitempty"`
	// releases adopted (HelmRelease) or resources adopted (CLI), as
	// kind/namespace/name.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=512
	Objects []string `json:"objects,omitempty"`
	// time of the adoption.
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
}

// UpgradePhase is the step an upgrade is in.
// +kubebuilder:validation:Enum=Installing;WaitingForRevision;Migrating;Paused;Failed;Aborting;CleaningUp;Completed
type UpgradePhase string

// Upgrade phases.
const (
	// UpgradeInstalling: the new control plane is being installed.
	UpgradeInstalling UpgradePhase = "Installing"
	// UpgradeWaitingForRevision: the new revision is not Ready yet.
	UpgradeWaitingForRevision UpgradePhase = "WaitingForRevision"
	// UpgradeMigrating: namespaces move in batches.
	UpgradeMigrating UpgradePhase = "Migrating"
	// UpgradePaused: spec.upgrade.paused holds the next batch.
	UpgradePaused UpgradePhase = "Paused"
	// UpgradeFailed: a batch failed its health gate (and was moved back),
	// or the upgrade was aborted.
	UpgradeFailed UpgradePhase = "Failed"
	// UpgradeAborting: spec.upgrade.abort moves namespaces back.
	UpgradeAborting UpgradePhase = "Aborting"
	// UpgradeCleaningUp: the old revision is removed once unused.
	UpgradeCleaningUp UpgradePhase = "CleaningUp"
	// UpgradeCompleted: every namespace runs the new version.
	UpgradeCompleted UpgradePhase = "Completed"
)

// UpgradeStatus is the progress of an upgrade.
type UpgradeStatus struct {
	// phase of the upgrade.
	// +optional
	Phase UpgradePhase `json:"phase,omitempty"`
	// fromVersion is the version being upgraded from.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	FromVersion string `json:"fromVersion,omitempty"`
	// toVersion is the version being upgraded to.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ToVersion string `json:"toVersion,omitempty"`
	// targetRevision is the revision namespaces move to.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	TargetRevision string `json:"targetRevision,omitempty"`
	// fromRevision is the revision namespaces move from; an abort moves
	// them back to it.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	FromRevision string `json:"fromRevision,omitempty"`
	// totalNamespaces to migrate.
	// +optional
	TotalNamespaces int32 `json:"totalNamespaces,omitempty"`
	// migratedNamespaces so far.
	// +optional
	MigratedNamespaces int32 `json:"migratedNamespaces,omitempty"`
	// currentBatch lists the namespaces of the batch in progress.
	// +optional
	// +kubebuilder:validation:MaxItems=1000
	// +kubebuilder:validation:items:MaxLength=63
	CurrentBatch []string `json:"currentBatch,omitempty"`
	// startTime of the upgrade.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// batchStartTime is when the current batch started; its health gate
	// fails after rollout.healthTimeout. After a healthy batch it is when
	// the batch ended, for pauseBetweenBatches.
	// +optional
	BatchStartTime *metav1.Time `json:"batchStartTime,omitempty"`
	// message explains the phase, in particular a failed health gate.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
}

// MeshInstall is one mesh in this cluster: provider, version, profile,
// chart source, values, adoption, upgrade strategy and deletion policy.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=mi,categories=meshplane
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Installed",type=string,JSONPath=`.status.installedVersion`
// +kubebuilder:printcolumn:name="Revision",type=string,JSONPath=`.status.activeRevision`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MeshInstall struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired mesh installation.
	// +required
	Spec MeshInstallSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status MeshInstallStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// MeshInstallList is a list of MeshInstalls.
type MeshInstallList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshInstall `json:"items"`
}

func init() {
	register(&MeshInstall{}, &MeshInstallList{})
}
