package mesh

import (
	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// FederationTopology is implemented by a ServiceFederation whose members
// need settings in their own MeshInstall to federate services (Istio
// ambient multi-network: the cluster's mesh ID, cluster name and network,
// and the istiod switch that turns multi-network on), and which cannot
// federate every pair of its members (Istio ambient and sidecar members do
// not discover each other's endpoints). The settings are applied with the
// federation's field manager, as mesh.ClusterMesh's are, so the user's
// fields stay the user's and a release removes exactly these.
type FederationTopology interface {
	// TopologyInstall picks, of member m's MeshInstalls, the one the
	// topology settings are written into and returns them (the part of its
	// spec, as a JSON object). mi is nil when m needs none (Istio sidecar
	// members: their topology is checked, not written); why says why m
	// cannot be federated as it is installed (then nothing is written).
	TopologyInstall(m FederationMember, installs []meshv1alpha1.MeshInstall) (mi *meshv1alpha1.MeshInstall, spec map[string]any, why string)
	// PairRefusal says why members m and p, both of this mesh and both
	// federating, cannot federate services with each other; empty when
	// they can. A refused pair shares trust only, reported per pair and
	// never waited for.
	PairRefusal(m, p FederationMember) string
}
