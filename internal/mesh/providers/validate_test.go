package providers

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/scheme"
)

func header(name, value string, t meshv1alpha1.HeaderMatchType) meshv1alpha1.HTTPHeaderMatch {
	return meshv1alpha1.HTTPHeaderMatch{Name: name, Value: value, Type: t}
}

func withRule(matches ...meshv1alpha1.HTTPMatch) meshv1alpha1.TrafficSplitSpec {
	return tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) { s.Rules = []meshv1alpha1.TrafficRule{canary(matches...)} })
}

// outputKinds are every (mesh, output) a TrafficSplit can be translated
// for.
var outputKinds = []struct {
	provider meshv1alpha1.Provider
	output   meshv1alpha1.TrafficOutput
}{
	{meshv1alpha1.ProviderIstio, meshv1alpha1.OutputNative},
	{meshv1alpha1.ProviderIstio, meshv1alpha1.OutputGatewayAPI},
	{meshv1alpha1.ProviderLinkerd, ""},
	{meshv1alpha1.ProviderCilium, ""},
}

// TestSameTrafficSplitValidationEveryOutput: the same invalid input is
// refused with the same InvalidSpec message by every mesh and output kind
// (before, Istio's VirtualService accepted what the HTTPRoute refused, and
// header names differing in case were collapsed or ignored).
func TestSameTrafficSplitValidationEveryOutput(t *testing.T) {
	cases := []struct {
		name string
		spec meshv1alpha1.TrafficSplitSpec
		want string
	}{
		{"header-case", withRule(meshv1alpha1.HTTPMatch{Headers: []meshv1alpha1.HTTPHeaderMatch{header("X-User", "a", ""), header("x-user", "b", "")}}),
			`spec.rules[0].matches[0].headers[1].name: "x-user" is the same header as spec.rules[0].matches[0].headers[0].name "X-User" (header names are case-insensitive, and a mesh keeps only one of them); put both conditions in one header match, or in two matches to OR them`},
		{"header-same-case-prefix", withRule(meshv1alpha1.HTTPMatch{Headers: []meshv1alpha1.HTTPHeaderMatch{header("x-a", "a", ""), header("X-A", "b", meshv1alpha1.HeaderMatchPrefix)}}),
			`spec.rules[0].matches[0].headers[1].name: "X-A" is the same header as spec.rules[0].matches[0].headers[0].name "x-a" (header names are case-insensitive, and a mesh keeps only one of them); put both conditions in one header match, or in two matches to OR them`},
		{"invalid-regex", withRule(meshv1alpha1.HTTPMatch{Headers: []meshv1alpha1.HTTPHeaderMatch{header("x-user", "(unclosed", meshv1alpha1.HeaderMatchRegularExpression)}}),
			"spec.rules[0].matches[0].headers[0].value: \"(unclosed\" is not an RE2 regular expression (error parsing regexp: missing closing ): `(unclosed`); fix the expression"},
		{"perl-lookahead", withRule(meshv1alpha1.HTTPMatch{Headers: []meshv1alpha1.HTTPHeaderMatch{header("x-user", "^(?!bob)", meshv1alpha1.HeaderMatchRegularExpression)}}),
			"spec.rules[0].matches[0].headers[0].value: \"^(?!bob)\" is not an RE2 regular expression (error parsing regexp: invalid or unsupported Perl syntax: `(?!`); fix the expression"},
		{"crlf", withRule(meshv1alpha1.HTTPMatch{Headers: []meshv1alpha1.HTTPHeaderMatch{header("x-user", "a\r\nx-admin: 1", "")}}),
			`spec.rules[0].matches[0].headers[0].value: "a\r\nx-admin: 1" contains the control character U+000D at byte 1; an HTTP header value cannot contain CR, LF or other control characters — remove it`},
		{"lf-prefix", withRule(meshv1alpha1.HTTPMatch{Headers: []meshv1alpha1.HTTPHeaderMatch{header("x-user", "a\n", meshv1alpha1.HeaderMatchPrefix)}}),
			`spec.rules[0].matches[0].headers[0].value: "a\n" contains the control character U+000A at byte 1; an HTTP header value cannot contain CR, LF or other control characters — remove it`},
		{"dotdot", withRule(meshv1alpha1.HTTPMatch{Path: &meshv1alpha1.HTTPPathMatch{Type: meshv1alpha1.PathMatchPathPrefix, Value: "/api/../admin"}}),
			`spec.rules[0].matches[0].path.value: path "/api/../admin" must not contain //, /./, /../, %2f or # nor end with /. or /.. (proxies normalize such paths, so the match would not see them); use the normalized path`},
		{"dotdot-end-exact", withRule(meshv1alpha1.HTTPMatch{Path: &meshv1alpha1.HTTPPathMatch{Type: meshv1alpha1.PathMatchExact, Value: "/api/.."}}),
			`spec.rules[0].matches[0].path.value: path "/api/.." must not contain //, /./, /../, %2f or # nor end with /. or /.. (proxies normalize such paths, so the match would not see them); use the normalized path`},
		{"path-space", withRule(meshv1alpha1.HTTPMatch{Path: &meshv1alpha1.HTTPPathMatch{Value: "/a b"}}),
			`spec.rules[0].matches[0].path.value: path "/a b" contains characters not allowed in a URL path; percent-encode them`},
		{"reserved-rule-name", tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) {
			r := canary(meshv1alpha1.HTTPMatch{Method: "GET"})
			r.Name = "default"
			s.Rules = []meshv1alpha1.TrafficRule{r}
		}), `spec.rules[0].name: "default" is reserved for the rule that carries spec.backends; rename the rule`},
	}
	reg := Registry()
	for _, tc := range cases {
		for _, ok := range outputKinds {
			t.Run(fmt.Sprintf("%s/%s-%s", tc.name, ok.provider, ok.output), func(t *testing.T) {
				tr, err := reg.TrafficTranslator(ok.provider)
				if err != nil {
					t.Fatal(err)
				}
				ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: tc.spec}
				ts.Spec.Output = ok.output
				objs, err := tr.TranslateTrafficSplit(ts)
				assertInvalid(t, objs, err, tc.want)
			})
		}
	}
}

// TestHeaderCaseDistinctMatchesKept: the same header in two matches of a
// rule is an OR, not a clash; both values reach every output.
func TestHeaderCaseDistinctMatchesKept(t *testing.T) {
	spec := tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) {
		s.Rules = []meshv1alpha1.TrafficRule{canary(
			meshv1alpha1.HTTPMatch{Headers: []meshv1alpha1.HTTPHeaderMatch{header("X-User", "a", "")}},
			meshv1alpha1.HTTPMatch{Headers: []meshv1alpha1.HTTPHeaderMatch{header("x-user", "b", "")}})}
	})
	reg := Registry()
	for _, ok := range outputKinds {
		tr, _ := reg.TrafficTranslator(ok.provider)
		ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: spec}
		ts.Spec.Output = ok.output
		objs, err := tr.TranslateTrafficSplit(ts)
		if err != nil {
			t.Fatalf("%s/%s: %v", ok.provider, ok.output, err)
		}
		u := render(t, translation{golden: "x", objs: objs})
		if !strings.Contains(u, "a\n") || !strings.Contains(u, "b\n") {
			t.Fatalf("%s/%s: a value is missing:\n%s", ok.provider, ok.output, u)
		}
	}
}

func assertInvalid(t *testing.T, objs []client.Object, err error, want string) {
	t.Helper()
	if len(objs) > 0 {
		t.Fatalf("refused translation returned %d objects", len(objs))
	}
	term, ok := outcome.AsTerminal(err)
	if !ok || term.StalledReason() != meshv1alpha1.InvalidSpecReason {
		t.Fatalf("want InvalidSpec, got %v", err)
	}
	if err.Error() != want {
		t.Fatalf("message\n got %s\nwant %s", err.Error(), want)
	}
}

func policy(spec meshv1alpha1.ZeroTrustPolicySpec) *meshv1alpha1.ZeroTrustPolicy {
	if spec.DefaultAction == "" {
		spec.DefaultAction = meshv1alpha1.ActionDeny
	}
	return &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: spec}
}

func port8080() []meshv1alpha1.TrafficDestination {
	return []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}}}
}

// TestSamePolicyValidationEveryMesh: rule names that would give two
// outputs one name (a rule named r0 beside an unnamed first rule: Linkerd
// dropped one), paths the proxies normalize, a * inside a path and an
// invalid selector are refused the same way on every mesh.
func TestSamePolicyValidationEveryMesh(t *testing.T) {
	ops := []meshv1alpha1.TrafficSource{{Namespaces: []string{"ops"}}}
	cases := []struct {
		name string
		spec meshv1alpha1.ZeroTrustPolicySpec
		want string
	}{
		{"unnamed-vs-r0", meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{
			{From: ops, To: port8080()}, {Name: "r0", From: ops, To: []meshv1alpha1.TrafficDestination{{Ports: []int32{9090}}}}}},
			`spec.rules[1]: its name "r0" is also the name Meshplane gives the unnamed spec.rules[0], and the outputs of both would share names; give each rule a distinct name`},
		{"duplicate-names", meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{
			{Name: "api", From: ops, To: port8080()}, {Name: "api", From: ops, To: port8080()}}},
			`spec.rules[1]: its name "api" is also the name of spec.rules[0], and the outputs of both would share names; give each rule a distinct name`},
		{"dotdot", meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{
			{From: ops, To: []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Paths: []string{"/api/../admin"}}}}}},
			`spec.rules[0].to[0].paths[0]: path "/api/../admin" must not contain //, /./, /../, %2f or # nor end with /. or /.. (proxies normalize such paths, so the match would not see them); use the normalized path`},
		{"inner-star", meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{
			{From: ops, To: []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Paths: []string{"/a*/b"}}}}}},
			`spec.rules[0].to[0].paths[0]: path "/a*/b": * is only allowed at the end (a prefix match); meshes disagree on a * elsewhere — remove it`},
		{"crlf-path", meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{
			{From: ops, To: []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Paths: []string{"/a\r\n"}}}}}},
			`spec.rules[0].to[0].paths[0]: path "/a\r\n" contains characters not allowed in a URL path; percent-encode them`},
		{"selector-value", meshv1alpha1.ZeroTrustPolicySpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": strings.Repeat("a", 64)}}},
			`spec.selector.matchLabels: Invalid value: "` + strings.Repeat("a", 64) + `": must be no more than 63 bytes; fix the selector`},
	}
	reg := Registry()
	for _, tc := range cases {
		for _, p := range meshv1alpha1.Providers {
			t.Run(fmt.Sprintf("%s/%s", tc.name, p), func(t *testing.T) {
				tr, err := reg.PolicyTranslator(p)
				if err != nil {
					t.Fatal(err)
				}
				objs, err := tr.TranslateZeroTrustPolicy(policy(tc.spec))
				assertInvalid(t, objs, err, tc.want)
			})
		}
	}
}

// TestOutputNamesWithinLimits: a generated name over 253 characters is
// refused in translation with the number of characters to cut (Linkerd
// composes names from the policy's and the rule's; Istio and Cilium use
// the object's own name, which the API server already bounds).
func TestOutputNamesWithinLimits(t *testing.T) {
	name := strings.Repeat("p", 230)
	pol := policy(meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{Name: "frontend-callers",
		From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}}}, To: port8080()}}})
	pol.Name = name
	reg := Registry()
	tr, _ := reg.PolicyTranslator(meshv1alpha1.ProviderLinkerd)
	objs, err := tr.TranslateZeroTrustPolicy(pol)
	want := fmt.Sprintf(`output AuthorizationPolicy %q would be 255 characters, over Kubernetes' limit of 253 for a name; shorten metadata.name of ZeroTrustPolicy %s (or its rule names) by at least 2 characters`,
		name+"-frontend-callers-d0-8080", name)
	assertInvalid(t, objs, err, want)
	for _, p := range []meshv1alpha1.Provider{meshv1alpha1.ProviderIstio, meshv1alpha1.ProviderCilium} {
		tr, _ := reg.PolicyTranslator(p)
		if _, err := tr.TranslateZeroTrustPolicy(pol.DeepCopy()); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	// One character shorter fits.
	pol.Name = name[:228]
	if _, err := tr.TranslateZeroTrustPolicy(pol); err != nil {
		t.Fatalf("253 characters refused: %v", err)
	}
}

// TestIstioSplitsServiceAccounts: Istio's schema allows 16 service
// accounts per source; 32 become two sources of the same rule (ORed, like
// the list), none is dropped.
func TestIstioSplitsServiceAccounts(t *testing.T) {
	var sas []string
	for i := range 33 {
		sas = append(sas, fmt.Sprintf("sa-%d", i))
	}
	pol := policy(meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{
		From: []meshv1alpha1.TrafficSource{{ServiceAccounts: sas, Namespaces: []string{"ops"}}}, To: port8080()}}})
	tr, _ := Registry().PolicyTranslator(meshv1alpha1.ProviderIstio)
	objs, err := tr.TranslateZeroTrustPolicy(pol)
	if err != nil {
		t.Fatal(err)
	}
	out := render(t, translation{golden: "x", objs: objs})
	for _, sa := range sas {
		if !strings.Contains(out, "shop/"+sa+"\n") {
			t.Fatalf("%s missing:\n%s", sa, out)
		}
	}
	if got := strings.Count(out, "serviceAccounts:"); got != 3 {
		t.Fatalf("want 3 sources of at most 16 service accounts, got %d:\n%s", got, out)
	}
	v := realSchemas(t)
	for _, o := range objs {
		u := toMap(t, o)
		if err := v.Validate(u); err != nil {
			t.Fatalf("refused by the real schema: %v", err)
		}
	}
}

// TestLinkerdRouteMatchLimit: 16 paths × 9 methods would need 18 policy
// route rules; Linkerd's schema allows 16.
func TestLinkerdRouteMatchLimit(t *testing.T) {
	var paths []string
	for i := range 16 {
		paths = append(paths, fmt.Sprintf("/p%d", i))
	}
	methods := []meshv1alpha1.HTTPMethod{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
	pol := policy(meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{
		To: []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Paths: paths, Methods: methods}}}}})
	tr, _ := Registry().PolicyTranslator(meshv1alpha1.ProviderLinkerd)
	objs, err := tr.TranslateZeroTrustPolicy(pol)
	assertInvalid(t, objs, err, "spec.rules[0].to[0]: 16 paths × 9 methods make 144 matches, and a Linkerd policy HTTPRoute holds at most 128 (16 rules of 8); split the destination into several with fewer paths or methods")
	pol.Spec.Rules[0].To[0].Methods = methods[:8]
	if _, err := tr.TranslateZeroTrustPolicy(pol); err != nil {
		t.Fatalf("128 matches refused: %v", err)
	}
}

// TestCiliumServiceAccountLabelLength: Cilium matches a caller's service
// account by a label value (at most 63 characters); the API allows longer
// names.
func TestCiliumServiceAccountLabelLength(t *testing.T) {
	long := strings.Repeat("s", 64)
	pol := policy(meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{
		From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"ok", "edge/" + long}}}, To: port8080()}}})
	tr, _ := Registry().PolicyTranslator(meshv1alpha1.ProviderCilium)
	objs, err := tr.TranslateZeroTrustPolicy(pol)
	assertInvalid(t, objs, err, fmt.Sprintf(`spec.rules[0].from[0].serviceAccounts[1]: service account name %q is 64 characters; Cilium selects callers by the label k8s:io.cilium.k8s.policy.serviceaccount, whose values are at most 63 characters — use a shorter service account name`, long))
}

func toMap(t *testing.T, o client.Object) map[string]any {
	t.Helper()
	u, err := apply.ToUnstructured(o, scheme.New())
	if err != nil {
		t.Fatal(err)
	}
	return u.Object
}
