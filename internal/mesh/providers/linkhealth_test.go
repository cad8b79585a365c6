package providers

import (
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/cilium"
	"github.com/meshplane/meshplane/internal/mesh/linkerd"
)

func mirrorSlice(ns, name, svc, peer string, ready ...bool) discoveryv1.EndpointSlice {
	es := discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Labels: map[string]string{"mirror.linkerd.io/mirrored-service": "true", "mirror.linkerd.io/cluster-name": peer, discoveryv1.LabelServiceName: svc}}}
	for _, r := range ready {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"192.0.2.10"}, Conditions: discoveryv1.EndpointConditions{Ready: &r}})
	}
	return es
}

// TestLinkerdUnhealthyLinks: a peer is unhealthy when a Service mirrored
// from it has endpoints and none ready (in any of its slices); a mirror
// without endpoints, or with one ready endpoint, says nothing.
func TestLinkerdUnhealthyLinks(t *testing.T) {
	p := &linkerd.Provider{}
	if sel := p.LinkHealthSelector(); len(sel) != 1 || sel["mirror.linkerd.io/mirrored-service"] != "true" {
		t.Fatalf("selector %v", sel)
	}
	got := p.UnhealthyLinks([]discoveryv1.EndpointSlice{
		mirrorSlice("shop", "a-1", "ratings-east", "east", false),
		mirrorSlice("shop", "b-1", "reviews-east", "east", false, false),
		mirrorSlice("shop", "c-1", "empty-east", "east"),
		mirrorSlice("shop", "d-1", "split-east", "east", false),
		mirrorSlice("shop", "d-2", "split-east", "east", true),
		mirrorSlice("shop", "e-1", "ratings-north", "north", true),
		mirrorSlice("a", "f-1", "s1-south", "south", false),
		mirrorSlice("b", "f-2", "s2-south", "south", false),
		mirrorSlice("c", "f-3", "s3-south", "south", false),
		mirrorSlice("d", "f-4", "s4-south", "south", false),
	})
	want := map[string]string{
		"east":  "the service mirror marks the endpoints of shop/ratings-east, shop/reviews-east not ready: east's gateway fails its probe",
		"south": "the service mirror marks the endpoints of a/s1-south, b/s2-south, c/s3-south and 1 more not ready: south's gateway fails its probe",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for peer, w := range want {
		if got[peer] != w {
			t.Errorf("%s: %q, want %q", peer, got[peer], w)
		}
	}
	// ClusterMesh reports its connections outside the Kubernetes API.
	if _, ok := any(&cilium.Provider{}).(mesh.LinkHealth); ok {
		t.Error("Cilium claims link health it cannot read")
	}
}
