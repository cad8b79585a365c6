package canary

import (
	"fmt"
	"strings"
	"testing"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/controllers/resiliencepolicy"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/bgsim"
	"github.com/meshplane/meshplane/test/testenv"
)

// resilience is a ResiliencePolicy for Service web with a DestinationRule
// field, retries and a fault.
func resilience(ns, name string) *meshv1alpha1.ResiliencePolicy {
	return &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.ResiliencePolicySpec{
			TargetRef:        meshv1alpha1.ServiceReference{Name: "web"},
			OutlierDetection: &meshv1alpha1.OutlierDetection{Consecutive5xxErrors: ptr[int32](5)},
			Retries:          &meshv1alpha1.ResilienceRetries{RetryPolicy: meshv1alpha1.RetryPolicy{Attempts: 3}},
			FaultInjection:   &meshv1alpha1.FaultInjection{Abort: &meshv1alpha1.FaultAbort{HTTPStatus: 503, Percent: 5}},
		}}
}

// routeOf renders the VirtualServices of ns for host web: name, owner
// references, then per HTTP route its retries attempts and fault, e.g.
// "web[Canary/web*,ResiliencePolicy/r]{:3:fault}".
func routeOf(t *testing.T, c client.Client, ns string) string {
	t.Helper()
	var list istionetworking.VirtualServiceList
	must(t, c.List(ctx, &list, client.InNamespace(ns)))
	var out []string
	for _, vs := range list.Items {
		if len(vs.Spec.Hosts) == 0 || vs.Spec.Hosts[0] != "web" {
			continue
		}
		var refs, routes []string
		for _, ref := range vs.OwnerReferences {
			s := ref.Kind + "/" + ref.Name
			if ref.Controller != nil && *ref.Controller {
				s += "*"
			}
			refs = append(refs, s)
		}
		for _, hr := range vs.Spec.Http {
			s := ""
			if hr.Retries != nil {
				s += fmt.Sprintf(":%d", hr.Retries.Attempts)
			}
			if hr.Fault != nil {
				s += ":fault"
			}
			routes = append(routes, s)
		}
		out = append(out, vs.Name+"["+strings.Join(refs, ",")+"]{"+strings.Join(routes, ",")+"}")
	}
	return strings.Join(out, " ")
}

func waitRoute(t *testing.T, c client.Client, ns, want string) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, "route "+want, func() error {
		if got := routeOf(t, c, ns); got != want {
			return testenv.Errorf("VirtualServices for web: %s", got)
		}
		return nil
	})
}

func policyReason(t *testing.T, c client.Client, key types.NamespacedName, want string) *meshv1alpha1.ResiliencePolicy {
	t.Helper()
	rp := &meshv1alpha1.ResiliencePolicy{}
	testenv.Eventually(t, testenv.DefaultTimeout, want+" on "+key.String(), func() error {
		if err := c.Get(ctx, key, rp); err != nil {
			return err
		}
		r := status.Get(&rp.Status.CommonStatus, meshv1alpha1.ReadyCondition)
		if r == nil || string(r.Status)+"/"+r.Reason != want || rp.Status.ObservedGeneration != rp.Generation {
			return testenv.Errorf("Ready %v", r)
		}
		return nil
	})
	return rp
}

// TestResilienceComposition: a Canary's route carries a ResiliencePolicy's
// retries and fault (one VirtualService for the host, owned by both); the
// same field on both is a Conflict on the younger; deleting either leaves
// exactly the other's route, and a watcher never sees two at once; a
// BreakGlass that relaxes policies lifts the fault from the composed route.
func TestResilienceComposition(t *testing.T) {
	m := testenv.StartManager(t, env.Cfg(t), testenv.ManagerOptions{}, Setup, resiliencepolicy.Setup)
	rolloutDeployments(t, m.Client)
	c := m.Client

	t.Run("Canary then policy: composed; Canary deleted first: the policy's own route", func(t *testing.T) {
		ns := istioNamespace(t, c)
		rw := testenv.WatchRoutes(t, m.GetConfig(), ns, "web")
		initialized(t, c, ns, 1)
		waitRoute(t, c, ns, "web[Canary/web*]{}")
		must(t, c.Create(ctx, resilience(ns, "resilience")))
		waitRoute(t, c, ns, "web[Canary/web*,ResiliencePolicy/resilience]{:3:fault}")
		rp := policyReason(t, c, types.NamespacedName{Namespace: ns, Name: "resilience"}, "True/Succeeded")
		if rp.Status.ComposedWith != "web" || len(rp.Status.Inventory) != 1 || rp.Status.Inventory[0].Kind != "DestinationRule" {
			t.Fatalf("composedWith %q inventory %v", rp.Status.ComposedWith, rp.Status.Inventory)
		}
		must(t, c.Delete(ctx, newCanary(ns, "web")))
		waitRoute(t, c, ns, "resilience[ResiliencePolicy/resilience*]{:3:fault}")
		if n, seen := rw.Max(); n != 1 {
			t.Fatalf("%d VirtualServices for web at once (in order %v)", n, seen)
		}
	})

	t.Run("policy deleted first: the Canary's route loses the fields and the reference", func(t *testing.T) {
		ns := istioNamespace(t, c)
		initialized(t, c, ns, 1)
		must(t, c.Create(ctx, resilience(ns, "resilience")))
		waitRoute(t, c, ns, "web[Canary/web*,ResiliencePolicy/resilience]{:3:fault}")
		must(t, c.Delete(ctx, resilience(ns, "resilience")))
		waitRoute(t, c, ns, "web[Canary/web*]{}")
	})

	t.Run("same field: the younger policy is a Conflict and the route keeps the Canary's value", func(t *testing.T) {
		ns := istioNamespace(t, c)
		initialized(t, c, ns, 1, func(cn *meshv1alpha1.Canary) { cn.Spec.Service.Retries = &meshv1alpha1.RetryPolicy{Attempts: 1} })
		must(t, c.Create(ctx, resilience(ns, "late")))
		rp := policyReason(t, c, types.NamespacedName{Namespace: ns, Name: "late"}, "False/Conflict")
		if msg := status.Get(&rp.Status.CommonStatus, meshv1alpha1.ReadyCondition).Message; !strings.Contains(msg, "Canary web routes Service web and already sets [retries") {
			t.Fatalf("Ready: %s", msg)
		}
		waitRoute(t, c, ns, "web[Canary/web*]{:1}")
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "late"}, &istionetworking.DestinationRule{}); !apierrors.IsNotFound(err) {
			t.Fatalf("DestinationRule of a Conflict policy: %v", err)
		}
	})

	t.Run("same field: the younger Canary is a Conflict", func(t *testing.T) {
		ns := istioNamespace(t, c)
		must(t, c.Create(ctx, resilience(ns, "early")))
		must(t, c.Create(ctx, deployment(ns, "web", "web:1", 1)))
		cn := newCanary(ns, "web")
		cn.Spec.Service.Retries = &meshv1alpha1.RetryPolicy{Attempts: 1}
		cn.CreationTimestamp = metav1.Time{}
		// The policy is older (created first; its target appears with
		// the Canary's Service).
		must(t, c.Create(ctx, cn))
		got := waitCanary(t, c, client.ObjectKeyFromObject(cn), "Conflict", stalled(meshv1alpha1.ConflictReason))
		if msg := condition(got, meshv1alpha1.ReadyCondition); !strings.Contains(msg, "ResiliencePolicy early already sets [retries") {
			t.Fatalf("Ready %s", msg)
		}
	})

	t.Run("BreakGlass relaxes the fault on the composed route and restores it", func(t *testing.T) {
		ns := istioNamespace(t, c)
		initialized(t, c, ns, 1)
		must(t, c.Create(ctx, resilience(ns, "resilience")))
		waitRoute(t, c, ns, "web[Canary/web*,ResiliencePolicy/resilience]{:3:fault}")
		bg := bgsim.Engage(t, c, "outage-"+ns, meshv1alpha1.ProviderIstio, ns, "istio-injection")
		waitRoute(t, c, ns, "web[Canary/web*,ResiliencePolicy/resilience]{:3}")
		bg.Release()
		waitRoute(t, c, ns, "web[Canary/web*,ResiliencePolicy/resilience]{:3:fault}")
	})
}
