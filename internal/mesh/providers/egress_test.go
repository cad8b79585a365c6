package providers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
)

func tlsPort(n int32) meshv1alpha1.EgressPort {
	return meshv1alpha1.EgressPort{Number: n, Protocol: meshv1alpha1.EgressTLS}
}

func httpPort(n int32) meshv1alpha1.EgressPort {
	return meshv1alpha1.EgressPort{Number: n, Protocol: meshv1alpha1.EgressHTTP}
}

func tcpPort(n int32) meshv1alpha1.EgressPort {
	return meshv1alpha1.EgressPort{Number: n, Protocol: meshv1alpha1.EgressTCP}
}

var (
	httpRule = meshv1alpha1.EgressRule{Name: "httpbin", Hosts: []string{"httpbin.example.com"}, Ports: []meshv1alpha1.EgressPort{httpPort(80)}}
	tlsRule  = meshv1alpha1.EgressRule{Name: "api", Hosts: []string{"api.example.com"}, Ports: []meshv1alpha1.EgressPort{tlsPort(443)}}
	wildRule = meshv1alpha1.EgressRule{Name: "docs", Hosts: []string{"*.docs.example.com"}, Ports: []meshv1alpha1.EgressPort{httpPort(80)}}
	cidrRule = meshv1alpha1.EgressRule{Name: "db", CIDRs: []string{"203.0.113.0/24"}, Ports: []meshv1alpha1.EgressPort{tcpPort(5432)}}
	tcpHost  = meshv1alpha1.EgressRule{Name: "smtp", Hosts: []string{"smtp.example.com"}, Ports: []meshv1alpha1.EgressPort{tcpPort(25)}}
)

func egSpec(mod func(s *meshv1alpha1.EgressPolicySpec), rules ...meshv1alpha1.EgressRule) meshv1alpha1.EgressPolicySpec {
	s := meshv1alpha1.EgressPolicySpec{Mode: meshv1alpha1.EgressAllowList, Rules: rules}
	if mod != nil {
		mod(&s)
	}
	return s
}

// egressCases are the EgressPolicy features, one golden file per mesh (in
// a sidecar namespace for Istio).
var egressCases = []struct {
	name string
	spec meshv1alpha1.EgressPolicySpec
}{
	{"egp-http-host", egSpec(nil, httpRule)},
	{"egp-tls-host", egSpec(nil, tlsRule)},
	{"egp-wildcard", egSpec(nil, wildRule)},
	{"egp-cidr", egSpec(nil, cidrRule)},
	{"egp-tcp-host", egSpec(nil, tcpHost)},
	{"egp-audit", egSpec(func(s *meshv1alpha1.EgressPolicySpec) { s.Mode = meshv1alpha1.EgressAudit }, httpRule)},
	{"egp-selector", egSpec(func(s *meshv1alpha1.EgressPolicySpec) { s.Selector = webSelector }, httpRule)},
	{"egp-unnamed-rules", egSpec(nil, meshv1alpha1.EgressRule{Hosts: []string{"a.example.com", "b.example.com"},
		Ports: []meshv1alpha1.EgressPort{httpPort(80), httpPort(8080)}})},
	{"egp-gateway-nodes", egSpec(func(s *meshv1alpha1.EgressPolicySpec) {
		s.Gateway = &meshv1alpha1.EgressGateway{NodeSelector: map[string]string{"egress": "true"}, EgressIP: "192.0.2.10"}
	}, cidrRule)},
	{"egp-gateway-hosts", egSpec(func(s *meshv1alpha1.EgressPolicySpec) {
		s.Gateway = &meshv1alpha1.EgressGateway{NodeSelector: map[string]string{"egress": "true"}}
	}, cidrRule, tlsRule)},
	{"egp-gateway-waypoint", egSpec(func(s *meshv1alpha1.EgressPolicySpec) {
		s.Gateway = &meshv1alpha1.EgressGateway{Name: "egress"}
	}, tlsRule)},
	{"egp-gateway-egress", egSpec(func(s *meshv1alpha1.EgressPolicySpec) {
		s.Gateway = &meshv1alpha1.EgressGateway{Name: "istio-egressgateway", Namespace: "istio-system"}
	}, httpRule, tlsRule, meshv1alpha1.EgressRule{Name: "two", Hosts: []string{"a.example.com", "b.example.com"},
		Ports: []meshv1alpha1.EgressPort{httpPort(80), tlsPort(443)}})},
	{"egp-gateway-egress-audit", egSpec(func(s *meshv1alpha1.EgressPolicySpec) {
		s.Mode = meshv1alpha1.EgressAudit
		s.Gateway = &meshv1alpha1.EgressGateway{Name: "istio-egressgateway"}
	}, tlsRule)},
	{"egp-gateway-egress-tcp", egSpec(func(s *meshv1alpha1.EgressPolicySpec) {
		s.Gateway = &meshv1alpha1.EgressGateway{Name: "istio-egressgateway"}
	}, tlsRule, tcpHost)},
	{"egp-gateway-egress-port", egSpec(func(s *meshv1alpha1.EgressPolicySpec) {
		s.Gateway = &meshv1alpha1.EgressGateway{Name: "istio-egressgateway"}
	}, meshv1alpha1.EgressRule{Name: "alt", Hosts: []string{"alt.example.com"}, Ports: []meshv1alpha1.EgressPort{httpPort(8080)}})},
	{"egp-gateway-egress-cidr", egSpec(func(s *meshv1alpha1.EgressPolicySpec) {
		s.Gateway = &meshv1alpha1.EgressGateway{Name: "istio-egressgateway"}
	}, cidrRule)},
	{"egp-gateway-egress-wildcard", egSpec(func(s *meshv1alpha1.EgressPolicySpec) {
		s.Gateway = &meshv1alpha1.EgressGateway{Name: "istio-egressgateway"}
	}, wildRule)},
}

// Ambient namespaces for egress: a waypoint named egress serves the
// namespace's services.
var ambientEgressWaypoint = mesh.NamespaceFacts{Name: "shop", Mode: mesh.Ambient,
	Waypoints: map[string]mesh.WaypointFacts{"egress": {For: "service", Programmed: true}}}

// ambientEgressCases are EgressPolicies in Istio ambient namespaces.
var ambientEgressCases = []struct {
	name  string
	facts mesh.NamespaceFacts
	spec  meshv1alpha1.EgressPolicySpec
}{
	{"ambient-egp-allowlist", ambientNoWaypoint, egSpec(nil, httpRule)},
	{"ambient-egp-audit", ambientNoWaypoint, egSpec(func(s *meshv1alpha1.EgressPolicySpec) { s.Mode = meshv1alpha1.EgressAudit }, tlsRule)},
	{"ambient-egp-audit-waypoint", ambientEgressWaypoint, egSpec(func(s *meshv1alpha1.EgressPolicySpec) {
		s.Mode = meshv1alpha1.EgressAudit
		s.Gateway = &meshv1alpha1.EgressGateway{Name: "egress"}
	}, tlsRule, wildRule)},
	{"ambient-egp-waypoint-other-namespace", ambientNoWaypoint, egSpec(func(s *meshv1alpha1.EgressPolicySpec) {
		s.Mode = meshv1alpha1.EgressAudit
		s.Gateway = &meshv1alpha1.EgressGateway{Name: "egress", Namespace: "istio-egress"}
	}, tlsRule)},
	{"ambient-egp-missing-waypoint", ambientNoWaypoint, egSpec(func(s *meshv1alpha1.EgressPolicySpec) {
		s.Mode = meshv1alpha1.EgressAudit
		s.Gateway = &meshv1alpha1.EgressGateway{Name: "egress"}
	}, tlsRule)},
	{"ambient-egp-selector", ambientNoWaypoint, egSpec(func(s *meshv1alpha1.EgressPolicySpec) {
		s.Mode = meshv1alpha1.EgressAudit
		s.Selector = webSelector
	}, tlsRule)},
}

var jwtIssuer = meshv1alpha1.JWTIssuer{Issuer: "https://auth.example.com", JWKSURI: "https://auth.example.com/.well-known/jwks.json",
	Audiences: []string{"shop"}}

var jwtInline = meshv1alpha1.JWTIssuer{Issuer: "ci", JWKS: `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`,
	FromHeaders: []meshv1alpha1.JWTHeader{{Name: "X-Token"}, {Name: "Authorization", Prefix: "Bearer "}}, FromParams: []string{"token"},
	ForwardOriginalToken: true}

func jwtSpec(rules ...meshv1alpha1.AllowRule) meshv1alpha1.ZeroTrustPolicySpec {
	return meshv1alpha1.ZeroTrustPolicySpec{JWT: &meshv1alpha1.JWTSettings{Issuers: []meshv1alpha1.JWTIssuer{jwtIssuer, jwtInline}}, Rules: rules}
}

// jwtCases are ZeroTrustPolicies with request authentication, one golden
// file per mesh.
var jwtCases = []struct {
	name string
	spec meshv1alpha1.ZeroTrustPolicySpec
}{
	{"ztp-jwt-any-token", jwtSpec(meshv1alpha1.AllowRule{Name: "token", RequestPrincipals: []string{"*"}})},
	{"ztp-jwt-principals-and-callers", jwtSpec(meshv1alpha1.AllowRule{Name: "frontend",
		From:              []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}, Namespaces: []string{"edge"}}},
		To:                []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Methods: []meshv1alpha1.HTTPMethod{"GET"}}},
		RequestPrincipals: []string{"https://auth.example.com/alice", "https://auth.example.com/bob"}},
		rule([]meshv1alpha1.TrafficSource{{Namespaces: []string{"monitoring"}}}, meshv1alpha1.TrafficDestination{Ports: []int32{9090}}))},
	{"ztp-jwt-claims", jwtSpec(meshv1alpha1.AllowRule{Name: "admins", To: []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}}},
		Claims: []meshv1alpha1.JWTClaim{{Name: "groups", Values: []string{"admin", "ops"}}, {Name: "iss", Values: []string{"ci"}}}})},
	{"ztp-jwt-validate-only", func() meshv1alpha1.ZeroTrustPolicySpec {
		s := jwtSpec()
		s.DefaultAction = meshv1alpha1.ActionAllow
		s.Selector = webSelector
		return s
	}()},
}

// ambientJWTCases are ZeroTrustPolicies with spec.jwt in ambient
// namespaces.
var ambientJWTCases = []struct {
	name  string
	facts mesh.NamespaceFacts
	spec  meshv1alpha1.ZeroTrustPolicySpec
}{
	{"ambient-ztp-jwt-waypoint", ambientNSWaypoint, jwtCases[1].spec},
	{"ambient-ztp-jwt-validate-only-waypoint", ambientNSWaypoint, func() meshv1alpha1.ZeroTrustPolicySpec {
		s := jwtSpec()
		s.DefaultAction = meshv1alpha1.ActionAllow
		return s
	}()},
	{"ambient-ztp-jwt-no-waypoint", ambientNoWaypoint, jwtCases[0].spec},
	{"ambient-ztp-jwt-selector", ambientNSWaypoint, jwtCases[3].spec},
}

func egressPolicy(spec meshv1alpha1.EgressPolicySpec) *meshv1alpha1.EgressPolicy {
	return &meshv1alpha1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: *spec.DeepCopy()}
}

func jwtPolicy(spec meshv1alpha1.ZeroTrustPolicySpec) *meshv1alpha1.ZeroTrustPolicy {
	p := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: *spec.DeepCopy()}
	if p.Spec.DefaultAction == "" {
		p.Spec.DefaultAction = meshv1alpha1.ActionDeny
	}
	return p
}

// translateEgressAll translates every egress and JWT case.
func translateEgressAll(t *testing.T) []translation {
	t.Helper()
	reg := Registry()
	var out []translation
	for _, p := range meshv1alpha1.Providers {
		et, err := reg.EgressTranslator(p)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := reg.PolicyTranslator(p)
		if err != nil {
			t.Fatal(err)
		}
		suffix := "." + strings.ToLower(string(p))
		for _, tc := range egressCases {
			objs, err := et.TranslateEgressPolicy(egressPolicy(tc.spec), sidecarFacts)
			out = append(out, translation{golden: tc.name + suffix, objs: objs, err: err})
		}
		for _, tc := range jwtCases {
			objs, err := mesh.TranslateZeroTrustPolicy(pt, jwtPolicy(tc.spec), sidecarFacts)
			out = append(out, translation{golden: tc.name + suffix, objs: objs, err: err})
		}
	}
	istio, _ := reg.EgressTranslator(meshv1alpha1.ProviderIstio)
	for _, tc := range ambientEgressCases {
		objs, err := istio.TranslateEgressPolicy(egressPolicy(tc.spec), tc.facts)
		out = append(out, translation{golden: tc.name + ".istio", objs: objs, err: err})
	}
	ipt, _ := reg.PolicyTranslator(meshv1alpha1.ProviderIstio)
	for _, tc := range ambientJWTCases {
		objs, err := mesh.TranslateZeroTrustPolicy(ipt, jwtPolicy(tc.spec), tc.facts)
		out = append(out, translation{golden: tc.name + ".istio", objs: objs, err: err})
	}
	return out
}

func TestEgressAndJWTTranslationGolden(t *testing.T) {
	first := translateEgressAll(t)
	again := translateEgressAll(t)
	for i, tr := range first {
		t.Run(tr.golden, func(t *testing.T) {
			got := render(t, tr)
			if render(t, again[i]) != got {
				t.Fatalf("translation of %s is not deterministic", tr.golden)
			}
			path := filepath.Join("testdata", tr.golden+".golden.yaml")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/mesh/providers -run TestEgressAndJWTTranslationGolden -update)", err)
			}
			if got != string(want) {
				t.Fatalf("%s differs from the golden file (run with -update and review the diff):\n%s", path, got)
			}
		})
	}
}

// TestEgressAndJWTRefusals pins every refused case: the reason and the
// words of the message a user acts on (feature, mesh, field).
func TestEgressAndJWTRefusals(t *testing.T) {
	want := map[string][]string{
		"egp-tcp-host.istio":                 {"EgressTCPHosts", "Istio"},
		"egp-gateway-nodes.istio":            {"EgressGateway", "spec.gateway: Istio routes egress through the egress gateway", "nodeSelector"},
		"egp-gateway-hosts.istio":            {"EgressGateway", "spec.gateway: Istio routes egress through the egress gateway"},
		"egp-gateway-egress-tcp.istio":       {"EgressTCPHosts", "Istio"},
		"egp-gateway-egress-port.istio":      {"EgressGateway", "spec.rules[0].ports[0]: HTTP on port 8080", "port 80"},
		"egp-gateway-egress-cidr.istio":      {"EgressGateway", "spec.rules[0].cidrs"},
		"egp-gateway-egress-wildcard.istio":  {"EgressGateway", "spec.rules[0].hosts", "exact hosts"},
		"egp-tls-host.linkerd":               {"EgressTLSHosts", "spec.rules[0].ports[0]", "v1alpha2"},
		"egp-cidr.linkerd":                   {"EgressCIDRs", "spec.rules[0].cidrs"},
		"egp-tcp-host.linkerd":               {"EgressTCPHosts", "spec.rules[0].ports[0]"},
		"egp-selector.linkerd":               {"EgressPerWorkload", "spec.selector"},
		"egp-gateway-nodes.linkerd":          {"EgressGateway", "no egress gateway"},
		"egp-gateway-hosts.linkerd":          {"EgressGateway"},
		"egp-gateway-waypoint.linkerd":       {"EgressGateway"},
		"egp-audit.cilium":                   {"EgressAudit", "not per policy"},
		"egp-gateway-hosts.cilium":           {"EgressGateway", "spec.rules[1].hosts"},
		"egp-gateway-waypoint.cilium":        {"EgressGateway", "nodeSelector"},
		"ambient-egp-allowlist.istio":        {"EgressAllowList", "Ambient data plane", "ztunnel", "spec.mode Audit"},
		"ambient-egp-selector.istio":         {"EgressPerWorkload", "spec.selector"},
		"ambient-egp-missing-waypoint.istio": {"spec.gateway.name: namespace shop has no waypoint egress"},
		"ambient-ztp-jwt-no-waypoint.istio":  {"spec.jwt: namespace shop is ambient and no waypoint serves it"},
		"ambient-ztp-jwt-selector.istio":     {"spec.selector with spec.jwt"},
	}
	for _, tc := range egressCases {
		if strings.HasPrefix(tc.name, "egp-gateway-egress") {
			want[tc.name+".linkerd"] = []string{"EgressGateway"}
			want[tc.name+".cilium"] = []string{"EgressGateway"}
		}
	}
	want["egp-gateway-egress-audit.cilium"] = []string{"EgressAudit"}
	for _, tc := range jwtCases {
		for _, m := range []string{"linkerd", "cilium"} {
			want[tc.name+"."+m] = []string{"JWTAuthentication", "validate them at an ingress gateway"}
		}
	}
	for _, tr := range translateEgressAll(t) {
		words, refused := want[tr.golden]
		if !refused {
			if tr.err != nil {
				t.Errorf("%s: unexpected error %v", tr.golden, tr.err)
			}
			continue
		}
		if tr.err == nil {
			t.Errorf("%s: translated, want a refusal naming %v", tr.golden, words)
			continue
		}
		for _, w := range words {
			if !strings.Contains(tr.err.Error(), w) {
				t.Errorf("%s: message does not name %q: %v", tr.golden, w, tr.err)
			}
		}
		if !strings.Contains(tr.err.Error(), "nothing was applied") {
			t.Errorf("%s: message does not say nothing was applied: %v", tr.golden, tr.err)
		}
		var uf *mesh.UnsupportedFeatureError
		term, ok := outcome.AsTerminal(tr.err)
		if !ok || term.StalledReason() != meshv1alpha1.UnsupportedFeatureReason {
			t.Errorf("%s: not terminal UnsupportedFeature: %v", tr.golden, tr.err)
		}
		if !strings.HasPrefix(tr.golden, "ambient-") && !errors.As(tr.err, &uf) {
			t.Errorf("%s: not an UnsupportedFeatureError: %v", tr.golden, tr.err)
		}
	}
}

// TestEgressAndJWTOutputsAcceptedByRealCRDs creates every translated
// egress and JWT object on an envtest API server with the real CRDs and
// strict field validation.
func TestEgressAndJWTOutputsAcceptedByRealCRDs(t *testing.T) {
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{})
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, tr := range translateEgressAll(t) {
		if tr.err != nil {
			continue
		}
		ns := fmt.Sprintf("egress-golden-%d", i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		for _, o := range tr.objs {
			if err := applyEgressStrict(ctx, c, o, ns); err != nil {
				t.Errorf("%s: %s %s refused: %v", tr.golden, o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
			}
		}
	}
}

// applyEgressStrict is ApplyStrict, with cluster-scoped outputs (Cilium's
// egress gateway policy) renamed per namespace instead of moved.
func applyEgressStrict(ctx context.Context, c client.Client, o client.Object, ns string) error {
	if o.GetNamespace() != "" {
		return ApplyStrict(ctx, c, o, ns)
	}
	u, err := apply.ToUnstructured(o, c.Scheme())
	if err != nil {
		return err
	}
	u.SetName(ns + "-" + u.GetName())
	strict := client.WithFieldValidation(c, metav1.FieldValidationStrict)
	return strict.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("meshplane"), client.ForceOwnership)
}

// TestEgressOutputKindsCoverTranslations: every egress output is of a kind
// its mesh declares (so the controller watches it and repairs drift), and
// the registry lists each kind once.
func TestEgressOutputKindsCoverTranslations(t *testing.T) {
	reg := Registry()
	declared := map[string][]string{}
	for _, p := range reg.Providers() {
		et, err := reg.EgressTranslator(p.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range et.EgressOutputKinds() {
			declared[strings.ToLower(string(p.Name()))] = append(declared[strings.ToLower(string(p.Name()))], o.GetObjectKind().GroupVersionKind().String())
		}
	}
	for _, tr := range translateEgressAll(t) {
		if !strings.Contains(tr.golden, "egp-") || tr.err != nil {
			continue
		}
		m := tr.golden[strings.LastIndex(tr.golden, ".")+1:]
		for _, o := range tr.objs {
			if gvk := o.GetObjectKind().GroupVersionKind().String(); !slices.Contains(declared[m], gvk) {
				t.Errorf("%s: %s is not among %s's egress output kinds %v", tr.golden, gvk, m, declared[m])
			}
		}
	}
	seen := map[string]bool{}
	for _, o := range reg.EgressOutputKinds() {
		gvk := o.GetObjectKind().GroupVersionKind().String()
		if seen[gvk] {
			t.Errorf("%s listed twice", gvk)
		}
		seen[gvk] = true
	}
	if len(seen) != 9 {
		t.Errorf("egress output kinds %v, want ServiceEntry, Sidecar, Gateway, DestinationRule, VirtualService, EgressNetwork, HTTPRoute, "+
			"CiliumNetworkPolicy, CiliumEgressGatewayPolicy", seen)
	}
}
