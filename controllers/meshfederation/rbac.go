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
// it:
//
//   - in the mesh's namespace, get and patch on exactly the objects the
//     mesh reads (Secret t.IssuerSecret, ConfigMap t.BundleConfigMap, and
//     for Istio the self-signed istio-ca-secret, read in BundleMerge mode),
//     and create on Secrets and ConfigMaps (create cannot be limited by
//     name; server-side apply needs it the first time);
//   - cluster-wide list on pods, to see when workloads restarted during a
//     rotation's waiting phases.
func RemoteRBAC(provider meshv1alpha1.Provider, t mesh.TrustTarget, saNamespace, saName string) []client.Object {
	secrets := []string{t.IssuerSecret}
	if provider == meshv1alpha1.ProviderIstio {
		secrets = append(secrets, istioSelfSignedCA)
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
