package resiliencepolicy

import (
	"strings"
	"testing"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/bgsim"
	"github.com/meshplane/meshplane/test/testenv"
)

// virtualServices lists the VirtualServices of ns whose hosts include web.
func virtualServices(t *testing.T, c client.Client, ns string) []*istionetworking.VirtualService {
	t.Helper()
	var list istionetworking.VirtualServiceList
	must(t, c.List(ctx, &list, client.InNamespace(ns)))
	var out []*istionetworking.VirtualService
	for _, vs := range list.Items {
		if len(vs.Spec.Hosts) > 0 && vs.Spec.Hosts[0] == "web" {
			out = append(out, vs)
		}
	}
	return out
}

// oneRoute waits until ns has exactly one VirtualService for host web,
// named name, whose routes render as want (routeFields).
func oneRoute(t *testing.T, c client.Client, ns, name, want string) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, "one VirtualService "+name+" with "+want, func() error {
		vss := virtualServices(t, c, ns)
		if len(vss) != 1 || vss[0].Name != name || routeFields(vss[0]) != want {
			var got []string
			for i := range vss {
				got = append(got, vss[i].Name+"["+routeFields(vss[i])+"]")
			}
			return testenv.Errorf("VirtualServices for web: %v", got)
		}
		return nil
	})
}

// TestComposition: a ResiliencePolicy and a TrafficSplit on one Service
// give one VirtualService (the split's, carrying the policy's retries and
// fault) whichever comes first; deleting either leaves exactly the other's
// outputs; the same field set by both is a Conflict on the younger.
func TestComposition(t *testing.T) {
	m, c := start(t)

	t.Run("policy first, then split: one composed VirtualService; deleting either recomposes", func(t *testing.T) {
		ns := istioNamespace(t, c)
		services(t, c, ns, "web", "web-v1", "web-v2")
		must(t, c.Create(ctx, policy(ns, "resilience")))
		pkey := types.NamespacedName{Namespace: ns, Name: "resilience"}
		waitReady(t, c, pkey)
		oneRoute(t, c, ns, "resilience", "policy:3:fault")

		ts := split(ns, "web")
		must(t, c.Create(ctx, ts))
		oneRoute(t, c, ns, "web", "default:3:fault")
		testenv.Eventually(t, testenv.DefaultTimeout, "policy composed with the split", func() error {
			rp := &meshv1alpha1.ResiliencePolicy{}
			_ = c.Get(ctx, pkey, rp)
			if rp.Status.ComposedWith != "web" || kinds(rp.Status.Inventory) != "DestinationRule" || !status.IsTrue(&rp.Status.CommonStatus, meshv1alpha1.ReadyCondition) {
				return testenv.Errorf("composedWith %q inventory %s Ready %s", rp.Status.ComposedWith, kinds(rp.Status.Inventory), condition(&rp.Status.CommonStatus, meshv1alpha1.ReadyCondition))
			}
			return nil
		})

		// The split goes (envtest has no garbage collector: its
		// VirtualService is deleted as the collector would).
		must(t, c.Delete(ctx, ts))
		must(t, client.IgnoreNotFound(c.Delete(ctx, &istionetworking.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}})))
		oneRoute(t, c, ns, "resilience", "policy:3:fault")

		// And back; then the policy goes: the split's route loses its
		// fields.
		must(t, c.Create(ctx, split(ns, "web")))
		oneRoute(t, c, ns, "web", "default:3:fault")
		must(t, c.Delete(ctx, &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: "resilience", Namespace: ns}}))
		oneRoute(t, c, ns, "web", "default")
	})

	t.Run("header-matched fault: a fault route before each split route", func(t *testing.T) {
		ns := istioNamespace(t, c)
		services(t, c, ns, "web", "web-v1", "web-v2")
		must(t, c.Create(ctx, split(ns, "web")))
		rp := policy(ns, "chaos")
		rp.Spec.Retries = nil
		rp.Spec.FaultInjection.Headers = []meshv1alpha1.HTTPHeaderMatch{{Name: "X-Chaos", Type: meshv1alpha1.HeaderMatchExact, Value: "on"}}
		must(t, c.Create(ctx, rp))
		oneRoute(t, c, ns, "web", "default-fault:fault,default")
		vs := &istionetworking.VirtualService{}
		must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, vs))
		if m := vs.Spec.Http[0].Match; len(m) != 1 || m[0].Headers["x-chaos"].GetExact() != "on" {
			t.Fatalf("fault route match: %v", m)
		}
	})

	t.Run("same field on both: the younger policy is a Conflict and is not composed", func(t *testing.T) {
		ns := istioNamespace(t, c)
		services(t, c, ns, "web", "web-v1", "web-v2")
		ts := split(ns, "web")
		ts.Spec.Retries = &meshv1alpha1.RetryPolicy{Attempts: 1}
		must(t, c.Create(ctx, ts))
		oneRoute(t, c, ns, "web", "default:1")
		// The split is in force (Ready at its generation) before the
		// policy comes: in force wins.
		testenv.Eventually(t, testenv.DefaultTimeout, "split Ready", func() error {
			got := &meshv1alpha1.TrafficSplit{}
			_ = c.Get(ctx, client.ObjectKeyFromObject(ts), got)
			if !status.IsTrue(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition) || got.Status.ObservedGeneration != got.Generation {
				return testenv.Errorf("Ready %s", condition(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition))
			}
			return nil
		})
		must(t, c.Create(ctx, policy(ns, "late")))
		got := waitReason(t, c, types.NamespacedName{Namespace: ns, Name: "late"}, meshv1alpha1.ConflictReason)
		if msg := condition(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition); !strings.Contains(msg, "TrafficSplit web routes Service web and already sets [retries") {
			t.Fatalf("Ready: %s", msg)
		}
		oneRoute(t, c, ns, "web", "default:1")
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "late"}, &istionetworking.DestinationRule{}); !apierrors.IsNotFound(err) {
			t.Fatalf("DestinationRule of a Conflict policy: %v", err)
		}
	})

	t.Run("same field on both: the younger split is a Conflict", func(t *testing.T) {
		ns := istioNamespace(t, c)
		services(t, c, ns, "web", "web-v1", "web-v2")
		must(t, c.Create(ctx, policy(ns, "early")))
		waitReady(t, c, types.NamespacedName{Namespace: ns, Name: "early"})
		ts := split(ns, "web")
		ts.Spec.Retries = &meshv1alpha1.RetryPolicy{Attempts: 1}
		must(t, c.Create(ctx, ts))
		testenv.Eventually(t, testenv.DefaultTimeout, "split Conflict", func() error {
			got := &meshv1alpha1.TrafficSplit{}
			_ = c.Get(ctx, client.ObjectKeyFromObject(ts), got)
			if msg := condition(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition); !strings.Contains(msg, "False/Conflict: ResiliencePolicy early already sets [retries") {
				return testenv.Errorf("Ready %s", msg)
			}
			return nil
		})
		oneRoute(t, c, ns, "early", "policy:3:fault")
	})

	t.Run("a Canary sets the same field and is older: the policy is a Conflict naming it", func(t *testing.T) {
		ns := istioNamespace(t, c)
		services(t, c, ns, "web")
		cn := &meshv1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: meshv1alpha1.CanarySpec{TargetRef: meshv1alpha1.CanaryTargetReference{Name: "web"}}}
		cn.Spec.Service.Port = 8080
		cn.Spec.Service.Retries = &meshv1alpha1.RetryPolicy{Attempts: 2}
		cn.Spec.Analysis.StepWeight, cn.Spec.Analysis.MaxWeight = ptr[int32](10), ptr[int32](50)
		must(t, c.Create(ctx, cn))
		// Neither is in force (no Canary controller here); created in
		// the same second, the name decides. The manager's cache holds
		// the Canary before the policy comes.
		testenv.Eventually(t, testenv.DefaultTimeout, "Canary cached", func() error {
			return m.GetCache().Get(ctx, client.ObjectKeyFromObject(cn), &meshv1alpha1.Canary{})
		})
		key := types.NamespacedName{Namespace: ns, Name: "zz-late"}
		must(t, c.Create(ctx, policy(ns, "zz-late")))
		got := waitReason(t, c, key, meshv1alpha1.ConflictReason)
		if msg := condition(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition); !strings.Contains(msg, "Canary web routes Service web and already sets [retries") {
			t.Fatalf("Ready %s", msg)
		}
	})
}

// TestOwnedByBoth: the composed route is owned by the split (controller)
// and the policy; deleting either first leaves exactly the other's route,
// and a watcher never sees two VirtualServices for the host, also when the
// split comes after a policy with its own route.
func TestOwnedByBoth(t *testing.T) {
	m, c := start(t)

	t.Run("split after policy: never two routes; owner references to both", func(t *testing.T) {
		ns := istioNamespace(t, c)
		services(t, c, ns, "web", "web-v1", "web-v2")
		rw := testenv.WatchRoutes(t, m.GetConfig(), ns, "web")
		must(t, c.Create(ctx, policy(ns, "resilience")))
		waitReady(t, c, types.NamespacedName{Namespace: ns, Name: "resilience"})
		oneRoute(t, c, ns, "resilience", "policy:3:fault")
		must(t, c.Create(ctx, split(ns, "web")))
		oneRoute(t, c, ns, "web", "default:3:fault")
		vs := &istionetworking.VirtualService{}
		must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, vs))
		if got := owners(vs); got != "TrafficSplit/web(controller),ResiliencePolicy/resilience" {
			t.Fatalf("owner references %s", got)
		}
		// The split goes first: envtest has no garbage collector, and a
		// real one keeps an object while one owner lives; the policy
		// deletes the route of the gone split before writing its own.
		must(t, c.Delete(ctx, split(ns, "web")))
		oneRoute(t, c, ns, "resilience", "policy:3:fault")
		if n, seen := rw.Max(); n != 1 {
			t.Fatalf("%d VirtualServices for web at once (in order %v)", n, seen)
		}
	})

	t.Run("policy deleted first: the route loses its fields and its reference", func(t *testing.T) {
		ns := istioNamespace(t, c)
		services(t, c, ns, "web", "web-v1", "web-v2")
		must(t, c.Create(ctx, split(ns, "web")))
		must(t, c.Create(ctx, policy(ns, "resilience")))
		oneRoute(t, c, ns, "web", "default:3:fault")
		must(t, c.Delete(ctx, policy(ns, "resilience")))
		oneRoute(t, c, ns, "web", "default")
		testenv.Eventually(t, testenv.DefaultTimeout, "owned by the split only", func() error {
			vs := &istionetworking.VirtualService{}
			must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, vs))
			if got := owners(vs); got != "TrafficSplit/web(controller)" {
				return testenv.Errorf("owner references %s", got)
			}
			return nil
		})
	})
}

// owners renders an object's owner references, e.g.
// "TrafficSplit/web(controller),ResiliencePolicy/r".
func owners(o client.Object) string {
	var out []string
	for _, ref := range o.GetOwnerReferences() {
		s := ref.Kind + "/" + ref.Name
		if ref.Controller != nil && *ref.Controller {
			s += "(controller)"
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

// TestBreakGlass: while a BreakGlass relaxes policies in the namespace,
// the policy's fault, rate limit and outlier ejection are lifted (in its
// own outputs and in a split's composed route); when it lets go they are
// back exactly.
func TestBreakGlass(t *testing.T) {
	_, c := start(t)
	ns := istioNamespace(t, c)
	services(t, c, ns, "web", "web-v1", "web-v2")
	rp := policy(ns, "web")
	rp.Spec.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: 100, Interval: metav1.Duration{Duration: 1e9}}}
	must(t, c.Create(ctx, rp))
	key := client.ObjectKeyFromObject(rp)
	before := waitReady(t, c, key)
	if kinds(before.Status.Inventory) != "DestinationRule,EnvoyFilter,VirtualService" {
		t.Fatalf("inventory %s", kinds(before.Status.Inventory))
	}
	oneRoute(t, c, ns, "web", "policy:3:fault")
	drBefore := &istionetworking.DestinationRule{}
	must(t, c.Get(ctx, key, drBefore))

	bg := bgsim.Engage(t, c, "outage-"+ns, meshv1alpha1.ProviderIstio, ns, "istio-injection")
	testenv.Eventually(t, testenv.DefaultTimeout, "relaxed", func() error {
		got := &meshv1alpha1.ResiliencePolicy{}
		_ = c.Get(ctx, key, got)
		active := condition(&got.Status.CommonStatus, meshv1alpha1.BreakGlassActiveCondition)
		vss := virtualServices(t, c, ns)
		if !strings.HasPrefix(active, "True/BreakGlassActive") || kinds(got.Status.Inventory) != "VirtualService" ||
			len(vss) != 1 || routeFields(vss[0]) != "policy:3" {
			return testenv.Errorf("BreakGlassActive %s; inventory %s; %d VirtualServices", active, kinds(got.Status.Inventory), len(vss))
		}
		return nil
	})
	bg.Release()
	testenv.Eventually(t, testenv.DefaultTimeout, "restored", func() error {
		got := &meshv1alpha1.ResiliencePolicy{}
		_ = c.Get(ctx, key, got)
		dr := &istionetworking.DestinationRule{}
		if err := c.Get(ctx, key, dr); err != nil {
			return err
		}
		if !status.IsTrue(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition) || kinds(got.Status.Inventory) != "DestinationRule,EnvoyFilter,VirtualService" ||
			dr.Spec.TrafficPolicy.String() != drBefore.Spec.TrafficPolicy.String() {
			return testenv.Errorf("Ready %s; inventory %s", condition(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition), kinds(got.Status.Inventory))
		}
		return nil
	})
	oneRoute(t, c, ns, "web", "policy:3:fault")
}
