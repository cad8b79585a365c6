package linkerd

import (
	"fmt"
	"slices"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshplane/meshplane/internal/mesh"
)

// Labels the service mirror puts on the Services and Endpoints it mirrors
// from a peer (the EndpointSlice mirroring controller copies them to the
// EndpointSlices).
const (
	MirroredServiceLabel = "mirror.linkerd.io/mirrored-service"
	RemoteClusterLabel   = "mirror.linkerd.io/cluster-name"
)

// LinkHealthSelector selects the EndpointSlices of mirrored Services.
func (*Provider) LinkHealthSelector() client.MatchingLabels {
	return client.MatchingLabels{MirroredServiceLabel: "true"}
}

// UnhealthyLinks reports a peer whose mirrored Services have endpoints,
// none of them ready: the service mirror sets a mirror's endpoints (the
// peer's gateway address) not ready while the gateway fails its probe.
// A mirror without endpoints (the peer's Service has none) says nothing.
func (*Provider) UnhealthyLinks(eps []discoveryv1.EndpointSlice) map[string]string {
	ready := map[string]bool{}   // peer/namespace/service -> some endpoint ready
	present := map[string]bool{} // peer/namespace/service -> has endpoints
	for _, es := range eps {
		peer := es.Labels[RemoteClusterLabel]
		if peer == "" || len(es.Endpoints) == 0 {
			continue
		}
		key := peer + "/" + es.Namespace + "/" + es.Labels[discoveryv1.LabelServiceName]
		present[key] = true
		for _, ep := range es.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				ready[key] = true
			}
		}
	}
	byPeer := map[string][]string{}
	for key := range present {
		if !ready[key] {
			peer, svc, _ := strings.Cut(key, "/")
			byPeer[peer] = append(byPeer[peer], svc)
		}
	}
	out := map[string]string{}
	for peer, svcs := range byPeer {
		slices.Sort(svcs)
		more := ""
		if len(svcs) > 3 {
			more = fmt.Sprintf(" and %d more", len(svcs)-3)
			svcs = svcs[:3]
		}
		out[peer] = fmt.Sprintf("the service mirror marks the endpoints of %s%s not ready: %s's gateway fails its probe", strings.Join(svcs, ", "), more, peer)
	}
	return out
}

var _ mesh.LinkHealth = (*Provider)(nil)
