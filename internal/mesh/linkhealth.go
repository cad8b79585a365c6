package mesh

import (
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// LinkHealth is implemented by meshes whose links to peers report their
// health in a member's API: Linkerd's service mirror marks the endpoints
// of the Services it mirrors from a peer not ready while the peer's
// gateway fails its probe (an mTLS request through the gateway, which a
// trust rotation can break). A MeshFederation holds a trust rotation's
// phase while a member reports an unhealthy link. Cilium ClusterMesh
// reports its connections only in the agents' status (cilium-dbg), not in
// the Kubernetes API, so it does not implement this.
type LinkHealth interface {
	// LinkHealthSelector selects, among a member's EndpointSlices in every
	// namespace, those that carry the health of its links.
	LinkHealthSelector() client.MatchingLabels
	// UnhealthyLinks returns, by peer name, why the member's link to that
	// peer is unhealthy, read from the selected EndpointSlices; empty when
	// every link is healthy.
	UnhealthyLinks(slices []discoveryv1.EndpointSlice) map[string]string
}
