package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRenderResiliencePolicy renders the sample offline: Istio's
// DestinationRule and VirtualService with the ownership labels, and the
// refusals of Linkerd and Cilium naming each field.
func TestRenderResiliencePolicy(t *testing.T) {
	sample := filepath.Join("..", "..", "config", "samples", "meshplane_v1alpha1_resiliencepolicy.yaml")
	out, err := runOffline(t, "render", "-f", sample)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# ResiliencePolicy default/reviews on Istio: 2 object(s)", "kind: DestinationRule", "kind: VirtualService",
		"warmupDurationSecs: 30s", "meshplane.io/owner: resiliencepolicy.default.reviews",
		"# ResiliencePolicy default/reviews on Linkerd: refused, Ready=False reason UnsupportedFeature",
		"connectionPool.maxConnections: Linkerd has no connection pool limits",
		"# ResiliencePolicy default/reviews on Cilium: refused, Ready=False reason UnsupportedFeature",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("render output lacks %q:\n%s", want, out)
		}
	}
}
