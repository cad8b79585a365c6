package trafficsplit

import (
	"strings"
	"testing"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestTrafficSplitAmbient: in an ambient namespace a split is an HTTPRoute
// enforced by the waypoint, refused while no waypoint serves the root
// Service (nothing written), Ready once one does, and no longer Ready when
// the waypoint goes away; a sidecar namespace beside it keeps its
// VirtualService.
func TestTrafficSplitAmbient(t *testing.T) {
	_, c := start(t)
	ns := testenv.AmbientNamespace(t, c, nil)
	services(t, c, ns, "web", "web-v1", "web-v2")
	must(t, c.Create(ctx, split(ns, "web")))
	key := types.NamespacedName{Namespace: ns, Name: "web"}

	ts := waitReason(t, c, key, meshv1alpha1.UnsupportedFeatureReason)
	want := "namespace " + ns + " is ambient and no waypoint serves Service web: L7 routing in ambient mode is enforced by a waypoint; enable a waypoint for namespace " + ns +
		" (a Gateway of class istio-waypoint with listener port 15008 protocol HBONE, and the label istio.io/use-waypoint=<gateway> on the namespace) (nothing was applied)"
	if got := status.Get(&ts.Status.CommonStatus, meshv1alpha1.ReadyCondition).Message; got != want {
		t.Fatalf("message:\n got %s\nwant %s", got, want)
	}
	if err := c.Get(ctx, key, &gatewayv1.HTTPRoute{}); !apierrors.IsNotFound(err) {
		t.Fatalf("HTTPRoute written on refusal: %v", err)
	}
	if err := c.Get(ctx, key, &istionetworking.VirtualService{}); !apierrors.IsNotFound(err) {
		t.Fatalf("VirtualService written in an ambient namespace: %v", err)
	}

	// A waypoint for the namespace: the Gateway watch re-checks the split.
	testenv.UseWaypoint(t, c, ns, "waypoint")
	ts = waitReady(t, c, key)
	if len(ts.Status.Inventory) != 1 || ts.Status.Inventory[0].Kind != "HTTPRoute" {
		t.Fatalf("inventory %+v", ts.Status.Inventory)
	}
	route := &gatewayv1.HTTPRoute{}
	must(t, c.Get(ctx, key, route))
	if p := route.Spec.ParentRefs; len(p) != 1 || *p[0].Kind != "Service" || p[0].Name != "web" {
		t.Fatalf("parentRefs %+v", p)
	}

	// The waypoint goes away: the split says why it is no longer Ready.
	must(t, c.Delete(ctx, testenv.WaypointGateway(ns, "waypoint", "service")))
	ts = waitReason(t, c, key, meshv1alpha1.UnsupportedFeatureReason)
	if msg := status.Get(&ts.Status.CommonStatus, meshv1alpha1.ReadyCondition).Message; !strings.Contains(msg,
		"namespace label istio.io/use-waypoint names waypoint waypoint, but no Gateway waypoint of class istio-waypoint exists in the namespace") {
		t.Fatalf("message: %s", msg)
	}

	// A sidecar namespace under the same mesh keeps VirtualServices.
	side := istioNamespace(t, c)
	sideKey, _ := readySplit(t, c, side)
	must(t, c.Get(ctx, sideKey, &istionetworking.VirtualService{}))
}
