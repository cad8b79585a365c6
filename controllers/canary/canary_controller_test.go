package canary

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/delivery"
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/metrics"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/cluster"
)

func ptr[T any](v T) *T { return &v }

func init() { ctrl.SetLogger(logr.Discard()) }

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func startManager(t *testing.T, cfg *rest.Config) *manager.Manager {
	t.Helper()
	mgr, err := manager.New(cfg, manager.Options{MetricsAddr: "0", ProbeAddr: "0", OperatorNamespace: "meshplane-system", SyncPeriod: time.Hour})
	must(t, err)
	must(t, Setup(mgr))
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(c) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	return mgr
}

func eventually(t *testing.T, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, msg := f()
		if ok {
			return
		}
		last = msg
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %s", what, last)
}

// rolloutDeployments stands in for kube-controller-manager, which envtest
// does not run: every Deployment of the namespaces reports its spec as
// rolled out and Available.
func rolloutDeployments(t *testing.T, c client.Client, namespaces ...string) {
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for _, ns := range namespaces {
				var list appsv1.DeploymentList
				if c.List(ctx, &list, client.InNamespace(ns)) != nil {
					continue
				}
				for i := range list.Items {
					d := &list.Items[i]
					want := int32(1)
					if d.Spec.Replicas != nil {
						want = *d.Spec.Replicas
					}
					st := d.Status
					if st.ObservedGeneration == d.Generation && st.Replicas == want && st.AvailableReplicas == want {
						continue
					}
					d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: want, UpdatedReplicas: want,
						ReadyReplicas: want, AvailableReplicas: want}
					_ = c.Status().Update(ctx, d)
				}
			}
		}
	}()
}

func deployment(ns, name, image string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name, "team": "shop"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

func newCanary(ns, name string) *meshv1alpha1.Canary {
	return &meshv1alpha1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: meshv1alpha1.CanarySpec{
			TargetRef: meshv1alpha1.CanaryTargetReference{Name: name},
			Service:   meshv1alpha1.CanaryService{Port: 8080},
			Strategy:  meshv1alpha1.StrategyCanary,
			Analysis: meshv1alpha1.CanaryAnalysis{Interval: &metav1.Duration{Duration: time.Second}, Threshold: 2,
				StepWeight: ptr[int32](50), MaxWeight: ptr[int32](100)},
		},
	}
}

func condition(cn *meshv1alpha1.Canary, typ string) string {
	c := status.Get(&cn.Status.CommonStatus, typ)
	if c == nil {
		return "<none>"
	}
	return string(c.Status) + "/" + c.Reason + ": " + c.Message
}

func waitCanary(t *testing.T, c client.Client, key types.NamespacedName, what string, ok func(*meshv1alpha1.Canary) bool) *meshv1alpha1.Canary {
	t.Helper()
	cn := &meshv1alpha1.Canary{}
	eventually(t, what+" on "+key.String(), func() (bool, string) {
		if err := c.Get(ctx, key, cn); err != nil {
			return false, err.Error()
		}
		return ok(cn), fmt.Sprintf("phase %s weight %d: %s", cn.Status.Phase, cn.Status.CanaryWeight, condition(cn, meshv1alpha1.ReadyCondition))
	})
	return cn
}

func phase(p meshv1alpha1.CanaryPhase) func(*meshv1alpha1.Canary) bool {
	return func(cn *meshv1alpha1.Canary) bool {
		return cn.Status.Phase == p && cn.Status.ObservedGeneration == cn.Generation
	}
}

func stalled(reason string) func(*meshv1alpha1.Canary) bool {
	return func(cn *meshv1alpha1.Canary) bool {
		c := status.Get(&cn.Status.CommonStatus, meshv1alpha1.StalledCondition)
		return c != nil && c.Status == metav1.ConditionTrue && c.Reason == reason && cn.Status.ObservedGeneration == cn.Generation
	}
}

func TestCanaryController(t *testing.T) {
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{})
	mgr := startManager(t, cfg)
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	must(t, err)
	for _, ns := range []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"istio-injection": "enabled"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "books", Annotations: map[string]string{"linkerd.io/inject": "enabled"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "cars"}},
	} {
		must(t, c.Create(ctx, ns))
	}
	rolloutDeployments(t, c, "shop", "books", "cars")

	must(t, c.Create(ctx, deployment("shop", "web", "web:1", 2)))
	must(t, c.Create(ctx, newCanary("shop", "web")))
	key := types.NamespacedName{Namespace: "shop", Name: "web"}
	cn := waitCanary(t, c, key, "Initialized", phase(meshv1alpha1.CanaryPhaseInitialized))

	t.Run("initialized: primary, Services and an Istio route to the primary", func(t *testing.T) {
		if !status.IsTrue(&cn.Status.CommonStatus, meshv1alpha1.ReadyCondition) || !status.IsTrue(&cn.Status.CommonStatus, meshv1alpha1.PromotedCondition) ||
			!status.IsTrue(&cn.Status.CommonStatus, meshv1alpha1.ResolvedRefsCondition) || cn.Status.Provider != meshv1alpha1.ProviderIstio {
			t.Fatalf("conditions: Ready %s; Promoted %s; provider %s", condition(cn, meshv1alpha1.ReadyCondition), condition(cn, meshv1alpha1.PromotedCondition), cn.Status.Provider)
		}
		if len(cn.Status.Inventory) != 5 || cn.Status.CanaryWeight != 0 || cn.Status.LastPromotedSpec == "" {
			t.Fatalf("status: %+v", cn.Status)
		}
		primary := &appsv1.Deployment{}
		must(t, c.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "web-primary"}, primary))
		if primary.Spec.Selector.MatchLabels["app"] != "web-primary" || primary.Spec.Template.Labels["app"] != "web-primary" ||
			primary.Spec.Template.Labels["team"] != "shop" || *primary.Spec.Replicas != 2 || !ownership.IsOwnedBy(primary, Kind, "shop", "web") {
			t.Fatalf("primary: %+v %+v", primary.Spec.Selector, primary.Spec.Template.Labels)
		}
		target := &appsv1.Deployment{}
		must(t, c.Get(ctx, key, target))
		if *target.Spec.Replicas != 0 {
			t.Fatalf("target replicas %d, want 0 while idle", *target.Spec.Replicas)
		}
		for name, sel := range map[string]string{"web": "web-primary", "web-primary": "web-primary", "web-canary": "web"} {
			svc := &corev1.Service{}
			must(t, c.Get(ctx, types.NamespacedName{Namespace: "shop", Name: name}, svc))
			if svc.Spec.Selector["app"] != sel || svc.Spec.Ports[0].Port != 8080 {
				t.Fatalf("Service %s: selector %v ports %v", name, svc.Spec.Selector, svc.Spec.Ports)
			}
		}
		vs := &istionetworking.VirtualService{}
		must(t, c.Get(ctx, key, vs))
		if w := routeWeights(t, c, "shop", "web", "VirtualService"); w != 0 {
			t.Fatalf("canary weight in the VirtualService %d", w)
		}
		var evs eventsv1.EventList
		must(t, c.List(ctx, &evs, client.InNamespace("shop")))
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
		var writes atomic.Int32
		count := func(kind string) { writes.Add(1); t.Logf("write: %s", kind) }
		wc, err := client.NewWithWatch(cfg, client.Options{Scheme: mgr.GetScheme(), Cache: &client.CacheOptions{Reader: mgr.GetCache()}})
		must(t, err)
		ic := interceptor.NewClient(wc, interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
				count("create")
				return c.Create(ctx, o, opts...)
			},
			Update: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.UpdateOption) error {
				count("update")
				return c.Update(ctx, o, opts...)
			},
			Patch: func(ctx context.Context, c client.WithWatch, o client.Object, p client.Patch, opts ...client.PatchOption) error {
				count("patch " + o.GetName())
				return c.Patch(ctx, o, p, opts...)
			},
			Apply: func(ctx context.Context, c client.WithWatch, o runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
				count("apply")
				return c.Apply(ctx, o, opts...)
			},
			Delete: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.DeleteOption) error {
				count("delete")
				return c.Delete(ctx, o, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				count("status patch")
				return c.SubResource(sub).Patch(ctx, o, p, opts...)
			},
		})
		r := &Reconciler{Client: ic, APIReader: mgr.GetAPIReader(), Registry: mgr.Registry, Resolver: &discovery.Resolver{Reader: ic, Registry: mgr.Registry},
			Applier: &apply.Applier{Client: ic, Scheme: mgr.GetScheme()}, Events: mgr.GetEventRecorder("test")}
		eventually(t, "cache current", func() (bool, string) {
			cur := &meshv1alpha1.Canary{}
			_ = mgr.GetClient().Get(ctx, key, cur)
			tgt := &appsv1.Deployment{}
			_ = mgr.GetClient().Get(ctx, key, tgt)
			return cur.Status.Phase == meshv1alpha1.CanaryPhaseInitialized && cur.ResourceVersion == cn.ResourceVersion && *tgt.Spec.Replicas == 0, ""
		})
		for range 3 {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
				t.Fatal(err)
			}
		}
		if n := writes.Load(); n != 0 {
			t.Fatalf("no-op reconciles sent %d writes", n)
		}
	})

	t.Run("drift of the route is repaired", func(t *testing.T) {
		vs := &istionetworking.VirtualService{}
		must(t, c.Get(ctx, key, vs))
		vs.Spec.Http[len(vs.Spec.Http)-1].Route[0].Weight = 50
		vs.Spec.Http[len(vs.Spec.Http)-1].Route[1].Weight = 50
		must(t, c.Update(ctx, vs))
		eventually(t, "weights restored", func() (bool, string) {
			w := routeWeights(t, c, "shop", "web", "VirtualService")
			return w == 0, fmt.Sprintf("canary weight %d", w)
		})
	})

	t.Run("a new revision is delivered and promoted", func(t *testing.T) {
		setImage(t, c, key, "web:2")
		target := &appsv1.Deployment{}
		seen := map[int32]bool{}
		eventually(t, "Succeeded", func() (bool, string) {
			cur := &meshv1alpha1.Canary{}
			must(t, c.Get(ctx, key, cur))
			seen[cur.Status.CanaryWeight] = true
			return cur.Status.Phase == meshv1alpha1.CanaryPhaseSucceeded, string(cur.Status.Phase)
		})
		primary := &appsv1.Deployment{}
		must(t, c.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "web-primary"}, primary))
		must(t, c.Get(ctx, key, target))
		if primary.Spec.Template.Spec.Containers[0].Image != "web:2" || *target.Spec.Replicas != 0 {
			t.Fatalf("after promotion: primary image %s, target replicas %d", primary.Spec.Template.Spec.Containers[0].Image, *target.Spec.Replicas)
		}
		if w := routeWeights(t, c, "shop", "web", "VirtualService"); w != 0 {
			t.Fatalf("canary weight %d after promotion", w)
		}
		t.Logf("weights seen: %v", seen)
		for _, ph := range []meshv1alpha1.CanaryPhase{meshv1alpha1.CanaryPhaseProgressing, meshv1alpha1.CanaryPhaseSucceeded} {
			if n := testutil.ToFloat64(metrics.CanaryPhaseTransitions.WithLabelValues("shop", "web", string(ph))); n < 1 {
				t.Errorf("meshplane_canary_phase_transitions_total{phase=%s} = %v, want >= 1", ph, n)
			}
		}
	})

	t.Run("missing target is Stalled", func(t *testing.T) {
		must(t, c.Create(ctx, newCanary("shop", "ghost")))
		got := waitCanary(t, c, types.NamespacedName{Namespace: "shop", Name: "ghost"}, "Stalled", stalled(meshv1alpha1.ReferenceNotFoundReason))
		if !strings.Contains(condition(got, meshv1alpha1.ReadyCondition), "Deployment shop/ghost") ||
			!strings.HasPrefix(condition(got, meshv1alpha1.ResolvedRefsCondition), "False/ReferenceNotFound") {
			t.Fatalf("Ready: %s", condition(got, meshv1alpha1.ReadyCondition))
		}
		// Created later, it is picked up.
		must(t, c.Create(ctx, deployment("shop", "ghost", "ghost:1", 1)))
		waitCanary(t, c, types.NamespacedName{Namespace: "shop", Name: "ghost"}, "Initialized", phase(meshv1alpha1.CanaryPhaseInitialized))
	})

	t.Run("a foreign Service is never taken over", func(t *testing.T) {
		must(t, c.Create(ctx, deployment("shop", "api", "api:1", 1)))
		foreign := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "api"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "api"}, Ports: []corev1.ServicePort{{Port: 80}}}}
		must(t, c.Create(ctx, foreign))
		must(t, c.Create(ctx, newCanary("shop", "api")))
		got := waitCanary(t, c, types.NamespacedName{Namespace: "shop", Name: "api"}, "Conflict", stalled(meshv1alpha1.ConflictReason))
		if !strings.Contains(condition(got, meshv1alpha1.ReadyCondition), "Service shop/api") {
			t.Fatalf("Ready: %s", condition(got, meshv1alpha1.ReadyCondition))
		}
		after := &corev1.Service{}
		must(t, c.Get(ctx, client.ObjectKeyFromObject(foreign), after))
		if after.ResourceVersion != foreign.ResourceVersion {
			t.Fatal("foreign Service modified")
		}
		if err := c.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "api-primary"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
			t.Fatalf("primary created despite the conflict: %v", err)
		}
		tgt := &appsv1.Deployment{}
		must(t, c.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "api"}, tgt))
		if *tgt.Spec.Replicas != 1 {
			t.Fatalf("target scaled to %d despite the conflict", *tgt.Spec.Replicas)
		}
	})

	t.Run("Linkerd and Cilium get a GAMMA HTTPRoute", func(t *testing.T) {
		must(t, c.Create(ctx, deployment("books", "web", "web:1", 1)))
		must(t, c.Create(ctx, newCanary("books", "web")))
		must(t, c.Create(ctx, deployment("cars", "web", "web:1", 1)))
		cc := newCanary("cars", "web")
		cc.Spec.Provider = meshv1alpha1.ProviderCilium
		cc.Spec.Strategy = meshv1alpha1.StrategyMirroring
		cc.Spec.Analysis.Iterations = ptr[int32](1)
		must(t, c.Create(ctx, cc))
		for _, ns := range []string{"books", "cars"} {
			got := waitCanary(t, c, types.NamespacedName{Namespace: ns, Name: "web"}, "Initialized", phase(meshv1alpha1.CanaryPhaseInitialized))
			route := &gatewayv1.HTTPRoute{}
			must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, route))
			if string(route.Spec.ParentRefs[0].Name) != "web" {
				t.Fatalf("%s: parentRefs %+v", ns, route.Spec.ParentRefs)
			}
			t.Logf("%s: provider %s", ns, got.Status.Provider)
		}
		// The Cilium canary mirrors, then shifts: walk it to the end.
		setImage(t, c, types.NamespacedName{Namespace: "cars", Name: "web"}, "web:2")
		mirrored := false
		eventually(t, "Cilium mirroring canary Succeeded", func() (bool, string) {
			route := &gatewayv1.HTTPRoute{}
			if c.Get(ctx, types.NamespacedName{Namespace: "cars", Name: "web"}, route) == nil {
				for _, f := range route.Spec.Rules[len(route.Spec.Rules)-1].Filters {
					mirrored = mirrored || f.RequestMirror != nil
				}
			}
			cur := &meshv1alpha1.Canary{}
			must(t, c.Get(ctx, types.NamespacedName{Namespace: "cars", Name: "web"}, cur))
			return cur.Status.Phase == meshv1alpha1.CanaryPhaseSucceeded, string(cur.Status.Phase)
		})
		if !mirrored {
			t.Error("the mirroring step was never seen on the HTTPRoute")
		}
	})

	t.Run("a strategy the mesh cannot express applies nothing", func(t *testing.T) {
		must(t, c.Create(ctx, deployment("books", "shadow", "shadow:1", 1)))
		cn := newCanary("books", "shadow")
		cn.Spec.Strategy = meshv1alpha1.StrategyMirroring
		cn.Spec.Analysis.Iterations = ptr[int32](1)
		must(t, c.Create(ctx, cn))
		got := waitCanary(t, c, client.ObjectKeyFromObject(cn), "UnsupportedFeature", stalled(meshv1alpha1.UnsupportedFeatureReason))
		if msg := condition(got, meshv1alpha1.ReadyCondition); !strings.Contains(msg, "Mirroring") || !strings.Contains(msg, "Linkerd") {
			t.Fatalf("Ready: %s", msg)
		}
		if err := c.Get(ctx, types.NamespacedName{Namespace: "books", Name: "shadow-primary"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
			t.Fatalf("primary created for an unsupported strategy: %v", err)
		}
	})

	t.Run("a BreakGlass pins traffic to the primary and pauses", func(t *testing.T) {
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "frozen", http.StatusForbidden) }))
		defer hook.Close()
		must(t, c.Create(ctx, deployment("shop", "pinned", "pinned:1", 1)))
		cn := newCanary("shop", "pinned")
		cn.Spec.Analysis.StepWeight, cn.Spec.Analysis.MaxWeight = ptr[int32](50), ptr[int32](50)
		cn.Spec.Analysis.Webhooks = []meshv1alpha1.CanaryWebhook{{Name: "hold", Type: "confirm-promotion", URL: hook.URL}}
		must(t, c.Create(ctx, cn))
		pk := client.ObjectKeyFromObject(cn)
		waitCanary(t, c, pk, "Initialized", phase(meshv1alpha1.CanaryPhaseInitialized))
		setImage(t, c, pk, "pinned:2")
		waitCanary(t, c, pk, "WaitingPromotion at 50%", func(cn *meshv1alpha1.Canary) bool {
			return cn.Status.Phase == meshv1alpha1.CanaryPhaseWaitingPromotion && cn.Status.CanaryWeight == 50
		})
		must(t, c.Create(ctx, &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "incident"},
			Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod down", Target: meshv1alpha1.BreakGlassTarget{Provider: meshv1alpha1.ProviderIstio}}}))
		setNamespaceAnnotation(t, c, "shop", "incident")
		got := waitCanary(t, c, pk, "pinned", func(cn *meshv1alpha1.Canary) bool {
			return status.IsTrue(&cn.Status.CommonStatus, meshv1alpha1.BreakGlassActiveCondition) && cn.Status.CanaryWeight == 0
		})
		if w := routeWeights(t, c, "shop", "pinned", "VirtualService"); w != 0 || got.Status.Phase != meshv1alpha1.CanaryPhaseWaitingPromotion {
			t.Fatalf("pinned: route weight %d, phase %s", w, got.Status.Phase)
		}
		if msg := condition(got, meshv1alpha1.BreakGlassActiveCondition); !strings.Contains(msg, "incident") {
			t.Fatalf("BreakGlassActive: %s", msg)
		}
		setNamespaceAnnotation(t, c, "shop", "")
		waitCanary(t, c, pk, "resumed", func(cn *meshv1alpha1.Canary) bool {
			return status.Get(&cn.Status.CommonStatus, meshv1alpha1.BreakGlassActiveCondition) == nil && cn.Status.CanaryWeight == 50
		})
		if w := routeWeights(t, c, "shop", "pinned", "VirtualService"); w != 50 {
			t.Fatalf("resumed: route weight %d", w)
		}
	})

	t.Run("a target deleted mid-delivery: everything to the primary, Failed", func(t *testing.T) {
		pk := types.NamespacedName{Namespace: "shop", Name: "pinned"}
		if w := routeWeights(t, c, "shop", "pinned", "VirtualService"); w != 50 {
			t.Fatalf("precondition: canary weight %d, want 50", w)
		}
		must(t, c.Delete(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "pinned"}}))
		got := waitCanary(t, c, pk, "Failed and Stalled", func(cn *meshv1alpha1.Canary) bool {
			return cn.Status.Phase == meshv1alpha1.CanaryPhaseFailed && stalled(meshv1alpha1.ReferenceNotFoundReason)(cn)
		})
		if w := routeWeights(t, c, "shop", "pinned", "VirtualService"); w != 0 || got.Status.CanaryWeight != 0 || !strings.Contains(got.Status.Message, "deleted") {
			t.Fatalf("route weight %d, status weight %d, message %q", w, got.Status.CanaryWeight, got.Status.Message)
		}
		if err := c.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "pinned-primary"}, &appsv1.Deployment{}); err != nil {
			t.Fatalf("primary: %v", err)
		}
	})

	t.Run("every route of every strategy on every mesh is accepted by the CRD schemas", func(t *testing.T) {
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
				cn := newCanary("cars", "schema")
				cn.Spec.Strategy, cn.Spec.Analysis = st, a
				cn.Spec.Service.Timeout = &metav1.Duration{Duration: 3 * time.Second}
				for _, r := range routesOf(delivery.PlanFor(&cn.Spec)) {
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
		cur := &meshv1alpha1.Canary{}
		must(t, c.Get(ctx, key, cur))
		must(t, c.Delete(ctx, cur))
		eventually(t, "Canary gone", func() (bool, string) {
			return apierrors.IsNotFound(c.Get(ctx, key, &meshv1alpha1.Canary{})), ""
		})
		primary := &appsv1.Deployment{}
		must(t, c.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "web-primary"}, primary))
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
			if err := c.Get(ctx, types.NamespacedName{Namespace: "shop", Name: o.GetName()}, o); !apierrors.IsNotFound(err) {
				t.Fatalf("%T %s not removed: %v", o, o.GetName(), err)
			}
		}
	})

	t.Run("revertOnDeletion moves the Service back to the target", func(t *testing.T) {
		k := types.NamespacedName{Namespace: "books", Name: "web"}
		cur := &meshv1alpha1.Canary{}
		must(t, c.Get(ctx, k, cur))
		cur.Spec.RevertOnDeletion = true
		must(t, c.Update(ctx, cur))
		waitCanary(t, c, k, "observed", func(cn *meshv1alpha1.Canary) bool { return cn.Status.ObservedGeneration == cn.Generation })
		must(t, c.Delete(ctx, cur))
		eventually(t, "Canary gone", func() (bool, string) {
			return apierrors.IsNotFound(c.Get(ctx, k, &meshv1alpha1.Canary{})), ""
		})
		tgt := &appsv1.Deployment{}
		must(t, c.Get(ctx, k, tgt))
		svc := &corev1.Service{}
		must(t, c.Get(ctx, k, svc))
		if *tgt.Spec.Replicas != 1 || svc.Spec.Selector["app"] != "web" || ownership.IsManaged(svc) {
			t.Fatalf("target replicas %d, Service selector %v labels %v", *tgt.Spec.Replicas, svc.Spec.Selector, svc.Labels)
		}
		if err := c.Get(ctx, types.NamespacedName{Namespace: "books", Name: "web-primary"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
			t.Fatalf("primary not deleted: %v", err)
		}
		if err := c.Get(ctx, k, &gatewayv1.HTTPRoute{}); !apierrors.IsNotFound(err) {
			t.Fatalf("HTTPRoute not deleted: %v", err)
		}
	})
}

// setImage changes a Deployment's image, retrying on conflicts with the
// stand-in Deployment controller.
func setImage(t *testing.T, c client.Client, key types.NamespacedName, image string) {
	t.Helper()
	eventually(t, "image "+image, func() (bool, string) {
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, key, d); err != nil {
			return false, err.Error()
		}
		d.Spec.Template.Spec.Containers[0].Image = image
		if err := c.Update(ctx, d); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

func setNamespaceAnnotation(t *testing.T, c client.Client, ns, breakGlass string) {
	t.Helper()
	n := &corev1.Namespace{}
	must(t, c.Get(ctx, client.ObjectKey{Name: ns}, n))
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	if breakGlass == "" {
		delete(n.Annotations, incident.NamespaceAnnotation)
	} else {
		n.Annotations[incident.NamespaceAnnotation] = breakGlass
	}
	must(t, c.Update(ctx, n))
}

// routeWeights returns the canary's highest weight in a route object.
func routeWeights(t *testing.T, c client.Client, ns, name, kind string) int64 {
	t.Helper()
	var obj client.Object = &istionetworking.VirtualService{}
	if kind == "HTTPRoute" {
		obj = &gatewayv1.HTTPRoute{}
	}
	must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj))
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	must(t, err)
	uu := unstructuredOf(u, kind)
	w, _, err := CanaryShare(uu, name+"-canary")
	must(t, err)
	return w
}

func unstructuredOf(m map[string]any, kind string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: m}
	u.SetKind(kind)
	return u
}
