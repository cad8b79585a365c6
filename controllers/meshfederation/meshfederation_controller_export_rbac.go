package meshfederation

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/mesh"
)

// RemoteExportRBACName names the ClusterRole and binding RemoteExportRBAC
// returns.
const RemoteExportRBACName = "meshplane-federation-export"

// RemoteExportRBAC returns the least RBAC a member cluster grants the
// identity in its kubeconfig Secret for service export, in addition to
// RemoteRBAC and RemoteServicesRBAC, for a member whose mesh is se: read
// ServiceExports (and patch their status: the MCS conditions), the Services they name, their EndpointSlices and
// namespaces; write ServiceImports (in any namespace, since exports may be
// anywhere); and the rules the mesh lists for its outputs
// (mesh.ServiceExporter.ExportWriterRules). Without it the member neither
// exports nor imports, which status says.
func RemoteExportRBAC(se mesh.ServiceExporter, saNamespace, saName string) []client.Object {
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{"multicluster.x-k8s.io"}, Resources: []string{"serviceexports"}, Verbs: []string{"list"}},
		{APIGroups: []string{"multicluster.x-k8s.io"}, Resources: []string{"serviceexports/status"}, Verbs: []string{"patch"}},
		{APIGroups: []string{"multicluster.x-k8s.io"}, Resources: []string{"serviceimports"}, Verbs: []string{"get", "create", "patch", "delete"}},
		{APIGroups: []string{"multicluster.x-k8s.io"}, Resources: []string{"serviceimports/status"}, Verbs: []string{"patch"}},
		{APIGroups: []string{""}, Resources: []string{"services", "namespaces"}, Verbs: []string{"get"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list"}},
	}
	rules = append(rules, se.ExportWriterRules()...)
	return []client.Object{
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: RemoteExportRBACName}, Rules: rules},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: RemoteExportRBACName},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: RemoteExportRBACName},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: saNamespace, Name: saName}}},
	}
}
