package canary

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestCanaryAmbient: a Canary in an ambient namespace without a waypoint
// refuses to start (no L7 routing, no L7 metrics) and creates nothing;
// with a waypoint it initializes and routes through a Gateway API
// HTTPRoute.
func TestCanaryAmbient(t *testing.T) {
	_, c := start(t)
	ns := testenv.AmbientNamespace(t, c, nil)
	must(t, c.Create(ctx, deployment(ns, "web", "web:1", 1)))
	cn := newCanary(ns, "web")
	must(t, c.Create(ctx, cn))
	key := types.NamespacedName{Namespace: ns, Name: "web"}
	got := waitCanary(t, c, key, "UnsupportedFeature", stalled(meshv1alpha1.UnsupportedFeatureReason))
	want := "strategy Canary on Istio: namespace " + ns + " is ambient and no waypoint serves Service web: L7 routing in ambient mode is enforced by a waypoint; enable a waypoint for namespace " + ns
	if msg := condition(got, meshv1alpha1.ReadyCondition); !strings.HasPrefix(msg, "False/UnsupportedFeature: "+want) {
		t.Fatalf("Ready: %s\nwant prefix %s", msg, want)
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-primary"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Fatalf("primary created without a waypoint: %v", err)
	}
	if err := c.Get(ctx, key, &gatewayv1.HTTPRoute{}); !apierrors.IsNotFound(err) {
		t.Fatalf("route written without a waypoint: %v", err)
	}

	testenv.UseWaypoint(t, c, ns, "waypoint")
	waitCanary(t, c, key, "Initialized", phase(meshv1alpha1.CanaryPhaseInitialized))
	must(t, c.Get(ctx, key, &gatewayv1.HTTPRoute{}))
}
