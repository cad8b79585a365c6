package ingressgateway

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

// readyGateway creates g, waits for its Gateway, programs it at
// 127.96.10.1 as the class's controller would, and waits until g is Ready.
func readyGateway(t *testing.T, c client.Client, g *meshv1alpha1.IngressGateway) types.NamespacedName {
	t.Helper()
	must(t, c.Create(ctx, g))
	key := client.ObjectKeyFromObject(g)
	waitReason(t, c, key, "GatewayNotProgrammed: Gateway "+g.Name+" of class")
	testenv.ProgramGateway(t, c, g.Namespace, g.Name, true, true, "127.96.10.1")
	testenv.Eventually(t, testenv.DefaultTimeout, "Ready", func() error { return ready(c, key) })
	return key
}

func TestIngressGatewayController(t *testing.T) {
	mgr, c := start(t)
	testenv.GatewayClass(t, c, "istio", true)
	testenv.GatewayClass(t, c, "cilium", true)

	t.Run("Ready on Istio: an owned Gateway of class istio, status copied from it", func(t *testing.T) {
		ns := istioNamespace(t, c)
		g := gateway(ns, "web")
		must(t, c.Create(ctx, g))
		key := client.ObjectKeyFromObject(g)
		waitReason(t, c, key, "GatewayNotProgrammed: Gateway web of class istio is applied and waits for its controller to program it")
		gw := &gatewayv1.Gateway{}
		must(t, c.Get(ctx, key, gw))
		if gw.Spec.GatewayClassName != "istio" || !ownership.IsOwnedBy(gw, Kind, ns, "web") || len(gw.OwnerReferences) != 1 ||
			gw.Spec.Infrastructure.Labels[mesh.IngressGatewayLabel] != "web" {
			t.Fatalf("Gateway class %s labels %v owners %v infra %+v", gw.Spec.GatewayClassName, gw.Labels, gw.OwnerReferences, gw.Spec.Infrastructure)
		}
		testenv.ProgramGateway(t, c, ns, "web", true, true, "127.96.10.1")
		testenv.Eventually(t, testenv.DefaultTimeout, "Ready", func() error { return ready(c, key) })
		must(t, c.Get(ctx, key, g))
		st := g.Status
		if st.Provider != meshv1alpha1.ProviderIstio || st.GatewayClassName != "istio" || !slices.Equal(st.Addresses, []string{"127.96.10.1"}) ||
			st.BackendMTLS != meshv1alpha1.BackendMTLSYes || len(st.Inventory) != 1 || len(g.Finalizers) != 0 {
			t.Fatalf("status %+v finalizers %v", st, g.Finalizers)
		}
		for _, typ := range []string{meshv1alpha1.GatewayAcceptedCondition, meshv1alpha1.GatewayProgrammedCondition, meshv1alpha1.BackendMTLSCondition} {
			if cond := status.Get(&st.CommonStatus, typ); cond == nil || cond.Status != metav1.ConditionTrue {
				t.Fatalf("%s: %v", typ, testenv.Conditions(&st.CommonStatus))
			}
		}
		if r := status.Get(&st.CommonStatus, meshv1alpha1.ReadyCondition); !strings.Contains(r.Message, "is programmed, at 127.96.10.1; backends over mTLS: Yes") {
			t.Fatalf("Ready message %q", r.Message)
		}
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key := readyGateway(t, c, gateway(ns, "web"))
		testenv.CacheCaughtUp(t, c, mgr.GetClient(), &meshv1alpha1.IngressGateway{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})
		cc, writes := testenv.CachedClient(t, mgr.Manager)
		r := &Reconciler{Deps: outputs.NewDeps(cc, mgr.Manager, "test")}
		for range 3 {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: key}); err != nil {
				t.Fatal(err)
			}
		}
		if n := writes.Count(); n != 0 {
			t.Fatalf("no-op reconciles sent %d writes: %v", n, writes.Log())
		}
	})

	t.Run("drift of a listener's port is repaired", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key := readyGateway(t, c, gateway(ns, "web"))
		gw := &gatewayv1.Gateway{}
		must(t, c.Get(ctx, key, gw))
		gw.Spec.Listeners[0].Port = 8080
		must(t, c.Update(ctx, gw))
		testenv.Eventually(t, testenv.DefaultTimeout, "port 80 again", func() error {
			got := &gatewayv1.Gateway{}
			must(t, c.Get(ctx, key, got))
			if p := got.Spec.Listeners[0].Port; p != 80 {
				return testenv.Errorf("port %d", p)
			}
			return nil
		})
	})

	t.Run("a foreign Gateway of the same name is a Conflict and stays as it is", func(t *testing.T) {
		ns := istioNamespace(t, c)
		foreign := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: map[string]string{"team": "edge"}},
			Spec: gatewayv1.GatewaySpec{GatewayClassName: "istio", Listeners: []gatewayv1.Listener{{Name: "edge", Port: 8443, Protocol: gatewayv1.HTTPProtocolType}}}}
		must(t, c.Create(ctx, foreign))
		before := foreign.ResourceVersion
		g := gateway(ns, "web")
		must(t, c.Create(ctx, g))
		waitReason(t, c, client.ObjectKeyFromObject(g), "Conflict: ")
		got := &gatewayv1.Gateway{}
		must(t, c.Get(ctx, client.ObjectKeyFromObject(foreign), got))
		if got.ResourceVersion != before || len(got.OwnerReferences) != 0 || got.Spec.Listeners[0].Name != "edge" {
			t.Fatalf("foreign Gateway changed: rv %s→%s owners %v listeners %v", before, got.ResourceVersion, got.OwnerReferences, got.Spec.Listeners)
		}
	})

	t.Run("a spec change is applied; deletion leaves the Gateway to the garbage collector", func(t *testing.T) {
		ns := istioNamespace(t, c)
		key := readyGateway(t, c, gateway(ns, "web"))
		g := &meshv1alpha1.IngressGateway{}
		must(t, c.Get(ctx, key, g))
		g.Spec.Listeners = append(g.Spec.Listeners, meshv1alpha1.IngressListener{Name: "https", Port: 443, Protocol: meshv1alpha1.IngressHTTPS,
			Hostname: "shop.example.com", CertificateRefs: []meshv1alpha1.LocalObjectReference{{Name: "shop-tls"}}})
		must(t, c.Update(ctx, g))
		// The Gateway's generation moved: its old conditions describe the
		// previous one, so the gateway waits again.
		waitReason(t, c, key, "GatewayNotProgrammed: ")
		gw := &gatewayv1.Gateway{}
		must(t, c.Get(ctx, key, gw))
		if len(gw.Spec.Listeners) != 2 || gw.Spec.Listeners[1].TLS == nil || string(gw.Spec.Listeners[1].TLS.CertificateRefs[0].Name) != "shop-tls" {
			t.Fatalf("listeners %+v", gw.Spec.Listeners)
		}
		ref := gw.OwnerReferences[0]
		if ref.Kind != Kind || ref.Name != "web" || ref.Controller == nil || !*ref.Controller {
			t.Fatalf("owner reference %+v", ref)
		}
		must(t, c.Delete(ctx, g))
		testenv.Eventually(t, testenv.DefaultTimeout, "IngressGateway gone", func() error {
			if err := c.Get(ctx, key, &meshv1alpha1.IngressGateway{}); !apierrors.IsNotFound(err) {
				return testenv.Errorf("still there: %v", err)
			}
			return nil
		})
	})

	t.Run("the class's controller refusing the Gateway is Stalled with its message", func(t *testing.T) {
		ns := istioNamespace(t, c)
		g := gateway(ns, "web")
		must(t, c.Create(ctx, g))
		key := client.ObjectKeyFromObject(g)
		waitReason(t, c, key, "GatewayNotProgrammed: ")
		testenv.ProgramGateway(t, c, ns, "web", false, false)
		waitReason(t, c, key, "GatewayNotAccepted: Gateway web of class istio was refused by its controller (Accepted False, ListenersNotValid: set by the test)")
	})

	t.Run("Linkerd: a class is required, nothing is written without one", func(t *testing.T) {
		ns := testenv.AnnotatedNamespace(t, c, nil, map[string]string{"linkerd.io/inject": "enabled"})
		g := gateway(ns, "web")
		must(t, c.Create(ctx, g))
		key := client.ObjectKeyFromObject(g)
		waitReason(t, c, key, "InvalidSpec: spec.gatewayClassName is required on Linkerd: Linkerd ships no ingress gateway")
		if err := c.Get(ctx, key, &gatewayv1.Gateway{}); !apierrors.IsNotFound(err) {
			t.Fatalf("a refused IngressGateway wrote a Gateway: %v", err)
		}
	})

	t.Run("Linkerd: a missing class refuses until it appears; injected pods answer mTLS Yes", func(t *testing.T) {
		ns := testenv.AnnotatedNamespace(t, c, nil, map[string]string{"linkerd.io/inject": "enabled"})
		class := "eg-" + ns
		g := gateway(ns, "web")
		g.Spec.GatewayClassName = class
		must(t, c.Create(ctx, g))
		key := client.ObjectKeyFromObject(g)
		waitReason(t, c, key, "GatewayClassNotAccepted: GatewayClass "+class+" does not exist: Linkerd ships no ingress")
		if err := c.Get(ctx, key, &gatewayv1.Gateway{}); !apierrors.IsNotFound(err) {
			t.Fatalf("a refused IngressGateway wrote a Gateway: %v", err)
		}
		testenv.GatewayClass(t, c, class, true)
		waitReason(t, c, key, "GatewayNotProgrammed: ")
		gw := &gatewayv1.Gateway{}
		must(t, c.Get(ctx, key, gw))
		if gw.Spec.Infrastructure.Annotations["linkerd.io/inject"] != "enabled" {
			t.Fatalf("infrastructure %+v", gw.Spec.Infrastructure)
		}
		// The implementation's pod, with the proxy Linkerd injected.
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-envoy", Namespace: ns,
			Labels: map[string]string{mesh.IngressGatewayLabel: "web", mesh.IngressGatewayNamespaceLabel: ns}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "envoy", Image: "envoy"}, {Name: "linkerd-proxy", Image: "proxy"}}}}
		must(t, c.Create(ctx, pod))
		testenv.ProgramGateway(t, c, ns, "web", true, true, "127.96.10.2")
		testenv.Eventually(t, testenv.DefaultTimeout, "Ready with mTLS Yes", func() error {
			if err := ready(c, key); err != nil {
				return err
			}
			must(t, c.Get(ctx, key, g))
			if g.Status.BackendMTLS != meshv1alpha1.BackendMTLSYes || g.Status.GatewayClassName != class {
				return testenv.Errorf("status %+v", g.Status)
			}
			return nil
		})
	})

	t.Run("Cilium: meshInjection Disabled is refused and writes nothing", func(t *testing.T) {
		ns := testenv.Namespace(t, c, nil)
		g := gateway(ns, "web")
		g.Spec.Provider = meshv1alpha1.ProviderCilium
		g.Spec.MeshInjection = meshv1alpha1.MeshInjectionDisabled
		must(t, c.Create(ctx, g))
		key := client.ObjectKeyFromObject(g)
		waitReason(t, c, key, "UnsupportedFeature: feature IngressOutsideMesh is not supported by Cilium: spec.meshInjection Disabled")
		if err := c.Get(ctx, key, &gatewayv1.Gateway{}); !apierrors.IsNotFound(err) {
			t.Fatalf("a refused IngressGateway wrote a Gateway: %v", err)
		}
	})
}
