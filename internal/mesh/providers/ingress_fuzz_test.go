package providers

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// ingressGatewayFuzz turns fuzz bytes into an IngressGateway (the schema
// may still refuse it; callers check accepted first).
func (g *gen) ingressGatewayFuzz() *meshv1alpha1.IngressGateway {
	s := meshv1alpha1.IngressGatewaySpec{
		GatewayClassName: pick(g, "", "istio", "cilium", "envoy-gateway"),
		MeshInjection:    pick(g, "", meshv1alpha1.MeshInjectionEnabled, meshv1alpha1.MeshInjectionDisabled),
		RouteNamespaces:  pick(g, meshv1alpha1.IngressRoutesSame, meshv1alpha1.IngressRoutesAll),
	}
	for i := range 1 + g.intn(4) {
		l := meshv1alpha1.IngressListener{Name: fmt.Sprintf("l%d", i), Port: pick[int32](g, 80, 443, 8080, 8443),
			Protocol: pick(g, meshv1alpha1.IngressHTTP, meshv1alpha1.IngressHTTPS),
			Hostname: pick(g, "", "shop.example.com", "*.example.com", "a.b.example.net")}
		if l.Protocol == meshv1alpha1.IngressHTTPS {
			for j := range 1 + g.intn(2) {
				l.CertificateRefs = append(l.CertificateRefs, meshv1alpha1.LocalObjectReference{Name: fmt.Sprintf("tls-%d", j)})
			}
		}
		s.Listeners = append(s.Listeners, l)
	}
	if g.intn(2) == 0 {
		s.Infrastructure = &meshv1alpha1.IngressInfrastructure{Labels: map[string]string{pick(g, "team", "example.com/tier"): pick(g, "shop", "edge")},
			Annotations: map[string]string{pick(g, "note", "example.com/lb"): pick(g, "", "internal", strings.Repeat("x", 300))}}
	}
	return &meshv1alpha1.IngressGateway{TypeMeta: metav1.TypeMeta{APIVersion: meshv1alpha1.GroupVersion.String(), Kind: "IngressGateway"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: s}
}

// FuzzIngressGatewayTranslation: every schema-valid IngressGateway is
// decided, on every mesh, deterministically into a Gateway the real
// Gateway API CRD accepts, or refused with a terminal error and nothing
// partial; an accepted gateway keeps every listener, and on Linkerd asks
// for injection exactly unless meshInjection is Disabled.
func FuzzIngressGatewayTranslation(f *testing.F) {
	for _, seed := range [][]byte{{}, {0, 0, 0, 1, 1, 1, 0, 1}, {3, 1, 1, 3, 2, 1, 3, 1, 0, 0, 1, 1}, []byte("ingress-gateway-seed")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := realSchemas(t)
		g := (&gen{b: data}).ingressGatewayFuzz()
		if !accepted(t, v, g) {
			return
		}
		reg := Registry()
		for _, p := range meshv1alpha1.Providers {
			objs := checkOutputs(t, v, fmt.Sprintf("IngressGateway on %s", p), func() ([]client.Object, error) {
				out, _, err := reg.TranslateIngress(g.DeepCopy(), installed(p), acceptedClass)
				return out, err
			})
			if objs == nil {
				continue
			}
			text := fmt.Sprint(objs)
			for _, l := range g.Spec.Listeners {
				if !strings.Contains(text, "name:"+l.Name) || (l.Hostname != "" && !strings.Contains(text, l.Hostname)) {
					t.Fatalf("%s: listener %s is not in the Gateway: %s", p, l.Name, text)
				}
			}
			injected := strings.Contains(text, "linkerd.io/inject:enabled")
			if want := p == meshv1alpha1.ProviderLinkerd && g.Spec.MeshInjection != meshv1alpha1.MeshInjectionDisabled; injected != want {
				t.Fatalf("%s: injection annotation %v, want %v: %s", p, injected, want, text)
			}
			if !strings.Contains(text, mesh.IngressGatewayLabel+":web") {
				t.Fatalf("%s: Meshplane's pod label is missing: %s", p, text)
			}
		}
	})
}
