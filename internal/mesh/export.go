package mesh

import (
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// ServiceExporter is what a mesh that federates services
// (ServiceFederation) does with a service exported through the
// Multi-Cluster Services API (a ServiceExport in a member): the objects
// that carry the export's failover preference into every member that
// consumes it, whether the mesh scopes exported and other services as the
// export says, and whether the member's install carries the topology
// (mesh ID, cluster name, network) federation gives it. The ServiceImports
// themselves are the MCS API's and written by the controller; the
// controller names no mesh.
type ServiceExporter interface {
	// ExportOutputs are the objects written into member m for the
	// exported service svc, which m's workloads may call: its failover
	// policy when svc.Failover asks for one; nil when nothing is needed.
	ExportOutputs(m FederationMember, svc ExportedService) []client.Object
	// ExportOverlap says why the outputs for svc cannot be written into a
	// member that already holds existing (objects of the output kinds in
	// svc's namespace that Meshplane's export did not write) — another
	// object already configuring the same host, which the mesh would merge
	// unpredictably; empty when none does.
	ExportOverlap(svc ExportedService, existing []client.Object) string
	// ExportOutputKinds are empty lists of the kinds ExportOutputs writes,
	// to find overlapping objects.
	ExportOutputKinds() []client.ObjectList
	// ExportScope says, for an exporting member installed as mi (nil when
	// unknown), how the mesh scopes svc and the member's services that are
	// not exported: Enforced is false when the install lets a service that
	// is not exported reach peers, or keeps an exported one local, and
	// Fix names the install values that make it right.
	ExportScope(mi *meshv1alpha1.MeshInstall, exported []ExportedService, svc ExportedService) ExportScope
	// TopologyCheck says which install fields of mi do not carry member
	// m's mesh ID, cluster name and network, naming each field and its
	// value; empty when they all do.
	TopologyCheck(mi *meshv1alpha1.MeshInstall, m FederationMember) string
	// ExportWriterRules are the cluster-wide rules Meshplane's identity in
	// a member needs for the outputs (on top of the MCS API's own).
	ExportWriterRules() []rbacv1.PolicyRule
}

// ExportedService is one exported service of the cluster set as a mesh
// sees it.
type ExportedService struct {
	// Namespace and Name of the Service, the same in every exporter.
	Namespace, Name string
	// Ports of the Service (of the first exporter, by name).
	Ports []corev1.ServicePort
	// Headless is true when the exported Service has no cluster IP.
	Headless bool
	// Exporters are the members that export it.
	Exporters []string
	// Failover is the federation's failover preference.
	Failover meshv1alpha1.ExportFailover
}

// ExportScope is how a mesh scopes an exported service in one exporter.
type ExportScope struct {
	// Effective says what is in force, in words.
	Effective string
	// Enforced is true when only exported services reach peers.
	Enforced bool
	// Fix names the install values to set when it is not.
	Fix string
}

// ServiceExporter returns the named provider's ServiceExporter.
func (r *Registry) ServiceExporter(name meshv1alpha1.Provider) (ServiceExporter, error) {
	return lookup[ServiceExporter](r, name, "service export (ServiceExport with MeshFederation spec.services)")
}

// ServiceMarker is implemented by a ServiceExporter whose mesh exports a
// service through labels or annotations on the user's own Service in a
// member (Linkerd's mirror.linkerd.io labels, Cilium's service.cilium.io
// annotations, Istio ambient's istio.io/global). The controller sets
// them as shared fields of that Service: only those entries are applied,
// each one's previous value is recorded and restored when the export goes,
// and an entry another field manager applies is a Conflict.
type ServiceMarker interface {
	// ServiceMarks are the labels and annotations member m, installed as
	// mi (nil when no MeshInstall installs its mesh), sets on its own
	// Service svc; exporter is true when m exports svc (holds its
	// ServiceExport). Empty marks set nothing. A non-empty refusal says
	// why the mesh as installed cannot carry the export (an
	// UnsupportedFeature naming the feature, the mesh and the fix); then
	// nothing is set for svc in m.
	ServiceMarks(mi *meshv1alpha1.MeshInstall, m FederationMember, svc ExportedService, exporter bool) (marks ServiceMarks, refusal string)
}

// ServiceMarks are labels and annotations set on a user's Service.
type ServiceMarks struct {
	Labels, Annotations map[string]string
}

// Empty reports whether the marks set nothing.
func (m ServiceMarks) Empty() bool { return len(m.Labels) == 0 && len(m.Annotations) == 0 }
