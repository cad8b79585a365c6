package meshfederation

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// linkHealth says which links between members report themselves unhealthy
// (mesh.LinkHealth), for a federation of services: "west → east: why; …".
// Only members that hold a link (a peer linked, as status last said) are
// read. One whose link health cannot be read is named with the error, so a
// rotation never advances on what it could not see.
func (r *Reconciler) linkHealth(ctx context.Context, s *shared) string {
	if s.fed.Spec.Services == nil {
		return ""
	}
	var out []string
	for _, m := range s.members {
		lh, ok := m.trust.(mesh.LinkHealth)
		if !ok || m.err != nil || !holdsLinks(s.fed, m.spec.Name) {
			continue
		}
		var eps discoveryv1.EndpointSliceList
		if err := m.client.List(ctx, &eps, lh.LinkHealthSelector()); err != nil {
			why := err.Error()
			if apierrors.IsForbidden(err) {
				why = "its identity may not list EndpointSlices (grant list on discovery.k8s.io endpointslices cluster-wide, as RemoteServicesRBAC does)"
			}
			out = append(out, fmt.Sprintf("%s: the links' health cannot be read: %s", m.spec.Name, why))
			continue
		}
		bad := lh.UnhealthyLinks(eps.Items)
		for _, peer := range slices.Sorted(maps.Keys(bad)) {
			out = append(out, fmt.Sprintf("%s → %s: %s", m.spec.Name, peer, bad[peer]))
		}
	}
	return strings.Join(out, "; ")
}

// holdsLinks reports whether status says member name is linked to a peer.
func holdsLinks(fed *meshv1alpha1.MeshFederation, name string) bool {
	for _, cs := range fed.Status.Clusters {
		if cs.Name != name || cs.Services == nil {
			continue
		}
		for _, p := range cs.Services.Peers {
			if p.Linked {
				return true
			}
		}
	}
	return false
}
