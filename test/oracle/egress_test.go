package oracle

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/providers"
)

// egressModels are the mesh models of egress, by target.
var egressModels = map[string]func([]client.Object, Destination) bool{
	"istio/sidecar": IstioEgressAllows,
	"linkerd":       LinkerdEgressAllows,
	"cilium/full":   CiliumEgressAllows,
}

var (
	egressHosts = []string{"api.example.com", "*.docs.example.com", "pay.example.org", "*.cdn.example.net"}
	egressCIDRs = []string{"203.0.113.0/24", "192.0.2.0/25"}
	protocols   = []meshv1alpha1.EgressProtocol{meshv1alpha1.EgressHTTP, meshv1alpha1.EgressTLS, meshv1alpha1.EgressTCP}
	egressPorts = []int32{80, 443, 5432}
	// outside is an address in no cidr of egressCIDRs.
	outside = netip.MustParseAddr("198.51.100.7")
)

// randomEgress draws a schema-valid EgressPolicy spec.
func randomEgress(rng *rand.Rand) meshv1alpha1.EgressPolicySpec {
	s := meshv1alpha1.EgressPolicySpec{Mode: meshv1alpha1.EgressAllowList}
	if rng.IntN(5) == 0 {
		s.Mode = meshv1alpha1.EgressAudit
	}
	for i := range 1 + rng.IntN(3) {
		r := meshv1alpha1.EgressRule{Name: fmt.Sprintf("r%d", i)}
		if rng.IntN(3) == 0 {
			r.CIDRs = []string{egressCIDRs[rng.IntN(len(egressCIDRs))]}
			r.Ports = []meshv1alpha1.EgressPort{{Number: egressPorts[rng.IntN(len(egressPorts))], Protocol: meshv1alpha1.EgressTCP}}
		} else {
			r.Hosts = []string{egressHosts[rng.IntN(len(egressHosts))]}
			r.Ports = []meshv1alpha1.EgressPort{{Number: egressPorts[rng.IntN(len(egressPorts))], Protocol: protocols[rng.IntN(len(protocols))]}}
		}
		s.Rules = append(s.Rules, r)
	}
	return s
}

// destinations are the probes of a spec: each rule's own destinations (a
// subdomain and the bare domain of a wildcard, an address inside a cidr)
// on its port and protocol, the same on another port, and names and
// addresses no rule allows.
func destinations(s meshv1alpha1.EgressPolicySpec) []Destination {
	var out []Destination
	for _, r := range s.Rules {
		for _, p := range r.Ports {
			for _, h := range r.Hosts {
				names := []string{h}
				if mesh.IsWildcardHost(h) {
					names = []string{"a" + h[1:], "x.y" + h[1:], h[2:]}
				}
				for _, n := range names {
					out = append(out, Destination{Host: n, Addr: outside, Port: p.Number, Protocol: p.Protocol},
						Destination{Host: n, Addr: outside, Port: p.Number + 1, Protocol: p.Protocol})
				}
			}
			for _, c := range r.CIDRs {
				in := netip.MustParsePrefix(c).Addr().Next()
				out = append(out, Destination{Addr: in, Port: p.Number, Protocol: meshv1alpha1.EgressTCP},
					Destination{Addr: in, Port: p.Number + 1, Protocol: meshv1alpha1.EgressTCP})
			}
		}
	}
	for _, pr := range protocols {
		out = append(out, Destination{Host: "evil.example.com", Addr: outside, Port: 443, Protocol: pr},
			Destination{Addr: outside, Port: 5432, Protocol: meshv1alpha1.EgressTCP})
	}
	return out
}

// TestEgressOracle: for random EgressPolicies, what each mesh's model
// enforces on the generated objects equals the intent for every probe, or
// the mesh refused the policy (UnsupportedFeature).
func TestEgressOracle(t *testing.T) {
	reg := providers.Registry()
	rng := rand.New(rand.NewPCG(19, 2))
	checked := map[string]int{}
	for i := range *specs {
		spec := randomEgress(rng)
		for _, tg := range targets {
			model, ok := egressModels[tg.name]
			if !ok {
				continue
			}
			et, err := reg.EgressTranslator(tg.scope.Install.Provider)
			if err != nil {
				t.Fatal(err)
			}
			p := &meshv1alpha1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", i), Namespace: ns}, Spec: *spec.DeepCopy()}
			objs, refused, err := translate(reg, tg, mesh.EgressPolicyRequirements(&p.Spec), func() ([]client.Object, error) {
				return et.TranslateEgressPolicy(p, tg.scope.Namespace)
			})
			if err != nil {
				t.Fatalf("%s: %v", tg.name, err)
			}
			if refused {
				continue
			}
			checked[tg.name]++
			for _, d := range destinations(spec) {
				if got, want := model(objs, d), EgressIntent(&spec, d); got != want {
					t.Fatalf("%s: spec %+v: destination %+v: the mesh would allow=%v, the policy means %v", tg.name, spec, d, got, want)
				}
			}
		}
	}
	for name := range egressModels {
		if checked[name] == 0 {
			t.Errorf("%s: no spec translated (every one refused)", name)
		}
	}
	t.Logf("specs checked per mesh: %v", checked)
}
