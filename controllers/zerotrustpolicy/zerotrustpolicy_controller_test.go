package zerotrustpolicy

import (
	"context"
	"fmt"

	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"

	ciliumv2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/v2"
	linkerdserver "github.com/linkerd/linkerd2/controller/gen/apis/server/v1beta3"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/discovery"
	"github.com/meshplane/meshplane/internal/manager"
	linkerdpolicy "github.com/meshplane/meshplane/internal/mesh/linkerd"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/cluster"
)

func init() { ctrl.SetLogger(logr.Discard()) }

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

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ready(c client.Client, key types.NamespacedName) (bool, string) {
	p := &meshv1alpha1.ZeroTrustPolicy{}
	if err := c.Get(context.Background(), key, p); err != nil {
		return false, err.Error()
	}
	r := status.Get(&p.Status.CommonStatus, meshv1alpha1.ReadyCondition)
	if r == nil {
		return false, "no Ready"
	}
	return r.Status == metav1.ConditionTrue && p.Status.ObservedGeneration == p.Generation, r.Reason + ": " + r.Message
}

func reason(c client.Client, key types.NamespacedName) string {
	p := &meshv1alpha1.ZeroTrustPolicy{}
	if err := c.Get(context.Background(), key, p); err != nil {
		return err.Error()
	}
	if r := status.Get(&p.Status.CommonStatus, meshv1alpha1.ReadyCondition); r != nil && p.Status.ObservedGeneration == p.Generation {
		return r.Reason + ": " + r.Message
	}
	return ""
}

func policy(ns, name string) *meshv1alpha1.ZeroTrustPolicy {
	return &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{
			From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}}},
			To:   []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Methods: []meshv1alpha1.HTTPMethod{"GET"}}},
		}}}}
}

func TestZeroTrustPolicyController(t *testing.T) {
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{})
	mgr := startManager(t, cfg)
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	must(t, err)
	ctx := context.Background()

	// Istio: PeerAuthentication + AuthorizationPolicy, owned, no finalizer.
	must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"istio-injection": "enabled"}}}))
	must(t, c.Create(ctx, policy("shop", "web")))
	key := types.NamespacedName{Namespace: "shop", Name: "web"}
	eventually(t, "Ready on Istio", func() (bool, string) { return ready(c, key) })
	p := &meshv1alpha1.ZeroTrustPolicy{}
	must(t, c.Get(ctx, key, p))
	if p.Status.Provider != meshv1alpha1.ProviderIstio || p.Status.Mode != "Strict/Deny" || len(p.Status.Inventory) != 2 || len(p.Finalizers) != 0 {
		t.Fatalf("status %+v finalizers %v", p.Status, p.Finalizers)
	}
	pa := &istiosecurity.PeerAuthentication{}
	must(t, c.Get(ctx, key, pa))
	if !ownership.IsOwnedBy(pa, Kind, "shop", "web") || len(pa.OwnerReferences) != 1 {
		t.Fatalf("PeerAuthentication not owned: %v %v", pa.Labels, pa.OwnerReferences)
	}

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		var writes atomic.Int32
		wc, err := client.NewWithWatch(cfg, client.Options{Scheme: mgr.GetScheme(), Cache: &client.CacheOptions{Reader: mgr.GetCache()}})
		must(t, err)
		ic := interceptor.NewClient(wc, interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
				writes.Add(1)
				return c.Create(ctx, o, opts...)
			},
			Update: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.UpdateOption) error {
				writes.Add(1)
				return c.Update(ctx, o, opts...)
			},
			Patch: func(ctx context.Context, c client.WithWatch, o client.Object, pt client.Patch, opts ...client.PatchOption) error {
				writes.Add(1)
				return c.Patch(ctx, o, pt, opts...)
			},
			Apply: func(ctx context.Context, c client.WithWatch, o runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
				writes.Add(1)
				return c.Apply(ctx, o, opts...)
			},
			Delete: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.DeleteOption) error {
				writes.Add(1)
				return c.Delete(ctx, o, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, pt client.Patch, opts ...client.SubResourcePatchOption) error {
				writes.Add(1)
				return c.SubResource(sub).Patch(ctx, o, pt, opts...)
			},
		})
		r := &Reconciler{Client: ic, Registry: mgr.Registry, Resolver: &discovery.Resolver{Reader: ic, Registry: mgr.Registry},
			Applier: &apply.Applier{Client: ic, Scheme: mgr.GetScheme()}, Events: mgr.GetEventRecorder("test")}
		eventually(t, "cache current", func() (bool, string) { return ready(mgr.GetClient(), key) })
		for range 3 {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
				t.Fatal(err)
			}
		}
		if n := writes.Load(); n != 0 {
			t.Fatalf("no-op reconciles sent %d writes", n)
		}
	})

	t.Run("prune when the default action becomes Allow", func(t *testing.T) {
		cur := &meshv1alpha1.ZeroTrustPolicy{}
		must(t, c.Get(ctx, key, cur))
		cur.Spec.Rules = nil
		cur.Spec.DefaultAction = meshv1alpha1.ActionAllow
		must(t, c.Update(ctx, cur))
		eventually(t, "AuthorizationPolicy pruned", func() (bool, string) {
			err := c.Get(ctx, key, &istiosecurity.AuthorizationPolicy{})
			ok, msg := ready(c, key)
			return ok && apierrors.IsNotFound(err), msg
		})
	})

	t.Run("unsupported selector on Istio", func(t *testing.T) {
		bad := policy("shop", "expr")
		bad.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}}}
		must(t, c.Create(ctx, bad))
		bkey := client.ObjectKeyFromObject(bad)
		eventually(t, "UnsupportedFeature", func() (bool, string) {
			r := reason(c, bkey)
			return strings.HasPrefix(r, "UnsupportedFeature") && strings.Contains(r, "Istio"), r
		})
		if err := c.Get(ctx, bkey, &istiosecurity.PeerAuthentication{}); !apierrors.IsNotFound(err) {
			t.Fatalf("PeerAuthentication for an unsupported policy: %v", err)
		}
	})

	// Linkerd: Servers, policies, the namespace annotation, one policy
	// per namespace, provider switch, deletion releasing the annotation.
	must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "books", Annotations: map[string]string{"linkerd.io/inject": "enabled"}}}))
	lkey := types.NamespacedName{Namespace: "books", Name: "web"}
	must(t, c.Create(ctx, policy("books", "web")))
	eventually(t, "Ready on Linkerd", func() (bool, string) { return ready(c, lkey) })
	annotation := func() string {
		ns := &corev1.Namespace{}
		must(t, c.Get(ctx, client.ObjectKey{Name: "books"}, ns))
		return ns.Annotations[linkerdpolicy.DefaultInboundPolicyAnnotation]
	}
	if got := annotation(); got != "deny" {
		t.Fatalf("default-inbound-policy %q", got)
	}
	must(t, c.Get(ctx, client.ObjectKey{Namespace: "books", Name: "web-8080"}, &linkerdserver.Server{}))
	p = &meshv1alpha1.ZeroTrustPolicy{}
	must(t, c.Get(ctx, lkey, p))
	if len(p.Finalizers) != 1 {
		t.Fatalf("finalizers %v", p.Finalizers)
	}

	t.Run("namespace annotation drift is repaired", func(t *testing.T) {
		ns := &corev1.Namespace{}
		must(t, c.Get(ctx, client.ObjectKey{Name: "books"}, ns))
		ns.Annotations[linkerdpolicy.DefaultInboundPolicyAnnotation] = "all-unauthenticated"
		must(t, c.Update(ctx, ns))
		eventually(t, "annotation restored", func() (bool, string) { return annotation() == "deny", annotation() })
	})

	t.Run("a second Linkerd policy in the namespace conflicts", func(t *testing.T) {
		must(t, c.Create(ctx, policy("books", "second")))
		skey := types.NamespacedName{Namespace: "books", Name: "second"}
		eventually(t, "Conflict", func() (bool, string) {
			r := reason(c, skey)
			return strings.HasPrefix(r, "Conflict") && strings.Contains(r, "ZeroTrustPolicy web"), r
		})
		must(t, c.Delete(ctx, &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "second", Namespace: "books"}}))
	})

	t.Run("provider switch to Cilium releases the annotation", func(t *testing.T) {
		cur := &meshv1alpha1.ZeroTrustPolicy{}
		must(t, c.Get(ctx, lkey, cur))
		cur.Spec.Provider = meshv1alpha1.ProviderCilium
		must(t, c.Update(ctx, cur))
		eventually(t, "CiliumNetworkPolicy and no Linkerd outputs", func() (bool, string) {
			cnpErr := c.Get(ctx, lkey, &ciliumv2.CiliumNetworkPolicy{})
			srvErr := c.Get(ctx, client.ObjectKey{Namespace: "books", Name: "web-8080"}, &linkerdserver.Server{})
			ok, msg := ready(c, lkey)
			return ok && cnpErr == nil && apierrors.IsNotFound(srvErr) && annotation() == "", msg + " annotation=" + annotation()
		})
		must(t, c.Get(ctx, lkey, cur))
		if len(cur.Finalizers) != 0 {
			t.Fatalf("finalizer kept after the shared field was released: %v", cur.Finalizers)
		}
	})

	t.Run("deletion releases the namespace annotation", func(t *testing.T) {
		cur := &meshv1alpha1.ZeroTrustPolicy{}
		must(t, c.Get(ctx, lkey, cur))
		cur.Spec.Provider = ""
		must(t, c.Update(ctx, cur))
		eventually(t, "back on Linkerd", func() (bool, string) { return annotation() == "deny", annotation() })
		must(t, c.Delete(ctx, cur))
		eventually(t, "policy gone and annotation released", func() (bool, string) {
			left := &meshv1alpha1.ZeroTrustPolicy{}
			gone := apierrors.IsNotFound(c.Get(ctx, lkey, left))
			ns := &corev1.Namespace{}
			_ = c.Get(ctx, client.ObjectKey{Name: "books"}, ns)
			var managers []string
			for _, m := range ns.ManagedFields {
				managers = append(managers, m.Manager+":"+string(m.Operation)+":"+string(m.FieldsV1.Raw))
			}
			return gone && annotation() == "", fmt.Sprintf("gone=%v finalizers=%v annotation=%q managers=%v", gone, left.Finalizers, annotation(), managers)
		})
		ns := &corev1.Namespace{}
		must(t, c.Get(ctx, client.ObjectKey{Name: "books"}, ns))
		if ns.Annotations["linkerd.io/inject"] != "enabled" {
			t.Fatalf("foreign annotation lost: %v", ns.Annotations)
		}
	})
}
