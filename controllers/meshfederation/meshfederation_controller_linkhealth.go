package meshfederation

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/meshplane/meshplane/internal/mesh"
)

// linkHealth says which links between members report themselves unhealthy
// (mesh.LinkHealth), for a federation of services: "west → east: why; …".
// A member whose link health cannot be read is named with the error, so a
// rotation never advances on what it could not see.
func (r *Reconciler) linkHealth(ctx context.Context, s *shared) string {
	if s.fed.Spec.Services == nil {
		return ""
	}
	var out []string
	for _, m := range s.members {
		lh, ok := m.trust.(mesh.LinkHealth)
		if !ok || m.err != nil {
			continue
		}
		var eps discoveryv1.EndpointSliceList
		if err := m.client.List(ctx, &eps, lh.LinkHealthSelector()); err != nil {
			out = append(out, fmt.Sprintf("%s: the links' health cannot be read: %v", m.spec.Name, err))
			continue
		}
		bad := lh.UnhealthyLinks(eps.Items)
		for _, peer := range slices.Sorted(maps.Keys(bad)) {
			out = append(out, fmt.Sprintf("%s → %s: %s", m.spec.Name, peer, bad[peer]))
		}
	}
	return strings.Join(out, "; ")
}
