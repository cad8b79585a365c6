package cilium

import (
	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
)

// Enrolment refuses (mesh.Enroller): Cilium, as the CNI, serves every
// namespace once installed; an install Meshplane makes has no
// per-namespace opt-in to move in waves.
func (*Provider) Enrolment(mi *meshv1alpha1.MeshInstall, _ meshv1alpha1.Profile) (mesh.Enrolment, error) {
	return mesh.Enrolment{}, outcome.Stalled(meshv1alpha1.UnsupportedFeatureReason,
		"MeshInstall %s runs Cilium, which serves every namespace as the CNI once installed: there is no per-namespace enrolment to run in waves; delete this MeshAdoption (ZeroTrustPolicies apply to every namespace already)", mi.Name)
}
