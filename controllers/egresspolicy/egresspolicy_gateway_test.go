package egresspolicy

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

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/test/testenv"
)

// gatewayEgress is the policy web routed through the egress gateway
// Service istio-egressgateway of ns.
func gatewayEgress(ns string) *meshv1alpha1.EgressPolicy {
	p := egress(ns, "web")
	p.Spec.Gateway = &meshv1alpha1.EgressGateway{Name: "istio-egressgateway"}
	return p
}

func egressGatewayService(ns string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "istio-egressgateway", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "istio-egressgateway"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}}}
}

func TestEgressPolicyIstioEgressGateway(t *testing.T) {
	mgr, c := start(t)

	t.Run("refused while the gateway Service is missing, Ready with the chain once it exists, no-op writes nothing", func(t *testing.T) {
		ns := istioNamespace(t, c)
		p := gatewayEgress(ns)
		must(t, c.Create(ctx, p))
		key := client.ObjectKeyFromObject(p)
		want := "ReferenceNotFound: spec.gateway.name: egress gateway Service " + ns + "/istio-egressgateway does not exist"
		testenv.Eventually(t, testenv.DefaultTimeout, "ReferenceNotFound", func() error {
			if r := reason(c, key); !strings.HasPrefix(r, want) {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-api"}, &istionetworking.ServiceEntry{}); !apierrors.IsNotFound(err) {
			t.Fatalf("a refused policy wrote a ServiceEntry: %v", err)
		}
		must(t, c.Create(ctx, egressGatewayService(ns)))
		testenv.Eventually(t, testenv.DefaultTimeout, "Ready once the Service exists", func() error { return ready(c, key) })
		must(t, c.Get(ctx, key, p))
		if len(p.Status.Inventory) != 5 {
			t.Fatalf("inventory %v, want ServiceEntry, Sidecar, Gateway, DestinationRule, VirtualService", p.Status.Inventory)
		}
		gw := &istionetworking.Gateway{}
		must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-egress"}, gw))
		if !ownership.IsOwnedBy(gw, Kind, ns, "web") || gw.Spec.Selector["app"] != "istio-egressgateway" || len(gw.Spec.Servers) != 1 ||
			gw.Spec.Servers[0].GetPort().GetNumber() != 443 {
			t.Fatalf("Gateway %v %v", gw.Labels, gw.Spec.String())
		}
		dr := &istionetworking.DestinationRule{}
		must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-egress"}, dr))
		if dr.Spec.Host != "istio-egressgateway."+ns+".svc.cluster.local" {
			t.Fatalf("DestinationRule host %s", dr.Spec.Host)
		}
		vs := &istionetworking.VirtualService{}
		must(t, c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "web-api"}, vs))
		if len(vs.Spec.Tls) != 2 || vs.Spec.Tls[0].Route[0].Destination.Host != dr.Spec.Host || vs.Spec.Tls[1].Route[0].Destination.Host != "api.example.com" {
			t.Fatalf("VirtualService %s", vs.Spec.String())
		}

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

	t.Run("a port the gateway does not route is refused per field", func(t *testing.T) {
		ns := istioNamespace(t, c)
		must(t, c.Create(ctx, egressGatewayService(ns)))
		p := gatewayEgress(ns)
		p.Spec.Rules[0].Ports[0] = meshv1alpha1.EgressPort{Number: 8443, Protocol: meshv1alpha1.EgressTLS}
		must(t, c.Create(ctx, p))
		key := client.ObjectKeyFromObject(p)
		testenv.Eventually(t, testenv.DefaultTimeout, "UnsupportedFeature", func() error {
			if r := reason(c, key); !strings.HasPrefix(r, "UnsupportedFeature: feature EgressGateway is not supported by Istio: spec.rules[0].ports[0]: TLS on port 8443") {
				return testenv.Errorf("%s", r)
			}
			return nil
		})
	})
}
