package zerotrustpolicy

import (
	"strings"
	"testing"

	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshplane/meshplane/test/testenv"
)

// TestZeroTrustPolicyAmbient: L4 rules bind to workloads (ztunnel) in an
// ambient namespace without a waypoint; L7 rules are refused there (nothing
// written) and, once a waypoint serves the namespace, go to a policy bound
// to the waypoint with targetRefs while the ztunnel policy allows the
// waypoint's identity; removing the waypoint makes the policy say why it is
// no longer Ready.
func TestZeroTrustPolicyAmbient(t *testing.T) {
	_, c := start(t)
	ns := testenv.AmbientNamespace(t, c, nil)

	l4 := policy(ns, "l4")
	l4.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	l4.Spec.Rules[0].To[0].Methods = nil
	must(t, c.Create(ctx, l4))
	l4Key := types.NamespacedName{Namespace: ns, Name: "l4"}
	testenv.Eventually(t, testenv.DefaultTimeout, "L4 policy Ready", func() error { return ready(c, l4Key) })
	ap := &istiosecurity.AuthorizationPolicy{}
	must(t, c.Get(ctx, l4Key, ap))
	if ap.Spec.Selector.GetMatchLabels()["app"] != "web" || len(ap.Spec.Rules) != 1 || len(ap.Spec.TargetRefs) != 0 {
		t.Fatalf("ztunnel policy: %v", ap.Spec.String())
	}

	// L7 without a waypoint: refused, nothing written.
	must(t, c.Create(ctx, policy(ns, "web")))
	key := types.NamespacedName{Namespace: ns, Name: "web"}
	want := "UnsupportedFeature: namespace " + ns + " is ambient and no waypoint serves it: spec.rules[0] match HTTP methods or paths, which only a waypoint enforces " +
		"(ztunnel matches identities, namespaces and ports); enable a waypoint for namespace " + ns + " (a Gateway of class istio-waypoint with listener port 15008 protocol HBONE, " +
		"and the label istio.io/use-waypoint=<gateway> on the namespace), or remove the methods and paths (nothing was applied)"
	testenv.Eventually(t, testenv.DefaultTimeout, "L7 refused", func() error {
		if got := reason(c, key); got != want {
			return testenv.Errorf("got %q", got)
		}
		return nil
	})
	if err := c.Get(ctx, key, &istiosecurity.AuthorizationPolicy{}); !apierrors.IsNotFound(err) {
		t.Fatalf("AuthorizationPolicy written on refusal: %v", err)
	}
	if err := c.Get(ctx, key, &istiosecurity.PeerAuthentication{}); !apierrors.IsNotFound(err) {
		t.Fatalf("PeerAuthentication written on refusal: %v", err)
	}

	// A waypoint: the L7 policy becomes Ready with a waypoint policy; the
	// L4 policy with a selector is now refused (requests to Services pass
	// the waypoint, where workload selectors do not bind).
	testenv.UseWaypoint(t, c, ns, "waypoint")
	testenv.Eventually(t, testenv.DefaultTimeout, "L7 policy Ready", func() error { return ready(c, key) })
	wp := &istiosecurity.AuthorizationPolicy{}
	must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-waypoint"}, wp))
	if len(wp.Spec.TargetRefs) != 1 || wp.Spec.TargetRefs[0].Kind != "Gateway" || wp.Spec.TargetRefs[0].Name != "waypoint" ||
		len(wp.Spec.Rules) != 1 || wp.Spec.Rules[0].To[0].Operation.Methods[0] != "GET" {
		t.Fatalf("waypoint policy: %v", wp.Spec.String())
	}
	z := &istiosecurity.AuthorizationPolicy{}
	must(t, c.Get(ctx, key, z))
	if len(z.Spec.Rules) != 1 || z.Spec.Rules[0].From[0].Source.ServiceAccounts[0] != ns+"/waypoint" {
		t.Fatalf("ztunnel policy: %v", z.Spec.String())
	}
	testenv.Eventually(t, testenv.DefaultTimeout, "selector policy refused", func() error {
		if got := reason(c, l4Key); !strings.HasPrefix(got, "UnsupportedFeature: spec.selector: namespace "+ns+" is ambient and requests to its Services pass waypoint waypoint") {
			return testenv.Errorf("got %q", got)
		}
		return nil
	})

	// The waypoint is removed: the L7 policy is no longer Ready and says why.
	must(t, c.Delete(ctx, testenv.WaypointGateway(ns, "waypoint", "service")))
	testenv.Eventually(t, testenv.DefaultTimeout, "L7 refused again", func() error {
		if got := reason(c, key); got != want {
			return testenv.Errorf("got %q", got)
		}
		return nil
	})
	testenv.Eventually(t, testenv.DefaultTimeout, "L4 policy Ready again", func() error { return ready(c, l4Key) })
}
