package linkerd

import (
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// Service export in Linkerd: the service mirror of every linked peer
// mirrors the Services of a member that carry the label its Link selects
// (PeerLinks): mirror.linkerd.io/exported=true through the gateway,
// =remote-discovery on a flat network (no gateway: the peers' destination
// controllers read the endpoints), or mirror.linkerd.io/federated=member,
// which joins the Service of every cluster into one <name>-federated
// Service. The label goes on the exporter's own Service; nothing else is
// written.
const (
	// ExportedLabel and FederatedLabel are the labels the Links select.
	ExportedLabel  = "mirror.linkerd.io/exported"
	FederatedLabel = "mirror.linkerd.io/federated"
	// The values of the labels.
	exportedGateway = "true"
	exportedFlat    = "remote-discovery"
	federatedMember = "member"
)

// ServiceMarks labels the exporter's Service for its peers' Links:
// failover LocalFirst makes it a member of a federated service (Linkerd
// has no locality preference across clusters; a federated service
// balances every cluster's endpoints by latency and stops sending to
// failing ones), which needs a flat network; otherwise exported=true
// through the gateway, or remote-discovery without one. Importers set
// nothing: the service mirror creates the mirrored Services.
func (*Provider) ServiceMarks(_ *meshv1alpha1.MeshInstall, m mesh.FederationMember, svc mesh.ExportedService, exporter bool) (mesh.ServiceMarks, string) {
	if !exporter {
		return mesh.ServiceMarks{}, ""
	}
	if svc.Failover == meshv1alpha1.FailoverLocalFirst {
		if m.EastWestGateway {
			return mesh.ServiceMarks{}, "failover LocalFirst is a Linkerd federated service (mirror.linkerd.io/federated=member), which needs pods of every cluster to reach each other directly; " +
				"the federation links through gateways (spec.services.eastWestGateway is true): set spec.services.eastWestGateway to false on a flat network, or spec.services.failover to None"
		}
		return mesh.ServiceMarks{Labels: map[string]string{FederatedLabel: federatedMember}}, ""
	}
	if m.EastWestGateway {
		return mesh.ServiceMarks{Labels: map[string]string{ExportedLabel: exportedGateway}}, ""
	}
	return mesh.ServiceMarks{Labels: map[string]string{ExportedLabel: exportedFlat}}, ""
}

// ExportOutputs is nothing: the label on the exporter's Service
// (ServiceMarks) is the whole export.
func (*Provider) ExportOutputs(mesh.FederationMember, mesh.ExportedService) []client.Object {
	return nil
}

// ExportOverlap is empty: no object of the export's own.
func (*Provider) ExportOverlap(mesh.ExportedService, []client.Object) string { return "" }

// ExportOutputKinds is none.
func (*Provider) ExportOutputKinds() []client.ObjectList { return nil }

// ExportScope: a Link mirrors only the Services labelled for it, so a
// Service without a ServiceExport stays in its cluster.
func (*Provider) ExportScope(*meshv1alpha1.MeshInstall, []mesh.ExportedService, mesh.ExportedService) mesh.ExportScope {
	return mesh.ExportScope{Effective: "mirrored to the linked peers; services without a ServiceExport are not labelled for a Link and stay local", Enforced: true}
}

// TopologyCheck is empty: a Link names its target cluster itself.
func (*Provider) TopologyCheck(*meshv1alpha1.MeshInstall, mesh.FederationMember) string { return "" }

// ExportWriterRules: patch the exported Services' labels (server-side
// apply).
func (*Provider) ExportWriterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"patch"}}}
}

var (
	_ mesh.ServiceExporter = (*Provider)(nil)
	_ mesh.ServiceMarker   = (*Provider)(nil)
)
