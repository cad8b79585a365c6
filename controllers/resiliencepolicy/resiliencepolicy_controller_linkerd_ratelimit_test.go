package resiliencepolicy

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

// rateLimitPolicy limits web to 50 requests per second, nothing else.
func rateLimitPolicy(ns string) *meshv1alpha1.ResiliencePolicy {
	rp := policy(ns, "web")
	rp.Spec.FaultInjection, rp.Spec.OutlierDetection, rp.Spec.Retries, rp.Spec.ConnectionPool, rp.Spec.LoadBalancer, rp.Spec.Timeouts = nil, nil, nil, nil, nil, nil
	rp.Spec.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 100, Interval: *dur("2s")}}
	return rp
}

// linkerdServer is the user's Server web-http for the pods of web on port
// 8080 (the Service's target port).
func linkerdServer(ns string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server",
		"metadata": map[string]any{"name": "web-http", "namespace": ns},
		"spec": map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"port": int64(8080), "proxyProtocol": "HTTP/1", "accessPolicy": "all-unauthenticated"},
	}}
}

// TestLinkerdRateLimit: with the user's Server covering the Service the
// policy writes an HTTPLocalRateLimitPolicy it owns on that Server (and a
// no-op reconcile writes nothing); without one it is refused naming the
// missing Server and writes nothing.
func TestLinkerdRateLimit(t *testing.T) {
	mgr, c := start(t)
	ns := linkerdNamespace(t, c)
	linkerdService(t, c, ns)
	must(t, c.Create(ctx, linkerdServer(ns)))
	must(t, c.Create(ctx, rateLimitPolicy(ns)))
	key := types.NamespacedName{Namespace: ns, Name: "web"}
	rp := waitReady(t, c, key)
	if kinds(rp.Status.Inventory) != "HTTPLocalRateLimitPolicy" {
		t.Fatalf("inventory %v", rp.Status.Inventory)
	}
	if got := support(rp, "rateLimit.local", meshv1alpha1.ProviderLinkerd); !strings.HasPrefix(got, "Enforced: HTTPLocalRateLimitPolicy total.requestsPerSecond") {
		t.Fatalf("report: %s", got)
	}
	hrl := &unstructured.Unstructured{}
	hrl.SetAPIVersion("policy.linkerd.io/v1alpha1")
	hrl.SetKind("HTTPLocalRateLimitPolicy")
	must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-web-http"}, hrl))
	rps, _, _ := unstructured.NestedInt64(hrl.Object, "spec", "total", "requestsPerSecond")
	target, _, _ := unstructured.NestedString(hrl.Object, "spec", "targetRef", "name")
	if rps != 50 || target != "web-http" || len(hrl.GetOwnerReferences()) != 1 || hrl.GetOwnerReferences()[0].Name != "web" {
		t.Fatalf("HTTPLocalRateLimitPolicy: rps %d target %s owners %v", rps, target, hrl.GetOwnerReferences())
	}

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		cc, writes := testenv.CachedClient(t, mgr.Manager)
		r := &Reconciler{Deps: outputs.NewDeps(cc, mgr.Manager, "test")}
		testenv.Eventually(t, testenv.DefaultTimeout, "cache current", func() error {
			cur := &meshv1alpha1.ResiliencePolicy{}
			_ = mgr.GetClient().Get(ctx, key, cur)
			if cur.Status.ObservedGeneration != cur.Generation || !status.IsTrue(&cur.Status.CommonStatus, meshv1alpha1.ReadyCondition) {
				return testenv.Errorf("cache at generation %d of %d", cur.Status.ObservedGeneration, cur.Generation)
			}
			return nil
		})
		for range 3 {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
				t.Fatal(err)
			}
		}
		if n := writes.Count(); n != 0 {
			t.Fatalf("no-op reconciles sent %d writes: %v", n, writes.Log())
		}
	})

	t.Run("refused without a Server", func(t *testing.T) {
		ns2 := linkerdNamespace(t, c)
		linkerdService(t, c, ns2)
		must(t, c.Create(ctx, rateLimitPolicy(ns2)))
		key2 := types.NamespacedName{Namespace: ns2, Name: "web"}
		want := "no Server in namespace " + ns2 + " selects exactly the pods of Service web (podSelector.matchLabels map[app:web]) on port 8080; Meshplane does not create a Server"
		testenv.Eventually(t, testenv.DefaultTimeout, "refused", func() error {
			got := &meshv1alpha1.ResiliencePolicy{}
			_ = c.Get(ctx, key2, got)
			ready := condition(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition)
			if !strings.HasPrefix(ready, "False/UnsupportedFeature") || !strings.Contains(ready, want) || len(got.Status.Inventory) != 0 {
				return testenv.Errorf("Ready %s, inventory %v", ready, got.Status.Inventory)
			}
			return nil
		})
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion("policy.linkerd.io/v1alpha1")
		list.SetKind("HTTPLocalRateLimitPolicyList")
		must(t, c.List(ctx, list))
		for _, o := range list.Items {
			if o.GetNamespace() == ns2 {
				t.Fatalf("refused policy wrote %s", o.GetName())
			}
		}
	})
}
