package telemetrypolicy

import (
	"strings"
	"testing"

	istiotelemetry "istio.io/client-go/pkg/apis/telemetry/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	linkerdtelemetry "github.com/meshplane/meshplane/internal/mesh/linkerd"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/test/testenv"
)

func TestTelemetryPolicyController(t *testing.T) {
	mgr, c := start(t)

	t.Run("Ready on Istio with an owned Telemetry and no finalizer", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key := readyPolicy(t, c, policy(ns, "web", false))
		p := &meshv1alpha1.TelemetryPolicy{}
		must(t, c.Get(ctx, key, p))
		if p.Status.Provider != meshv1alpha1.ProviderIstio || len(p.Status.Inventory) != 1 || len(p.Finalizers) != 0 {
			t.Fatalf("status %+v finalizers %v", p.Status, p.Finalizers)
		}
		tel := &istiotelemetry.Telemetry{}
		must(t, c.Get(ctx, key, tel))
		if !ownership.IsOwnedBy(tel, Kind, ns, "web") || len(tel.OwnerReferences) != 1 {
			t.Fatalf("Telemetry not owned: %v %v", tel.Labels, tel.OwnerReferences)
		}
		if got := tel.Spec.Tracing[0].GetRandomSamplingPercentage().GetValue(); got != 10 {
			t.Fatalf("sampling %v, want 10", got)
		}
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key := readyPolicy(t, c, policy(ns, "web", false))
		cc, writes := testenv.CachedClient(t, mgr.Manager)
		r := &Reconciler{Deps: outputs.NewDeps(cc, mgr.Manager, "test")}
		testenv.Eventually(t, testenv.DefaultTimeout, "cache current", func() error { return ready(mgr.GetClient(), key) })
		for range 3 {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
				t.Fatal(err)
			}
		}
		if n := writes.Count(); n != 0 {
			t.Fatalf("no-op reconciles sent %d writes: %v", n, writes.Log())
		}
	})

	t.Run("drift of the Telemetry is repaired", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key := readyPolicy(t, c, policy(ns, "web", false))
		tel := &istiotelemetry.Telemetry{}
		must(t, c.Get(ctx, key, tel))
		tel.Spec.Tracing = nil
		must(t, c.Update(ctx, tel))
		testenv.Eventually(t, testenv.DefaultTimeout, "tracing restored", func() error {
			cur := &istiotelemetry.Telemetry{}
			must(t, c.Get(ctx, key, cur))
			if len(cur.Spec.Tracing) != 1 || cur.Spec.Tracing[0].GetRandomSamplingPercentage().GetValue() != 10 {
				return testenv.Errorf("tracing %v", cur.Spec.Tracing)
			}
			return nil
		})
	})

	t.Run("a spec change updates the Telemetry", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key := readyPolicy(t, c, policy(ns, "web", false))
		cur := &meshv1alpha1.TelemetryPolicy{}
		must(t, c.Get(ctx, key, cur))
		cur.Spec.Tracing = nil
		cur.Spec.AccessLogging.Filter = &meshv1alpha1.AccessLogFilter{MinResponseCode: 500}
		must(t, c.Update(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "filter applied, tracing dropped", func() error {
			if err := ready(c, key); err != nil {
				return err
			}
			tel := &istiotelemetry.Telemetry{}
			must(t, c.Get(ctx, key, tel))
			if len(tel.Spec.Tracing) != 0 || tel.Spec.AccessLogging[0].GetFilter().GetExpression() != "response.code >= 500" {
				return testenv.Errorf("spec %v", &tel.Spec)
			}
			return nil
		})
	})

	t.Run("a second namespace-wide policy conflicts until the first goes", func(t *testing.T) {
		ns := istioNamespace(t, c)
		readyPolicy(t, c, policy(ns, "web", false))
		must(t, c.Create(ctx, policy(ns, "second", true)))
		skey := client.ObjectKey{Namespace: ns, Name: "second"}
		testenv.Eventually(t, testenv.DefaultTimeout, "Conflict", func() error {
			if r := reason(c, skey); !strings.HasPrefix(r, "Conflict") || !strings.Contains(r, "TelemetryPolicy web (the whole namespace)") {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
		if err := c.Get(ctx, skey, &istiotelemetry.Telemetry{}); !apierrors.IsNotFound(err) {
			t.Fatalf("the conflicting policy wrote a Telemetry: %v", err)
		}
		// A workload policy composes with the namespace-wide one.
		wl := policy(ns, "workload", true)
		wl.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
		readyPolicy(t, c, wl)
		must(t, c.Delete(ctx, &meshv1alpha1.TelemetryPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}}))
		testenv.Eventually(t, testenv.DefaultTimeout, "second Ready once web is gone", func() error { return ready(c, skey) })
	})

	t.Run("unsupported feature on Istio writes nothing", func(t *testing.T) {
		ns := istioNamespace(t, c)
		bad := policy(ns, "expr", false)
		bad.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}}}
		must(t, c.Create(ctx, bad))
		bkey := client.ObjectKeyFromObject(bad)
		testenv.Eventually(t, testenv.DefaultTimeout, "UnsupportedFeature", func() error {
			if r := reason(c, bkey); !strings.HasPrefix(r, "UnsupportedFeature") || !strings.Contains(r, "PerWorkloadTelemetry") {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
		if err := c.Get(ctx, bkey, &istiotelemetry.Telemetry{}); !apierrors.IsNotFound(err) {
			t.Fatalf("Telemetry for an unsupported policy: %v", err)
		}
	})

	annotation := func(t *testing.T, ns string) (string, bool) {
		n := &corev1.Namespace{}
		must(t, c.Get(ctx, client.ObjectKey{Name: ns}, n))
		v, ok := n.Annotations[linkerdtelemetry.AccessLogAnnotation]
		return v, ok
	}

	t.Run("Linkerd: access-log annotation, drift, restore of the previous value on deletion", func(t *testing.T) {
		ns := linkerdNamespace(t, c, map[string]string{linkerdtelemetry.AccessLogAnnotation: "json"})
		key := readyPolicy(t, c, policy(ns, "web", true))
		if v, _ := annotation(t, ns); v != "apache" {
			t.Fatalf("access-log annotation %q", v)
		}
		p := &meshv1alpha1.TelemetryPolicy{}
		must(t, c.Get(ctx, key, p))
		if len(p.Finalizers) != 1 || len(p.Status.SharedFields) != 1 || p.Status.SharedFields[0].Previous == nil || *p.Status.SharedFields[0].Previous != "json" {
			t.Fatalf("finalizers %v shared %+v", p.Finalizers, p.Status.SharedFields)
		}
		if r := reason(c, key); !strings.Contains(r, "restart") {
			t.Fatalf("Ready message does not say pods read it at start: %s", r)
		}
		// Drift: another writer changes the annotation.
		n := &corev1.Namespace{}
		must(t, c.Get(ctx, client.ObjectKey{Name: ns}, n))
		n.Annotations[linkerdtelemetry.AccessLogAnnotation] = "json"
		must(t, c.Update(ctx, n))
		testenv.Eventually(t, testenv.DefaultTimeout, "annotation repaired", func() error {
			if v, _ := annotation(t, ns); v != "apache" {
				return testenv.Errorf("annotation %q", v)
			}
			return nil
		})
		must(t, c.Delete(ctx, p))
		testenv.Eventually(t, testenv.DefaultTimeout, "policy gone and previous value restored", func() error {
			gone := apierrors.IsNotFound(c.Get(ctx, key, &meshv1alpha1.TelemetryPolicy{}))
			if v, _ := annotation(t, ns); !gone || v != "json" {
				return testenv.Errorf("gone=%v annotation=%q", gone, v)
			}
			return nil
		})
		must(t, c.Get(ctx, client.ObjectKey{Name: ns}, n))
		if n.Annotations["linkerd.io/inject"] != "enabled" {
			t.Fatalf("foreign annotation lost: %v", n.Annotations)
		}
	})

	t.Run("Linkerd: deletion removes an annotation that was absent", func(t *testing.T) {
		ns := linkerdNamespace(t, c, nil)
		key := readyPolicy(t, c, policy(ns, "web", true))
		must(t, c.Delete(ctx, &meshv1alpha1.TelemetryPolicy{ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: ns}}))
		testenv.Eventually(t, testenv.DefaultTimeout, "annotation removed", func() error {
			if v, ok := annotation(t, ns); ok {
				return testenv.Errorf("annotation %q still set", v)
			}
			return nil
		})
	})

	t.Run("Linkerd refuses tracing and writes nothing", func(t *testing.T) {
		ns := linkerdNamespace(t, c, nil)
		must(t, c.Create(ctx, policy(ns, "web", false)))
		key := client.ObjectKey{Namespace: ns, Name: "web"}
		testenv.Eventually(t, testenv.DefaultTimeout, "UnsupportedFeature", func() error {
			if r := reason(c, key); !strings.HasPrefix(r, "UnsupportedFeature") || !strings.Contains(r, "Tracing") || !strings.Contains(r, "Linkerd") {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
		if v, ok := annotation(t, ns); ok {
			t.Fatalf("annotation %q written for a refused policy", v)
		}
	})

	t.Run("Cilium refuses naming Hubble", func(t *testing.T) {
		ns := istioNamespace(t, c)
		p := policy(ns, "web", true)
		p.Spec.Provider = meshv1alpha1.ProviderCilium
		must(t, c.Create(ctx, p))
		testenv.Eventually(t, testenv.DefaultTimeout, "UnsupportedFeature", func() error {
			if r := reason(c, client.ObjectKeyFromObject(p)); !strings.HasPrefix(r, "UnsupportedFeature") || !strings.Contains(r, "Hubble") {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
	})
}
