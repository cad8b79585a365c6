package providers

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// egressPolicy turns fuzz bytes into an EgressPolicy (the schema may
// still refuse it; callers check accepted first).
func (g *gen) egressPolicy() *meshv1alpha1.EgressPolicy {
	s := meshv1alpha1.EgressPolicySpec{Mode: pick(g, meshv1alpha1.EgressAllowList, meshv1alpha1.EgressAudit)}
	if g.intn(3) == 0 {
		s.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	}
	for i := range 1 + g.intn(3) {
		r := meshv1alpha1.EgressRule{Name: pick(g, "", fmt.Sprintf("r%d", i))}
		if g.intn(3) == 0 {
			r.CIDRs = []string{pick(g, "203.0.113.0/24", "2001:db8::/32", "10.0.0.0/8")}
		} else {
			for range 1 + g.intn(2) {
				r.Hosts = append(r.Hosts, pick(g, "api.example.com", "*.example.org", "a.b.example.net", "*.x.example.com"))
			}
			slices.Sort(r.Hosts)
			r.Hosts = slices.Compact(r.Hosts)
		}
		for j := range 1 + g.intn(2) {
			p := meshv1alpha1.EgressPort{Number: pick[int32](g, 80, 443, 8443) + int32(j), Protocol: pick(g, meshv1alpha1.EgressHTTP, meshv1alpha1.EgressTLS, meshv1alpha1.EgressTCP)}
			if len(r.CIDRs) > 0 {
				p.Protocol = meshv1alpha1.EgressTCP
			}
			r.Ports = append(r.Ports, p)
		}
		s.Rules = append(s.Rules, r)
	}
	switch g.intn(4) {
	case 0:
		s.Gateway = &meshv1alpha1.EgressGateway{Name: "egress"}
	case 1:
		s.Gateway = &meshv1alpha1.EgressGateway{NodeSelector: map[string]string{"egress": "true"}, EgressIP: "192.0.2.1"}
	}
	return &meshv1alpha1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: s}
}

// FuzzEgressPolicyTranslation: every schema-valid EgressPolicy translates,
// on every mesh and data plane, deterministically into objects the real
// CRDs accept, or is refused with a terminal error and nothing partial;
// and each host and cidr of an accepted policy appears in the outputs.
func FuzzEgressPolicyTranslation(f *testing.F) {
	for _, seed := range [][]byte{{}, {0, 1, 1, 0, 2, 1, 0, 1}, {1, 0, 2, 0, 3, 1, 1, 2, 2, 0, 1, 1, 1, 0}, []byte("egress-policy-seed")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := realSchemas(t)
		g := &gen{b: data}
		pol := g.egressPolicy()
		if !accepted(t, v, pol) {
			return
		}
		reg := Registry()
		for _, p := range meshv1alpha1.Providers {
			et, _ := reg.EgressTranslator(p)
			for _, facts := range []mesh.NamespaceFacts{sidecarFacts, ambientEgressWaypoint} {
				if facts.Mode == mesh.Ambient && p != meshv1alpha1.ProviderIstio {
					continue
				}
				objs := checkOutputs(t, v, fmt.Sprintf("EgressPolicy on %s (%s)", p, facts.Mode), func() ([]client.Object, error) {
					return et.TranslateEgressPolicy(pol.DeepCopy(), facts)
				})
				if objs == nil {
					continue
				}
				text := fmt.Sprint(objs)
				for _, r := range pol.Spec.Rules {
					for _, want := range append(slices.Clone(r.Hosts), r.CIDRs...) {
						if p == meshv1alpha1.ProviderCilium && mesh.IsWildcardHost(want) {
							want = "*" + want // matchPattern **.domain
						}
						if !strings.Contains(text, want) {
							t.Fatalf("%s: %s of the policy is in no output: %s", p, want, text)
						}
					}
				}
			}
		}
	})
}
