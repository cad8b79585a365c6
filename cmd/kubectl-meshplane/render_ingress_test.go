package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRenderIngressGateway renders the IngressGateway sample offline: a
// Gateway of class istio and of class cilium with Meshplane's labels, and
// Linkerd's refusal (the sample names no class).
func TestRenderIngressGateway(t *testing.T) {
	out, err := runOffline(t, "render", "-f", filepath.Join("..", "..", "config", "samples", "meshplane_v1alpha1_ingressgateway.yaml"))
	for _, want := range []string{
		"# IngressGateway default/shop-ingress on Istio: 1 object(s)", "kind: Gateway", "gatewayClassName: istio",
		"# IngressGateway default/shop-ingress on Cilium: 1 object(s)", "gatewayClassName: cilium",
		"# IngressGateway default/shop-ingress on Linkerd: refused, Ready=False reason InvalidSpec: spec.gatewayClassName is required on Linkerd",
		"meshplane.io/owner: ingressgateway.default.shop-ingress", "name: shop-example-com-tls",
	} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("IngressGateway render lacks %q (%v):\n%s", want, err, out)
		}
	}
}
