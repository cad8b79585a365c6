package providers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
)

// Namespace facts of the ambient cases.
var (
	ambientNoWaypoint = mesh.NamespaceFacts{Name: "shop", Mode: mesh.Ambient}
	ambientNSWaypoint = mesh.NamespaceFacts{Name: "shop", Mode: mesh.Ambient, Waypoint: "waypoint",
		Waypoints: map[string]mesh.WaypointFacts{"waypoint": {For: "service", Programmed: true}}}
	ambientSvcWaypoint = mesh.NamespaceFacts{Name: "shop", Mode: mesh.Ambient,
		WaypointFor: map[string]string{"web": "web-waypoint"},
		Waypoints:   map[string]mesh.WaypointFacts{"web-waypoint": {For: "all"}}}
	ambientLabelOnly = mesh.NamespaceFacts{Name: "shop", Mode: mesh.Ambient, Waypoint: "waypoint"}
	ambientWorkload  = mesh.NamespaceFacts{Name: "shop", Mode: mesh.Ambient, Waypoint: "waypoint",
		Waypoints: map[string]mesh.WaypointFacts{"waypoint": {For: "workload"}}}
	ambientOptOut = mesh.NamespaceFacts{Name: "shop", Mode: mesh.Ambient, Waypoint: "waypoint",
		WaypointFor: map[string]string{"web": "none"},
		Waypoints:   map[string]mesh.WaypointFacts{"waypoint": {For: "service"}}}
	sidecarFacts = mesh.NamespaceFacts{Name: "shop", Mode: mesh.Sidecar}
)

var l7Rules = []meshv1alpha1.AllowRule{
	{Name: "frontend", From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}}},
		To: []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Methods: []meshv1alpha1.HTTPMethod{"GET"}, Paths: []string{"/api/*"}}}},
	rule([]meshv1alpha1.TrafficSource{{Namespaces: []string{"monitoring"}}}, meshv1alpha1.TrafficDestination{Ports: []int32{9090}}),
}

var l4Rules = []meshv1alpha1.AllowRule{
	rule([]meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}, Namespaces: []string{"ops"}}}, meshv1alpha1.TrafficDestination{Ports: []int32{8080}}),
}

var webSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}

// ambientTrafficCases are TrafficSplits in namespaces of each data-plane
// shape; want is the exact refusal, empty for a translation (golden file).
var ambientTrafficCases = []struct {
	name  string
	facts mesh.NamespaceFacts
	spec  meshv1alpha1.TrafficSplitSpec
	want  string
}{
	{name: "ambient-ts-namespace-waypoint", facts: ambientNSWaypoint, spec: tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) {
		s.Rules = []meshv1alpha1.TrafficRule{canary(meshv1alpha1.HTTPMatch{Headers: []meshv1alpha1.HTTPHeaderMatch{{Name: "x-canary", Value: "1"}}})}
	})},
	// Output Native still becomes an HTTPRoute: a VirtualService would be
	// ignored without a sidecar.
	{name: "ambient-ts-service-waypoint-native", facts: ambientSvcWaypoint, spec: tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) {
		s.Output = meshv1alpha1.OutputNative
	})},
	{name: "sidecar-ts-weighted", facts: sidecarFacts, spec: tsSpec(nil)},
	{name: "ambient-ts-no-waypoint", facts: ambientNoWaypoint, spec: tsSpec(nil),
		want: "namespace shop is ambient and no waypoint serves Service web: L7 routing in ambient mode is enforced by a waypoint; " +
			"enable a waypoint for namespace shop (a Gateway of class istio-waypoint with listener port 15008 protocol HBONE, and the label istio.io/use-waypoint=<gateway> on the namespace) (nothing was applied)"},
	{name: "ambient-ts-label-without-gateway", facts: ambientLabelOnly, spec: tsSpec(nil),
		want: "namespace shop is ambient and no waypoint serves Service web (namespace label istio.io/use-waypoint names waypoint waypoint, but no Gateway waypoint of class istio-waypoint exists in the namespace): L7 routing"},
	{name: "ambient-ts-workload-waypoint", facts: ambientWorkload, spec: tsSpec(nil),
		want: "namespace shop is ambient and no waypoint serves Service web (waypoint waypoint has istio.io/waypoint-for=workload; it must be service or all): L7 routing"},
	{name: "ambient-ts-service-opted-out", facts: ambientOptOut, spec: tsSpec(nil),
		want: "namespace shop is ambient and no waypoint serves Service web: L7 routing"},
	{name: "ambient-ts-retries", facts: ambientNSWaypoint, spec: tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) {
		s.Retries = &meshv1alpha1.RetryPolicy{Attempts: 2}
	}), want: "feature Retries is not supported by Istio: in ambient namespace shop routes are Gateway API HTTPRoutes, and HTTPRoute retries are not in Gateway API's standard channel"},
}

// ambientPolicyCases are ZeroTrustPolicies in namespaces of each data-plane
// shape.
var ambientPolicyCases = []struct {
	name  string
	facts mesh.NamespaceFacts
	spec  meshv1alpha1.ZeroTrustPolicySpec
	want  string
}{
	{name: "ambient-ztp-l4-no-waypoint", facts: ambientNoWaypoint, spec: meshv1alpha1.ZeroTrustPolicySpec{Selector: webSelector, Rules: l4Rules}},
	{name: "ambient-ztp-permissive-allow", facts: ambientNoWaypoint, spec: meshv1alpha1.ZeroTrustPolicySpec{
		MTLS: &meshv1alpha1.MTLSSettings{Mode: meshv1alpha1.MTLSPermissive}, DefaultAction: meshv1alpha1.ActionAllow}},
	{name: "ambient-ztp-deny-all-selector-waypoint", facts: ambientNSWaypoint, spec: meshv1alpha1.ZeroTrustPolicySpec{Selector: webSelector}},
	{name: "ambient-ztp-l7-namespace-waypoint", facts: ambientNSWaypoint, spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: l7Rules}},
	{name: "ambient-ztp-l4-service-waypoint", facts: ambientSvcWaypoint, spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: l4Rules}},
	{name: "ambient-ztp-l7-no-waypoint", facts: ambientNoWaypoint, spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: l7Rules},
		want: "namespace shop is ambient and no waypoint serves it: spec.rules[0] match HTTP methods or paths, which only a waypoint enforces " +
			"(ztunnel matches identities, namespaces and ports); enable a waypoint for namespace shop"},
	{name: "ambient-ztp-l7-workload-waypoint", facts: ambientWorkload, spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: l7Rules},
		want: "namespace shop is ambient and no waypoint serves it: spec.rules[0] match"},
	{name: "ambient-ztp-selector-waypoint", facts: ambientNSWaypoint, spec: meshv1alpha1.ZeroTrustPolicySpec{Selector: webSelector, Rules: l4Rules},
		want: "spec.selector: namespace shop is ambient and requests to its Services pass waypoint waypoint, where a policy binds to the waypoint or a Service, " +
			"not to workload labels, so the rules would not hold for them; remove spec.selector to apply the policy to the whole namespace (nothing was applied)"},
	{name: "sidecar-ztp-l7", facts: sidecarFacts, spec: meshv1alpha1.ZeroTrustPolicySpec{Selector: webSelector, Rules: l7Rules}},
}

func ambientTranslations(t *testing.T) []struct {
	translation
	want string
} {
	t.Helper()
	reg := Registry()
	tt, err := reg.TrafficTranslator(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := reg.PolicyTranslator(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	var out []struct {
		translation
		want string
	}
	add := func(name, want string, objs []client.Object, err error) {
		out = append(out, struct {
			translation
			want string
		}{translation{golden: name + ".istio", objs: objs, err: err}, want})
	}
	for _, tc := range ambientTrafficCases {
		ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: tc.spec}
		objs, err := mesh.TranslateTrafficSplit(tt, ts, tc.facts)
		add(tc.name, tc.want, objs, err)
	}
	for _, tc := range ambientPolicyCases {
		pol := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: tc.spec}
		if pol.Spec.DefaultAction == "" {
			pol.Spec.DefaultAction = meshv1alpha1.ActionDeny
		}
		objs, err := mesh.TranslateZeroTrustPolicy(pt, pol, tc.facts)
		add(tc.name, tc.want, objs, err)
	}
	return out
}

// TestAmbientTranslation pins Istio's translation per data-plane shape:
// the outputs (golden files, accepted by the real CRDs) or the exact
// UnsupportedFeature refusal, never both.
func TestAmbientTranslation(t *testing.T) {
	v := realSchemas(t)
	for _, tr := range ambientTranslations(t) {
		t.Run(tr.golden, func(t *testing.T) {
			if tr.want != "" {
				if tr.err == nil || len(tr.objs) > 0 {
					t.Fatalf("want refusal %q, got %d objects, error %v", tr.want, len(tr.objs), tr.err)
				}
				term, ok := outcome.AsTerminal(tr.err)
				if !ok || term.StalledReason() != meshv1alpha1.UnsupportedFeatureReason || !strings.HasPrefix(tr.err.Error(), tr.want) {
					t.Fatalf("want UnsupportedFeature %q, got %v", tr.want, tr.err)
				}
				return
			}
			if tr.err != nil {
				t.Fatalf("unexpected refusal: %v", tr.err)
			}
			for _, o := range tr.objs {
				if !accepted(t, v, o) {
					t.Fatalf("%s %s refused by its CRD", o.GetObjectKind().GroupVersionKind().Kind, o.GetName())
				}
			}
			got := render(t, tr.translation)
			path := filepath.Join("testdata", tr.golden+".golden.yaml")
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
