package canary

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/delivery"
	"github.com/meshplane/meshplane/internal/metrics"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

func TestCanaryController(t *testing.T) {
	mgr, c := start(t)

	t.Run("initialized: primary, Services and an Istio route to the primary", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key, cn := initialized(t, c, ns, 2)
		if !status.IsTrue(&cn.Status.CommonStatus, meshv1alpha1.ReadyCondition) || !status.IsTrue(&cn.Status.CommonStatus, meshv1alpha1.PromotedCondition) ||
			!status.IsTrue(&cn.Status.CommonStatus, meshv1alpha1.ResolvedRefsCondition) || cn.Status.Provider != meshv1alpha1.ProviderIstio {
			t.Fatalf("conditions: Ready %s; Promoted %s; provider %s", condition(cn, meshv1alpha1.ReadyCondition), condition(cn, meshv1alpha1.PromotedCondition), cn.Status.Provider)
		}
		if len(cn.Status.Inventory) != 5 || cn.Status.CanaryWeight != 0 || cn.Status.LastPromotedSpec == "" {
			t.Fatalf("status: %+v", cn.Status)
		}
		primary := &appsv1.Deployment{}
		must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-primary"}, primary))
		if primary.Spec.Selector.MatchLabels["app"] != "web-primary" || primary.Spec.Template.Labels["app"] != "web-primary" ||
			primary.Spec.Template.Labels["team"] != "shop" || *primary.Spec.Replicas != 2 || !ownership.IsOwnedBy(primary, Kind, ns, "web") {
			t.Fatalf("primary: %+v %+v", primary.Spec.Selector, primary.Spec.Template.Labels)
		}
		target := &appsv1.Deployment{}
		must(t, c.Get(ctx, key, target))
		if *target.Spec.Replicas != 0 {
			t.Fatalf("target replicas %d, want 0 while idle", *target.Spec.Replicas)
		}
		for name, sel := range map[string]string{"web": "web-primary", "web-primary": "web-primary", "web-canary": "web"} {
			svc := &corev1.Service{}
			must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, svc))
			if svc.Spec.Selector["app"] != sel || svc.Spec.Ports[0].Port != 8080 {
				t.Fatalf("Service %s: selector %v ports %v", name, svc.Spec.Selector, svc.Spec.Ports)
			}
		}
		vs := &istionetworking.VirtualService{}
		must(t, c.Get(ctx, key, vs))
		if w := routeWeights(t, c, ns, "web", "VirtualService"); w != 0 {
			t.Fatalf("canary weight in the VirtualService %d", w)
		}
		var evs eventsv1.EventList
		must(t, c.List(ctx, &evs, client.InNamespace(ns)))
		reasons := map[string]bool{}
		for _, e := range evs.Items {
			if e.Regarding.Name == "web" && e.Regarding.Kind == "Canary" {
				reasons[e.Reason] = true
			}
		}
		if !reasons["Initialized"] {
			t.Fatalf("events: %v", reasons)
		}
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key, cn := initialized(t, c, ns, 2)
		cc, writes := testenv.CachedClient(t, mgr.Manager)
		r := &Reconciler{Deps: outputs.NewDeps(cc, mgr.Manager, "test"), APIReader: mgr.GetAPIReader()}
		testenv.Eventually(t, testenv.DefaultTimeout, "cache current", func() error {
			cur := &meshv1alpha1.Canary{}
			_ = mgr.GetClient().Get(ctx, key, cur)
			tgt := &appsv1.Deployment{}
			_ = mgr.GetClient().Get(ctx, key, tgt)
			if cur.Status.Phase != meshv1alpha1.CanaryPhaseInitialized || cur.ResourceVersion != cn.ResourceVersion || tgt.Spec.Replicas == nil || *tgt.Spec.Replicas != 0 {
				return testenv.Errorf("cache: phase %s resourceVersion %s of %s", cur.Status.Phase, cur.ResourceVersion, cn.ResourceVersion)
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

	t.Run("drift of the route is repaired", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key, _ := initialized(t, c, ns, 2)
		vs := &istionetworking.VirtualService{}
		must(t, c.Get(ctx, key, vs))
		vs.Spec.Http[len(vs.Spec.Http)-1].Route[0].Weight = 50
		vs.Spec.Http[len(vs.Spec.Http)-1].Route[1].Weight = 50
		must(t, c.Update(ctx, vs))
		testenv.Eventually(t, testenv.DefaultTimeout, "weights restored", func() error {
			if w := routeWeights(t, c, ns, "web", "VirtualService"); w != 0 {
				return testenv.Errorf("canary weight %d", w)
			}
			return nil
		})
	})

	t.Run("a new revision is delivered and promoted", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key, _ := initialized(t, c, ns, 2)
		setImage(t, c, key, "web:2")
		target := &appsv1.Deployment{}
		seen := map[int32]bool{}
		testenv.Eventually(t, testenv.DefaultTimeout, "Succeeded", func() error {
			cur := &meshv1alpha1.Canary{}
			must(t, c.Get(ctx, key, cur))
			seen[cur.Status.CanaryWeight] = true
			if cur.Status.Phase != meshv1alpha1.CanaryPhaseSucceeded {
				return testenv.Errorf("phase %s", cur.Status.Phase)
			}
			return nil
		})
		primary := &appsv1.Deployment{}
		must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-primary"}, primary))
		must(t, c.Get(ctx, key, target))
		if primary.Spec.Template.Spec.Containers[0].Image != "web:2" || *target.Spec.Replicas != 0 {
			t.Fatalf("after promotion: primary image %s, target replicas %d", primary.Spec.Template.Spec.Containers[0].Image, *target.Spec.Replicas)
		}
		if w := routeWeights(t, c, ns, "web", "VirtualService"); w != 0 {
			t.Fatalf("canary weight %d after promotion", w)
		}
		t.Logf("weights seen: %v", seen)
		for _, ph := range []meshv1alpha1.CanaryPhase{meshv1alpha1.CanaryPhaseProgressing, meshv1alpha1.CanaryPhaseSucceeded} {
			if n := testutil.ToFloat64(metrics.CanaryPhaseTransitions.WithLabelValues(ns, "web", string(ph))); n < 1 {
				t.Errorf("meshplane_canary_phase_transitions_total{phase=%s} = %v, want >= 1", ph, n)
			}
		}
	})

	t.Run("missing target is Stalled", func(t *testing.T) {
		ns := istioNamespace(t, c)
		must(t, c.Create(ctx, newCanary(ns, "ghost")))
		got := waitCanary(t, c, types.NamespacedName{Namespace: ns, Name: "ghost"}, "Stalled", stalled(meshv1alpha1.ReferenceNotFoundReason))
		if !strings.Contains(condition(got, meshv1alpha1.ReadyCondition), "Deployment "+ns+"/ghost") ||
			!strings.HasPrefix(condition(got, meshv1alpha1.ResolvedRefsCondition), "False/ReferenceNotFound") {
			t.Fatalf("Ready: %s", condition(got, meshv1alpha1.ReadyCondition))
		}
		// Created later, it is picked up.
		must(t, c.Create(ctx, deployment(ns, "ghost", "ghost:1", 1)))
		waitCanary(t, c, types.NamespacedName{Namespace: ns, Name: "ghost"}, "Initialized", phase(meshv1alpha1.CanaryPhaseInitialized))
	})

	t.Run("a foreign Service is never taken over", func(t *testing.T) {
		ns := istioNamespace(t, c)
		must(t, c.Create(ctx, deployment(ns, "api", "api:1", 1)))
		foreign := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "api"}, Ports: []corev1.ServicePort{{Port: 80}}}}
		must(t, c.Create(ctx, foreign))
		must(t, c.Create(ctx, newCanary(ns, "api")))
		got := waitCanary(t, c, types.NamespacedName{Namespace: ns, Name: "api"}, "Conflict", stalled(meshv1alpha1.ConflictReason))
		if !strings.Contains(condition(got, meshv1alpha1.ReadyCondition), "Service "+ns+"/api") {
			t.Fatalf("Ready: %s", condition(got, meshv1alpha1.ReadyCondition))
		}
		after := &corev1.Service{}
		must(t, c.Get(ctx, client.ObjectKeyFromObject(foreign), after))
		if after.ResourceVersion != foreign.ResourceVersion {
			t.Fatal("foreign Service modified")
		}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "api-primary"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
			t.Fatalf("primary created despite the conflict: %v", err)
		}
		tgt := &appsv1.Deployment{}
		must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "api"}, tgt))
		if *tgt.Spec.Replicas != 1 {
			t.Fatalf("target scaled to %d despite the conflict", *tgt.Spec.Replicas)
		}
	})

	t.Run("Linkerd and Cilium get a GAMMA HTTPRoute", func(t *testing.T) {
		books, cars := linkerdNamespace(t, c), testenv.Namespace(t, c, nil)
		must(t, c.Create(ctx, deployment(books, "web", "web:1", 1)))
		must(t, c.Create(ctx, newCanary(books, "web")))
		must(t, c.Create(ctx, deployment(cars, "web", "web:1", 1)))
		cc := newCanary(cars, "web")
		cc.Spec.Provider = meshv1alpha1.ProviderCilium
		cc.Spec.Strategy = meshv1alpha1.StrategyMirroring
		cc.Spec.Analysis.Iterations = ptr[int32](1)
		must(t, c.Create(ctx, cc))
		for _, ns := range []string{books, cars} {
			got := waitCanary(t, c, types.NamespacedName{Namespace: ns, Name: "web"}, "Initialized", phase(meshv1alpha1.CanaryPhaseInitialized))
			route := &gatewayv1.HTTPRoute{}
			must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, route))
			if string(route.Spec.ParentRefs[0].Name) != "web" {
				t.Fatalf("%s: parentRefs %+v", ns, route.Spec.ParentRefs)
			}
			t.Logf("%s: provider %s", ns, got.Status.Provider)
		}
		// The Cilium canary mirrors, then shifts: walk it to the end.
		setImage(t, c, types.NamespacedName{Namespace: cars, Name: "web"}, "web:2")
		mirrored := false
		testenv.Eventually(t, testenv.DefaultTimeout, "Cilium mirroring canary Succeeded", func() error {
			route := &gatewayv1.HTTPRoute{}
			if c.Get(ctx, types.NamespacedName{Namespace: cars, Name: "web"}, route) == nil {
				for _, f := range route.Spec.Rules[len(route.Spec.Rules)-1].Filters {
					mirrored = mirrored || f.RequestMirror != nil
				}
			}
			cur := &meshv1alpha1.Canary{}
			must(t, c.Get(ctx, types.NamespacedName{Namespace: cars, Name: "web"}, cur))
			if cur.Status.Phase != meshv1alpha1.CanaryPhaseSucceeded {
				return testenv.Errorf("phase %s", cur.Status.Phase)
			}
			return nil
		})
		if !mirrored {
			t.Error("the mirroring step was never seen on the HTTPRoute")
		}
	})

	t.Run("a strategy the mesh cannot express applies nothing", func(t *testing.T) {
		ns := linkerdNamespace(t, c)
		must(t, c.Create(ctx, deployment(ns, "shadow", "shadow:1", 1)))
		cn := newCanary(ns, "shadow")
		cn.Spec.Strategy = meshv1alpha1.StrategyMirroring
		cn.Spec.Analysis.Iterations = ptr[int32](1)
		must(t, c.Create(ctx, cn))
		got := waitCanary(t, c, client.ObjectKeyFromObject(cn), "UnsupportedFeature", stalled(meshv1alpha1.UnsupportedFeatureReason))
		if msg := condition(got, meshv1alpha1.ReadyCondition); !strings.Contains(msg, "Mirroring") || !strings.Contains(msg, "Linkerd") {
			t.Fatalf("Ready: %s", msg)
		}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "shadow-primary"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
			t.Fatalf("primary created for an unsupported strategy: %v", err)
		}
	})

	// waitingPromotion delivers a new revision of the Canary pinned in a
	// new Istio namespace up to its last step (50%), where a
	// confirm-promotion webhook that always refuses holds it.
	waitingPromotion := func(t *testing.T) (string, types.NamespacedName) {
		t.Helper()
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "frozen", http.StatusForbidden) }))
		t.Cleanup(hook.Close)
		ns := istioNamespace(t, c)
		must(t, c.Create(ctx, deployment(ns, "pinned", "pinned:1", 1)))
		cn := newCanary(ns, "pinned")
		cn.Spec.Analysis.StepWeight, cn.Spec.Analysis.MaxWeight = ptr[int32](50), ptr[int32](50)
		cn.Spec.Analysis.Webhooks = []meshv1alpha1.CanaryWebhook{{Name: "hold", Type: "confirm-promotion", URL: hook.URL}}
		must(t, c.Create(ctx, cn))
		pk := client.ObjectKeyFromObject(cn)
		waitCanary(t, c, pk, "Initialized", phase(meshv1alpha1.CanaryPhaseInitialized))
		setImage(t, c, pk, "pinned:2")
		waitCanary(t, c, pk, "WaitingPromotion at 50%", func(cn *meshv1alpha1.Canary) bool {
			return cn.Status.Phase == meshv1alpha1.CanaryPhaseWaitingPromotion && cn.Status.CanaryWeight == 50
		})
		return ns, pk
	}

	t.Run("a BreakGlass pins traffic to the primary and pauses", func(t *testing.T) {
		ns, pk := waitingPromotion(t)
		bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "incident-" + ns},
			Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod down", Target: meshv1alpha1.BreakGlassTarget{Provider: meshv1alpha1.ProviderIstio}}}
		must(t, c.Create(ctx, bg))
		t.Cleanup(func() { _ = c.Delete(ctx, bg) })
		setBreakGlass(t, c, ns, bg.Name)
		got := waitCanary(t, c, pk, "pinned", func(cn *meshv1alpha1.Canary) bool {
			return status.IsTrue(&cn.Status.CommonStatus, meshv1alpha1.BreakGlassActiveCondition) && cn.Status.CanaryWeight == 0
		})
		if w := routeWeights(t, c, ns, "pinned", "VirtualService"); w != 0 || got.Status.Phase != meshv1alpha1.CanaryPhaseWaitingPromotion {
			t.Fatalf("pinned: route weight %d, phase %s", w, got.Status.Phase)
		}
		if msg := condition(got, meshv1alpha1.BreakGlassActiveCondition); !strings.Contains(msg, "incident") {
			t.Fatalf("BreakGlassActive: %s", msg)
		}
		setBreakGlass(t, c, ns, "")
		waitCanary(t, c, pk, "resumed", func(cn *meshv1alpha1.Canary) bool {
			return status.Get(&cn.Status.CommonStatus, meshv1alpha1.BreakGlassActiveCondition) == nil && cn.Status.CanaryWeight == 50
		})
		if w := routeWeights(t, c, ns, "pinned", "VirtualService"); w != 50 {
			t.Fatalf("resumed: route weight %d", w)
		}
	})

	t.Run("a target deleted mid-delivery: everything to the primary, Failed", func(t *testing.T) {
		ns, pk := waitingPromotion(t)
		if w := routeWeights(t, c, ns, "pinned", "VirtualService"); w != 50 {
			t.Fatalf("precondition: canary weight %d, want 50", w)
		}
		must(t, c.Delete(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pinned"}}))
		got := waitCanary(t, c, pk, "Failed and Stalled", func(cn *meshv1alpha1.Canary) bool {
			return cn.Status.Phase == meshv1alpha1.CanaryPhaseFailed && stalled(meshv1alpha1.ReferenceNotFoundReason)(cn)
		})
		if w := routeWeights(t, c, ns, "pinned", "VirtualService"); w != 0 || got.Status.CanaryWeight != 0 || !strings.Contains(got.Status.Message, "deleted") {
			t.Fatalf("route weight %d, status weight %d, message %q", w, got.Status.CanaryWeight, got.Status.Message)
		}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "pinned-primary"}, &appsv1.Deployment{}); err != nil {
			t.Fatalf("primary: %v", err)
		}
	})

	t.Run("every route of every strategy on every mesh is accepted by the CRD schemas", func(t *testing.T) {
		ns := testenv.Namespace(t, c, nil)
		strategies := map[meshv1alpha1.CanaryStrategy]meshv1alpha1.CanaryAnalysis{
			meshv1alpha1.StrategyCanary:    {StepWeights: []int32{1, 33, 50}},
			meshv1alpha1.StrategyBlueGreen: {Iterations: ptr[int32](1)},
			meshv1alpha1.StrategyABTesting: {Iterations: ptr[int32](1), Match: []meshv1alpha1.HTTPMatch{
				{Headers: []meshv1alpha1.HTTPHeaderMatch{{Name: "X-Canary", Value: "insider"}, {Name: "cookie", Type: meshv1alpha1.HeaderMatchRegularExpression, Value: "^(.*?;)?(canary=always)(;.*)?$"}}},
				{Path: &meshv1alpha1.HTTPPathMatch{Type: meshv1alpha1.PathMatchPathPrefix, Value: "/beta"}, Method: "GET"}}},
			meshv1alpha1.StrategyMirroring: {Iterations: ptr[int32](1), StepWeight: ptr[int32](25), MirrorPercent: ptr[int32](10)},
		}
		n := 0
		for _, p := range meshv1alpha1.Providers {
			tr, err := mgr.Registry.TrafficTranslator(p)
			must(t, err)
			for st, a := range strategies {
				cn := newCanary(ns, "schema")
				cn.Spec.Strategy, cn.Spec.Analysis = st, a
				cn.Spec.Service.Timeout = &metav1.Duration{Duration: 3 * time.Second}
				for _, r := range delivery.Routes(delivery.PlanFor(&cn.Spec)) {
					objs, err := tr.TranslateTrafficSplit(trafficSplit(cn, namesOf(cn), p, r))
					if err != nil {
						continue // refused up front (Linkerd mirroring), tested above
					}
					for _, o := range objs {
						if err := c.Create(ctx, o, client.DryRunAll); err != nil {
							t.Errorf("%s %s %+v: %T rejected: %v", p, st, r, o, err)
						}
						n++
					}
				}
			}
		}
		t.Logf("%d route objects accepted by the API server (dry run)", n)
	})

	t.Run("deletion keeps the workload serving", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key, _ := initialized(t, c, ns, 2)
		cur := &meshv1alpha1.Canary{}
		must(t, c.Get(ctx, key, cur))
		must(t, c.Delete(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "Canary gone", func() error {
			if err := c.Get(ctx, key, &meshv1alpha1.Canary{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("Canary still there: %v", err)
			}
			return nil
		})
		primary := &appsv1.Deployment{}
		must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-primary"}, primary))
		svc := &corev1.Service{}
		must(t, c.Get(ctx, key, svc))
		for _, o := range []client.Object{primary, svc} {
			if len(o.GetOwnerReferences()) != 0 || ownership.IsManaged(o) {
				t.Fatalf("%s still owned: %v %v", o.GetName(), o.GetOwnerReferences(), o.GetLabels())
			}
		}
		if svc.Spec.Selector["app"] != "web-primary" {
			t.Fatalf("Service selects %v, not the primary", svc.Spec.Selector)
		}
		for _, o := range []client.Object{&istionetworking.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "web"}},
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-primary"}}, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-canary"}}} {
			if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: o.GetName()}, o); !apierrors.IsNotFound(err) {
				t.Fatalf("%T %s not removed: %v", o, o.GetName(), err)
			}
		}
	})

	t.Run("revertOnDeletion moves the Service back to the target", func(t *testing.T) {
		ns := linkerdNamespace(t, c)
		k, _ := initialized(t, c, ns, 1)
		cur := &meshv1alpha1.Canary{}
		must(t, c.Get(ctx, k, cur))
		cur.Spec.RevertOnDeletion = true
		must(t, c.Update(ctx, cur))
		waitCanary(t, c, k, "observed", func(cn *meshv1alpha1.Canary) bool { return cn.Status.ObservedGeneration == cn.Generation })
		must(t, c.Delete(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "Canary gone", func() error {
			if err := c.Get(ctx, k, &meshv1alpha1.Canary{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("Canary still there: %v", err)
			}
			return nil
		})
		tgt := &appsv1.Deployment{}
		must(t, c.Get(ctx, k, tgt))
		svc := &corev1.Service{}
		must(t, c.Get(ctx, k, svc))
		if *tgt.Spec.Replicas != 1 || svc.Spec.Selector["app"] != "web" || ownership.IsManaged(svc) {
			t.Fatalf("target replicas %d, Service selector %v labels %v", *tgt.Spec.Replicas, svc.Spec.Selector, svc.Labels)
		}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-primary"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
			t.Fatalf("primary not deleted: %v", err)
		}
		if err := c.Get(ctx, k, &gatewayv1.HTTPRoute{}); !apierrors.IsNotFound(err) {
			t.Fatalf("HTTPRoute not deleted: %v", err)
		}
	})
}
