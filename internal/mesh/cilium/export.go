package cilium

import (
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// Service export in Cilium ClusterMesh: a Service annotated
// service.cilium.io/global=true in several clusters is one global service
// whose backends are the endpoints of every cluster that shares them
// (service.cilium.io/shared, true by default); service.cilium.io/affinity
// makes a cluster's agents prefer its own backends (local), the remote
// ones (remote) or neither (none). The annotations go on the member's own
// Service; nothing else is written.
const (
	GlobalAnnotation   = "service.cilium.io/global"
	SharedAnnotation   = "service.cilium.io/shared"
	AffinityAnnotation = "service.cilium.io/affinity"
)

// ServiceMarks annotates the Service in every member that has it: an
// exporter shares its backends (shared=true); any other member that has
// the Service consumes the global service without sharing its own
// (shared=false; Cilium load-balances a global service only where the
// Service exists). Failover LocalFirst is affinity local (remote backends
// only when no local one is healthy), None is affinity none.
func (*Provider) ServiceMarks(_ *meshv1alpha1.MeshInstall, _ mesh.FederationMember, svc mesh.ExportedService, exporter bool) (mesh.ServiceMarks, string) {
	shared, affinity := "false", "none"
	if exporter {
		shared = "true"
	}
	if svc.Failover == meshv1alpha1.FailoverLocalFirst {
		affinity = "local"
	}
	return mesh.ServiceMarks{Annotations: map[string]string{GlobalAnnotation: "true", SharedAnnotation: shared, AffinityAnnotation: affinity}}, ""
}

// ExportOutputs is nothing: the annotations (ServiceMarks) are the whole
// export.
func (*Provider) ExportOutputs(mesh.FederationMember, mesh.ExportedService) []client.Object {
	return nil
}

// ExportOverlap is empty: no object of the export's own.
func (*Provider) ExportOverlap(mesh.ExportedService, []client.Object) string { return "" }

// ExportOutputKinds is none.
func (*Provider) ExportOutputKinds() []client.ObjectList { return nil }

// ExportScope: only a Service annotated global is shared across the
// ClusterMesh, so a Service without a ServiceExport stays in its cluster.
func (*Provider) ExportScope(*meshv1alpha1.MeshInstall, []mesh.ExportedService, mesh.ExportedService) mesh.ExportScope {
	return mesh.ExportScope{Effective: "global across the ClusterMesh; services without a ServiceExport are not annotated global and stay local", Enforced: true}
}

// TopologyCheck is empty: the ClusterMesh settings (cluster name and ID)
// are the federation's own (spec.cilium.clusterMesh of the MeshInstall).
func (*Provider) TopologyCheck(*meshv1alpha1.MeshInstall, mesh.FederationMember) string { return "" }

// ExportWriterRules: patch the Services' annotations (server-side apply).
func (*Provider) ExportWriterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"patch"}}}
}

var (
	_ mesh.ServiceExporter = (*Provider)(nil)
	_ mesh.ServiceMarker   = (*Provider)(nil)
)
