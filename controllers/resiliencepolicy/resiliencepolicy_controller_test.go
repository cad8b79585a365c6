package resiliencepolicy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

// kinds renders an inventory's kinds, sorted, e.g. "DestinationRule,VirtualService".
func kinds(inv []meshv1alpha1.ObjectReference) string {
	var out []string
	for _, r := range inv {
		out = append(out, r.Kind)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// support renders the report entry of field for provider, "<none>" when absent.
func support(rp *meshv1alpha1.ResiliencePolicy, field string, p meshv1alpha1.Provider) string {
	for _, s := range rp.Status.Support {
		if s.Field == field && s.Provider == p {
			return string(s.State) + ": " + s.Detail
		}
	}
	return "<none>"
}

// routeFields renders a VirtualService's routes: name, retries attempts
// and whether it has a fault, e.g. "default:3:fault".
func routeFields(vs *istionetworking.VirtualService) string {
	var out []string
	for _, hr := range vs.Spec.Http {
		s := hr.Name
		if hr.Retries != nil {
			s += fmt.Sprintf(":%d", hr.Retries.Attempts)
		}
		if hr.Fault != nil {
			s += ":fault"
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

func TestResiliencePolicyController(t *testing.T) {
	mgr, c := start(t)

	t.Run("Ready on Istio: DestinationRule and VirtualService, owned, with the per-field report", func(t *testing.T) {
		ns := istioNamespace(t, c)
		services(t, c, ns, "web")
		must(t, c.Create(ctx, policy(ns, "web")))
		key := types.NamespacedName{Namespace: ns, Name: "web"}
		rp := waitReady(t, c, key)
		if rp.Status.Provider != meshv1alpha1.ProviderIstio || kinds(rp.Status.Inventory) != "DestinationRule,VirtualService" || rp.Status.ComposedWith != "" {
			t.Fatalf("status: %+v", rp.Status)
		}
		if got := support(rp, "outlierDetection.consecutive5xxErrors", meshv1alpha1.ProviderIstio); !strings.HasPrefix(got, "Enforced: DestinationRule outlierDetection") {
			t.Fatalf("Istio report: %s", got)
		}
		if got := support(rp, "faultInjection.abort", meshv1alpha1.ProviderLinkerd); got != "Refused: Linkerd has no fault injection" {
			t.Fatalf("Linkerd report: %s", got)
		}
		if len(rp.Status.Support) != 3*3 {
			t.Fatalf("report has %d entries, want 3 fields x 3 meshes: %+v", len(rp.Status.Support), rp.Status.Support)
		}
		dr := &istionetworking.DestinationRule{}
		must(t, c.Get(ctx, key, dr))
		if !ownership.IsOwnedBy(dr, Kind, ns, "web") || dr.OwnerReferences[0].UID != rp.UID || dr.Spec.Host != "web" ||
			dr.Spec.TrafficPolicy.OutlierDetection.Consecutive_5XxErrors.GetValue() != 5 {
			t.Fatalf("DestinationRule: %v %v %+v", dr.Labels, dr.OwnerReferences, dr.Spec.TrafficPolicy)
		}
		vs := &istionetworking.VirtualService{}
		must(t, c.Get(ctx, key, vs))
		if got := routeFields(vs); got != "policy:3:fault" {
			t.Fatalf("VirtualService routes: %s", got)
		}
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		ns := istioNamespace(t, c)
		services(t, c, ns, "web")
		must(t, c.Create(ctx, policy(ns, "web")))
		key := types.NamespacedName{Namespace: ns, Name: "web"}
		waitReady(t, c, key)
		cc, writes := testenv.CachedClient(t, mgr.Manager)
		r := &Reconciler{Deps: outputs.NewDeps(cc, mgr.Manager, "test")}
		testenv.Eventually(t, testenv.DefaultTimeout, "cache current", func() error {
			cur := &meshv1alpha1.ResiliencePolicy{}
			_ = mgr.GetClient().Get(ctx, key, cur)
			if cur.Status.ObservedGeneration != cur.Generation || !status.IsTrue(&cur.Status.CommonStatus, meshv1alpha1.ReadyCondition) {
				return testenv.Errorf("cache at generation %d of %d", cur.Status.ObservedGeneration, cur.Generation)
			}
			return nil
		})
		for range 3 {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
				t.Fatal(err)
			}
		}
		if n := writes.Count(); n != 0 {
			t.Fatalf("no-op reconciles sent %d writes: %v", n, writes.Log())
		}
		// And a spec change is applied (by the running controller).
		cur := &meshv1alpha1.ResiliencePolicy{}
		must(t, c.Get(ctx, key, cur))
		cur.Spec.Retries.Attempts = 2
		must(t, c.Update(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "retries 2 applied", func() error {
			vs := &istionetworking.VirtualService{}
			if err := c.Get(ctx, key, vs); err != nil {
				return err
			}
			if got := routeFields(vs); got != "policy:2:fault" {
				return testenv.Errorf("routes %s", got)
			}
			return nil
		})
	})

	t.Run("drift is repaired", func(t *testing.T) {
		ns := istioNamespace(t, c)
		services(t, c, ns, "web")
		must(t, c.Create(ctx, policy(ns, "web")))
		key := types.NamespacedName{Namespace: ns, Name: "web"}
		waitReady(t, c, key)
		dr := &istionetworking.DestinationRule{}
		must(t, c.Get(ctx, key, dr))
		dr.Spec.TrafficPolicy.OutlierDetection = nil
		must(t, c.Update(ctx, dr))
		testenv.Eventually(t, testenv.DefaultTimeout, "outlier detection restored", func() error {
			got := &istionetworking.DestinationRule{}
			_ = c.Get(ctx, key, got)
			if got.Spec.TrafficPolicy == nil || got.Spec.TrafficPolicy.OutlierDetection.GetConsecutive_5XxErrors().GetValue() != 5 {
				return testenv.Errorf("trafficPolicy %+v", got.Spec.TrafficPolicy)
			}
			return nil
		})
	})

	t.Run("a field Istio refuses: UnsupportedFeature naming it, nothing applied, report says why", func(t *testing.T) {
		ns := istioNamespace(t, c)
		services(t, c, ns, "web")
		rp := policy(ns, "sr")
		rp.Spec.OutlierDetection.SuccessRate = &meshv1alpha1.SuccessRateEjection{MinimumHosts: 3, RequestVolume: 50, StdevFactor: 1900}
		must(t, c.Create(ctx, rp))
		got := waitReason(t, c, client.ObjectKeyFromObject(rp), meshv1alpha1.UnsupportedFeatureReason)
		msg := condition(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition)
		if !strings.Contains(msg, "outlierDetection.successRate") || !strings.Contains(msg, "no success-rate mode") || len(got.Status.Inventory) != 0 {
			t.Fatalf("Ready %s; inventory %v", msg, got.Status.Inventory)
		}
		if s := support(got, "outlierDetection.successRate", meshv1alpha1.ProviderIstio); !strings.HasPrefix(s, "Refused: ") {
			t.Fatalf("report: %s", s)
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(rp), &istionetworking.DestinationRule{}); !apierrors.IsNotFound(err) {
			t.Fatalf("DestinationRule written for a refused policy: %v", err)
		}
	})

	t.Run("missing Service is re-checked when it appears", func(t *testing.T) {
		ns := istioNamespace(t, c)
		rp := policy(ns, "web")
		must(t, c.Create(ctx, rp))
		key := client.ObjectKeyFromObject(rp)
		got := waitReason(t, c, key, meshv1alpha1.ReferenceNotFoundReason)
		if !strings.Contains(condition(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition), "spec.targetRef.name: Service "+ns+"/web does not exist") {
			t.Fatalf("Ready: %s", condition(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition))
		}
		services(t, c, ns, "web")
		waitReady(t, c, key)
	})

	t.Run("two policies for one Service: the younger is a Conflict", func(t *testing.T) {
		ns := istioNamespace(t, c)
		services(t, c, ns, "web")
		must(t, c.Create(ctx, policy(ns, "first")))
		waitReady(t, c, types.NamespacedName{Namespace: ns, Name: "first"})
		second := policy(ns, "second")
		second.Spec.FaultInjection, second.Spec.Retries = nil, nil
		must(t, c.Create(ctx, second))
		got := waitReason(t, c, client.ObjectKeyFromObject(second), meshv1alpha1.ConflictReason)
		if msg := condition(&got.Status.CommonStatus, meshv1alpha1.ReadyCondition); !strings.Contains(msg, "already has ResiliencePolicy first") || len(got.Status.Inventory) != 0 {
			t.Fatalf("Ready %s; inventory %v", msg, got.Status.Inventory)
		}
		must(t, c.Delete(ctx, &meshv1alpha1.ResiliencePolicy{ObjectMeta: metav1.ObjectMeta{Name: "first", Namespace: ns}}))
		waitReady(t, c, client.ObjectKeyFromObject(second))
	})
}
