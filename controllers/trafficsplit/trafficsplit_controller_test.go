package trafficsplit

import (
	"strings"
	"testing"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

func TestTrafficSplitController(t *testing.T) {
	mgr, c := start(t)

	t.Run("Ready on Istio with an owned VirtualService", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key, ts := readySplit(t, c, ns)
		if ts.Status.Provider != meshv1alpha1.ProviderIstio || ts.Status.Weights != "web-v1=90,web-v2=10" ||
			len(ts.Status.Inventory) != 1 || ts.Status.Inventory[0].Kind != "VirtualService" {
			t.Fatalf("status: %+v", ts.Status)
		}
		if condition(ts, meshv1alpha1.ResolvedRefsCondition)[:4] != "True" {
			t.Fatalf("ResolvedRefs: %s", condition(ts, meshv1alpha1.ResolvedRefsCondition))
		}
		vs := &istionetworking.VirtualService{}
		must(t, c.Get(ctx, key, vs))
		if !ownership.IsOwnedBy(vs, Kind, ns, "web") || len(vs.OwnerReferences) != 1 || vs.OwnerReferences[0].UID != ts.UID {
			t.Fatalf("VirtualService not owned: labels %v owners %v", vs.Labels, vs.OwnerReferences)
		}
	})

	// A no-op reconcile sends no write request.
	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key, _ := readySplit(t, c, ns)
		// The manager's own kind of client: reads from its cache.
		cc, writes := testenv.CachedClient(t, mgr.Manager)
		r := &Reconciler{Deps: outputs.NewDeps(cc, mgr.Manager, "test")}
		// Let the cache see the last status patch first.
		testenv.Eventually(t, testenv.DefaultTimeout, "cache current", func() error {
			cur := &meshv1alpha1.TrafficSplit{}
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
		// And a spec change through the same reconciler does write: the
		// counter is live.
		cur := &meshv1alpha1.TrafficSplit{}
		must(t, c.Get(ctx, key, cur))
		cur.Spec.Backends[0].Weight, cur.Spec.Backends[1].Weight = 80, 20
		must(t, c.Update(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "weights 80/20", func() error {
			got := &meshv1alpha1.TrafficSplit{}
			_ = c.Get(ctx, key, got)
			if got.Status.Weights != "web-v1=80,web-v2=20" || got.Status.ObservedGeneration != got.Generation {
				return testenv.Errorf("weights %s", got.Status.Weights)
			}
			return nil
		})
	})

	t.Run("drift is repaired and foreign fields are kept", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key, _ := readySplit(t, c, ns)
		vs := &istionetworking.VirtualService{}
		must(t, c.Get(ctx, key, vs))
		vs.Spec.Hosts = []string{"hijacked"}
		if vs.Annotations == nil {
			vs.Annotations = map[string]string{}
		}
		vs.Annotations["gitops.example/keep"] = "yes"
		must(t, c.Update(ctx, vs))
		testenv.Eventually(t, testenv.DefaultTimeout, "hosts restored", func() error {
			got := &istionetworking.VirtualService{}
			_ = c.Get(ctx, key, got)
			if len(got.Spec.Hosts) != 1 || got.Spec.Hosts[0] != "web" || got.Annotations["gitops.example/keep"] != "yes" {
				return testenv.Errorf("hosts %s", strings.Join(got.Spec.Hosts, ","))
			}
			return nil
		})
		must(t, c.Delete(ctx, vs))
		testenv.Eventually(t, testenv.DefaultTimeout, "VirtualService recreated", func() error {
			got := &istionetworking.VirtualService{}
			if err := c.Get(ctx, key, got); err != nil {
				return err
			}
			if got.UID == vs.UID {
				return testenv.Errorf("still the deleted VirtualService")
			}
			return nil
		})
	})

	t.Run("missing Service is re-checked when it appears", func(t *testing.T) {
		ns := istioNamespace(t, c)
		services(t, c, ns, "web", "web-v1", "web-v2")
		ts := split(ns, "late")
		ts.Spec.Backends[1].Name = "web-v3"
		must(t, c.Create(ctx, ts))
		lkey := client.ObjectKeyFromObject(ts)
		got := waitReason(t, c, lkey, meshv1alpha1.ReferenceNotFoundReason)
		if !strings.HasPrefix(condition(got, meshv1alpha1.ResolvedRefsCondition), "False/ReferenceNotFound") ||
			!strings.Contains(condition(got, meshv1alpha1.ReadyCondition), "web-v3") {
			t.Fatalf("conditions: %s", condition(got, meshv1alpha1.ResolvedRefsCondition))
		}
		must(t, c.Create(ctx, service(ns, "web-v3", 8080)))
		waitReady(t, c, lkey)
	})

	t.Run("port mismatch is InvalidSpec", func(t *testing.T) {
		ns := istioNamespace(t, c)
		services(t, c, ns, "web", "web-v1", "web-v2")
		ts := split(ns, "badport")
		ts.Spec.Service.Port = ptr[int32](9999)
		must(t, c.Create(ctx, ts))
		got := waitReason(t, c, client.ObjectKeyFromObject(ts), meshv1alpha1.InvalidSpecReason)
		if !strings.Contains(condition(got, meshv1alpha1.ResolvedRefsCondition), "no port 9999") {
			t.Fatalf("ResolvedRefs: %s", condition(got, meshv1alpha1.ResolvedRefsCondition))
		}
	})

	// Linkerd namespaces: conflict, unsupported feature, provider switch.
	t.Run("a foreign object is never taken over", func(t *testing.T) {
		ns := linkerdNamespace(t, c)
		services(t, c, ns, "web", "web-v1", "web-v2")
		port := gatewayv1.PortNumber(8080)
		foreign := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: ns},
			Spec: gatewayv1.HTTPRouteSpec{CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Group: ptr(gatewayv1.Group("")), Kind: ptr(gatewayv1.Kind("Service")), Name: "web", Port: &port}}}}}
		must(t, c.Create(ctx, foreign))
		must(t, c.Create(ctx, split(ns, "taken")))
		got := waitReason(t, c, types.NamespacedName{Namespace: ns, Name: "taken"}, meshv1alpha1.ConflictReason)
		if !strings.Contains(condition(got, meshv1alpha1.ReadyCondition), "not created by Meshplane") {
			t.Fatalf("Ready: %s", condition(got, meshv1alpha1.ReadyCondition))
		}
		after := &gatewayv1.HTTPRoute{}
		must(t, c.Get(ctx, client.ObjectKeyFromObject(foreign), after))
		if after.Labels[ownership.OwnerLabel] != "" || after.ResourceVersion != foreign.ResourceVersion {
			t.Fatalf("foreign HTTPRoute was modified: %+v", after)
		}
	})

	t.Run("unsupported feature applies nothing", func(t *testing.T) {
		ns := linkerdNamespace(t, c)
		services(t, c, ns, "web", "web-v1", "web-v2", "shadow")
		ts := split(ns, "mirrored")
		ts.Spec.Mirror = &meshv1alpha1.MirrorPolicy{Backend: meshv1alpha1.ServiceReference{Name: "shadow"}}
		must(t, c.Create(ctx, ts))
		got := waitReason(t, c, client.ObjectKeyFromObject(ts), meshv1alpha1.UnsupportedFeatureReason)
		msg := condition(got, meshv1alpha1.ReadyCondition)
		if !strings.Contains(msg, "Mirroring") || !strings.Contains(msg, "Linkerd") || !status.IsTrue(&got.Status.CommonStatus, meshv1alpha1.StalledCondition) {
			t.Fatalf("Ready: %s", msg)
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(ts), &gatewayv1.HTTPRoute{}); !apierrors.IsNotFound(err) {
			t.Fatalf("HTTPRoute for an unsupported split: %v", err)
		}
	})

	t.Run("provider switch replaces the outputs", func(t *testing.T) {
		ns := linkerdNamespace(t, c)
		services(t, c, ns, "web", "web-v1", "web-v2")
		must(t, c.Create(ctx, split(ns, "moving")))
		mkey := types.NamespacedName{Namespace: ns, Name: "moving"}
		got := waitReady(t, c, mkey)
		if got.Status.Provider != meshv1alpha1.ProviderLinkerd {
			t.Fatalf("provider %s", got.Status.Provider)
		}
		must(t, c.Get(ctx, mkey, &gatewayv1.HTTPRoute{}))
		n := &corev1.Namespace{}
		must(t, c.Get(ctx, client.ObjectKey{Name: ns}, n))
		delete(n.Annotations, "linkerd.io/inject")
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels["istio-injection"] = "enabled"
		must(t, c.Update(ctx, n))
		testenv.Eventually(t, testenv.DefaultTimeout, "switch to Istio", func() error {
			cur := &meshv1alpha1.TrafficSplit{}
			_ = c.Get(ctx, mkey, cur)
			routeErr := c.Get(ctx, mkey, &gatewayv1.HTTPRoute{})
			vsErr := c.Get(ctx, mkey, &istionetworking.VirtualService{})
			if cur.Status.Provider != meshv1alpha1.ProviderIstio || !apierrors.IsNotFound(routeErr) || vsErr != nil {
				return testenv.Errorf("provider %s; HTTPRoute: %v; VirtualService: %v", cur.Status.Provider, routeErr, vsErr)
			}
			return nil
		})
	})

	t.Run("deletion leaves outputs to the garbage collector", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key, _ := readySplit(t, c, ns)
		cur := &meshv1alpha1.TrafficSplit{}
		must(t, c.Get(ctx, key, cur))
		if len(cur.Finalizers) != 0 {
			t.Fatalf("finalizers %v", cur.Finalizers)
		}
		must(t, c.Delete(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "split gone", func() error {
			if err := c.Get(ctx, key, &meshv1alpha1.TrafficSplit{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("split still there: %v", err)
			}
			return nil
		})
		vs := &istionetworking.VirtualService{}
		must(t, c.Get(ctx, key, vs))
		if len(vs.OwnerReferences) != 1 || vs.OwnerReferences[0].UID != cur.UID || vs.OwnerReferences[0].Controller == nil || !*vs.OwnerReferences[0].Controller {
			t.Fatalf("VirtualService owner references %v: the garbage collector would not delete it", vs.OwnerReferences)
		}
	})
}
