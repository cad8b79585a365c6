package mesh

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// PeerLinks is implemented by a ServiceFederation whose member is linked
// to a peer by more than one credential: objects built from what the
// peer's gateway Service shows (Linkerd's Link of the multicluster
// extension and its credentials Secrets). The controller reads the peer's
// gateway Service (ServiceFederation.FederationGateway of the peer) and
// hands it over, so the mesh package stays a pure translation.
type PeerLinks interface {
	// PeerLinks returns the objects written into member m for peer p,
	// beyond PeerCredential, given the kubeconfig through which m reads p
	// and p's gateway Service (nil when p has none, does not answer or
	// the Service is missing). When why is not empty, the link cannot be
	// built from what p shows now: objs then only name the objects (kind,
	// namespace, name) that m keeps as it already holds them.
	PeerLinks(m, p FederationMember, kubeconfig []byte, gateway *corev1.Service) (objs []client.Object, why string)
	// LinkExtension names a kind whose absence from a member means the
	// mesh's multicluster extension is not installed there, and the
	// message that says so and what to install.
	LinkExtension(m FederationMember) (gvk schema.GroupVersionKind, missing string)
	// FederationExtraWriterRules are writer rules (as FederationWriterRules)
	// in namespaces of m other than its reader's, by namespace.
	FederationExtraWriterRules(m FederationMember, peers []string) map[string][]rbacv1.PolicyRule
}

// ClusterMesh is implemented by a ServiceFederation whose members connect
// without reading each other's API servers: each member's MeshInstall gets
// settings (its cluster name and id, the peers' endpoints) that the mesh's
// own chart turns into the connection (Cilium ClusterMesh). Credentials and
// readers are not used; the peer's endpoint is read from its gateway
// Service (ServiceFederation.FederationGateway).
type ClusterMesh interface {
	// ClusterMeshInstall picks, of the member's MeshInstalls, the one the
	// settings are written into, or says why m cannot join: no MeshInstall
	// of the mesh, a cluster id out of range, a cluster name the mesh
	// refuses, another mesh installed alongside that breaks it.
	ClusterMeshInstall(m FederationMember, id int32, installs []meshv1alpha1.MeshInstall) (mi *meshv1alpha1.MeshInstall, why string)
	// ClusterMeshPeer reads peer p's endpoint from its gateway Service;
	// why says what is missing.
	ClusterMeshPeer(p FederationMember, gateway *corev1.Service) (peer meshv1alpha1.CiliumClusterMeshPeer, why string)
	// ClusterMeshSpec is the part of the MeshInstall's spec the settings
	// are (applied with a field manager of their own, so the user's
	// fields stay the user's), as a JSON object.
	ClusterMeshSpec(m FederationMember, id int32, peers []meshv1alpha1.CiliumClusterMeshPeer) map[string]any
	// CrossClusterPolicy says whether the member's network policies
	// without a cluster selector reach other clusters, as mi installs the
	// mesh; msg names the value either way.
	CrossClusterPolicy(mi *meshv1alpha1.MeshInstall) (crossCluster bool, msg string)
}

// ExtensionInstaller is implemented by a mesh whose links extension
// (PeerLinks) a MeshInstall can install (Linkerd's multicluster
// extension): the federation writes the extension's settings into the
// member's MeshInstall, with its own field manager, naming the peers that
// get a link, so the extension is installed where it is missing and runs
// a controller per link where a MeshInstall installed it.
type ExtensionInstaller interface {
	// ExtensionInstall picks, of the member's MeshInstalls, the one the
	// settings are written into: with the extension not served, the one
	// install of the mesh; with it served, the install that installed it
	// (never one whose extension was installed by hand). nil: none.
	ExtensionInstall(m FederationMember, installs []meshv1alpha1.MeshInstall, served bool) *meshv1alpha1.MeshInstall
	// ExtensionInstallSpec is the part of the MeshInstall's spec the
	// settings are, as a JSON object, for links to peers.
	ExtensionInstallSpec(m FederationMember, peers []string) map[string]any
	// ExtensionPending says that the extension is being installed by mi,
	// for the member's status.
	ExtensionPending(m FederationMember, mi *meshv1alpha1.MeshInstall) string
}
