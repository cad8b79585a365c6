package providers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
)

var sidecarShop = mesh.NamespaceFacts{Name: "shop", Mode: mesh.Sidecar}

// telemetryCases are the TelemetryPolicy features, one golden file per
// mesh (and the ambient data plane on Istio).
var telemetryCases = []struct {
	name string
	spec meshv1alpha1.TelemetryPolicySpec
}{
	{"tel-tracing-sampling", meshv1alpha1.TelemetryPolicySpec{Tracing: &meshv1alpha1.TracingSettings{Enabled: true, SamplingPercentage: "12.5"}}},
	{"tel-tracing-off", meshv1alpha1.TelemetryPolicySpec{Tracing: &meshv1alpha1.TracingSettings{Enabled: false}}},
	{"tel-tracing-tags", meshv1alpha1.TelemetryPolicySpec{Tracing: &meshv1alpha1.TracingSettings{Enabled: true, CustomTags: []meshv1alpha1.CustomTag{
		{Name: "team", Literal: ptr("payments")}, {Name: "tenant", RequestHeader: ptr("x-tenant")}}}}},
	{"tel-access-log", meshv1alpha1.TelemetryPolicySpec{AccessLogging: &meshv1alpha1.AccessLogSettings{Enabled: true}}},
	{"tel-access-log-off", meshv1alpha1.TelemetryPolicySpec{AccessLogging: &meshv1alpha1.AccessLogSettings{Enabled: false}}},
	{"tel-access-log-filter", meshv1alpha1.TelemetryPolicySpec{AccessLogging: &meshv1alpha1.AccessLogSettings{Enabled: true,
		Filter: &meshv1alpha1.AccessLogFilter{MinResponseCode: 400}}}},
	{"tel-metrics-remove-tags", meshv1alpha1.TelemetryPolicySpec{Metrics: &meshv1alpha1.MetricsSettings{RemoveTags: []string{"request_protocol", "destination_canonical_revision"}}}},
	{"tel-selector", meshv1alpha1.TelemetryPolicySpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		AccessLogging: &meshv1alpha1.AccessLogSettings{Enabled: true}}},
	{"tel-selector-expressions", meshv1alpha1.TelemetryPolicySpec{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "tier", Operator: metav1.LabelSelectorOpExists}}}, AccessLogging: &meshv1alpha1.AccessLogSettings{Enabled: true}}},
	{"tel-all", meshv1alpha1.TelemetryPolicySpec{Tracing: &meshv1alpha1.TracingSettings{Enabled: true, SamplingPercentage: "100"},
		AccessLogging: &meshv1alpha1.AccessLogSettings{Enabled: true}, Metrics: &meshv1alpha1.MetricsSettings{RemoveTags: []string{"request_protocol"}}}},
}

// telemetryRefusals pins which cases each mesh refuses, and a feature the
// refusal names.
var telemetryRefusals = map[string]string{
	"tel-tracing-sampling.linkerd":     "TracingSampling",
	"tel-tracing-off.linkerd":          "Tracing",
	"tel-tracing-tags.linkerd":         "TracingCustomTags",
	"tel-access-log-off.linkerd":       "AccessLogDisable",
	"tel-access-log-filter.linkerd":    "AccessLogFilter",
	"tel-metrics-remove-tags.linkerd":  "MetricTagRemoval",
	"tel-selector.linkerd":             "PerWorkloadTelemetry",
	"tel-selector-expressions.linkerd": "PerWorkloadTelemetry",
	"tel-selector-expressions.istio":   "PerWorkloadTelemetry",
	"tel-all.linkerd":                  "Tracing",
	"tel-all-ambient.istio":            "AccessLogging",
}

func telemetryTranslations(t *testing.T) []translation {
	t.Helper()
	reg := Registry()
	var out []translation
	for _, p := range meshv1alpha1.Providers {
		tr, err := reg.TelemetryTranslator(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range telemetryCases {
			pol := &meshv1alpha1.TelemetryPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: tc.spec}
			objs, err := tr.TranslateTelemetryPolicy(pol, sidecarShop)
			out = append(out, translation{golden: tc.name + "." + strings.ToLower(string(p)), objs: objs, err: err})
		}
	}
	// Ambient: Istio refuses the L7 telemetry ztunnel cannot produce.
	tr, _ := reg.TelemetryTranslator(meshv1alpha1.ProviderIstio)
	pol := &meshv1alpha1.TelemetryPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: telemetryCases[len(telemetryCases)-1].spec}
	objs, err := tr.TranslateTelemetryPolicy(pol, mesh.NamespaceFacts{Name: "shop", Mode: mesh.Ambient})
	return append(out, translation{golden: "tel-all-ambient.istio", objs: objs, err: err})
}

// TestTelemetryTranslationGolden pins every TelemetryPolicy feature on
// every mesh: the outputs or the exact refusal (golden files), never both,
// deterministic.
func TestTelemetryTranslationGolden(t *testing.T) {
	for _, tr := range telemetryTranslations(t) {
		t.Run(tr.golden, func(t *testing.T) {
			got := render(t, tr)
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
			for _, a := range telemetryTranslations(t) {
				if a.golden == tr.golden && render(t, a) != got {
					t.Fatalf("translation of %s is not deterministic", tr.golden)
				}
			}
		})
	}
}

// TestTelemetryRefusalsNameFeatureAndMesh pins which cases are refused,
// as terminal UnsupportedFeature naming the feature and the mesh, and
// that Cilium refuses every case naming Hubble.
func TestTelemetryRefusalsNameFeatureAndMesh(t *testing.T) {
	for _, tr := range telemetryTranslations(t) {
		feature, refused := telemetryRefusals[tr.golden]
		if strings.HasSuffix(tr.golden, ".cilium") {
			feature, refused = "", true
		}
		if !refused {
			if tr.err != nil {
				t.Errorf("%s: unexpected error %v", tr.golden, tr.err)
			}
			continue
		}
		meshName := tr.golden[strings.LastIndex(tr.golden, ".")+1:]
		var uf *mesh.UnsupportedFeatureError
		if !errors.As(tr.err, &uf) || !strings.Contains(tr.err.Error(), feature) || !strings.Contains(strings.ToLower(tr.err.Error()), meshName) {
			t.Errorf("%s: want UnsupportedFeatureError naming %q and %s, got %v", tr.golden, feature, meshName, tr.err)
			continue
		}
		if meshName == "cilium" && !strings.Contains(tr.err.Error(), "Hubble") {
			t.Errorf("%s: the refusal does not name Hubble: %v", tr.golden, tr.err)
		}
		if term, ok := outcome.AsTerminal(tr.err); !ok || term.StalledReason() != meshv1alpha1.UnsupportedFeatureReason {
			t.Errorf("%s: not terminal UnsupportedFeature: %v", tr.golden, tr.err)
		}
	}
}

// TestTelemetryOutputsAcceptedByRealCRDs creates every TelemetryPolicy
// output on an envtest API server with the real CRDs, with strict field
// validation.
func TestTelemetryOutputsAcceptedByRealCRDs(t *testing.T) {
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{})
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	applied := 0
	for i, tr := range telemetryTranslations(t) {
		if tr.err != nil {
			continue
		}
		ns := fmt.Sprintf("telemetry-%d", i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		for _, o := range tr.objs {
			if err := ApplyStrict(ctx, c, o, ns); err != nil {
				t.Errorf("%s: %s %s refused: %v", tr.golden, o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
			}
			applied++
		}
	}
	if applied == 0 {
		t.Fatal("no output was applied")
	}
}

// TestRealSchemaRefusesBadTelemetry shows the Telemetry CRD checks what
// the translation must get right (the validator is not vacuous).
func TestRealSchemaRefusesBadTelemetry(t *testing.T) {
	v := realSchemas(t)
	bad := map[string]any{"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
		"metadata": map[string]any{"name": "x", "namespace": "shop"},
		"spec":     map[string]any{"tracing": []any{map[string]any{"randomSamplingPercentage": 150.0}}}}
	if err := v.Validate(bad); err == nil {
		t.Fatal("the real Telemetry CRD accepted randomSamplingPercentage 150")
	}
}

func (g *gen) telemetryPolicy() *meshv1alpha1.TelemetryPolicy {
	spec := meshv1alpha1.TelemetryPolicySpec{}
	switch g.intn(3) {
	case 1:
		spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{pick(g, "app", "tier"): pick(g, "web", "db")}}
	case 2:
		spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}}}
	}
	if g.intn(2) == 1 {
		tr := &meshv1alpha1.TracingSettings{Enabled: g.intn(3) > 0}
		if tr.Enabled && g.intn(2) == 1 {
			tr.SamplingPercentage = pick(g, "0", "0.01", "1", "12.5", "99.99", "100", "100.00")
		}
		for i := range g.intn(4) {
			if !tr.Enabled {
				break
			}
			ct := meshv1alpha1.CustomTag{Name: fmt.Sprintf("tag-%d", i)}
			if g.intn(2) == 0 {
				ct.Literal = ptr(pick(g, "v", "payments", "a b"))
			} else {
				ct.RequestHeader = ptr(pick(g, "x-tenant", "X-Request-Id"))
			}
			tr.CustomTags = append(tr.CustomTags, ct)
		}
		spec.Tracing = tr
	}
	if g.intn(2) == 1 {
		al := &meshv1alpha1.AccessLogSettings{Enabled: g.intn(3) > 0}
		if al.Enabled && g.intn(2) == 1 {
			al.Filter = &meshv1alpha1.AccessLogFilter{MinResponseCode: int32(100 + g.intn(500))}
		}
		spec.AccessLogging = al
	}
	if g.intn(2) == 1 || (spec.Tracing == nil && spec.AccessLogging == nil) {
		spec.Metrics = &meshv1alpha1.MetricsSettings{RemoveTags: []string{pick(g, "request_protocol", "response_flags", "source_canonical_revision")}}
	}
	return &meshv1alpha1.TelemetryPolicy{TypeMeta: metav1.TypeMeta{APIVersion: meshv1alpha1.GroupVersion.String(), Kind: "TelemetryPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: spec}
}

// FuzzTelemetryPolicyTranslation: for any TelemetryPolicy the Meshplane
// CRD accepts, every mesh and data plane either refuses it terminally with
// nothing partial, or produces deterministic outputs the real CRDs accept
// that carry every setting of the spec.
func FuzzTelemetryPolicyTranslation(f *testing.F) {
	for _, seed := range [][]byte{{}, {1, 1, 1, 1, 1, 1, 1, 1, 1}, {0, 1, 2, 1, 0, 1, 2, 1, 1, 1, 0}, []byte("telemetry-seed")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := realSchemas(t)
		g := &gen{b: data}
		pol := g.telemetryPolicy()
		if !accepted(t, v, pol) {
			return
		}
		reg := Registry()
		for _, p := range meshv1alpha1.Providers {
			tr, _ := reg.TelemetryTranslator(p)
			for _, f := range []mesh.NamespaceFacts{sidecarShop, {Name: "shop", Mode: mesh.Ambient}} {
				objs := checkOutputs(t, v, "TelemetryPolicy on "+string(p), func() ([]client.Object, error) { return tr.TranslateTelemetryPolicy(pol.DeepCopy(), f) })
				if objs != nil {
					checkTelemetryRepresented(t, p, pol, objs)
				}
			}
		}
	})
}

// checkTelemetryRepresented asserts the outputs carry the spec: Istio's
// Telemetry the sampling, tags, filter and removed tags; Linkerd's
// namespace the access-log annotation.
func checkTelemetryRepresented(t *testing.T, p meshv1alpha1.Provider, pol *meshv1alpha1.TelemetryPolicy, objs []map[string]any) {
	t.Helper()
	text := fmt.Sprint(objs)
	var want []string
	switch p {
	case meshv1alpha1.ProviderIstio:
		if tr := pol.Spec.Tracing; tr != nil {
			want = append(want, fmt.Sprintf("disableSpanReporting:%v", !tr.Enabled))
			for _, ct := range tr.CustomTags {
				want = append(want, ct.Name+":")
			}
		}
		if al := pol.Spec.AccessLogging; al != nil && al.Filter != nil {
			want = append(want, fmt.Sprintf("response.code >= %d", al.Filter.MinResponseCode))
		}
		if m := pol.Spec.Metrics; m != nil {
			for _, tag := range m.RemoveTags {
				want = append(want, tag+":map[operation:REMOVE]")
			}
		}
	case meshv1alpha1.ProviderLinkerd:
		want = append(want, "config.linkerd.io/access-log:apache")
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Fatalf("%s: outputs do not carry %q: %s", p, w, text)
		}
	}
}

// TestTelemetryDecide is the install-aware decision: Istio's telemetry
// capabilities hold in sidecar namespaces and are refused in ambient ones,
// naming the namespace and the fix.
func TestTelemetryDecide(t *testing.T) {
	reg := Registry()
	scope := func(mode mesh.DataPlaneMode) mesh.Scope {
		return mesh.Scope{Install: mesh.InstallFactsOf(meshv1alpha1.ProviderIstio, istioInstall(meshv1alpha1.ProfileAmbient), true),
			Namespace: mesh.NamespaceFacts{Name: "shop", Mode: mode}}
	}
	if err := reg.Decide(scope(mesh.Sidecar), mesh.TelemetryCapabilities...); err != nil {
		t.Fatalf("sidecar namespace: %v", err)
	}
	err := reg.Decide(scope(mesh.Ambient), mesh.CapTracing, mesh.CapAccessLogging)
	want := "features AccessLogging, Tracing are not supported by Istio as installed by MeshInstall istio in namespace shop (Ambient data plane): " +
		"configure telemetry in a sidecar namespace (namespace shop is ambient), or attach a Telemetry to its waypoint yourself, or remove the feature from the spec (nothing was applied)"
	if err == nil || err.Error() != want {
		t.Fatalf("ambient namespace:\n got %v\nwant %s", err, want)
	}
}
