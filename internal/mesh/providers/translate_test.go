package providers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
)

func ptr[T any](v T) *T { return &v }

func dur(s string) *metav1.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return &metav1.Duration{Duration: d}
}

var baseBackends = []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 90}, {Name: "web-v2", Weight: 10}}

func tsSpec(mod func(s *meshv1alpha1.TrafficSplitSpec)) meshv1alpha1.TrafficSplitSpec {
	s := meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: "web", Port: ptr[int32](8080)},
		Backends: baseBackends}
	if mod != nil {
		mod(&s)
	}
	return s
}

func canary(matches ...meshv1alpha1.HTTPMatch) meshv1alpha1.TrafficRule {
	return meshv1alpha1.TrafficRule{Name: "canary", Matches: matches, Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v2", Weight: 100}}}
}

// trafficCases are the TrafficSplit features, one golden file per mesh.
var trafficCases = []struct {
	name string
	spec meshv1alpha1.TrafficSplitSpec
}{
	{"ts-weighted", tsSpec(nil)},
	{"ts-header-exact", tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) {
		s.Rules = []meshv1alpha1.TrafficRule{canary(meshv1alpha1.HTTPMatch{Headers: []meshv1alpha1.HTTPHeaderMatch{{Name: "X-Canary", Value: "true"}}})}
	})},
	{"ts-header-prefix", tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) {
		s.Rules = []meshv1alpha1.TrafficRule{canary(meshv1alpha1.HTTPMatch{Headers: []meshv1alpha1.HTTPHeaderMatch{{Name: "x-user", Type: meshv1alpha1.HeaderMatchPrefix, Value: "beta.tester-"}}})}
	})},
	{"ts-header-regex", tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) {
		s.Rules = []meshv1alpha1.TrafficRule{canary(meshv1alpha1.HTTPMatch{Headers: []meshv1alpha1.HTTPHeaderMatch{{Name: "x-user", Type: meshv1alpha1.HeaderMatchRegularExpression, Value: "^(alice|bob)$"}}})}
	})},
	{"ts-path-method", tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) {
		s.Rules = []meshv1alpha1.TrafficRule{
			{Name: "checkout", Matches: []meshv1alpha1.HTTPMatch{{Path: &meshv1alpha1.HTTPPathMatch{Type: meshv1alpha1.PathMatchExact, Value: "/checkout"}, Method: "POST"}},
				Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v2", Weight: 50}, {Name: "web-v1", Weight: 50}}},
			{Name: "api", Matches: []meshv1alpha1.HTTPMatch{{Path: &meshv1alpha1.HTTPPathMatch{Type: meshv1alpha1.PathMatchPathPrefix, Value: "/api"}}},
				Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v2", Weight: 100, Port: ptr[int32](9090)}}},
		}
	})},
	{"ts-mirror", tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) {
		s.Mirror = &meshv1alpha1.MirrorPolicy{Backend: meshv1alpha1.ServiceReference{Name: "web-shadow"}, Percent: ptr[int32](20)}
	})},
	{"ts-timeout", tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) { s.Timeout = dur("1m2.5s") })},
	{"ts-retries", tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) {
		s.Retries = &meshv1alpha1.RetryPolicy{Attempts: 3, PerTryTimeout: dur("2s"), RetryOn: []meshv1alpha1.RetryOn{"5xx", "Unavailable"}}
	})},
	{"ts-retry-reset", tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) {
		s.Retries = &meshv1alpha1.RetryPolicy{Attempts: 2, RetryOn: []meshv1alpha1.RetryOn{"Reset"}}
	})},
	{"ts-gatewayapi-output", tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) {
		s.Output = meshv1alpha1.OutputGatewayAPI
		s.Rules = []meshv1alpha1.TrafficRule{canary(meshv1alpha1.HTTPMatch{Headers: []meshv1alpha1.HTTPHeaderMatch{{Name: "x-canary", Value: "1"}}})}
		s.Timeout = dur("10s")
	})},
	{"ts-gatewayapi-retries", tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) {
		s.Output = meshv1alpha1.OutputGatewayAPI
		s.Retries = &meshv1alpha1.RetryPolicy{Attempts: 2}
	})},
	{"ts-rule-order", tsSpec(func(s *meshv1alpha1.TrafficSplitSpec) {
		s.Rules = []meshv1alpha1.TrafficRule{
			{Name: "api", Matches: []meshv1alpha1.HTTPMatch{{Path: &meshv1alpha1.HTTPPathMatch{Type: meshv1alpha1.PathMatchPathPrefix, Value: "/api"}}},
				Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v2", Weight: 100}}},
			{Name: "api-v1", Matches: []meshv1alpha1.HTTPMatch{{Path: &meshv1alpha1.HTTPPathMatch{Type: meshv1alpha1.PathMatchPathPrefix, Value: "/api/v1"}}},
				Backends: []meshv1alpha1.WeightedBackend{{Name: "web-v1", Weight: 100}}},
		}
	})},
}

func rule(from []meshv1alpha1.TrafficSource, to ...meshv1alpha1.TrafficDestination) meshv1alpha1.AllowRule {
	return meshv1alpha1.AllowRule{From: from, To: to}
}

// policyCases are the ZeroTrustPolicy features, one golden file per mesh.
var policyCases = []struct {
	name string
	spec meshv1alpha1.ZeroTrustPolicySpec
}{
	{"ztp-strict-deny", meshv1alpha1.ZeroTrustPolicySpec{}},
	{"ztp-permissive-allow", meshv1alpha1.ZeroTrustPolicySpec{MTLS: &meshv1alpha1.MTLSSettings{Mode: meshv1alpha1.MTLSPermissive}, DefaultAction: meshv1alpha1.ActionAllow}},
	{"ztp-strict-allow", meshv1alpha1.ZeroTrustPolicySpec{DefaultAction: meshv1alpha1.ActionAllow}},
	{"ztp-rules", meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{
		{Name: "frontend", From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend", "edge/gateway"}, Namespaces: []string{"ops"}}},
			To: []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Methods: []meshv1alpha1.HTTPMethod{"GET", "POST"}, Paths: []string{"/api/*", "/healthz"}}}},
		rule([]meshv1alpha1.TrafficSource{{Namespaces: []string{"monitoring"}}}, meshv1alpha1.TrafficDestination{Ports: []int32{8080, 9090}}),
	}}},
	{"ztp-permissive-any-caller", meshv1alpha1.ZeroTrustPolicySpec{MTLS: &meshv1alpha1.MTLSSettings{Mode: meshv1alpha1.MTLSPermissive},
		Rules: []meshv1alpha1.AllowRule{rule(nil, meshv1alpha1.TrafficDestination{Ports: []int32{8080}})}}},
	{"ztp-selector", meshv1alpha1.ZeroTrustPolicySpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		Rules: []meshv1alpha1.AllowRule{rule([]meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"frontend"}}}, meshv1alpha1.TrafficDestination{Ports: []int32{8080}})}}},
	{"ztp-selector-expressions", meshv1alpha1.ZeroTrustPolicySpec{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"db", "cache"}}}}}},
	{"ztp-any-port", meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{rule([]meshv1alpha1.TrafficSource{{Namespaces: []string{"ops"}}})}}},
	{"ztp-l7-without-port", meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{rule(nil, meshv1alpha1.TrafficDestination{Methods: []meshv1alpha1.HTTPMethod{"GET"}})}}},
}

// translation is one case on one mesh.
type translation struct {
	golden string
	objs   []client.Object
	err    error
}

func translateAll(t *testing.T) []translation {
	t.Helper()
	reg := Registry()
	var out []translation
	for _, p := range meshv1alpha1.Providers {
		tt, err := reg.TrafficTranslator(p)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := reg.PolicyTranslator(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range trafficCases {
			ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: tc.spec}
			if p != meshv1alpha1.ProviderIstio && ts.Spec.Output == meshv1alpha1.OutputNative {
				ts.Spec.Output = ""
			}
			objs, err := tt.TranslateTrafficSplit(ts)
			out = append(out, translation{golden: tc.name + "." + strings.ToLower(string(p)), objs: objs, err: err})
		}
		for _, tc := range policyCases {
			pol := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: tc.spec}
			if pol.Spec.DefaultAction == "" {
				pol.Spec.DefaultAction = meshv1alpha1.ActionDeny
			}
			objs, err := pt.TranslateZeroTrustPolicy(pol)
			out = append(out, translation{golden: tc.name + "." + strings.ToLower(string(p)), objs: objs, err: err})
		}
	}
	return out
}

// render is the golden text: the objects as YAML documents, or the
// terminal error (never both: nothing partial).
func render(t *testing.T, tr translation) string {
	t.Helper()
	if tr.err != nil {
		if len(tr.objs) > 0 {
			t.Fatalf("%s: error with %d objects (partial output): %v", tr.golden, len(tr.objs), tr.err)
		}
		term, ok := outcome.AsTerminal(tr.err)
		if !ok {
			t.Fatalf("%s: non-terminal error %v", tr.golden, tr.err)
		}
		return fmt.Sprintf("# %s: %s\n", term.StalledReason(), tr.err.Error())
	}
	var docs []string
	for _, o := range tr.objs {
		u, err := apply.ToUnstructured(o, scheme.New())
		if err != nil {
			t.Fatal(err)
		}
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	return strings.Join(docs, "---\n")
}

func TestTranslationGolden(t *testing.T) {
	for _, tr := range translateAll(t) {
		t.Run(tr.golden, func(t *testing.T) {
			got := render(t, tr)
			path := filepath.Join("testdata", tr.golden+".golden.yaml")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
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
			// Deterministic: a second translation renders identically.
			again := translateAll(t)
			for _, a := range again {
				if a.golden == tr.golden && render(t, a) != got {
					t.Fatalf("translation of %s is not deterministic", tr.golden)
				}
			}
		})
	}
}

// TestUnsupportedCasesNameFeatureAndMesh pins which cases are refused and
// that the message names the feature and the mesh.
func TestUnsupportedCasesNameFeatureAndMesh(t *testing.T) {
	want := map[string]string{
		"ts-mirror.linkerd":                "Mirroring",
		"ts-retries.cilium":                "Retries",
		"ts-retry-reset.linkerd":           "RetryConditions",
		"ts-retry-reset.cilium":            "Retries",
		"ts-gatewayapi-retries.istio":      "Retries",
		"ts-gatewayapi-retries.cilium":     "Retries",
		"ts-rule-order.linkerd":            "OrderedRules",
		"ts-rule-order.cilium":             "OrderedRules",
		"ztp-selector.linkerd":             "PerWorkloadMTLSMode",
		"ztp-selector-expressions.linkerd": "PerWorkloadMTLSMode",
		"ztp-selector-expressions.istio":   "PerWorkloadMTLSMode",
		"ztp-any-port.linkerd":             "AllowAnyPort",
		"ztp-l7-without-port.linkerd":      "AllowAnyPort",
		"ztp-l7-without-port.cilium":       "AllowHTTPMethodPath",
	}
	for _, tr := range translateAll(t) {
		feature, refused := want[tr.golden]
		if !refused {
			if tr.err != nil {
				t.Errorf("%s: unexpected error %v", tr.golden, tr.err)
			}
			continue
		}
		meshName := tr.golden[strings.LastIndex(tr.golden, ".")+1:]
		var uf *mesh.UnsupportedFeatureError
		if !errors.As(tr.err, &uf) || !strings.Contains(tr.err.Error(), feature) || !strings.Contains(strings.ToLower(tr.err.Error()), meshName) {
			t.Errorf("%s: want UnsupportedFeatureError naming %s and %s, got %v", tr.golden, feature, meshName, tr.err)
		}
		if term, ok := outcome.AsTerminal(tr.err); !ok || term.StalledReason() != meshv1alpha1.UnsupportedFeatureReason {
			t.Errorf("%s: not terminal UnsupportedFeature: %v", tr.golden, tr.err)
		}
	}
}

// TestGoldenOutputsAcceptedByRealCRDs creates every translated object on an
// envtest API server with the real Istio, Gateway API, Cilium and Linkerd
// CRDs, with strict field validation, so OpenAPI and CEL both check it.
func TestGoldenOutputsAcceptedByRealCRDs(t *testing.T) {
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{})
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, tr := range translateAll(t) {
		if tr.err != nil {
			continue
		}
		ns := fmt.Sprintf("golden-%d", i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		for _, o := range tr.objs {
			if err := ApplyStrict(ctx, c, o, ns); err != nil {
				t.Errorf("%s: %s %s refused: %v", tr.golden, o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
			}
		}
	}
}

// ApplyStrict server-side applies o into namespace ns with strict field
// validation (a Namespace object patches ns itself).
func ApplyStrict(ctx context.Context, c client.Client, o client.Object, ns string) error {
	u, err := apply.ToUnstructured(o, c.Scheme())
	if err != nil {
		return err
	}
	if u.GetKind() == "Namespace" {
		u.SetName(ns)
	} else {
		u.SetNamespace(ns)
	}
	rewriteNamespace(u.Object, "shop", ns)
	strict := client.WithFieldValidation(c, metav1.FieldValidationStrict)
	return strict.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("meshplane"), client.ForceOwnership)
}

// rewriteNamespace replaces namespace references to the fixture namespace.
func rewriteNamespace(v any, from, to string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "namespace" && s == from {
				x[k] = to
			} else {
				rewriteNamespace(e, from, to)
			}
		}
	case []any:
		for _, e := range x {
			rewriteNamespace(e, from, to)
		}
	}
}
