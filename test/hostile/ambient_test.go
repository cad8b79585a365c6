package hostile

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// Ambient cases: Istio ambient namespaces where the outputs would be
// accepted by the mesh and then ignored (a route without a waypoint, an L7
// rule at ztunnel, a workload selector behind a waypoint), and waypoints
// that disappear after the objects were Ready.

// waypointHint is the fix every ambient refusal names.
func waypointHint(ns string) string {
	return "enable a waypoint for namespace " + ns + " (a Gateway of class istio-waypoint with listener port 15008 protocol HBONE, " +
		"and the label istio.io/use-waypoint=<gateway> on the namespace)"
}

// noWaypointForService is the refusal of L7 routing to Service web.
func noWaypointForService(ns, why string) string {
	return "namespace " + ns + " is ambient and no waypoint serves Service web" + why +
		": L7 routing in ambient mode is enforced by a waypoint; " + waypointHint(ns) + " (nothing was applied)"
}

// noWaypointForL7 is the refusal of an L7 ZeroTrustPolicy rule.
func noWaypointForL7(ns string) string {
	return "namespace " + ns + " is ambient and no waypoint serves it: spec.rules[0] match HTTP methods or paths, which only a waypoint enforces " +
		"(ztunnel matches identities, namespaces and ports); " + waypointHint(ns) + ", or remove the methods and paths (nothing was applied)"
}

// ambientSplitNamespace is an ambient namespace with Services web, web-v1
// and web-v2 and extra labels.
func ambientSplitNamespace(h *H, labels map[string]string) string {
	h.Helper()
	ns := testenv.AmbientNamespace(h.T, h.C, labels)
	for _, s := range []string{"web", "web-v1", "web-v2"} {
		h.Service(ns, s)
	}
	return ns
}

// l7Policy is GoodZeroTrustPolicy narrowed to GET /api/*.
func ambientL7Policy(ns, name string) *meshv1alpha1.ZeroTrustPolicy {
	p := GoodZeroTrustPolicy(ns, name, Istio)
	p.Spec.Rules[0].To[0].Methods = []meshv1alpha1.HTTPMethod{"GET"}
	p.Spec.Rules[0].To[0].Paths = []string{"/api/*"}
	return p
}

func waypointOf(ns string) *gatewayv1.Gateway {
	return testenv.WaypointGateway(ns, "waypoint", "service")
}

func init() {
	registerAmbientSplitCases()
	registerAmbientPolicyCases()
	registerAmbientCanaryCases()
}

func registerAmbientSplitCases() {
	Register(Case{Category: "silent-drop", Kind: "TrafficSplit", Mesh: Istio, Name: "ambient namespace without a waypoint",
		Run: func(h *H) {
			ns := ambientSplitNamespace(h, nil)
			before := h.Inventory(ns)
			ts := GoodTrafficSplit(ns, "split", Istio)
			h.Create(ts)
			h.Stalled(ts, meshv1alpha1.UnsupportedFeatureReason, noWaypointForService(ns, ""))
			h.Same(ns, before)
			h.Control("TrafficSplit", Istio)
		}})
	Register(Case{Category: "silent-drop", Kind: "TrafficSplit", Mesh: Istio, Name: "ambient with explicit provider and no waypoint",
		Run: func(h *H) {
			ns := ambientSplitNamespace(h, nil)
			before := h.Inventory(ns)
			ts := GoodTrafficSplit(ns, "split", Istio)
			ts.Spec.Provider = meshv1alpha1.ProviderIstio
			ts.Spec.Output = meshv1alpha1.OutputNative
			h.Create(ts)
			h.Stalled(ts, meshv1alpha1.UnsupportedFeatureReason, noWaypointForService(ns, ""))
			h.Same(ns, before)
		}})
	Register(Case{Category: "silent-drop", Kind: "TrafficSplit", Mesh: Istio, Name: "use-waypoint label without a Gateway",
		Run: func(h *H) {
			ns := ambientSplitNamespace(h, map[string]string{"istio.io/use-waypoint": "waypoint"})
			before := h.Inventory(ns)
			ts := GoodTrafficSplit(ns, "split", Istio)
			h.Create(ts)
			h.Stalled(ts, meshv1alpha1.UnsupportedFeatureReason, noWaypointForService(ns,
				" (namespace label istio.io/use-waypoint names waypoint waypoint, but no Gateway waypoint of class istio-waypoint exists in the namespace)"))
			h.Same(ns, before)
		}})
	Register(Case{Category: "silent-drop", Kind: "TrafficSplit", Mesh: Istio, Name: "waypoint for workloads only",
		Run: func(h *H) {
			ns := ambientSplitNamespace(h, map[string]string{"istio.io/use-waypoint": "waypoint"})
			h.Create(testenv.WaypointGateway(ns, "waypoint", "workload"))
			before := h.Inventory(ns)
			ts := GoodTrafficSplit(ns, "split", Istio)
			h.Create(ts)
			h.Stalled(ts, meshv1alpha1.UnsupportedFeatureReason, noWaypointForService(ns,
				" (waypoint waypoint has istio.io/waypoint-for=workload; it must be service or all)"))
			h.Same(ns, before)
		}})
	Register(Case{Category: "silent-drop", Kind: "TrafficSplit", Mesh: Istio, Name: "Service opted out of the namespace waypoint",
		Run: func(h *H) {
			ns := testenv.AmbientNamespace(h.T, h.C, nil)
			testenv.UseWaypoint(h.T, h.C, ns, "waypoint")
			web := h.Service(ns, "web")
			h.Service(ns, "web-v1")
			h.Service(ns, "web-v2")
			h.Must(h.Update(web, func() { web.Labels = map[string]string{"istio.io/use-waypoint": "none"} }))
			before := h.Inventory(ns)
			ts := GoodTrafficSplit(ns, "split", Istio)
			h.Create(ts)
			h.Stalled(ts, meshv1alpha1.UnsupportedFeatureReason, noWaypointForService(ns, ""))
			h.Same(ns, before)
		}})
	Register(Case{Category: "delete-after-failure", Kind: "TrafficSplit", Mesh: Istio, Name: "refused ambient split deleted",
		Run: func(h *H) {
			ns := ambientSplitNamespace(h, nil)
			before := h.Inventory(ns)
			ts := GoodTrafficSplit(ns, "split", Istio)
			h.Create(ts)
			h.Stalled(ts, meshv1alpha1.UnsupportedFeatureReason, noWaypointForService(ns, ""))
			h.Must(h.C.Delete(h.Ctx, ts))
			h.Eventually("split gone", func() error {
				if err := h.C.Get(h.Ctx, keyOf(ts), &meshv1alpha1.TrafficSplit{}); !apierrors.IsNotFound(err) {
					return testenv.Errorf("still there (%v)", err)
				}
				return nil
			})
			h.Same(ns, before)
		}})
	Register(Case{Category: "waypoint-removed", Kind: "TrafficSplit", Mesh: Istio, Name: "waypoint deleted after Ready",
		Run: func(h *H) {
			ns := ambientSplitNamespace(h, nil)
			testenv.UseWaypoint(h.T, h.C, ns, "waypoint")
			ts := GoodTrafficSplit(ns, "split", Istio)
			h.Create(ts)
			h.Ready(ts)
			before := h.Inventory(ns)
			if _, ok := before["HTTPRoute/split"]; !ok {
				h.Fatalf("no HTTPRoute for a split in an ambient namespace with a waypoint: %v", before)
			}
			h.Must(h.C.Delete(h.Ctx, waypointOf(ns)))
			h.Stalled(ts, meshv1alpha1.UnsupportedFeatureReason, noWaypointForService(ns,
				" (namespace label istio.io/use-waypoint names waypoint waypoint, but no Gateway waypoint of class istio-waypoint exists in the namespace)"))
			h.Same(ns, before)
		}})
	Register(Case{Category: "refused-update", Kind: "TrafficSplit", Mesh: Istio, Name: "ambient split gains retries",
		Run: func(h *H) {
			ns := ambientSplitNamespace(h, nil)
			testenv.UseWaypoint(h.T, h.C, ns, "waypoint")
			ts := GoodTrafficSplit(ns, "split", Istio)
			h.Create(ts)
			h.Ready(ts)
			before := h.Inventory(ns)
			h.Must(h.Update(ts, func() { ts.Spec.Retries = &meshv1alpha1.RetryPolicy{Attempts: 2} }))
			h.Stalled(ts, meshv1alpha1.UnsupportedFeatureReason, "feature Retries is not supported by Istio: in ambient namespace "+ns+
				" routes are Gateway API HTTPRoutes, and HTTPRoute retries are not in Gateway API's standard channel")
			h.Same(ns, before)
		}})
	Register(Case{Category: "foreign", Kind: "TrafficSplit", Mesh: Istio, Name: "waypoint and namespace untouched, sidecar namespace beside",
		Run: func(h *H) {
			ns := ambientSplitNamespace(h, nil)
			testenv.UseWaypoint(h.T, h.C, ns, "waypoint")
			foreign := h.Snapshot(waypointOf(ns), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
			ts := GoodTrafficSplit(ns, "split", Istio)
			h.Create(ts)
			h.Ready(ts)
			inv := h.Inventory(ns)
			if _, vs := inv["VirtualService/split"]; vs {
				h.Fatalf("VirtualService written in an ambient namespace: %v", inv)
			}
			h.Unchanged(foreign)
			side, sideNs := readySplit(h, Istio)
			if _, ok := h.Inventory(sideNs)["VirtualService/"+side.Name]; !ok {
				h.Fatalf("sidecar namespace beside the ambient one has no VirtualService")
			}
		}})
}

func registerAmbientPolicyCases() {
	Register(Case{Category: "silent-drop", Kind: "ZeroTrustPolicy", Mesh: Istio, Name: "L7 rule without a waypoint",
		Run: func(h *H) {
			ns := testenv.AmbientNamespace(h.T, h.C, nil)
			before := h.Inventory(ns)
			p := ambientL7Policy(ns, "l7")
			h.Create(p)
			h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, noWaypointForL7(ns))
			h.Same(ns, before)
			h.Control("ZeroTrustPolicy", Istio)
		}})
	Register(Case{Category: "silent-drop", Kind: "ZeroTrustPolicy", Mesh: Istio, Name: "workload selector behind a waypoint",
		Run: func(h *H) {
			ns := testenv.AmbientNamespace(h.T, h.C, nil)
			testenv.UseWaypoint(h.T, h.C, ns, "waypoint")
			foreign := h.Snapshot(waypointOf(ns))
			before := h.Inventory(ns)
			p := GoodZeroTrustPolicy(ns, "l4", Istio)
			p.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
			h.Create(p)
			h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, "spec.selector: namespace "+ns+" is ambient and requests to its Services pass waypoint waypoint, "+
				"where a policy binds to the waypoint or a Service, not to workload labels, so the rules would not hold for them; "+
				"remove spec.selector to apply the policy to the whole namespace (nothing was applied)")
			h.Same(ns, before)
			h.Unchanged(foreign)
		}})
	Register(Case{Category: "waypoint-removed", Kind: "ZeroTrustPolicy", Mesh: Istio, Name: "waypoint deleted under an L7 policy",
		Run: func(h *H) {
			ns := testenv.AmbientNamespace(h.T, h.C, nil)
			testenv.UseWaypoint(h.T, h.C, ns, "waypoint")
			p := ambientL7Policy(ns, "l7")
			h.Create(p)
			h.Ready(p)
			before := h.Inventory(ns)
			if _, ok := before["AuthorizationPolicy/l7-waypoint"]; !ok {
				h.Fatalf("no waypoint AuthorizationPolicy: %v", before)
			}
			h.Must(h.C.Delete(h.Ctx, waypointOf(ns)))
			h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, noWaypointForL7(ns))
			h.Same(ns, before)
		}})
	Register(Case{Category: "refused-update", Kind: "ZeroTrustPolicy", Mesh: Istio, Name: "ambient L4 policy gains an L7 rule",
		Run: func(h *H) {
			ns := testenv.AmbientNamespace(h.T, h.C, nil)
			p := GoodZeroTrustPolicy(ns, "l4", Istio)
			h.Create(p)
			h.Ready(p)
			before := h.Inventory(ns)
			h.Must(h.Update(p, func() { p.Spec.Rules[0].To[0].Methods = []meshv1alpha1.HTTPMethod{"POST"} }))
			h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, noWaypointForL7(ns))
			h.Same(ns, before)
		}})
}

func registerAmbientCanaryCases() {
	Register(Case{Category: "silent-drop", Kind: "Canary", Mesh: Istio, Name: "ambient namespace without a waypoint",
		Run: func(h *H) {
			ns := testenv.AmbientNamespace(h.T, h.C, nil)
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
				Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
						Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1"}}}}}}
			h.Create(d)
			foreign := h.Snapshot(d)
			before := h.Inventory(ns)
			cn := GoodCanary(ns, "web", Istio)
			h.Create(cn)
			h.Stalled(cn, meshv1alpha1.UnsupportedFeatureReason, "strategy Canary on Istio: "+noWaypointForService(ns, ""))
			h.Same(ns, before)
			h.Unchanged(foreign)
			err := h.C.Get(h.Ctx, client.ObjectKey{Namespace: ns, Name: "web-primary"}, &appsv1.Deployment{})
			if !apierrors.IsNotFound(err) {
				h.Fatalf("primary Deployment created without a waypoint: %v", err)
			}
		}})
}
