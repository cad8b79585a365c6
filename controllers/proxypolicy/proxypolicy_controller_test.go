package proxypolicy

import (
	"maps"
	"strings"
	"testing"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/test/testenv"
)

const (
	istioCPU    = "sidecar.istio.io/proxyCPU"
	istioMemLim = "sidecar.istio.io/proxyMemoryLimit"
)

func TestProxyPolicyController(t *testing.T) {
	mgr, c := start(t)

	t.Run("Ready on Istio: annotations on the selected pod templates, an owned Sidecar, a record", func(t *testing.T) {
		ns := istioNamespace(t, c)
		must(t, c.Create(ctx, deployment(ns, "web", map[string]string{"team": "shop"})))
		must(t, c.Create(ctx, deployment(ns, "db", nil)))
		p := policy(ns, "web", "web")
		p.Spec.EgressScope = &meshv1alpha1.ProxyEgressScope{Hosts: []string{"./*", "istio-system/*"}}
		key := readyPolicy(t, c, p)
		got := templateAnnotationsOf(t, c, ns, "web")
		if want := map[string]string{"team": "shop", istioCPU: "100m", istioMemLim: "256Mi"}; !maps.Equal(got, want) {
			t.Fatalf("web's template annotations %v, want %v", got, want)
		}
		if db := templateAnnotationsOf(t, c, ns, "db"); len(db) != 0 {
			t.Fatalf("an unselected workload was written: %v", db)
		}
		d := &appsv1.Deployment{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d))
		if len(d.OwnerReferences) != 0 || d.Labels[ownership.OwnerLabel] != "" {
			t.Fatalf("the shared workload was labelled or owned: %v %v", d.Labels, d.OwnerReferences)
		}
		sc := &istionetworking.Sidecar{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-proxy"}, sc))
		if !ownership.IsOwnedBy(sc, Kind, ns, "web") || strings.Join(sc.Spec.Egress[0].Hosts, ",") != "./*,istio-system/*" ||
			sc.Spec.WorkloadSelector.GetLabels()["app"] != "web" {
			t.Fatalf("Sidecar %v %v", sc.Labels, &sc.Spec)
		}
		cur := &meshv1alpha1.ProxyPolicy{}
		must(t, c.Get(ctx, key, cur))
		if len(cur.Status.SharedFields) != 2 || cur.Status.SharedFields[0].Previous != nil || len(cur.Finalizers) != 1 ||
			len(cur.Status.Workloads) != 1 || cur.Status.Workloads[0].State != meshv1alpha1.ProxyWorkloadApplied {
			t.Fatalf("status %+v finalizers %v", cur.Status, cur.Finalizers)
		}
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		ns := istioNamespace(t, c)
		must(t, c.Create(ctx, deployment(ns, "web", nil)))
		key := readyPolicy(t, c, policy(ns, "web", ""))
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

	t.Run("an annotation edited by hand is repaired", func(t *testing.T) {
		ns := istioNamespace(t, c)
		must(t, c.Create(ctx, deployment(ns, "web", nil)))
		readyPolicy(t, c, policy(ns, "web", "web"))
		d := &appsv1.Deployment{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d))
		d.Spec.Template.Annotations[istioCPU] = "5"
		must(t, c.Update(ctx, d, client.FieldOwner("kubectl-edit")))
		testenv.Eventually(t, testenv.DefaultTimeout, "repaired", func() error {
			if v := templateAnnotationsOf(t, c, ns, "web")[istioCPU]; v != "100m" {
				return testenv.Errorf("proxyCPU %q", v)
			}
			return nil
		})
	})

	t.Run("an annotation another manager applies is a Conflict and nothing is written", func(t *testing.T) {
		ns := istioNamespace(t, c)
		must(t, c.Create(ctx, deployment(ns, "web", nil)))
		gitops := &unstructured.Unstructured{}
		gitops.SetAPIVersion("apps/v1")
		gitops.SetKind("Deployment")
		gitops.SetNamespace(ns)
		gitops.SetName("web")
		must(t, unstructured.SetNestedStringMap(gitops.Object, map[string]string{istioCPU: "2"}, "spec", "template", "metadata", "annotations"))
		must(t, c.Apply(ctx, client.ApplyConfigurationFromUnstructured(gitops), client.FieldOwner("team-gitops")))
		before := &appsv1.Deployment{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, before))
		p := policy(ns, "web", "web")
		must(t, c.Create(ctx, p))
		key := client.ObjectKeyFromObject(p)
		testenv.Eventually(t, testenv.DefaultTimeout, "Conflict", func() error {
			r := condition(c, key, meshv1alpha1.ReadyCondition)
			want := `False Conflict: Deployment ` + ns + `/web: spec.template.metadata.annotations[sidecar.istio.io/proxyCPU] is "2", applied by field manager team-gitops, and this object sets "100m"`
			if !strings.HasPrefix(r, want) {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
		after := &appsv1.Deployment{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, after))
		if after.ResourceVersion != before.ResourceVersion {
			t.Fatalf("the workload was written: %v", after.Spec.Template.Annotations)
		}
	})

	t.Run("deletion restores the pod templates exactly", func(t *testing.T) {
		ns := istioNamespace(t, c)
		must(t, c.Create(ctx, deployment(ns, "web", map[string]string{"team": "shop"})))
		// A value set by hand before the policy existed.
		d := &appsv1.Deployment{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d))
		d.Spec.Template.Annotations[istioCPU] = "50m"
		must(t, c.Update(ctx, d, client.FieldOwner("kubectl-annotate")))
		key := readyPolicy(t, c, policy(ns, "web", "web"))
		cur := &meshv1alpha1.ProxyPolicy{}
		must(t, c.Get(ctx, key, cur))
		var prev []string
		for _, f := range cur.Status.SharedFields {
			prev = append(prev, f.Field+"="+ptr.Deref(f.Previous, "<absent>"))
		}
		if want := "spec.template.metadata.annotations[sidecar.istio.io/proxyCPU]=50m,spec.template.metadata.annotations[sidecar.istio.io/proxyMemoryLimit]=<absent>"; strings.Join(prev, ",") != want {
			t.Fatalf("record %v, want %s", prev, want)
		}
		must(t, c.Delete(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "policy gone, template restored", func() error {
			if err := c.Get(ctx, key, &meshv1alpha1.ProxyPolicy{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("policy still there: %v", err)
			}
			if got, want := templateAnnotationsOf(t, c, ns, "web"), map[string]string{"team": "shop", istioCPU: "50m"}; !maps.Equal(got, want) {
				return testenv.Errorf("annotations %v, want %v", got, want)
			}
			return nil
		})
	})

	t.Run("a workload leaving the selector is released, the others keep their settings", func(t *testing.T) {
		ns := istioNamespace(t, c)
		must(t, c.Create(ctx, deployment(ns, "web", nil)))
		must(t, c.Create(ctx, deployment(ns, "api", nil)))
		p := policy(ns, "both", "")
		p.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web", "api"}}}}
		key := readyPolicy(t, c, p)
		cur := &meshv1alpha1.ProxyPolicy{}
		must(t, c.Get(ctx, key, cur))
		cur.Spec.Selector.MatchExpressions[0].Values = []string{"api"}
		must(t, c.Update(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "web released", func() error {
			if err := ready(c, key); err != nil {
				return err
			}
			if web := templateAnnotationsOf(t, c, ns, "web"); len(web) != 0 {
				return testenv.Errorf("web still carries %v", web)
			}
			if api := templateAnnotationsOf(t, c, ns, "api"); api[istioCPU] != "100m" {
				return testenv.Errorf("api lost its settings: %v", api)
			}
			return nil
		})
		must(t, c.Get(ctx, key, cur))
		for _, ref := range cur.Status.Inventory {
			if ref.Name == "web" {
				t.Fatalf("web still in the inventory: %v", cur.Status.Inventory)
			}
		}
	})

	t.Run("batchSize rolls one workload at a time behind the health gate", func(t *testing.T) {
		ns := istioNamespace(t, c)
		for _, n := range []string{"a", "b", "c"} {
			must(t, c.Create(ctx, deployment(ns, n, nil)))
		}
		testenv.MarkAvailable(t, c, ns)
		p := policy(ns, "batched", "")
		p.Spec.Rollout = &meshv1alpha1.ProxyRollout{BatchSize: ptr.To[int32](1)}
		must(t, c.Create(ctx, p))
		key := client.ObjectKeyFromObject(p)
		configured := func() int {
			n := 0
			for _, name := range []string{"a", "b", "c"} {
				if templateAnnotationsOf(t, c, ns, name)[istioCPU] == "100m" {
					n++
				}
			}
			return n
		}
		for want := 1; want <= 3; want++ {
			testenv.Eventually(t, testenv.DefaultTimeout, "batch", func() error {
				if n := configured(); n != want {
					return testenv.Errorf("%d workloads configured, want %d", n, want)
				}
				return nil
			})
			if want < 3 {
				// The gate holds while the written workload rolls out.
				testenv.Eventually(t, testenv.DefaultTimeout, "gate reported", func() error {
					if r := condition(c, key, meshv1alpha1.ReconcilingCondition); !strings.Contains(r, "the next batch waits for Deployment") {
						return testenv.Errorf("Reconciling %q", r)
					}
					return nil
				})
				if n := configured(); n != want {
					t.Fatalf("%d configured before the gate opened, want %d", n, want)
				}
			}
			testenv.MarkAvailable(t, c, ns)
		}
		testenv.Eventually(t, testenv.DefaultTimeout, "Ready", func() error { return ready(c, key) })
	})

	t.Run("paused writes nothing and lists the workloads Pending", func(t *testing.T) {
		ns := istioNamespace(t, c)
		must(t, c.Create(ctx, deployment(ns, "web", nil)))
		p := policy(ns, "paused", "")
		p.Spec.Rollout = &meshv1alpha1.ProxyRollout{Paused: true}
		must(t, c.Create(ctx, p))
		key := client.ObjectKeyFromObject(p)
		testenv.Eventually(t, testenv.DefaultTimeout, "RolloutPaused", func() error {
			if r := condition(c, key, meshv1alpha1.ReconcilingCondition); !strings.HasPrefix(r, "True RolloutPaused: 0 of 1 workload(s)") {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
		if a := templateAnnotationsOf(t, c, ns, "web"); len(a) != 0 {
			t.Fatalf("a paused policy wrote %v", a)
		}
		cur := &meshv1alpha1.ProxyPolicy{}
		must(t, c.Get(ctx, key, cur))
		if len(cur.Status.Workloads) != 1 || cur.Status.Workloads[0].State != meshv1alpha1.ProxyWorkloadPending {
			t.Fatalf("workloads %+v", cur.Status.Workloads)
		}
		cur.Spec.Rollout.Paused = false
		must(t, c.Update(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "Ready once unpaused", func() error { return ready(c, key) })
	})

	t.Run("Linkerd gets its annotations; egressScope is refused there", func(t *testing.T) {
		ns := testenv.AnnotatedNamespace(t, c, nil, map[string]string{"linkerd.io/inject": "enabled"})
		must(t, c.Create(ctx, deployment(ns, "web", nil)))
		readyPolicy(t, c, policy(ns, "web", "web"))
		got := templateAnnotationsOf(t, c, ns, "web")
		if want := map[string]string{"config.linkerd.io/proxy-cpu-request": "100m", "config.linkerd.io/proxy-memory-limit": "256Mi"}; !maps.Equal(got, want) {
			t.Fatalf("annotations %v, want %v", got, want)
		}
		p := policy(ns, "scope", "other")
		p.Spec.EgressScope = &meshv1alpha1.ProxyEgressScope{Hosts: []string{"./*"}}
		must(t, c.Create(ctx, p))
		testenv.Eventually(t, testenv.DefaultTimeout, "UnsupportedFeature", func() error {
			if r := condition(c, client.ObjectKeyFromObject(p), meshv1alpha1.ReadyCondition); !strings.HasPrefix(r, "False UnsupportedFeature: feature ProxyEgressScope is not supported by Linkerd") {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
	})

	t.Run("an egressScope beside an EgressPolicy for the same workloads is a Conflict", func(t *testing.T) {
		ns := istioNamespace(t, c)
		eg := &meshv1alpha1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: "egress", Namespace: ns},
			Spec: meshv1alpha1.EgressPolicySpec{Rules: []meshv1alpha1.EgressRule{{Hosts: []string{"api.example.com"}, Ports: []meshv1alpha1.EgressPort{{Number: 443, Protocol: "TLS"}}}}}}
		must(t, c.Create(ctx, eg))
		p := &meshv1alpha1.ProxyPolicy{ObjectMeta: metav1.ObjectMeta{Name: "scope", Namespace: ns},
			Spec: meshv1alpha1.ProxyPolicySpec{EgressScope: &meshv1alpha1.ProxyEgressScope{Hosts: []string{"./*"}}}}
		must(t, c.Create(ctx, p))
		testenv.Eventually(t, testenv.DefaultTimeout, "Conflict", func() error {
			if r := condition(c, client.ObjectKeyFromObject(p), meshv1alpha1.ReadyCondition); !strings.HasPrefix(r, "False Conflict: EgressPolicy egress (the whole namespace) already sets the outbound configuration") {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "scope-proxy"}, &istionetworking.Sidecar{}); !apierrors.IsNotFound(err) {
			t.Fatalf("the conflicting policy wrote a Sidecar: %v", err)
		}
	})
}
