package resiliencepolicy

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/bgsim"
	"github.com/meshplane/meshplane/test/testenv"
)

// ciliumLabel marks the namespaces of the Cilium tests; the simulated
// BreakGlass removes and restores it.
const ciliumLabel = "meshplane.io/test-cilium"

// ciliumInstall creates a Cilium MeshInstall (Envoy on unless envoy says
// otherwise) for the test and returns a setter of its Envoy flag.
func ciliumInstall(t *testing.T, c client.Client) func(envoy bool) {
	t.Helper()
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium-resilience"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5", Cilium: &meshv1alpha1.CiliumInstallSpec{}}}
	must(t, c.Create(ctx, mi))
	t.Cleanup(func() { _ = c.Delete(ctx, mi) })
	return func(envoy bool) {
		t.Helper()
		must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur := &meshv1alpha1.MeshInstall{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(mi), cur); err != nil {
				return err
			}
			cur.Spec.Cilium.Envoy = &envoy
			return c.Update(ctx, cur)
		}))
	}
}

// ciliumPolicy is a Cilium ResiliencePolicy for Service web with Envoy
// fields (outlier detection, a fault, a local rate limit) and a timeout.
func ciliumPolicy(ns, name string) *meshv1alpha1.ResiliencePolicy {
	return &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.ResiliencePolicySpec{
			MeshSelection:    meshv1alpha1.MeshSelection{Provider: meshv1alpha1.ProviderCilium},
			TargetRef:        meshv1alpha1.ServiceReference{Name: "web"},
			OutlierDetection: &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: ptr[int32](5)},
			Timeouts:         &meshv1alpha1.Timeouts{Request: &metav1.Duration{Duration: 15e9}},
			FaultInjection:   &meshv1alpha1.FaultInjection{Abort: &meshv1alpha1.FaultAbort{HTTPStatus: 503, Percent: 5}},
			RateLimit:        &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 100, Interval: metav1.Duration{Duration: 1e9}}},
		}}
}

// envoyConfig reads the policy's CiliumEnvoyConfig; "" when absent, else
// its spec as JSON.
func envoyConfig(t *testing.T, c client.Client, key types.NamespacedName) string {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("cilium.io/v2")
	u.SetKind("CiliumEnvoyConfig")
	if err := c.Get(ctx, key, u); apierrors.IsNotFound(err) {
		return ""
	} else if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(u.Object["spec"])
	return string(b)
}

func annotations(t *testing.T, c client.Client, ns, name string) map[string]string {
	t.Helper()
	svc := &corev1.Service{}
	must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, svc))
	return svc.Annotations
}

// lbAnnotations renders the two lb-l7 annotations, e.g. "enabled/least_request".
func lbAnnotations(a map[string]string) string {
	on, ok := a["service.cilium.io/lb-l7"]
	if !ok {
		on = "<none>"
	}
	alg, ok := a["service.cilium.io/lb-l7-algorithm"]
	if !ok {
		alg = "<none>"
	}
	return on + "/" + alg
}

func TestCiliumResiliencePolicy(t *testing.T) {
	mgr, c := start(t)
	setEnvoy := ciliumInstall(t, c)

	t.Run("Envoy fields: one owned CiliumEnvoyConfig, Ready, zero writes on no-op, drift repaired", func(t *testing.T) {
		ns := testenv.Namespace(t, c, map[string]string{ciliumLabel: "on"})
		services(t, c, ns, "web")
		must(t, c.Create(ctx, ciliumPolicy(ns, "web")))
		key := types.NamespacedName{Namespace: ns, Name: "web"}
		rp := waitReady(t, c, key)
		if rp.Status.Provider != meshv1alpha1.ProviderCilium || kinds(rp.Status.Inventory) != "CiliumEnvoyConfig" || len(rp.Status.SharedFields) != 0 ||
			controllerutil.ContainsFinalizer(rp, outputs.SharedFieldsFinalizer) {
			t.Fatalf("status: %+v; finalizers %v", rp.Status, rp.Finalizers)
		}
		if got := support(rp, "rateLimit.local", meshv1alpha1.ProviderCilium); got != "Enforced: CiliumEnvoyConfig listener HTTP filter envoy.filters.http.local_ratelimit" {
			t.Fatalf("report: %s", got)
		}
		spec := envoyConfig(t, c, key)
		for _, want := range []string{`"services":[{"name":"web","namespace":"` + ns + `"}]`, "envoy.filters.http.fault", "envoy.filters.http.local_ratelimit",
			`"consecutive_5xx":5`, `"timeout":"15s"`, `"cluster":"` + ns + `/web"`} {
			if !strings.Contains(spec, want) {
				t.Fatalf("CiliumEnvoyConfig lacks %s: %s", want, spec)
			}
		}
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("cilium.io/v2")
		u.SetKind("CiliumEnvoyConfig")
		must(t, c.Get(ctx, key, u))
		if !ownership.IsOwnedBy(u, Kind, ns, "web") || u.GetOwnerReferences()[0].UID != rp.UID {
			t.Fatalf("CiliumEnvoyConfig not owned: %v %v", u.GetLabels(), u.GetOwnerReferences())
		}
		// A route for the same Service would be a second Envoy redirect.
		if err := c.Get(ctx, key, &gatewayv1.HTTPRoute{}); !apierrors.IsNotFound(err) {
			t.Fatalf("HTTPRoute written next to the CiliumEnvoyConfig: %v", err)
		}

		cc, writes := testenv.CachedClient(t, mgr.Manager)
		r := &Reconciler{Deps: outputs.NewDeps(cc, mgr.Manager, "test")}
		waitCached(t, mgr, key)
		for range 3 {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
				t.Fatal(err)
			}
		}
		if n := writes.Count(); n != 0 {
			t.Fatalf("no-op reconciles sent %d writes: %v", n, writes.Log())
		}

		must(t, unstructured.SetNestedSlice(u.Object, []any{map[string]any{"name": "other", "namespace": ns}}, "spec", "services"))
		must(t, c.Update(ctx, u))
		testenv.Eventually(t, testenv.DefaultTimeout, "CiliumEnvoyConfig repaired", func() error {
			if got := envoyConfig(t, c, key); got != spec {
				return testenv.Errorf("spec %s", got)
			}
			return nil
		})
	})

	t.Run("algorithm: lb-l7 annotations on the user's Service, drift repaired, previous values restored exactly", func(t *testing.T) {
		ns := testenv.Namespace(t, c, map[string]string{ciliumLabel: "on"})
		svc := service(ns, "web", 8080)
		svc.Annotations = map[string]string{"service.cilium.io/lb-l7-algorithm": "random", "team": "payments"}
		must(t, c.Create(ctx, svc))
		rp := &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: "lb", Namespace: ns},
			Spec: meshv1alpha1.ResiliencePolicySpec{MeshSelection: meshv1alpha1.MeshSelection{Provider: meshv1alpha1.ProviderCilium},
				TargetRef:    meshv1alpha1.ServiceReference{Name: "web"},
				LoadBalancer: &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerLeastRequest}}}
		must(t, c.Create(ctx, rp))
		key := client.ObjectKeyFromObject(rp)
		got := waitReady(t, c, key)
		if kinds(got.Status.Inventory) != "Service" || len(got.Status.SharedFields) != 2 || !controllerutil.ContainsFinalizer(got, outputs.SharedFieldsFinalizer) {
			t.Fatalf("status: %+v; finalizers %v", got.Status, got.Finalizers)
		}
		for _, f := range got.Status.SharedFields {
			prev := "<absent>"
			if f.Previous != nil {
				prev = *f.Previous
			}
			if (f.Field == "metadata.annotations[service.cilium.io/lb-l7-algorithm]") != (prev == "random") {
				t.Fatalf("shared field %s recorded previous %s", f.Field, prev)
			}
		}
		if a := annotations(t, c, ns, "web"); lbAnnotations(a) != "enabled/least_request" || a["team"] != "payments" {
			t.Fatalf("Service annotations %v", a)
		}
		// The Service still belongs to its user.
		cur := &corev1.Service{}
		must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, cur))
		if len(cur.OwnerReferences) != 0 || cur.Labels[ownership.OwnerLabel] != "" {
			t.Fatalf("the user's Service was taken over: %v %v", cur.OwnerReferences, cur.Labels)
		}

		cc, writes := testenv.CachedClient(t, mgr.Manager)
		r := &Reconciler{Deps: outputs.NewDeps(cc, mgr.Manager, "test")}
		waitCached(t, mgr, key)
		for range 3 {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
				t.Fatal(err)
			}
		}
		if n := writes.Count(); n != 0 {
			t.Fatalf("no-op reconciles sent %d writes: %v", n, writes.Log())
		}

		cur.Annotations["service.cilium.io/lb-l7-algorithm"] = "round_robin"
		must(t, c.Update(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "annotation repaired", func() error {
			if a := lbAnnotations(annotations(t, c, ns, "web")); a != "enabled/least_request" {
				return testenv.Errorf("annotations %s", a)
			}
			return nil
		})

		must(t, c.Delete(ctx, rp))
		testenv.Eventually(t, testenv.DefaultTimeout, "policy gone, annotations restored", func() error {
			if err := c.Get(ctx, key, &meshv1alpha1.ResiliencePolicy{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("policy still there: %v", err)
			}
			a := annotations(t, c, ns, "web")
			if lbAnnotations(a) != "<none>/random" || a["team"] != "payments" {
				return testenv.Errorf("annotations %v", a)
			}
			return nil
		})
	})

	t.Run("dropping the algorithm releases the annotations; the timeout becomes a GAMMA HTTPRoute", func(t *testing.T) {
		ns := testenv.Namespace(t, c, map[string]string{ciliumLabel: "on"})
		services(t, c, ns, "web")
		rp := &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: meshv1alpha1.ResiliencePolicySpec{MeshSelection: meshv1alpha1.MeshSelection{Provider: meshv1alpha1.ProviderCilium},
				TargetRef:    meshv1alpha1.ServiceReference{Name: "web"},
				LoadBalancer: &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerRandom}}}
		must(t, c.Create(ctx, rp))
		key := client.ObjectKeyFromObject(rp)
		waitReady(t, c, key)
		must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur := &meshv1alpha1.ResiliencePolicy{}
			if err := c.Get(ctx, key, cur); err != nil {
				return err
			}
			cur.Spec.LoadBalancer, cur.Spec.Timeouts = nil, &meshv1alpha1.Timeouts{Request: &metav1.Duration{Duration: 3e9}}
			return c.Update(ctx, cur)
		}))
		testenv.Eventually(t, testenv.DefaultTimeout, "route in place, annotations released", func() error {
			got := waitReady(t, c, key)
			hr := &gatewayv1.HTTPRoute{}
			if err := c.Get(ctx, key, hr); err != nil {
				return err
			}
			if a := lbAnnotations(annotations(t, c, ns, "web")); a != "<none>/<none>" || kinds(got.Status.Inventory) != "HTTPRoute" ||
				len(got.Status.SharedFields) != 0 || controllerutil.ContainsFinalizer(got, outputs.SharedFieldsFinalizer) ||
				*hr.Spec.Rules[0].Timeouts.Request != "3s" || *hr.Spec.ParentRefs[0].Port != 8080 {
				return testenv.Errorf("annotations %s; inventory %s; shared %v; route %+v", a, kinds(got.Status.Inventory), got.Status.SharedFields, hr.Spec)
			}
			return nil
		})
	})

	t.Run("BreakGlass lifts the fault, rate limit and outlier ejection and restores them exactly", func(t *testing.T) {
		ns := testenv.Namespace(t, c, map[string]string{ciliumLabel: "on"})
		services(t, c, ns, "web")
		rp := ciliumPolicy(ns, "web")
		rp.Spec.ConnectionPool = &meshv1alpha1.ConnectionPool{MaxConnections: ptr[int32](10)}
		must(t, c.Create(ctx, rp))
		key := client.ObjectKeyFromObject(rp)
		waitReady(t, c, key)
		before := envoyConfig(t, c, key)
		bg := bgsim.Engage(t, c, "outage-"+ns, meshv1alpha1.ProviderCilium, ns, ciliumLabel)
		testenv.Eventually(t, testenv.DefaultTimeout, "relaxed", func() error {
			got := &meshv1alpha1.ResiliencePolicy{}
			_ = c.Get(ctx, key, got)
			active := condition(&got.Status.CommonStatus, meshv1alpha1.BreakGlassActiveCondition)
			spec := envoyConfig(t, c, key)
			if !strings.HasPrefix(active, "True/BreakGlassActive") || strings.Contains(spec, "fault") || strings.Contains(spec, "ratelimit") ||
				strings.Contains(spec, "outlier_detection") || !strings.Contains(spec, `"max_connections":10`) {
				return testenv.Errorf("BreakGlassActive %s; CiliumEnvoyConfig %s", active, spec)
			}
			return nil
		})
		bg.Release()
		testenv.Eventually(t, testenv.DefaultTimeout, "restored", func() error {
			got := &meshv1alpha1.ResiliencePolicy{}
			_ = c.Get(ctx, key, got)
			if !status.IsTrue(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition) || envoyConfig(t, c, key) != before {
				return testenv.Errorf("Ready %s", condition(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition))
			}
			return nil
		})
	})

	t.Run("refused without Envoy: every field named, nothing written; Ready once Envoy is on", func(t *testing.T) {
		ns := testenv.Namespace(t, c, map[string]string{ciliumLabel: "on"})
		services(t, c, ns, "web")
		setEnvoy(false)
		t.Cleanup(func() { setEnvoy(true) })
		rp := ciliumPolicy(ns, "web")
		must(t, c.Create(ctx, rp))
		key := client.ObjectKeyFromObject(rp)
		got := waitReason(t, c, key, meshv1alpha1.UnsupportedFeatureReason)
		msg := condition(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition)
		for _, f := range []string{"outlierDetection.consecutive5xxErrors", "timeouts.request", "faultInjection.abort", "rateLimit.local"} {
			if !strings.Contains(msg, f+": Cilium's Envoy is not enabled in Cilium as installed by MeshInstall cilium-resilience") {
				t.Fatalf("Ready does not name %s: %s", f, msg)
			}
		}
		if !strings.Contains(msg, "set spec.cilium.envoy on the MeshInstall") || len(got.Status.Inventory) != 0 || envoyConfig(t, c, key) != "" {
			t.Fatalf("Ready %s; inventory %v", msg, got.Status.Inventory)
		}
		setEnvoy(true)
		waitReady(t, c, key)
	})
}

// waitCached waits until the manager's cache holds the policy at its
// current generation, Ready.
func waitCached(t *testing.T, mgr *testenv.Manager, key types.NamespacedName) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, "cache current", func() error {
		cur := &meshv1alpha1.ResiliencePolicy{}
		_ = mgr.GetClient().Get(ctx, key, cur)
		if cur.Status.ObservedGeneration != cur.Generation || !status.IsTrue(&cur.Status.CommonStatus, meshv1alpha1.ReadyCondition) {
			return testenv.Errorf("cache at generation %d of %d", cur.Status.ObservedGeneration, cur.Generation)
		}
		return nil
	})
}

// httpRoutes renders the HTTPRoutes of ns with Service web as parent:
// name and each rule's request timeout, e.g. "split[15s,15s]".
func httpRoutes(t *testing.T, c client.Client, ns string) []string {
	t.Helper()
	var list gatewayv1.HTTPRouteList
	must(t, c.List(ctx, &list, client.InNamespace(ns)))
	var out []string
	for _, hr := range list.Items {
		if len(hr.Spec.ParentRefs) == 0 || hr.Spec.ParentRefs[0].Name != "web" {
			continue
		}
		var ts []string
		for _, r := range hr.Spec.Rules {
			if r.Timeouts != nil && r.Timeouts.Request != nil {
				ts = append(ts, string(*r.Timeouts.Request))
			} else {
				ts = append(ts, "-")
			}
		}
		out = append(out, hr.Name+"["+strings.Join(ts, ",")+"]")
	}
	return out
}

// TestCiliumComposition: a policy's request timeout and a TrafficSplit on
// one Service give one HTTPRoute (the split's, with the timeout on every
// rule) whichever comes first; deleting the policy recomposes the split's
// route without it, deleting the split gives the policy its own route; an
// algorithm next to the split's route is refused naming it.
func TestCiliumComposition(t *testing.T) {
	_, c := start(t)
	ciliumInstall(t, c)
	ns := testenv.Namespace(t, c, map[string]string{ciliumLabel: "on"})
	services(t, c, ns, "web", "web-v1", "web-v2")
	rp := &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: "timeout", Namespace: ns},
		Spec: meshv1alpha1.ResiliencePolicySpec{MeshSelection: meshv1alpha1.MeshSelection{Provider: meshv1alpha1.ProviderCilium},
			TargetRef: meshv1alpha1.ServiceReference{Name: "web"}, Timeouts: &meshv1alpha1.Timeouts{Request: &metav1.Duration{Duration: 15e9}}}}
	must(t, c.Create(ctx, rp))
	key := client.ObjectKeyFromObject(rp)
	waitReady(t, c, key)
	// routes waits until the routes render as want, deleting the owned
	// route collect of a deleted owner as the garbage collector would
	// (envtest has none; a reconcile in flight may still rewrite it).
	routes := func(want string, collect ...string) {
		t.Helper()
		testenv.Eventually(t, testenv.DefaultTimeout, "routes "+want, func() error {
			for _, name := range collect {
				must(t, client.IgnoreNotFound(c.Delete(ctx, &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}})))
			}
			if got := strings.Join(httpRoutes(t, c, ns), " "); got != want {
				return testenv.Errorf("routes %s", got)
			}
			return nil
		})
	}
	routes("timeout[15s]")

	ts := split(ns, "split")
	ts.Spec.Provider = meshv1alpha1.ProviderCilium
	must(t, c.Create(ctx, ts))
	routes("split[15s]")
	testenv.Eventually(t, testenv.DefaultTimeout, "composedWith split", func() error {
		got := waitReady(t, c, key)
		if got.Status.ComposedWith != "split" || len(got.Status.Inventory) != 0 {
			return testenv.Errorf("composedWith %q; inventory %v", got.Status.ComposedWith, got.Status.Inventory)
		}
		return nil
	})

	lb := &meshv1alpha1.ResiliencePolicy{}
	must(t, c.Get(ctx, key, lb))
	lb.Spec.LoadBalancer = &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerLeastRequest}
	must(t, c.Update(ctx, lb))
	got := waitReason(t, c, key, meshv1alpha1.UnsupportedFeatureReason)
	if msg := condition(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition); !strings.Contains(msg, "loadBalancer.algorithm: LeastRequest") ||
		!strings.Contains(msg, "TrafficSplit split's HTTPRoute is a second one") {
		t.Fatalf("Ready: %s", msg)
	}
	if a := lbAnnotations(annotations(t, c, ns, "web")); a != "<none>/<none>" {
		t.Fatalf("annotations written for a refused policy: %s", a)
	}
	must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := &meshv1alpha1.ResiliencePolicy{}
		if err := c.Get(ctx, key, cur); err != nil {
			return err
		}
		cur.Spec.LoadBalancer = nil
		return c.Update(ctx, cur)
	}))
	waitReady(t, c, key)

	// The split goes.
	must(t, c.Delete(ctx, ts))
	routes("timeout[15s]", "split")
	must(t, c.Create(ctx, &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "split2", Namespace: ns}, Spec: ts.Spec}))
	routes("split2[15s]")
	// The policy goes: the split recomposes without its timeout, and the
	// policy's own route of before is gone with it.
	must(t, c.Delete(ctx, rp))
	routes("split2[-]", "timeout")
}

// TestCiliumSplitAfterPolicy: a TrafficSplit that starts routing a Service
// whose Cilium policy redirects it to Envoy (here the lb-l7 annotations)
// refuses the policy naming the split, and the policy's outputs go (the
// annotations get their previous values back, the finalizer is removed)
// so the Service never has two redirects; without the split the policy
// applies again.
func TestCiliumSplitAfterPolicy(t *testing.T) {
	_, c := start(t)
	ciliumInstall(t, c)
	ns := testenv.Namespace(t, c, map[string]string{ciliumLabel: "on"})
	services(t, c, ns, "web-v1", "web-v2")
	svc := service(ns, "web", 8080)
	svc.Annotations = map[string]string{"service.cilium.io/lb-l7-algorithm": "random"}
	must(t, c.Create(ctx, svc))
	rp := &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: "lb", Namespace: ns},
		Spec: meshv1alpha1.ResiliencePolicySpec{MeshSelection: meshv1alpha1.MeshSelection{Provider: meshv1alpha1.ProviderCilium},
			TargetRef:    meshv1alpha1.ServiceReference{Name: "web"},
			LoadBalancer: &meshv1alpha1.LoadBalancer{Algorithm: meshv1alpha1.LoadBalancerLeastRequest}}}
	must(t, c.Create(ctx, rp))
	key := client.ObjectKeyFromObject(rp)
	waitReady(t, c, key)
	if a := lbAnnotations(annotations(t, c, ns, "web")); a != "enabled/least_request" {
		t.Fatalf("annotations %s", a)
	}
	ts := split(ns, "split")
	ts.Spec.Provider = meshv1alpha1.ProviderCilium
	must(t, c.Create(ctx, ts))
	got := waitReason(t, c, key, meshv1alpha1.UnsupportedFeatureReason)
	if msg := condition(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition); !strings.Contains(msg, "TrafficSplit split's HTTPRoute is a second one") {
		t.Fatalf("Ready: %s", msg)
	}
	testenv.Eventually(t, testenv.DefaultTimeout, "annotations restored, record and finalizer gone", func() error {
		cur := &meshv1alpha1.ResiliencePolicy{}
		must(t, c.Get(ctx, key, cur))
		if a := lbAnnotations(annotations(t, c, ns, "web")); a != "<none>/random" || len(cur.Status.Inventory) != 0 || len(cur.Status.SharedFields) != 0 ||
			controllerutil.ContainsFinalizer(cur, outputs.SharedFieldsFinalizer) {
			return testenv.Errorf("annotations %s; inventory %v; shared %v; finalizers %v", a, cur.Status.Inventory, cur.Status.SharedFields, cur.Finalizers)
		}
		return nil
	})
	must(t, c.Delete(ctx, ts))
	testenv.Eventually(t, testenv.DefaultTimeout, "split's route collected, policy Ready", func() error {
		must(t, client.IgnoreNotFound(c.Delete(ctx, &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "split", Namespace: ns}})))
		cur := &meshv1alpha1.ResiliencePolicy{}
		must(t, c.Get(ctx, key, cur))
		if !status.IsTrue(&cur.Status.CommonStatus, meshv1alpha1.ReadyCondition) || cur.Status.ObservedGeneration != cur.Generation {
			return testenv.Errorf("%s", condition(&cur.Status.CommonStatus, meshv1alpha1.ReadyCondition))
		}
		return nil
	})
	if a := lbAnnotations(annotations(t, c, ns, "web")); a != "enabled/least_request" {
		t.Fatalf("annotations after the split went: %s", a)
	}
}
