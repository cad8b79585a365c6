package trafficsplit

import (
	"context"

	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/manager"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/cluster"
)

func ptr[T any](v T) *T { return &v }

func init() { ctrl.SetLogger(logr.Discard()) }

// startManager runs a manager with only this controller against cfg.
func startManager(t *testing.T, cfg *rest.Config) *manager.Manager {
	t.Helper()
	mgr, err := manager.New(cfg, manager.Options{MetricsAddr: "0", ProbeAddr: "0", OperatorNamespace: "meshplane-system", SyncPeriod: time.Hour, SkipControllerNameValidation: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := Setup(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	return mgr
}

func eventually(t *testing.T, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ok, msg := f()
		if ok {
			return
		}
		last = msg
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %s", what, last)
}

func service(ns, name string, ports ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "p" + string(rune('a'+p%26)), Port: p})
	}
	return s
}

func split(ns, name string) *meshv1alpha1.TrafficSplit {
	return &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web"},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 90}, {Name: "web-v2", Weight: 10}}}}
}

func condition(ts *meshv1alpha1.TrafficSplit, typ string) string {
	c := status.Get(&ts.Status.CommonStatus, typ)
	if c == nil {
		return "<none>"
	}
	return string(c.Status) + "/" + c.Reason + ": " + c.Message
}

func waitReady(t *testing.T, c client.Client, key types.NamespacedName) *meshv1alpha1.TrafficSplit {
	t.Helper()
	ts := &meshv1alpha1.TrafficSplit{}
	eventually(t, "Ready "+key.String(), func() (bool, string) {
		if err := c.Get(context.Background(), key, ts); err != nil {
			return false, err.Error()
		}
		return status.IsTrue(&ts.Status.CommonStatus, meshv1alpha1.ReadyCondition) && ts.Status.ObservedGeneration == ts.Generation,
			condition(ts, meshv1alpha1.ReadyCondition)
	})
	return ts
}

func waitReason(t *testing.T, c client.Client, key types.NamespacedName, reason string) *meshv1alpha1.TrafficSplit {
	t.Helper()
	ts := &meshv1alpha1.TrafficSplit{}
	eventually(t, reason+" on "+key.String(), func() (bool, string) {
		if err := c.Get(context.Background(), key, ts); err != nil {
			return false, err.Error()
		}
		r := status.Get(&ts.Status.CommonStatus, meshv1alpha1.ReadyCondition)
		return r != nil && r.Status == metav1.ConditionFalse && r.Reason == reason && ts.Status.ObservedGeneration == ts.Generation,
			condition(ts, meshv1alpha1.ReadyCondition)
	})
	return ts
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestTrafficSplitController(t *testing.T) {
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{})
	mgr := startManager(t, cfg)
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	must(t, err)
	ctx := context.Background()
	must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"istio-injection": "enabled"}}}))
	for _, s := range []*corev1.Service{service("shop", "web", 8080), service("shop", "web-v1", 8080), service("shop", "web-v2", 8080)} {
		must(t, c.Create(ctx, s))
	}

	// Ready on Istio with a VirtualService carrying labels and owner.
	must(t, c.Create(ctx, split("shop", "web")))
	key := types.NamespacedName{Namespace: "shop", Name: "web"}
	ts := waitReady(t, c, key)
	if ts.Status.Provider != meshv1alpha1.ProviderIstio || ts.Status.Weights != "web-v1=90,web-v2=10" ||
		len(ts.Status.Inventory) != 1 || ts.Status.Inventory[0].Kind != "VirtualService" {
		t.Fatalf("status: %+v", ts.Status)
	}
	if condition(ts, meshv1alpha1.ResolvedRefsCondition)[:4] != "True" {
		t.Fatalf("ResolvedRefs: %s", condition(ts, meshv1alpha1.ResolvedRefsCondition))
	}
	vs := &istionetworking.VirtualService{}
	must(t, c.Get(ctx, key, vs))
	if !ownership.IsOwnedBy(vs, Kind, "shop", "web") || len(vs.OwnerReferences) != 1 || vs.OwnerReferences[0].UID != ts.UID {
		t.Fatalf("VirtualService not owned: labels %v owners %v", vs.Labels, vs.OwnerReferences)
	}

	// A no-op reconcile sends no write request.
	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		var writes atomic.Int32
		count := func(kind string) { writes.Add(1); t.Logf("write: %s", kind) }
		// The manager's own kind of client: reads from its cache.
		wc, err := client.NewWithWatch(cfg, client.Options{Scheme: mgr.GetScheme(), Cache: &client.CacheOptions{Reader: mgr.GetCache()}})
		must(t, err)
		ic := interceptor.NewClient(wc, interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
				count("create")
				return c.Create(ctx, o, opts...)
			},
			Update: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.UpdateOption) error {
				count("update")
				return c.Update(ctx, o, opts...)
			},
			Patch: func(ctx context.Context, c client.WithWatch, o client.Object, p client.Patch, opts ...client.PatchOption) error {
				count("patch")
				return c.Patch(ctx, o, p, opts...)
			},
			Apply: func(ctx context.Context, c client.WithWatch, o runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
				count("apply")
				return c.Apply(ctx, o, opts...)
			},
			Delete: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.DeleteOption) error {
				count("delete")
				return c.Delete(ctx, o, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				count("status patch")
				return c.SubResource(sub).Patch(ctx, o, p, opts...)
			},
			SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, o client.Object, opts ...client.SubResourceUpdateOption) error {
				count("status update")
				return c.SubResource(sub).Update(ctx, o, opts...)
			},
		})
		r := &Reconciler{Client: ic, Registry: mgr.Registry, Resolver: &discovery.Resolver{Reader: ic, Registry: mgr.Registry},
			Applier: &apply.Applier{Client: ic, Scheme: mgr.GetScheme()}, Events: mgr.GetEventRecorder("test")}
		// Let the cache see the last status patch first.
		eventually(t, "cache current", func() (bool, string) {
			cur := &meshv1alpha1.TrafficSplit{}
			_ = mgr.GetClient().Get(ctx, key, cur)
			return cur.Status.ObservedGeneration == cur.Generation && status.IsTrue(&cur.Status.CommonStatus, meshv1alpha1.ReadyCondition), ""
		})
		for range 3 {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
				t.Fatal(err)
			}
		}
		if n := writes.Load(); n != 0 {
			t.Fatalf("no-op reconciles sent %d writes", n)
		}
		// And a spec change through the same reconciler does write: the
		// counter is live.
		cur := &meshv1alpha1.TrafficSplit{}
		must(t, c.Get(ctx, key, cur))
		cur.Spec.Backends[0].Weight, cur.Spec.Backends[1].Weight = 80, 20
		must(t, c.Update(ctx, cur))
		eventually(t, "weights 80/20", func() (bool, string) {
			got := &meshv1alpha1.TrafficSplit{}
			_ = c.Get(ctx, key, got)
			return got.Status.Weights == "web-v1=80,web-v2=20" && got.Status.ObservedGeneration == got.Generation, got.Status.Weights
		})
	})

	t.Run("drift is repaired and foreign fields are kept", func(t *testing.T) {
		vs := &istionetworking.VirtualService{}
		must(t, c.Get(ctx, key, vs))
		vs.Spec.Hosts = []string{"hijacked"}
		if vs.Annotations == nil {
			vs.Annotations = map[string]string{}
		}
		vs.Annotations["gitops.example/keep"] = "yes"
		must(t, c.Update(ctx, vs))
		eventually(t, "hosts restored", func() (bool, string) {
			got := &istionetworking.VirtualService{}
			_ = c.Get(ctx, key, got)
			return len(got.Spec.Hosts) == 1 && got.Spec.Hosts[0] == "web" && got.Annotations["gitops.example/keep"] == "yes",
				strings.Join(got.Spec.Hosts, ",")
		})
		must(t, c.Delete(ctx, vs))
		eventually(t, "VirtualService recreated", func() (bool, string) {
			got := &istionetworking.VirtualService{}
			err := c.Get(ctx, key, got)
			return err == nil && got.UID != vs.UID, ""
		})
	})

	t.Run("missing Service is re-checked when it appears", func(t *testing.T) {
		ts := split("shop", "late")
		ts.Spec.Backends[1].Name = "web-v3"
		must(t, c.Create(ctx, ts))
		lkey := client.ObjectKeyFromObject(ts)
		got := waitReason(t, c, lkey, meshv1alpha1.ReferenceNotFoundReason)
		if !strings.HasPrefix(condition(got, meshv1alpha1.ResolvedRefsCondition), "False/ReferenceNotFound") ||
			!strings.Contains(condition(got, meshv1alpha1.ReadyCondition), "web-v3") {
			t.Fatalf("conditions: %s", condition(got, meshv1alpha1.ResolvedRefsCondition))
		}
		must(t, c.Create(ctx, service("shop", "web-v3", 8080)))
		waitReady(t, c, lkey)
	})

	t.Run("port mismatch is InvalidSpec", func(t *testing.T) {
		ts := split("shop", "badport")
		ts.Spec.Service.Port = ptr[int32](9999)
		must(t, c.Create(ctx, ts))
		got := waitReason(t, c, client.ObjectKeyFromObject(ts), meshv1alpha1.InvalidSpecReason)
		if !strings.Contains(condition(got, meshv1alpha1.ResolvedRefsCondition), "no port 9999") {
			t.Fatalf("ResolvedRefs: %s", condition(got, meshv1alpha1.ResolvedRefsCondition))
		}
	})

	// Linkerd namespace: conflict, unsupported feature, provider switch.
	must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "books", Annotations: map[string]string{"linkerd.io/inject": "enabled"}}}))
	for _, s := range []*corev1.Service{service("books", "web", 8080), service("books", "web-v1", 8080), service("books", "web-v2", 8080), service("books", "shadow", 8080)} {
		must(t, c.Create(ctx, s))
	}

	t.Run("a foreign object is never taken over", func(t *testing.T) {
		port := gatewayv1.PortNumber(8080)
		foreign := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: "books"},
			Spec: gatewayv1.HTTPRouteSpec{CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Group: ptr(gatewayv1.Group("")), Kind: ptr(gatewayv1.Kind("Service")), Name: "web", Port: &port}}}}}
		must(t, c.Create(ctx, foreign))
		must(t, c.Create(ctx, split("books", "taken")))
		got := waitReason(t, c, types.NamespacedName{Namespace: "books", Name: "taken"}, meshv1alpha1.ConflictReason)
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
		ts := split("books", "mirrored")
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
		must(t, c.Create(ctx, split("books", "moving")))
		mkey := types.NamespacedName{Namespace: "books", Name: "moving"}
		got := waitReady(t, c, mkey)
		if got.Status.Provider != meshv1alpha1.ProviderLinkerd {
			t.Fatalf("provider %s", got.Status.Provider)
		}
		must(t, c.Get(ctx, mkey, &gatewayv1.HTTPRoute{}))
		ns := &corev1.Namespace{}
		must(t, c.Get(ctx, client.ObjectKey{Name: "books"}, ns))
		delete(ns.Annotations, "linkerd.io/inject")
		ns.Labels["istio-injection"] = "enabled"
		must(t, c.Update(ctx, ns))
		eventually(t, "switch to Istio", func() (bool, string) {
			cur := &meshv1alpha1.TrafficSplit{}
			_ = c.Get(ctx, mkey, cur)
			routeErr := c.Get(ctx, mkey, &gatewayv1.HTTPRoute{})
			vsErr := c.Get(ctx, mkey, &istionetworking.VirtualService{})
			return cur.Status.Provider == meshv1alpha1.ProviderIstio && apierrors.IsNotFound(routeErr) && vsErr == nil,
				string(cur.Status.Provider)
		})
	})

	t.Run("deletion leaves outputs to the garbage collector", func(t *testing.T) {
		cur := &meshv1alpha1.TrafficSplit{}
		must(t, c.Get(ctx, key, cur))
		if len(cur.Finalizers) != 0 {
			t.Fatalf("finalizers %v", cur.Finalizers)
		}
		must(t, c.Delete(ctx, cur))
		eventually(t, "split gone", func() (bool, string) {
			return apierrors.IsNotFound(c.Get(ctx, key, &meshv1alpha1.TrafficSplit{})), ""
		})
		vs := &istionetworking.VirtualService{}
		must(t, c.Get(ctx, key, vs))
		if len(vs.OwnerReferences) != 1 || vs.OwnerReferences[0].UID != cur.UID || vs.OwnerReferences[0].Controller == nil || !*vs.OwnerReferences[0].Controller {
			t.Fatalf("VirtualService owner references %v: the garbage collector would not delete it", vs.OwnerReferences)
		}
	})
}
