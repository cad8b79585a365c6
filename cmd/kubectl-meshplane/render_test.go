package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
)

func runOffline(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(&out, &errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String() + errOut.String(), err
}

// TestRenderOffline renders the documented example and the samples with no
// cluster: each mesh's outputs with Meshplane's ownership labels, and the
// UnsupportedFeature refusal where a mesh cannot express the spec.
func TestRenderOffline(t *testing.T) {
	example := filepath.Join("..", "..", "docs", "examples", "render-trafficsplit.yaml")
	out, err := runOffline(t, "render", "-f", example)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# TrafficSplit shop/reviews on Istio: 1 object(s)", "kind: VirtualService", "mirrorPercentage:",
		"# TrafficSplit shop/reviews on Cilium: 1 object(s)", "kind: HTTPRoute", "type: RequestMirror",
		"# TrafficSplit shop/reviews on Linkerd: refused, Ready=False reason UnsupportedFeature: features MirrorPercent, Mirroring are not supported by Linkerd",
		"app.kubernetes.io/managed-by: meshplane", "meshplane.io/owner: trafficsplit.shop.reviews",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("render output lacks %q:\n%s", want, out)
		}
	}
	out, err = runOffline(t, "render", "-f", example, "--mesh", "istio", "--profile", "Sidecar")
	if err != nil || strings.Contains(out, "Cilium") || !strings.Contains(out, "on Istio (profile Sidecar)") {
		t.Errorf("--mesh istio: %v\n%s", err, out)
	}
	for _, sample := range []string{"meshplane_v1alpha1_trafficsplit.yaml", "meshplane_v1alpha1_zerotrustpolicy.yaml", "meshplane_v1alpha1_canary.yaml", "meshplane_v1alpha1_telemetrypolicy.yaml"} {
		out, err := runOffline(t, "render", "-f", filepath.Join("..", "..", "config", "samples", sample), "--mesh", "Istio")
		if err != nil || !strings.Contains(out, "object(s)") {
			t.Errorf("%s on Istio: %v\n%s", sample, err, out)
		}
	}
	out, err = runOffline(t, "render", "-f", filepath.Join("..", "..", "config", "samples", "meshplane_v1alpha1_egresspolicy.yaml"))
	for _, want := range []string{
		"# EgressPolicy default/payments-egress on Istio: 3 object(s)", "kind: ServiceEntry", "mode: REGISTRY_ONLY",
		"# EgressPolicy default/payments-egress on Cilium: 1 object(s)", "matchPattern: '**.docs.example.com'",
		"# EgressPolicy default/payments-egress on Linkerd: refused, Ready=False reason UnsupportedFeature: feature EgressTLSHosts is not supported by Linkerd",
		"meshplane.io/owner: egresspolicy.default.payments-egress",
	} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("EgressPolicy render lacks %q (%v):\n%s", want, err, out)
		}
	}
	if _, err := runOffline(t, "render", "-f", example, "--mesh", "consul"); err == nil {
		t.Errorf("an unknown mesh was accepted")
	}
}

// TestDiff applies what render prints, then diffs: unchanged, an edited
// weight shows as an update, a deleted output as a create.
func TestDiff(t *testing.T) {
	srv := cluster.UseServer(t, cluster.EnvtestOptions{})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, srv.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(srv.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	example := filepath.Join("..", "..", "docs", "examples", "render-trafficsplit.yaml")
	ctx := context.Background()
	out, err := runOffline(t, "render", "-f", example, "--mesh", "Istio")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runOffline(t, "--kubeconfig", kubeconfig, "diff", "-f", example, "--mesh", "Istio"); err == nil {
		t.Errorf("diff against an empty cluster reported no difference")
	}
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "shop"}}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	var vs unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(strings.SplitN(out, "---\n", 2)[1]), &vs.Object); err != nil {
		t.Fatal(err)
	}
	vs.SetOwnerReferences(nil) // no TrafficSplit exists to own it
	if err := c.Create(ctx, &vs); err != nil {
		t.Fatal(err)
	}
	got, err := runOffline(t, "--kubeconfig", kubeconfig, "diff", "-f", example, "--mesh", "Istio")
	if err != nil || !strings.Contains(got, "= unchanged VirtualService shop/reviews") {
		t.Fatalf("diff after applying the rendered output: %v\n%s", err, got)
	}
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	r0 := routes[0].(map[string]any)
	dests := r0["route"].([]any)
	dests[0].(map[string]any)["weight"] = int64(50)
	dests[1].(map[string]any)["weight"] = int64(50)
	if err := unstructured.SetNestedSlice(vs.Object, routes, "spec", "http"); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(ctx, &vs); err != nil {
		t.Fatal(err)
	}
	got, err = runOffline(t, "--kubeconfig", kubeconfig, "diff", "-f", example, "--mesh", "Istio")
	if err == nil || !strings.Contains(got, "~ update VirtualService shop/reviews") || !strings.Contains(got, "-      weight: 50") || !strings.Contains(got, "+      weight: 90") {
		t.Errorf("diff after editing the weights: %v\n%s", err, got)
	}
	if err := c.Delete(ctx, &vs); err != nil {
		t.Fatal(err)
	}
	got, _ = runOffline(t, "--kubeconfig", kubeconfig, "diff", "-f", example, "--mesh", "Istio")
	if !strings.Contains(got, "+ create VirtualService shop/reviews") {
		t.Errorf("diff after deleting the output:\n%s", got)
	}
}

// TestRenderProxyPolicy renders the ProxyPolicy sample: on Istio the
// Sidecar and the pod-template annotations, unlabelled (a shared field);
// Linkerd refuses the egress scope, Cilium everything.
func TestRenderProxyPolicy(t *testing.T) {
	out, err := runOffline(t, "render", "-f", filepath.Join("..", "..", "config", "samples", "meshplane_v1alpha1_proxypolicy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# ProxyPolicy default/shop-proxies on Istio: 2 object(s)", "kind: Sidecar", "name: shop-proxies-proxy",
		"meshplane.io/owner: proxypolicy.default.shop-proxies", "name: selected-workloads", "sidecar.istio.io/proxyCPU: 100m",
		"sidecar.istio.io/proxyMemoryLimit: 256Mi",
		"# ProxyPolicy default/shop-proxies on Linkerd: refused, Ready=False reason UnsupportedFeature: feature ProxyEgressScope is not supported by Linkerd",
		"# ProxyPolicy default/shop-proxies on Cilium: refused, Ready=False reason UnsupportedFeature: features ProxyEgressScope, ProxyResources are not supported by Cilium",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ProxyPolicy render lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "meshplane.io/owner: proxypolicy.default.shop-proxies") != 1 {
		t.Errorf("the partial Deployment was labelled:\n%s", out)
	}
}
