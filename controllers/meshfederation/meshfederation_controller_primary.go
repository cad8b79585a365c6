package meshfederation

import (
	"context"
	"fmt"

	"github.com/meshplane/meshplane/internal/mesh"
)

// primaryRemote settles, once every member's install is known, which
// members are remotes of which primary (spec.clusters[].primary,
// mesh.PrimaryRemote): a remote its mesh cannot run as one (ambient, a
// primary that federates no services or has no east-west gateway) stops
// federating services, saying why; each primary learns its remotes (its
// east-west gateway then exposes its control plane) and each remote the
// address of its primary's gateway; both then get their settings
// (mesh.FederationTopology).
func (r *Reconciler) primaryRemote(ctx context.Context, svcs []*svcMember) {
	byName := map[string]*svcMember{}
	for _, s := range svcs {
		byName[s.m.spec.Name] = s
	}
	for _, s := range svcs {
		if s.sf == nil || s.m.spec.Primary == "" {
			continue
		}
		p := byName[s.m.spec.Primary]
		if why := remoteRefusal(s, p); why != "" {
			s.sf, s.notFederating = nil, why
			continue
		}
		s.fm.Primary = p.m.spec.Name
		p.fm.Remotes = append(p.fm.Remotes, s.m.spec.Name)
	}
	for _, s := range svcs {
		if s.sf == nil || s.m.client == nil || s.m.unreachable || (s.fm.Primary == "" && len(s.fm.Remotes) == 0) {
			continue
		}
		if s.fm.Primary != "" {
			s.remoteWhy = r.primaryAddress(ctx, s, byName[s.fm.Primary])
		}
		r.topologyInstall(ctx, s)
		if s.sf != nil && s.fm.Primary != "" && s.meshInstall == nil {
			s.remoteWhy = fmt.Sprintf("no MeshInstall installs Istio in sidecar mode in %s, so the remote profile settings (global.remotePilotAddress, istiodRemote) "+
				"have nowhere to go; create a MeshInstall of provider Istio in %s", s.m.spec.Name, s.m.spec.Name)
		}
	}
}

// remoteRefusal says why s cannot be a remote of p; empty when it can.
// Of a primary that does not answer, only what the federation's spec says
// is checked: its install is not known now, and s keeps what it holds.
func remoteRefusal(s, p *svcMember) string {
	name := s.m.spec.Name
	pr, ok := s.sf.(mesh.PrimaryRemote)
	switch {
	case p == nil:
		return fmt.Sprintf("spec.clusters[%s].primary is %s, which is not a member of this federation; name a member", name, s.m.spec.Primary)
	case !ok:
		return fmt.Sprintf("spec.clusters[%s].primary is set, but Meshplane does not configure primary-remote for %s; remove primary", name, s.m.spec.Provider)
	case p.sf == nil:
		return fmt.Sprintf("spec.clusters[%s].primary is %s, which federates no services (%s); fix %s or remove primary", name, p.m.spec.Name, p.notFederating, p.m.spec.Name)
	}
	if _, _, gw := p.sf.FederationGateway(p.fm); !gw {
		return fmt.Sprintf("spec.clusters[%s].primary is %s, but spec.services.eastWestGateway is false: a remote reaches its primary's istiod only through the primary's "+
			"east-west gateway (ports 15012 and 15017); remove spec.services.eastWestGateway (or set it true)", name, p.m.spec.Name)
	}
	// A primary that does not answer has no known profile (p.fm.Profile is
	// empty): only s's own install is checked.
	return pr.RemoteRefusal(s.fm, p.fm)
}

// primaryAddress sets the remote's PrimaryAddress from its primary's
// east-west gateway and says what is missing; empty when it has one.
func (r *Reconciler) primaryAddress(ctx context.Context, s, p *svcMember) string {
	if p.m.client == nil || p.m.unreachable {
		return fmt.Sprintf("primary %s does not answer; %s keeps the settings it holds", p.m.spec.Name, s.m.spec.Name)
	}
	s.fm.PrimaryAddress = r.gatewayAddress(ctx, p)
	if s.fm.PrimaryAddress == "" {
		ns, name, _ := p.sf.FederationGateway(p.fm)
		return fmt.Sprintf("waiting for an address of the east-west gateway of primary %s (Service %s/%s has no load-balancer ingress), through which %s reaches its control plane",
			p.m.spec.Name, ns, name, s.m.spec.Name)
	}
	return ""
}
