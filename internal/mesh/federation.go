package mesh

import (
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// ServiceFederation is what a MeshFederation needs of a mesh to federate
// services, not only trust: the identity a peer's control plane reads a
// member's endpoints with, what is written into a member (its east-west
// gateway), the labels its control-plane namespace carries, and the
// credential through which a member reads a peer. Two members federate
// services only when both run the same mesh and it implements this
// interface; the controller names no mesh.
type ServiceFederation interface {
	// FederationReader is the identity, created in member m, whose token a
	// peer's control plane uses to read m's endpoints: a ServiceAccount and
	// the least RBAC that needs.
	FederationReader(m FederationMember) FederationReader
	// FederationOutputs are the objects written into member m itself: its
	// east-west gateway when m.EastWestGateway.
	FederationOutputs(m FederationMember) []client.Object
	// FederationNamespaceLabels are the labels set on m's control-plane
	// namespace (an object Meshplane did not create: the previous values
	// are restored on release).
	FederationNamespaceLabels(m FederationMember) map[string]string
	// PeerCredential is the object written into member m through which its
	// control plane reads peer p with kubeconfig.
	PeerCredential(m, p FederationMember, kubeconfig []byte) client.Object
	// PeerCredentialKey returns the namespace, name and data key of the
	// credential PeerCredential writes into m for p, so the controller can
	// read back the kubeconfig it holds.
	PeerCredentialKey(m, p FederationMember) (namespace, name, key string)
	// FederationGateway names the Service whose load-balancer address the
	// other networks reach m through; ok is false when m has none.
	FederationGateway(m FederationMember) (namespace, name string, ok bool)
	// FederationRefusal says why a member installed as facts says cannot
	// be federated by this implementation (an install mode it does not
	// configure); empty when it can.
	FederationRefusal(facts InstallFacts) string
	// FederationWriterRules are the least rules Meshplane's identity in
	// member m needs to write all of the above for peers: rules in m's
	// control-plane namespace and cluster-wide ones.
	FederationWriterRules(m FederationMember, peers []string) (namespaced, cluster []rbacv1.PolicyRule)
}

// FederationMember is one member as service federation sees it.
type FederationMember struct {
	// Name is the member's name, used as the mesh's cluster name.
	Name string
	// Namespace is the mesh's control-plane namespace; the default when
	// empty.
	Namespace string
	// Network is the member's network.
	Network string
	// MeshID is the mesh ID every member shares.
	MeshID string
	// EastWestGateway asks for the member's east-west gateway.
	EastWestGateway bool
	// Profile is the data-plane mode the member's MeshInstall of the mesh
	// installs (Ambient or Sidecar); empty when no MeshInstall says.
	Profile meshv1alpha1.Profile
	// Primary names the member whose control plane controls this one
	// (mesh.PrimaryRemote); empty for a member with its own.
	Primary string
	// PrimaryAddress is the address of the primary's east-west gateway,
	// through which this remote reaches the primary's control plane;
	// empty while it has none (or the primary does not answer).
	PrimaryAddress string
	// Remotes name the members this one is the primary of.
	Remotes []string
}

// FederationReader is a ServiceAccount and the RBAC objects that grant it
// read access for a peer's control plane.
type FederationReader struct {
	// Namespace and ServiceAccount name the ServiceAccount.
	Namespace, ServiceAccount string
	// Objects are the ServiceAccount and its RBAC, to create in the member.
	Objects []client.Object
}

// ServiceFederation returns the named provider's ServiceFederation.
func (r *Registry) ServiceFederation(name meshv1alpha1.Provider) (ServiceFederation, error) {
	return lookup[ServiceFederation](r, name, "service federation (MeshFederation spec.services)")
}
