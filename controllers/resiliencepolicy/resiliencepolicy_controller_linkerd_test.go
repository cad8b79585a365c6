package resiliencepolicy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/bgsim"
	"github.com/meshplane/meshplane/test/testenv"
)

// userAnnotations are the annotations the user's Service carries before
// any policy: one Linkerd annotation the policy overrides (its value must
// come back) and one it never touches.
var userAnnotations = map[string]string{
	"balancer.linkerd.io/failure-accrual-consecutive-max-failures": "9",
	"team": "shop",
}

func linkerdNamespace(t *testing.T, c client.Client) string {
	return testenv.AnnotatedNamespace(t, c, map[string]string{"bg-test": "on"}, map[string]string{"linkerd.io/inject": "enabled"})
}

// linkerdService creates the user's Service web with userAnnotations.
func linkerdService(t *testing.T, c client.Client, ns string) {
	t.Helper()
	svc := service(ns, "web", 8080)
	svc.Annotations = maps.Clone(userAnnotations)
	must(t, c.Create(ctx, svc))
}

// linkerdPolicy sets failure accrual, retries and a request timeout.
func linkerdPolicy(ns string) *meshv1alpha1.ResiliencePolicy {
	rp := policy(ns, "web")
	rp.Spec.FaultInjection = nil
	rp.Spec.OutlierDetection.BaseEjectionTime = dur("30s")
	rp.Spec.Timeouts = &meshv1alpha1.Timeouts{Request: dur("10s")}
	return rp
}

// linkerdWant are the Service's annotations while linkerdPolicy applies.
var linkerdWant = map[string]string{
	"balancer.linkerd.io/failure-accrual":                          "consecutive",
	"balancer.linkerd.io/failure-accrual-consecutive-max-failures": "5",
	"balancer.linkerd.io/failure-accrual-consecutive-min-penalty":  "30s",
	"retry.linkerd.io/http":                                        "5xx",
	"retry.linkerd.io/limit":                                       "3",
	"timeout.linkerd.io/request":                                   "10s",
	"team":                                                         "shop",
}

// serviceAnnotations waits until Service ns/web carries exactly want.
func serviceAnnotations(t *testing.T, c client.Client, ns, what string, want map[string]string) {
	t.Helper()
	testenv.Eventually(t, testenv.DefaultTimeout, what, func() error {
		svc := &corev1.Service{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web"}, svc); err != nil {
			return err
		}
		if !maps.Equal(svc.Annotations, want) {
			return testenv.Errorf("annotations %v, want %v", svc.Annotations, want)
		}
		return nil
	})
}

// TestLinkerdPolicy: a policy for Linkerd writes only its annotations on
// the user's Service (shared fields, previous values recorded before the
// write), is Ready with an Enforced report, sends no write when nothing
// changed, repairs a changed annotation, gives outlier ejection back while
// a BreakGlass relaxes policies and sets it again after, and on deletion
// leaves the Service's annotations exactly as they were.
func TestLinkerdPolicy(t *testing.T) {
	mgr, c := start(t)
	ns := linkerdNamespace(t, c)
	linkerdService(t, c, ns)
	must(t, c.Create(ctx, linkerdPolicy(ns)))
	key := types.NamespacedName{Namespace: ns, Name: "web"}

	rp := waitReady(t, c, key)
	serviceAnnotations(t, c, ns, "annotations applied", linkerdWant)
	if rp.Status.Provider != meshv1alpha1.ProviderLinkerd || kinds(rp.Status.Inventory) != "Service" ||
		!controllerutil.ContainsFinalizer(rp, Finalizer) {
		t.Fatalf("status %+v; finalizers %v", rp.Status, rp.Finalizers)
	}
	if got := support(rp, "outlierDetection.consecutive5xxErrors", meshv1alpha1.ProviderLinkerd); !strings.HasPrefix(got, "Enforced: Service annotations balancer.linkerd.io/failure-accrual: consecutive") {
		t.Fatalf("report: %s", got)
	}
	if got := support(rp, "retries.attempts", meshv1alpha1.ProviderLinkerd); !strings.HasPrefix(got, "Enforced: retry.linkerd.io/limit on the Service") {
		t.Fatalf("report: %s", got)
	}
	var recorded []string
	for _, f := range rp.Status.SharedFields {
		prev := "<none>"
		if f.Previous != nil {
			prev = *f.Previous
		}
		recorded = append(recorded, fmt.Sprintf("%s=%s", f.Field, prev))
	}
	slices.Sort(recorded)
	if want := "metadata.annotations[balancer.linkerd.io/failure-accrual-consecutive-max-failures]=9"; len(recorded) != 6 || !slices.Contains(recorded, want) {
		t.Fatalf("sharedFields %v, want 6 with %s", recorded, want)
	}

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		cc, writes := testenv.CachedClient(t, mgr.Manager)
		r := &Reconciler{Deps: outputs.NewDeps(cc, mgr.Manager, "test")}
		testenv.Eventually(t, testenv.DefaultTimeout, "cache current", func() error {
			cur := &meshv1alpha1.ResiliencePolicy{}
			_ = mgr.GetClient().Get(ctx, key, cur)
			if cur.Status.ObservedGeneration != cur.Generation || !status.IsTrue(&cur.Status.CommonStatus, meshv1alpha1.ReadyCondition) ||
				len(cur.Status.SharedFields) != 6 {
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
	})

	t.Run("a changed annotation is repaired", func(t *testing.T) {
		svc := &corev1.Service{}
		must(t, c.Get(ctx, key, svc))
		svc.Annotations["retry.linkerd.io/limit"] = "7"
		must(t, c.Update(ctx, svc))
		serviceAnnotations(t, c, ns, "retry limit repaired", linkerdWant)
	})

	t.Run("BreakGlass gives outlier ejection back and restores it", func(t *testing.T) {
		bg := bgsim.Engage(t, c, "outage-"+ns, meshv1alpha1.ProviderLinkerd, ns, "bg-test")
		relaxed := maps.Clone(linkerdWant)
		delete(relaxed, "balancer.linkerd.io/failure-accrual")
		delete(relaxed, "balancer.linkerd.io/failure-accrual-consecutive-min-penalty")
		relaxed["balancer.linkerd.io/failure-accrual-consecutive-max-failures"] = "9"
		serviceAnnotations(t, c, ns, "outlier ejection lifted", relaxed)
		testenv.Eventually(t, testenv.DefaultTimeout, "BreakGlassActive", func() error {
			got := &meshv1alpha1.ResiliencePolicy{}
			_ = c.Get(ctx, key, got)
			if active := condition(&got.Status.CommonStatus, meshv1alpha1.BreakGlassActiveCondition); !strings.HasPrefix(active, "True/BreakGlassActive") {
				return testenv.Errorf("BreakGlassActive %s", active)
			}
			return nil
		})
		bg.Release()
		serviceAnnotations(t, c, ns, "outlier ejection back", linkerdWant)
		waitReady(t, c, key)
	})

	t.Run("deletion restores the Service's annotations exactly", func(t *testing.T) {
		must(t, c.Delete(ctx, &meshv1alpha1.ResiliencePolicy{ObjectMeta: rp.ObjectMeta}))
		serviceAnnotations(t, c, ns, "annotations restored", userAnnotations)
		testenv.Eventually(t, testenv.DefaultTimeout, "policy gone", func() error {
			if err := c.Get(ctx, key, &meshv1alpha1.ResiliencePolicy{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("policy still there: %v", err)
			}
			return nil
		})
	})
}

// TestLinkerdComposition: with a TrafficSplit routing the Service, the
// split's HTTPRoute carries the policy's retries and timeout (Linkerd
// reads a route's before its Service's) and the Service only the failure
// accrual; deleting the split moves them back to the Service.
func TestLinkerdComposition(t *testing.T) {
	_, c := start(t)
	ns := linkerdNamespace(t, c)
	linkerdService(t, c, ns)
	services(t, c, ns, "web-v1", "web-v2")
	must(t, c.Create(ctx, split(ns, "web-split")))
	must(t, c.Create(ctx, linkerdPolicy(ns)))
	key := types.NamespacedName{Namespace: ns, Name: "web"}
	testenv.Eventually(t, testenv.DefaultTimeout, "composed", func() error {
		rp := &meshv1alpha1.ResiliencePolicy{}
		if err := c.Get(ctx, key, rp); err != nil {
			return err
		}
		route := &gatewayv1.HTTPRoute{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-split"}, route); err != nil {
			return err
		}
		if !status.IsTrue(&rp.Status.CommonStatus, meshv1alpha1.ReadyCondition) || rp.Status.ComposedWith != "web-split" ||
			route.Annotations["retry.linkerd.io/limit"] != "3" || route.Annotations["timeout.linkerd.io/request"] != "10s" {
			return testenv.Errorf("Ready %s; composedWith %q; route annotations %v",
				condition(&rp.Status.CommonStatus, meshv1alpha1.ReadyCondition), rp.Status.ComposedWith, route.Annotations)
		}
		return nil
	})
	accrualOnly := map[string]string{
		"balancer.linkerd.io/failure-accrual":                          "consecutive",
		"balancer.linkerd.io/failure-accrual-consecutive-max-failures": "5",
		"balancer.linkerd.io/failure-accrual-consecutive-min-penalty":  "30s",
		"team": "shop",
	}
	serviceAnnotations(t, c, ns, "only failure accrual on the Service", accrualOnly)

	must(t, c.Delete(ctx, split(ns, "web-split")))
	serviceAnnotations(t, c, ns, "retries and timeout back on the Service", linkerdWant)
}

func dur(s string) *metav1.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return &metav1.Duration{Duration: d}
}
