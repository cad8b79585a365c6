package hostile

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// Waypoints Meshplane deploys (MeshInstall spec.istio.waypoints): entries
// the API refuses, an entry for a namespace that is not ambient, and the
// managed waypoint under a TrafficSplit and an L7 ZeroTrustPolicy, whose
// MeshInstall's deletion leaves the namespace exactly as it was.

// ambientInstall is an Istio MeshInstall with profile Ambient into control
// plane namespace cp with the given waypoints.
func ambientInstall(h *H, name, cp string, wps ...meshv1alpha1.IstioWaypoint) *meshv1alpha1.MeshInstall {
	mi := installOf(Istio, name, cp, &meshv1alpha1.ChartSource{Path: stageCharts(h, Istio)})
	mi.Spec.Profile = meshv1alpha1.ProfileAmbient
	mi.Spec.DeletionPolicy = meshv1alpha1.DeletionUninstall
	mi.Spec.Istio = &meshv1alpha1.IstioInstallSpec{Waypoints: wps}
	return mi
}

// controlPlaneUp plays the kubelet for mi's control plane in cp (istiod,
// istio-cni and ztunnel available) once its releases are installed.
func controlPlaneUp(h *H, mi *meshv1alpha1.MeshInstall, cp string) {
	h.Helper()
	installed(h, mi)
	testenv.MarkAvailable(h.T, h.C, cp)
	var dss appsv1.DaemonSetList
	h.Must(h.C.List(h.Ctx, &dss, client.InNamespace(cp)))
	for i := range dss.Items {
		d := &dss.Items[i]
		d.Status = appsv1.DaemonSetStatus{ObservedGeneration: d.Generation, DesiredNumberScheduled: 1, CurrentNumberScheduled: 1,
			NumberReady: 1, UpdatedNumberScheduled: 1, NumberAvailable: 1}
		h.Must(h.C.Status().Update(h.Ctx, d))
	}
}

func init() {
	registerWaypointSpecCases()
	registerWaypointOwnCases()
}

func registerWaypointSpecCases() {
	bad := []struct {
		name string
		set  func(*meshv1alpha1.MeshInstall)
		want []string
	}{
		{"waypoints without profile Ambient", func(mi *meshv1alpha1.MeshInstall) { mi.Spec.Profile = meshv1alpha1.ProfileSidecar },
			[]string{"spec.istio.waypoints needs spec.profile Ambient (waypoints serve ambient namespaces)"}},
		{"waypoint name not a DNS label", func(mi *meshv1alpha1.MeshInstall) { mi.Spec.Istio.Waypoints[0].Name = "Way_Point" },
			[]string{"spec.istio.waypoints[0].name", "should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"}},
		{"waypoint namespace empty", func(mi *meshv1alpha1.MeshInstall) { mi.Spec.Istio.Waypoints[0].Namespace = "" },
			[]string{"spec.istio.waypoints[0].namespace", "should be at least 1 chars long"}},
		{"waypoint for none", func(mi *meshv1alpha1.MeshInstall) { mi.Spec.Istio.Waypoints[0].For = "none" },
			[]string{"spec.istio.waypoints[0].for", `supported values: "service", "workload", "all"`}},
		{"two waypoints for one namespace", func(mi *meshv1alpha1.MeshInstall) {
			mi.Spec.Istio.Waypoints = append(mi.Spec.Istio.Waypoints, meshv1alpha1.IstioWaypoint{Namespace: "shop", Name: "other"})
		}, []string{"spec.istio.waypoints[1]", "Duplicate value"}},
		{"65 waypoints", func(mi *meshv1alpha1.MeshInstall) {
			for i := range 64 {
				mi.Spec.Istio.Waypoints = append(mi.Spec.Istio.Waypoints, meshv1alpha1.IstioWaypoint{Namespace: fmt.Sprintf("ns-%d", i)})
			}
		}, []string{"spec.istio.waypoints", "must have at most 64 items"}},
	}
	for _, b := range bad {
		Register(Case{Category: "refused-create", Kind: "MeshInstall", Mesh: Istio, Name: b.name,
			Run: func(h *H) {
				mi := installOf(Istio, "waypoints-bad", "", nil)
				mi.Spec.Profile = meshv1alpha1.ProfileAmbient
				mi.Spec.Istio = &meshv1alpha1.IstioInstallSpec{Waypoints: []meshv1alpha1.IstioWaypoint{{Namespace: "shop"}}}
				b.set(mi)
				// A dry run: a stored MeshInstall would change which mesh
				// serves the shared cluster.
				h.Rejected(h.C.Create(h.Ctx, mi, client.DryRunAll), b.want...)
			}})
	}
}

func registerWaypointOwnCases() {
	registerOwn(Case{Category: "foreign", Kind: "MeshInstall", Mesh: Istio, Name: "waypoint for a sidecar namespace is refused, the namespace untouched", Isolated: true,
		Run: func(h *H) {
			h.StartManager()
			side := h.Namespace(Istio)
			amb := testenv.AmbientNamespace(h.T, h.C, nil)
			snap, before := h.Snapshot(nsOf(h, side)), h.Inventory(side)
			cp := testenv.Namespace(h.T, h.C, nil)
			mi := ambientInstall(h, "ambient", cp, meshv1alpha1.IstioWaypoint{Namespace: amb}, meshv1alpha1.IstioWaypoint{Namespace: side})
			h.Create(mi)
			controlPlaneUp(h, mi, cp)
			h.Stalled(mi, meshv1alpha1.InvalidSpecReason, `spec.istio.waypoints[1].namespace: namespace "`+side+
				`" is not in the ambient data plane, and waypoints serve only ambient namespaces; label it istio.io/dataplane-mode=ambient or remove the entry`)
			h.Unchanged(snap)
			h.Same(side, before)
			// The valid entry is still deployed.
			h.Must(h.C.Get(h.Ctx, client.ObjectKey{Namespace: amb, Name: "waypoint"}, &gatewayv1.Gateway{}))
			// Removing the entry clears the refusal.
			h.Must(h.Update(mi, func() { mi.Spec.Istio.Waypoints = mi.Spec.Istio.Waypoints[:1] }))
			h.Ready(mi)
			deleteAndWait(h, mi)
			h.Unchanged(snap)
		}})
	registerOwn(Case{Category: "deletion", Kind: "MeshInstall", Mesh: Istio, Name: "managed waypoint serves a split and an L7 policy until the MeshInstall goes", Isolated: true,
		Run: func(h *H) {
			h.StartManager()
			ns := ambientSplitNamespace(h, map[string]string{"team": "shop"})
			ts := GoodTrafficSplit(ns, "split", Istio)
			// Without a MeshInstall the refusal is the install-aware one;
			// either way it names the missing waypoint.
			hint := "enable a waypoint for namespace " + ns
			h.Create(ts)
			h.Stalled(ts, meshv1alpha1.UnsupportedFeatureReason, hint, "(nothing was applied)")
			p := ambientL7Policy(ns, "l7")
			h.Create(p)
			h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, hint, "(nothing was applied)")
			snap := h.Snapshot(nsOf(h, ns))

			cp := testenv.Namespace(h.T, h.C, nil)
			mi := ambientInstall(h, "ambient", cp, meshv1alpha1.IstioWaypoint{Namespace: ns})
			h.Create(mi)
			controlPlaneUp(h, mi, cp)
			h.Condition(mi, meshv1alpha1.ReadyCondition, metav1.ConditionTrue, "", "0 of 1 waypoints programmed")
			h.Ready(ts)
			h.Ready(p)
			route := &gatewayv1.HTTPRoute{}
			h.Must(h.C.Get(h.Ctx, keyOf(ts), route))
			if pr := route.Spec.ParentRefs; len(pr) != 1 || pr[0].Kind == nil || *pr[0].Kind != "Service" || pr[0].Name != "web" {
				h.Fatalf("HTTPRoute parentRefs %+v", pr)
			}

			deleteAndWait(h, mi)
			h.Stalled(ts, meshv1alpha1.UnsupportedFeatureReason, hint)
			h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, hint)
			h.Unchanged(snap)
		}})
}
