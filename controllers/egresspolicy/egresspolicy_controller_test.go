package egresspolicy

import (
	"strings"
	"testing"

	ciliumv2 "github.com/cilium/cilium/pkg/k8s/apis/cilium.io/v2"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/test/testenv"
)

func TestEgressPolicyController(t *testing.T) {
	mgr, c := start(t)

	t.Run("Ready on Istio: ServiceEntry and REGISTRY_ONLY Sidecar, owned", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key := readyEgress(t, c, ns)
		p := &meshv1alpha1.EgressPolicy{}
		must(t, c.Get(ctx, key, p))
		if p.Status.Provider != meshv1alpha1.ProviderIstio || p.Status.Mode != "AllowList" || len(p.Status.Inventory) != 2 || len(p.Finalizers) != 0 {
			t.Fatalf("status %+v finalizers %v", p.Status, p.Finalizers)
		}
		se := &istionetworking.ServiceEntry{}
		must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-api"}, se))
		if !ownership.IsOwnedBy(se, Kind, ns, "web") || len(se.OwnerReferences) != 1 || se.Spec.Hosts[0] != "api.example.com" {
			t.Fatalf("ServiceEntry %v %v %v", se.Labels, se.OwnerReferences, se.Spec.Hosts)
		}
		sc := &istionetworking.Sidecar{}
		must(t, c.Get(ctx, key, sc))
		if sc.Spec.OutboundTrafficPolicy.GetMode() != networkingv1alpha3.OutboundTrafficPolicy_REGISTRY_ONLY {
			t.Fatalf("Sidecar mode %v", sc.Spec.OutboundTrafficPolicy)
		}
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key := readyEgress(t, c, ns)
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

	t.Run("drift of the Sidecar's mode is repaired", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key := readyEgress(t, c, ns)
		sc := &istionetworking.Sidecar{}
		must(t, c.Get(ctx, key, sc))
		sc.Spec.OutboundTrafficPolicy.Mode = networkingv1alpha3.OutboundTrafficPolicy_ALLOW_ANY
		must(t, c.Update(ctx, sc))
		testenv.Eventually(t, testenv.DefaultTimeout, "REGISTRY_ONLY again", func() error {
			got := &istionetworking.Sidecar{}
			must(t, c.Get(ctx, key, got))
			if m := got.Spec.OutboundTrafficPolicy.GetMode(); m != networkingv1alpha3.OutboundTrafficPolicy_REGISTRY_ONLY {
				return testenv.Errorf("mode %v", m)
			}
			return nil
		})
	})

	t.Run("Audit, then back: the Sidecar follows and a removed rule is pruned", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key := readyEgress(t, c, ns)
		cur := &meshv1alpha1.EgressPolicy{}
		must(t, c.Get(ctx, key, cur))
		cur.Spec.Mode = meshv1alpha1.EgressAudit
		cur.Spec.Rules[0].Name = "renamed"
		must(t, c.Update(ctx, cur))
		testenv.Eventually(t, testenv.DefaultTimeout, "ALLOW_ANY and old entry pruned", func() error {
			if err := ready(c, key); err != nil {
				return err
			}
			sc := &istionetworking.Sidecar{}
			must(t, c.Get(ctx, key, sc))
			old := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-api"}, &istionetworking.ServiceEntry{})
			renamed := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-renamed"}, &istionetworking.ServiceEntry{})
			if sc.Spec.OutboundTrafficPolicy.GetMode() != networkingv1alpha3.OutboundTrafficPolicy_ALLOW_ANY || !apierrors.IsNotFound(old) || renamed != nil {
				return testenv.Errorf("mode %v old %v renamed %v", sc.Spec.OutboundTrafficPolicy.GetMode(), old, renamed)
			}
			return nil
		})
	})

	t.Run("overlapping policies: the second is a Conflict until the first goes", func(t *testing.T) {
		ns := istioNamespace(t, c)
		readyEgress(t, c, ns)
		second := egress(ns, "second")
		second.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
		must(t, c.Create(ctx, second))
		skey := client.ObjectKeyFromObject(second)
		testenv.Eventually(t, testenv.DefaultTimeout, "Conflict", func() error {
			if r := reason(c, skey); !strings.HasPrefix(r, "Conflict: EgressPolicy web (the whole namespace) already controls the egress of workloads this policy selects (selector app=web)") {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "second-api"}, &istionetworking.ServiceEntry{}); !apierrors.IsNotFound(err) {
			t.Fatalf("a Conflict wrote a ServiceEntry: %v", err)
		}
		must(t, c.Delete(ctx, egress(ns, "web")))
		testenv.Eventually(t, testenv.DefaultTimeout, "second Ready once web is gone", func() error { return ready(c, skey) })
	})

	t.Run("Audit on Cilium is refused and writes nothing", func(t *testing.T) {
		ns := testenv.Namespace(t, c, nil)
		p := egress(ns, "web")
		p.Spec.Provider = meshv1alpha1.ProviderCilium
		p.Spec.Mode = meshv1alpha1.EgressAudit
		must(t, c.Create(ctx, p))
		key := client.ObjectKeyFromObject(p)
		testenv.Eventually(t, testenv.DefaultTimeout, "UnsupportedFeature", func() error {
			if r := reason(c, key); !strings.HasPrefix(r, "UnsupportedFeature: feature EgressAudit is not supported by Cilium") {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-egress"}, &ciliumv2.CiliumNetworkPolicy{}); !apierrors.IsNotFound(err) {
			t.Fatalf("refused policy wrote a CiliumNetworkPolicy: %v", err)
		}
	})

	t.Run("Cilium egress gateway: cluster-scoped output pruned on deletion", func(t *testing.T) {
		ns := testenv.Namespace(t, c, nil)
		p := &meshv1alpha1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns},
			Spec: meshv1alpha1.EgressPolicySpec{MeshSelection: meshv1alpha1.MeshSelection{Provider: meshv1alpha1.ProviderCilium},
				Rules:   []meshv1alpha1.EgressRule{{CIDRs: []string{"203.0.113.0/24"}, Ports: []meshv1alpha1.EgressPort{{Number: 5432, Protocol: meshv1alpha1.EgressTCP}}}},
				Gateway: &meshv1alpha1.EgressGateway{NodeSelector: map[string]string{"egress": "true"}}}}
		must(t, c.Create(ctx, p))
		key := client.ObjectKeyFromObject(p)
		testenv.Eventually(t, testenv.DefaultTimeout, "Ready", func() error { return ready(c, key) })
		gw := &ciliumv2.CiliumEgressGatewayPolicy{}
		must(t, c.Get(ctx, client.ObjectKey{Name: ns + "-db"}, gw))
		if !ownership.IsOwnedBy(gw, Kind, ns, "db") || len(gw.OwnerReferences) != 0 {
			t.Fatalf("gateway policy labels %v owners %v", gw.Labels, gw.OwnerReferences)
		}
		must(t, c.Get(ctx, key, p))
		if len(p.Finalizers) != 1 {
			t.Fatalf("finalizers %v", p.Finalizers)
		}
		must(t, c.Delete(ctx, p))
		testenv.Eventually(t, testenv.DefaultTimeout, "policy and gateway policy gone", func() error {
			gone := apierrors.IsNotFound(c.Get(ctx, key, &meshv1alpha1.EgressPolicy{}))
			gwErr := c.Get(ctx, client.ObjectKey{Name: ns + "-db"}, &ciliumv2.CiliumEgressGatewayPolicy{})
			if !gone || !apierrors.IsNotFound(gwErr) {
				return testenv.Errorf("gone=%v gateway=%v", gone, gwErr)
			}
			return nil
		})
	})
}
