package meshfederation

import (
	"context"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// topologyInstall reads, for a member whose mesh writes topology settings
// into its MeshInstall (mesh.FederationTopology: Istio ambient
// multi-network), the MeshInstall and the settings; a member its mesh
// cannot federate as installed stops federating services, saying why.
func (r *Reconciler) topologyInstall(ctx context.Context, s *svcMember) {
	ft, ok := s.sf.(mesh.FederationTopology)
	if !ok {
		return
	}
	installs, ok := s.meshInstalls(ctx)
	if !ok {
		return
	}
	mi, spec, why := ft.TopologyInstall(s.fm, installs)
	if why != "" {
		s.sf, s.notFederating = nil, why
		return
	}
	s.meshInstall, s.topologySpec = mi, spec
}

// memberProfile is the data-plane mode the member's MeshInstalls of its
// mesh install: Ambient when one of them does.
func memberProfile(provider meshv1alpha1.Provider, installs []meshv1alpha1.MeshInstall) meshv1alpha1.Profile {
	var p meshv1alpha1.Profile
	for i := range installs {
		mi := &installs[i]
		if mi.Spec.Provider != provider {
			continue
		}
		if f := mesh.InstallFactsOf(provider, mi, false); p == "" || f.Profile == meshv1alpha1.ProfileAmbient {
			p = f.Profile
		}
	}
	return p
}

// pairRefusal says why s and its peer p, both federating with the same
// mesh, cannot federate services with each other (mesh.FederationTopology);
// empty when they can, or when p does not answer (its install is not
// known now: the pair keeps what s holds).
func pairRefusal(s, p *svcMember) string {
	ft, ok := s.sf.(mesh.FederationTopology)
	if !ok || p.sf == nil || p.m.spec.Provider != s.m.spec.Provider || p.m.client == nil || p.m.unreachable {
		return ""
	}
	return ft.PairRefusal(s.fm, p.fm)
}

// staleTopology reports whether the member holds topology settings an
// earlier reconcile applied that it no longer needs (its install went
// from ambient to sidecar): they are released.
func staleTopology(fed *meshv1alpha1.MeshFederation, s *svcMember) bool {
	if _, ok := s.sf.(mesh.FederationTopology); !ok || s.meshInstall != nil {
		return false
	}
	return memberServices(fed, s.m.spec.Name).ClusterMeshInstall != ""
}
