package trafficsplit

import (
	"context"
	"fmt"
	"strings"
	"testing"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/bgsim"
	"github.com/meshplane/meshplane/test/cluster"
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
// contract (internal/breakglass): while an active BreakGlass with
// pinTraffic covers the namespace — announced by the namespace annotation,
// with the injection label removed as detachInjection does — the split
// routes everything to its stable backend and says BreakGlassActive; once
// the BreakGlass lets go the split's own weights come back. The BreakGlass
// controller's own part (setting and restoring the annotation) is played
// by the test, so this runs with only the TrafficSplit controller.
func TestTrafficSplitBreakGlass(t *testing.T) {
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{})
	startManager(t, cfg)
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	must(t, err)
	ctx := context.Background()
	const ns = "incident"
	must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"istio-injection": "enabled"}}}))
	for _, s := range []*corev1.Service{service(ns, "web", 8080), service(ns, "web-v1", 8080), service(ns, "web-v2", 8080)} {
		must(t, c.Create(ctx, s))
	}
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
	bg := bgsim.Engage(t, c, "outage", meshv1alpha1.ProviderIstio, ns, "istio-injection")

	eventually(t, "split pinned to web-v2", func() (bool, string) {
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
		return ok, fmt.Sprintf("BreakGlassActive %s; Ready %s; weights %s; route %s", active, ready, got.Status.Weights, routes(vs))
	})

	// Restore: the BreakGlass puts the namespace back and finishes.
	bg.Release()

	eventually(t, "split's own weights back", func() (bool, string) {
		got := &meshv1alpha1.TrafficSplit{}
		vs := &istionetworking.VirtualService{}
		_ = c.Get(ctx, key, got)
		_ = c.Get(ctx, key, vs)
		active := condition(got, meshv1alpha1.BreakGlassActiveCondition)
		ready := condition(got, meshv1alpha1.ReadyCondition)
		ok := active == "<none>" && strings.HasPrefix(ready, "True/") && got.Status.Weights == "web-v1=90,web-v2=10" &&
			routes(vs) == "web-v1=90,web-v2=10" && vs.Spec.Http[len(vs.Spec.Http)-1].Mirror != nil
		return ok, fmt.Sprintf("BreakGlassActive %s; Ready %s; weights %s; route %s", active, ready, got.Status.Weights, routes(vs))
	})
}
