package zerotrustpolicy

import (
	"strings"
	"testing"

	ciliumv2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/v2"
	linkerdserver "github.com/linkerd/linkerd2/controller/gen/apis/server/v1beta3"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	linkerdpolicy "github.com/meshplane/meshplane/internal/mesh/linkerd"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/test/testenv"
)

func TestZeroTrustPolicyController(t *testing.T) {
	mgr, c := start(t)

	// Istio: PeerAuthentication + AuthorizationPolicy, owned, no finalizer.
	t.Run("Ready on Istio with owned outputs and no finalizer", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key := readyPolicy(t, c, ns, "Istio")
		p := &meshv1alpha1.ZeroTrustPolicy{}
		must(t, c.Get(ctx, key, p))
		if p.Status.Provider != meshv1alpha1.ProviderIstio || p.Status.Mode != "Strict/Deny" || len(p.Status.Inventory) != 2 || len(p.Finalizers) != 0 {
			t.Fatalf("status %+v finalizers %v", p.Status, p.Finalizers)
		}
		pa := &istiosecurity.PeerAuthentication{}
		must(t, c.Get(ctx, key, pa))
		if !ownership.IsOwnedBy(pa, Kind, ns, "web") || len(pa.OwnerReferences) != 1 {
			t.Fatalf("PeerAuthentication not owned: %v %v", pa.Labels, pa.OwnerReferences)
		}
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key := readyPolicy(t, c, ns, "Istio")
		cc, writes := testenv.CachedClient(t, mgr.Manager)
		r := &Reconciler{Deps: outputs.NewDeps(cc, mgr.Manager, "test")}
		testenv.Eventually(t, testenv.DefaultTimeout, "cache current", func() error { return ready(mgr.GetClient(), key) })
		for range 3 {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
				t.Fatal(err)
			}
		}
		if n := writes.Count(); n != 0 {
			t.Fatalf("no-op reconciles sent %d writes: %v", n, writes.Log())
		}
	})

	t.Run("prune when the default action becomes Allow", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key := readyPolicy(t, c, ns, "Istio")
		cur := &meshv1alpha1.ZeroTrustPolicy{}
		must(t, c.Get(ctx, key, cur))
		cur.Spec.Rules = nil
		cur.Spec.DefaultAction = meshv1alpha1.ActionAllow
		must(t, c.Update(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "AuthorizationPolicy pruned", func() error {
			if err := ready(c, key); err != nil {
				return err
			}
			if err := c.Get(ctx, key, &istiosecurity.AuthorizationPolicy{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("AuthorizationPolicy: %v", err)
			}
			return nil
		})
	})

	t.Run("unsupported selector on Istio", func(t *testing.T) {
		ns := istioNamespace(t, c)
		bad := policy(ns, "expr")
		bad.Spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}}}
		must(t, c.Create(ctx, bad))
		bkey := client.ObjectKeyFromObject(bad)
		testenv.Eventually(t, testenv.DefaultTimeout, "UnsupportedFeature", func() error {
			if r := reason(c, bkey); !strings.HasPrefix(r, "UnsupportedFeature") || !strings.Contains(r, "Istio") {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
		if err := c.Get(ctx, bkey, &istiosecurity.PeerAuthentication{}); !apierrors.IsNotFound(err) {
			t.Fatalf("PeerAuthentication for an unsupported policy: %v", err)
		}
	})

	// Linkerd: Servers, policies, the namespace annotation, one policy
	// per namespace, provider switch, deletion releasing the annotation.
	annotation := func(t *testing.T, ns string) string {
		n := &corev1.Namespace{}
		must(t, c.Get(ctx, client.ObjectKey{Name: ns}, n))
		return n.Annotations[linkerdpolicy.DefaultInboundPolicyAnnotation]
	}
	linkerdReady := func(t *testing.T) (string, types.NamespacedName) {
		t.Helper()
		ns := linkerdNamespace(t, c)
		lkey := readyPolicy(t, c, ns, "Linkerd")
		if got := annotation(t, ns); got != "deny" {
			t.Fatalf("default-inbound-policy %q", got)
		}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-8080"}, &linkerdserver.Server{}))
		p := &meshv1alpha1.ZeroTrustPolicy{}
		must(t, c.Get(ctx, lkey, p))
		if len(p.Finalizers) != 1 {
			t.Fatalf("finalizers %v", p.Finalizers)
		}
		return ns, lkey
	}

	t.Run("Ready on Linkerd with the namespace annotation and a finalizer", func(t *testing.T) {
		linkerdReady(t)
	})

	t.Run("namespace annotation drift is repaired", func(t *testing.T) {
		ns, _ := linkerdReady(t)
		n := &corev1.Namespace{}
		must(t, c.Get(ctx, client.ObjectKey{Name: ns}, n))
		n.Annotations[linkerdpolicy.DefaultInboundPolicyAnnotation] = "all-unauthenticated"
		must(t, c.Update(ctx, n))
		testenv.Eventually(t, testenv.DefaultTimeout, "annotation restored", func() error {
			if a := annotation(t, ns); a != "deny" {
				return testenv.Errorf("annotation %q", a)
			}
			return nil
		})
	})

	t.Run("a second Linkerd policy in the namespace conflicts", func(t *testing.T) {
		ns, _ := linkerdReady(t)
		must(t, c.Create(ctx, policy(ns, "second")))
		skey := types.NamespacedName{Namespace: ns, Name: "second"}
		testenv.Eventually(t, testenv.DefaultTimeout, "Conflict", func() error {
			if r := reason(c, skey); !strings.HasPrefix(r, "Conflict") || !strings.Contains(r, "ZeroTrustPolicy web") {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
		must(t, c.Delete(ctx, &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "second", Namespace: ns}}))
	})

	t.Run("provider switch to Cilium releases the annotation", func(t *testing.T) {
		ns, lkey := linkerdReady(t)
		cur := &meshv1alpha1.ZeroTrustPolicy{}
		must(t, c.Get(ctx, lkey, cur))
		cur.Spec.Provider = meshv1alpha1.ProviderCilium
		// Strict on a Cilium Meshplane does not install is refused (its
		// mutual authentication and encryption are unknown).
		cur.Spec.MTLS = &meshv1alpha1.MTLSSettings{Mode: meshv1alpha1.MTLSPermissive}
		must(t, c.Update(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "CiliumNetworkPolicy and no Linkerd outputs", func() error {
			cnpErr := c.Get(ctx, lkey, &ciliumv2.CiliumNetworkPolicy{})
			srvErr := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-8080"}, &linkerdserver.Server{})
			if err := ready(c, lkey); err != nil || cnpErr != nil || !apierrors.IsNotFound(srvErr) || annotation(t, ns) != "" {
				return testenv.Errorf("ready: %v; CiliumNetworkPolicy: %v; Server: %v; annotation=%s", err, cnpErr, srvErr, annotation(t, ns))
			}
			// The status patch (Ready) lands before the metadata patch
			// that drops the finalizer: both are waited for.
			if err := c.Get(ctx, lkey, cur); err != nil || len(cur.Finalizers) != 0 {
				return testenv.Errorf("finalizer kept after the shared field was released: %v (%v)", cur.Finalizers, err)
			}
			return nil
		})
		// And back: the annotation is set again.
		cur.Spec.Provider = ""
		must(t, c.Update(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "back on Linkerd", func() error {
			if a := annotation(t, ns); a != "deny" {
				return testenv.Errorf("annotation %q", a)
			}
			return nil
		})
	})

	t.Run("deletion releases the namespace annotation", func(t *testing.T) {
		ns, lkey := linkerdReady(t)
		cur := &meshv1alpha1.ZeroTrustPolicy{}
		must(t, c.Get(ctx, lkey, cur))
		must(t, c.Delete(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "policy gone and annotation released", func() error {
			left := &meshv1alpha1.ZeroTrustPolicy{}
			gone := apierrors.IsNotFound(c.Get(ctx, lkey, left))
			n := &corev1.Namespace{}
			_ = c.Get(ctx, client.ObjectKey{Name: ns}, n)
			var managers []string
			for _, m := range n.ManagedFields {
				managers = append(managers, m.Manager+":"+string(m.Operation)+":"+m.FieldsV1.GetRawString())
			}
			if !gone || annotation(t, ns) != "" {
				return testenv.Errorf("gone=%v finalizers=%v annotation=%q managers=%v", gone, left.Finalizers, annotation(t, ns), managers)
			}
			return nil
		})
		n := &corev1.Namespace{}
		must(t, c.Get(ctx, client.ObjectKey{Name: ns}, n))
		if n.Annotations["linkerd.io/inject"] != "enabled" {
			t.Fatalf("foreign annotation lost: %v", n.Annotations)
		}
	})
}
