package mesh

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
