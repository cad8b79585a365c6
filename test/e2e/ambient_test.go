package e2e

import (
	"fmt"
	"maps"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/chartrepo"
	"github.com/meshplane/meshplane/test/charts"
	"github.com/meshplane/meshplane/test/cluster"
	"github.com/meshplane/meshplane/test/fakeprom"
	"github.com/meshplane/meshplane/test/harness"
)

// TestAmbient mirrors the demo's ambient step on the simulated cluster with
// the real Istio charts: one MeshInstall with profile Ambient serves an
// ambient namespace (with a waypoint) beside a sidecar namespace. Routing
// in the ambient namespace is an HTTPRoute on the Service, not a
// VirtualService; an L7 ZeroTrustPolicy is split into a ztunnel policy and
// a waypoint policy; a BreakGlass takes the namespace out of ambient and
// its deletion puts the labels back exactly.
func TestAmbient(t *testing.T) {
	parallel(t)
	sim := cluster.UseSimulated(t, cluster.SimulatedOptions{Nodes: 1,
		CRDs: &cluster.CRDOptions{ThirdParty: []cluster.CRDSet{cluster.Istio, cluster.GatewayAPI}}})
	dir := t.TempDir()
	charts.StageIstio(t, dir, "1.28.1")
	repo := chartrepo.Serve(t, dir)
	c := harness.StartManager(t, sim.Config).Client

	const amb, side = "shop-ambient", "shop-sidecar"
	for ns, labels := range map[string]map[string]string{
		amb: {"istio.io/dataplane-mode": "ambient"}, side: {"istio-injection": "enabled"},
	} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"ratings", "ratings-v1", "ratings-v2"} {
			if err := c.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: ns},
				Spec: corev1.ServiceSpec{Selector: map[string]string{"app": n}, Ports: []corev1.ServicePort{{Name: "http", Port: 9080}}}}); err != nil {
				t.Fatal(err)
			}
		}
	}

	start := time.Now()
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1",
			Profile: meshv1alpha1.ProfileAmbient, Chart: &meshv1alpha1.ChartSource{Repository: repo.URL},
			Istio: &meshv1alpha1.IstioInstallSpec{Waypoints: []meshv1alpha1.IstioWaypoint{{Namespace: amb}}}}}
	if err := c.Create(ctx, mi); err != nil {
		t.Fatal(err)
	}
	got := waitMI(t, c, "istio", 60*time.Second, "Ready with one waypoint", func(mi *meshv1alpha1.MeshInstall) bool {
		return ready(mi) && len(mi.Status.Waypoints) == 1
	})
	t.Logf("Ambient MeshInstall Ready in %s; waypoint %+v", time.Since(start).Round(10*time.Millisecond), got.Status.Waypoints[0])
	if w := got.Status.Waypoints[0]; w.Namespace != amb || w.Name != "waypoint" {
		t.Fatalf("status.waypoints[0] = %+v, want %s/waypoint", w, amb)
	}
	gw := getU(t, c, "gateway.networking.k8s.io", "v1", "Gateway", amb, "waypoint")
	if class, _, _ := unstructured.NestedString(gw.Object, "spec", "gatewayClassName"); class != "istio-waypoint" {
		t.Fatalf("Gateway %s/waypoint has class %q, want istio-waypoint", amb, class)
	}
	if l := nsLabels(t, c, amb); l["istio.io/use-waypoint"] != "waypoint" {
		t.Fatalf("namespace %s labels %v, want istio.io/use-waypoint=waypoint", amb, l)
	}

	port := int32(9080)
	for _, ns := range []string{amb, side} {
		ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "ratings", Namespace: ns},
			Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "ratings", Port: &port},
				Backends: []meshv1alpha1.WeightedBackend{{Name: "ratings-v1", Weight: 80}, {Name: "ratings-v2", Weight: 20}}}}
		if err := c.Create(ctx, ts); err != nil {
			t.Fatal(err)
		}
	}
	zt := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "ratings", Namespace: amb},
		Spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{Name: "reads",
			From: []meshv1alpha1.TrafficSource{{Namespaces: []string{side}}},
			To: []meshv1alpha1.TrafficDestination{{Ports: []int32{9080}, Methods: []meshv1alpha1.HTTPMethod{"GET"},
				Paths: []string{"/ratings/*"}}}}}}}
	if err := c.Create(ctx, zt); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{amb, side} {
		waitReadyObj(t, c, &meshv1alpha1.TrafficSplit{}, ns, "ratings", func(o client.Object) *meshv1alpha1.CommonStatus {
			return &o.(*meshv1alpha1.TrafficSplit).Status.CommonStatus
		})
	}
	waitReadyObj(t, c, &meshv1alpha1.ZeroTrustPolicy{}, amb, "ratings", func(o client.Object) *meshv1alpha1.CommonStatus {
		return &o.(*meshv1alpha1.ZeroTrustPolicy).Status.CommonStatus
	})

	// Ambient: an HTTPRoute whose parent is the Service, no VirtualService.
	hr := getU(t, c, "gateway.networking.k8s.io", "v1", "HTTPRoute", amb, "ratings")
	parents, _, _ := unstructured.NestedSlice(hr.Object, "spec", "parentRefs")
	if len(parents) != 1 || parents[0].(map[string]any)["kind"] != "Service" || parents[0].(map[string]any)["name"] != "ratings" {
		t.Fatalf("HTTPRoute %s/ratings parentRefs %v, want the Service ratings", amb, parents)
	}
	if n := countU(t, c, "networking.istio.io", "v1", "VirtualService", amb); n != 0 {
		t.Fatalf("%d VirtualService(s) in ambient namespace %s, want none", n, amb)
	}
	// Sidecar: a VirtualService, as before.
	if n := countU(t, c, "networking.istio.io", "v1", "VirtualService", side); n != 1 {
		t.Fatalf("%d VirtualService(s) in sidecar namespace %s, want 1", n, side)
	}
	// The L7 policy: one for ztunnel, one bound to the waypoint.
	getU(t, c, "security.istio.io", "v1", "AuthorizationPolicy", amb, "ratings")
	wap := getU(t, c, "security.istio.io", "v1", "AuthorizationPolicy", amb, "ratings-waypoint")
	if refs, _, _ := unstructured.NestedSlice(wap.Object, "spec", "targetRefs"); len(refs) == 0 {
		t.Fatalf("AuthorizationPolicy %s/ratings-waypoint has no targetRefs: %v", amb, wap.Object["spec"])
	}

	// Canary in the ambient namespace: initialised through an HTTPRoute the
	// waypoint enforces (no VirtualService), analysis on waypoint metrics.
	prom := fakeprom.Start(t)
	if err := c.Create(ctx, cnDeployment(amb, "reviews", "example.invalid/app:1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &meshv1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: amb, Name: "reviews"}, Spec: cnSpec("reviews", prom.URL)}); err != nil {
		t.Fatal(err)
	}
	cnWait(t, c, client.ObjectKey{Namespace: amb, Name: "reviews"}, 60*time.Second, "Initialized", cnPhase(meshv1alpha1.CanaryPhaseInitialized))
	route := getU(t, c, "gateway.networking.k8s.io", "v1", "HTTPRoute", amb, "reviews")
	if parents, _, _ := unstructured.NestedSlice(route.Object, "spec", "parentRefs"); len(parents) != 1 || parents[0].(map[string]any)["kind"] != "Service" {
		t.Fatalf("Canary route %s/reviews parentRefs %v, want the Service reviews", amb, parents)
	}
	if n := countU(t, c, "networking.istio.io", "v1", "VirtualService", amb); n != 0 {
		t.Fatalf("%d VirtualService(s) in ambient namespace %s after the Canary, want none", n, amb)
	}

	// BreakGlass on the ambient namespace.
	before := nsLabels(t, c, amb)
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "ambient-out"},
		Spec: meshv1alpha1.BreakGlassSpec{Reason: "ztunnel outage (INC-7)",
			Target: meshv1alpha1.BreakGlassTarget{MeshInstallRef: &meshv1alpha1.LocalObjectReference{Name: "istio"}},
			Scope:  &meshv1alpha1.BreakGlassScope{Namespaces: []string{amb}}}}
	if err := c.Create(ctx, bg); err != nil {
		t.Fatal(err)
	}
	waitBG(t, c, bg, meshv1alpha1.BreakGlassEngaged)
	harness.Eventually(t, 30*time.Second, "ambient labels removed", func() error {
		l := nsLabels(t, c, amb)
		for _, k := range []string{"istio.io/dataplane-mode", "istio.io/use-waypoint"} {
			if _, ok := l[k]; ok {
				return fmt.Errorf("namespace %s still has %s: %v", amb, k, l)
			}
		}
		return nil
	})
	if err := c.Delete(ctx, bg); err != nil {
		t.Fatal(err)
	}
	waitGoneBG(t, c, bg)
	if after := nsLabels(t, c, amb); !maps.Equal(before, after) {
		t.Fatalf("labels of %s not restored exactly:\nbefore %v\nafter  %v", amb, before, after)
	}
	t.Logf("done in %s", time.Since(start).Round(10*time.Millisecond))
}

func nsLabels(t *testing.T, c client.Client, name string) map[string]string {
	t.Helper()
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, ns); err != nil {
		t.Fatal(err)
	}
	return ns.Labels
}

func getU(t *testing.T, c client.Client, group, version, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: version, Kind: kind})
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatalf("%s %s/%s: %v", kind, ns, name, err)
	}
	return u
}

func countU(t *testing.T, c client.Client, group, version, kind, ns string) int {
	t.Helper()
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: version, Kind: kind + "List"})
	if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return len(l.Items)
}

// waitReadyObj waits until obj ns/name has Ready=True for its generation.
func waitReadyObj(t *testing.T, c client.Client, obj client.Object, ns, name string, st func(client.Object) *meshv1alpha1.CommonStatus) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, fmt.Sprintf("%T %s/%s Ready", obj, ns, name), func() error {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
			return err
		}
		cd := apimeta.FindStatusCondition(st(obj).Conditions, meshv1alpha1.ReadyCondition)
		if cd == nil || cd.Status != metav1.ConditionTrue {
			return fmt.Errorf("Ready: %+v", cd)
		}
		return nil
	})
}
