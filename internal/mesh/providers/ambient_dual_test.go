package providers

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	securityv1beta1 "istio.io/api/security/v1beta1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// movingFrom returns f for a namespace moving out of sidecar mode
// (mesh.DataPlaneFromAnnotation).
func movingFrom(f mesh.NamespaceFacts) mesh.NamespaceFacts {
	f.Previous = mesh.Sidecar
	return f
}

// dualPolicyCases are ZeroTrustPolicies of a namespace moving from
// sidecar to ambient: the outputs kept for both kinds of pods.
var dualPolicyCases = []struct {
	name  string
	facts mesh.NamespaceFacts
	spec  meshv1alpha1.ZeroTrustPolicySpec
}{
	{name: "dual-ztp-l7-namespace-waypoint", facts: movingFrom(ambientNSWaypoint), spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: l7Rules}},
	{name: "dual-ztp-l4-service-waypoint", facts: movingFrom(ambientSvcWaypoint), spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: l4Rules}},
	{name: "dual-ztp-l4-no-waypoint", facts: movingFrom(ambientNoWaypoint), spec: meshv1alpha1.ZeroTrustPolicySpec{Selector: webSelector, Rules: l4Rules}},
	{name: "dual-ztp-jwt-namespace-waypoint", facts: movingFrom(ambientNSWaypoint),
		spec: jwtSpec(meshv1alpha1.AllowRule{Name: "token", RequestPrincipals: []string{"*"}}, l4Rules[0])},
}

func dualPolicy(spec meshv1alpha1.ZeroTrustPolicySpec) *meshv1alpha1.ZeroTrustPolicy {
	p := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: spec}
	p.Spec.DefaultAction = meshv1alpha1.ActionDeny
	return p
}

// TestDualPolicyGolden pins the outputs of a policy while its namespace
// moves from sidecar to ambient (golden files, accepted by the real CRDs).
func TestDualPolicyGolden(t *testing.T) {
	v := realSchemas(t)
	pt, err := Registry().PolicyTranslator(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range dualPolicyCases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := mesh.TranslateZeroTrustPolicy(pt, dualPolicy(tc.spec), tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if !accepted(t, v, o) {
					t.Fatalf("%s %s refused by its CRD", o.GetObjectKind().GroupVersionKind().Kind, o.GetName())
				}
			}
			got := render(t, translation{golden: tc.name + ".istio", objs: objs})
			path := filepath.Join("testdata", tc.name+".istio.golden.yaml")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/mesh/providers -update)", err)
			}
			if got != string(want) {
				t.Fatalf("%s differs from the golden file (run with -update and review the diff):\n%s", path, got)
			}
		})
	}
}

// TestDualPolicyEnforcesBothForms checks, per case, what each kind of pod
// enforces while both forms are kept, against each form alone:
//
//   - a sidecar pod applies the selector/namespace-bound policies: their
//     rules are the sidecar form's, plus only rules the ambient form's
//     ztunnel policy has (the waypoints' identities), never a rule it drops;
//   - ztunnel applies the same policies after istiod dropped every ALLOW
//     rule with HTTP attributes: exactly the ambient form's ztunnel rules;
//   - the waypoint applies the targetRefs-bound policies: exactly the
//     ambient form's;
//   - every object of the ambient form is there, under its name.
func TestDualPolicyEnforcesBothForms(t *testing.T) {
	pt, err := Registry().PolicyTranslator(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range dualPolicyCases {
		t.Run(tc.name, func(t *testing.T) {
			p := dualPolicy(tc.spec)
			dual, err := mesh.TranslateZeroTrustPolicy(pt, p, tc.facts)
			if err != nil {
				t.Fatal(err)
			}
			ambientFacts := tc.facts
			ambientFacts.Previous = ""
			ambient, err := mesh.TranslateZeroTrustPolicy(pt, p, ambientFacts)
			if err != nil {
				t.Fatal(err)
			}
			sidecar, err := mesh.TranslateZeroTrustPolicy(pt, p, sidecarFacts)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range ambient {
				if !slices.ContainsFunc(dual, func(d client.Object) bool { return sameKindName(d, o) }) {
					t.Errorf("ambient output %s %s missing", o.GetObjectKind().GroupVersionKind().Kind, o.GetName())
				}
			}
			atSidecar, atZtunnel, atWaypoint := enforced(dual)
			sidecarOnly, _, _ := enforced(sidecar)
			_, ztunnelOnly, waypointOnly := enforced(ambient)
			_, ambientZtunnelRaw, _ := boundRules(ambient)
			for _, r := range sidecarOnly {
				if !containsRule(atSidecar, r) {
					t.Errorf("a sidecar pod lost rule %v", r)
				}
			}
			for _, r := range atSidecar {
				if !containsRule(sidecarOnly, r) && !containsRule(ambientZtunnelRaw, r) {
					t.Errorf("a sidecar pod gained rule %v, which neither form binds to it", r)
				}
			}
			if !sameRules(atZtunnel, ztunnelOnly) {
				t.Errorf("ztunnel enforces %v, the ambient form alone %v", atZtunnel, ztunnelOnly)
			}
			if !sameRules(atWaypoint, waypointOnly) {
				t.Errorf("the waypoint enforces %v, the ambient form alone %v", atWaypoint, waypointOnly)
			}
			// Tokens: a sidecar pod validates them with the sidecar form's
			// RequestAuthentication, the waypoint with the ambient form's.
			raSidecar, raWaypoint := boundJWTRules(dual)
			wantSidecar, _ := boundJWTRules(sidecar)
			_, wantWaypoint := boundJWTRules(ambient)
			if !sameJWTRules(raSidecar, wantSidecar) || !sameJWTRules(raWaypoint, wantWaypoint) {
				t.Errorf("token validation: sidecar pods %v (want %v), waypoint %v (want %v)", raSidecar, wantSidecar, raWaypoint, wantWaypoint)
			}
		})
	}
}

// boundJWTRules returns the JWT rules of objs' RequestAuthentications
// bound to workloads (selector or namespace-wide: sidecars read them;
// ztunnel reads none) and those bound with targetRefs (the waypoint).
func boundJWTRules(objs []client.Object) (workload, waypoint []*securityv1beta1.JWTRule) {
	for _, o := range objs {
		ra, ok := o.(*istiosecurity.RequestAuthentication)
		if !ok {
			continue
		}
		if len(ra.Spec.TargetRefs) > 0 {
			waypoint = append(waypoint, ra.Spec.JwtRules...)
			continue
		}
		workload = append(workload, ra.Spec.JwtRules...)
	}
	return workload, waypoint
}

func sameJWTRules(a, b []*securityv1beta1.JWTRule) bool {
	return slices.EqualFunc(a, b, func(x, y *securityv1beta1.JWTRule) bool { return proto.Equal(x, y) })
}

func sameKindName(a, b client.Object) bool {
	return a.GetObjectKind().GroupVersionKind().Kind == b.GetObjectKind().GroupVersionKind().Kind && a.GetName() == b.GetName()
}

// boundRules returns the ALLOW rules of objs' AuthorizationPolicies bound
// to workloads (selector or namespace-wide: sidecars and ztunnel read
// them) and those bound with targetRefs (the waypoint reads them).
func boundRules(objs []client.Object) (workload, ztunnel, waypoint []*securityv1beta1.Rule) {
	for _, o := range objs {
		ap, ok := o.(*istiosecurity.AuthorizationPolicy)
		if !ok {
			continue
		}
		if len(ap.Spec.TargetRefs) > 0 {
			waypoint = append(waypoint, ap.Spec.Rules...)
			continue
		}
		workload = append(workload, ap.Spec.Rules...)
		ztunnel = append(ztunnel, ap.Spec.Rules...)
	}
	return workload, ztunnel, waypoint
}

// enforced is what each enforcement point applies: ztunnel's rules after
// istiod's conversion, which drops every ALLOW rule with HTTP attributes.
func enforced(objs []client.Object) (sidecar, ztunnel, waypoint []*securityv1beta1.Rule) {
	sidecar, raw, waypoint := boundRules(objs)
	for _, r := range raw {
		if !ztunnelDrops(r) {
			ztunnel = append(ztunnel, r)
		}
	}
	return sidecar, ztunnel, waypoint
}

// ztunnelDrops mirrors istiod's ambient conversion of an ALLOW rule: HTTP
// operations (hosts, methods, paths) or request principals never match at
// ztunnel, and neither do request conditions.
func ztunnelDrops(r *securityv1beta1.Rule) bool {
	for _, to := range r.To {
		op := to.Operation
		if len(op.Hosts)+len(op.NotHosts)+len(op.Methods)+len(op.NotMethods)+len(op.Paths)+len(op.NotPaths) > 0 {
			return true
		}
	}
	for _, from := range r.From {
		s := from.Source
		if len(s.RequestPrincipals)+len(s.NotRequestPrincipals)+len(s.RemoteIpBlocks)+len(s.NotRemoteIpBlocks) > 0 {
			return true
		}
	}
	return len(r.When) > 0
}

func containsRule(rules []*securityv1beta1.Rule, r *securityv1beta1.Rule) bool {
	return slices.ContainsFunc(rules, func(h *securityv1beta1.Rule) bool { return proto.Equal(h, r) })
}

func sameRules(a, b []*securityv1beta1.Rule) bool {
	for _, r := range a {
		if !containsRule(b, r) {
			return false
		}
	}
	for _, r := range b {
		if !containsRule(a, r) {
			return false
		}
	}
	return true
}

// TestDualTrafficSplitIsAmbientOnly: a TrafficSplit's sidecar form (a
// VirtualService) is not kept beside the ambient HTTPRoute, which Istio
// documents as an unsupported mix; the HTTPRoute serves both kinds of
// pods.
func TestDualTrafficSplitIsAmbientOnly(t *testing.T) {
	tt, err := Registry().TrafficTranslator(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: tsSpec(nil)}
	dual, err := mesh.TranslateTrafficSplit(tt, ts, movingFrom(ambientNSWaypoint))
	if err != nil {
		t.Fatal(err)
	}
	ambient, err := mesh.TranslateTrafficSplit(tt, ts, ambientNSWaypoint)
	if err != nil {
		t.Fatal(err)
	}
	if len(dual) != 1 || len(ambient) != 1 || !sameKindName(dual[0], ambient[0]) || dual[0].GetObjectKind().GroupVersionKind().Kind != "HTTPRoute" {
		t.Fatalf("dual %v, ambient %v: want the one HTTPRoute", dual, ambient)
	}
}
