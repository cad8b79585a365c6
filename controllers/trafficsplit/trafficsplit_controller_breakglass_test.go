package trafficsplit

import (
	"fmt"
	"strings"
	"testing"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/types"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/bgsim"
	"github.com/meshplane/meshplane/test/testenv"
)

// routes renders a VirtualService's default route, e.g. "web-v1=90,web-v2=10".
func routes(vs *istionetworking.VirtualService) string {
	if len(vs.Spec.Http) == 0 {
		return "<no http route>"
	}
	last := vs.Spec.Http[len(vs.Spec.Http)-1]
	parts := make([]string, 0, len(last.Route))
	for _, r := range last.Route {
		parts = append(parts, fmt.Sprintf("%s=%d", strings.SplitN(r.Destination.Host, ".", 2)[0], r.Weight))
	}
	return strings.Join(parts, ",")
}

// TestTrafficSplitBreakGlass checks the TrafficSplit side of the BreakGlass
// contract (internal/incident): while an active BreakGlass with
// pinTraffic covers the namespace — announced by the namespace annotation,
// with the injection label removed as detachInjection does — the split
// routes everything to its stable backend and says BreakGlassActive; once
// the BreakGlass lets go the split's own weights come back. The BreakGlass
// controller's own part (setting and restoring the annotation) is played
// by the test, so this runs with only the TrafficSplit controller.
func TestTrafficSplitBreakGlass(t *testing.T) {
	_, c := start(t)
	ns := istioNamespace(t, c)
	services(t, c, ns, "web", "web-v1", "web-v2")
	ts := split(ns, "web")
	ts.Spec.StableBackend = "web-v2"
	ts.Spec.Mirror = &meshv1alpha1.MirrorPolicy{Backend: meshv1alpha1.ServiceReference{Name: "web-v1"}}
	must(t, c.Create(ctx, ts))
	key := types.NamespacedName{Namespace: ns, Name: "web"}
	waitReady(t, c, key)
	vs := &istionetworking.VirtualService{}
	must(t, c.Get(ctx, key, vs))
	if got := routes(vs); got != "web-v1=90,web-v2=10" {
		t.Fatalf("route before the incident: %s", got)
	}

	// Engage: a BreakGlass for Istio, and the namespace as the BreakGlass
	// controller leaves it (annotation on, injection label off).
	bg := bgsim.Engage(t, c, "outage-"+ns, meshv1alpha1.ProviderIstio, ns, "istio-injection")

	testenv.Eventually(t, testenv.DefaultTimeout, "split pinned to web-v2", func() error {
		got := &meshv1alpha1.TrafficSplit{}
		vs := &istionetworking.VirtualService{}
		_ = c.Get(ctx, key, got)
		_ = c.Get(ctx, key, vs)
		active := condition(got, meshv1alpha1.BreakGlassActiveCondition)
		ready := condition(got, meshv1alpha1.ReadyCondition)
		ok := strings.HasPrefix(active, "True/BreakGlassActive") && strings.Contains(active, "outage") &&
			strings.HasPrefix(ready, "False/BreakGlassActive") && got.Status.Weights == "web-v2=100" &&
			routes(vs) == "web-v2=100" && vs.Spec.Http[len(vs.Spec.Http)-1].Mirror == nil &&
			got.Status.ObservedGeneration == got.Generation
		if !ok {
			return testenv.Errorf("BreakGlassActive %s; Ready %s; weights %s; route %s", active, ready, got.Status.Weights, routes(vs))
		}
		return nil
	})

	// Restore: the BreakGlass puts the namespace back and finishes.
	bg.Release()

	testenv.Eventually(t, testenv.DefaultTimeout, "split's own weights back", func() error {
		got := &meshv1alpha1.TrafficSplit{}
		vs := &istionetworking.VirtualService{}
		_ = c.Get(ctx, key, got)
		_ = c.Get(ctx, key, vs)
		active := condition(got, meshv1alpha1.BreakGlassActiveCondition)
		ready := condition(got, meshv1alpha1.ReadyCondition)
		ok := active == "<none>" && strings.HasPrefix(ready, "True/") && got.Status.Weights == "web-v1=90,web-v2=10" &&
			routes(vs) == "web-v1=90,web-v2=10" && vs.Spec.Http[len(vs.Spec.Http)-1].Mirror != nil
		if !ok {
			return testenv.Errorf("BreakGlassActive %s; Ready %s; weights %s; route %s", active, ready, got.Status.Weights, routes(vs))
		}
		return nil
	})
}
