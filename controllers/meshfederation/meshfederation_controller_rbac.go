package meshfederation

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// RemoteRBACName names the Role, ClusterRole and bindings RemoteRBAC
// returns.
const RemoteRBACName = "meshplane-federation"

// RemoteRBAC returns the least RBAC a member cluster grants the identity
// (a ServiceAccount) in its kubeconfig Secret, as docs/federation.md lists
// it, for a member whose mesh is w with its control plane in namespace
// (the mesh's default when empty):
//
//   - in the mesh's namespace, get and patch on exactly the objects the
//     mesh reads (its issuer Secret and bundle ConfigMap, and the Secret of
//     its self-signed CA where it keeps one, read in BundleMerge mode), and
//     create on Secrets and ConfigMaps (create cannot be limited by name;
//     server-side apply needs it the first time);
//   - cluster-wide list on pods, to see when workloads restarted during a
//     rotation's waiting phases.
func RemoteRBAC(w mesh.FederationTrust, namespace, saNamespace, saName string) []client.Object {
	t := w.TrustTarget(namespace)
	secrets := []string{t.IssuerSecret}
	if sc, ok := w.SelfSignedCA(t.Namespace); ok && sc.Namespace == t.Namespace {
		secrets = append(secrets, sc.Secret)
	}
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: secrets, Verbs: []string{"get", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
	}
	if t.BundleConfigMap != "" {
		rules = append(rules,
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{t.BundleConfigMap}, Verbs: []string{"get", "patch"}},
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"create"}})
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: saNamespace, Name: saName}}
	return []client.Object{
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: RemoteRBACName}, Rules: rules},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: t.Namespace, Name: RemoteRBACName},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: RemoteRBACName},
			Subjects: subject},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: RemoteRBACName},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: RemoteRBACName},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: RemoteRBACName},
			Subjects: subject},
	}
}

// RemoteServicesRBACName names the Role, ClusterRole and bindings
// RemoteServicesRBAC returns.
const RemoteServicesRBACName = "meshplane-federation-services"

// RemoteServicesRBAC returns the least RBAC a member cluster grants the
// identity in its kubeconfig Secret for service federation (spec.services),
// in addition to RemoteRBAC, for member m whose mesh is sf and whose peers
// are named peers: the writer rules the mesh lists
// (mesh.ServiceFederation.FederationWriterRules), a Role in the mesh's
// namespace and a ClusterRole.
func RemoteServicesRBAC(sf mesh.ServiceFederation, m mesh.FederationMember, peers []string, saNamespace, saName string) []client.Object {
	namespaced, cluster := sf.FederationWriterRules(m, peers)
	// How the member's mesh is installed decides whether it can be
	// federated (an Istio ambient install below 1.27 cannot be) and, for an
	// Istio ambient member, which settings its MeshInstall gets.
	cluster = append(cluster, rbacv1.PolicyRule{APIGroups: []string{meshv1alpha1.GroupVersion.Group}, Resources: []string{"meshinstalls"}, Verbs: []string{"list"}})
	ns := sf.FederationReader(m).Namespace
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: saNamespace, Name: saName}}
	objs := []client.Object{
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: RemoteServicesRBACName}, Rules: namespaced},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: RemoteServicesRBACName},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: RemoteServicesRBACName},
			Subjects: subject},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: RemoteServicesRBACName}, Rules: cluster},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: RemoteServicesRBACName},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: RemoteServicesRBACName},
			Subjects: subject},
	}
	// A mesh that links peers through an extension (Linkerd) also writes
	// in namespaces other than its reader's.
	if pl, ok := sf.(mesh.PeerLinks); ok {
		for other, rules := range pl.FederationExtraWriterRules(m, peers) {
			objs = append(objs,
				&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: RemoteServicesRBACName}, Rules: rules},
				&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: RemoteServicesRBACName},
					RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: RemoteServicesRBACName},
					Subjects: subject})
		}
	}
	return objs
}
