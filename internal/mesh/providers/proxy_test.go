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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/scheme"
	"github.com/meshplane/meshplane/test/cluster"
)

// proxyCases are the ProxyPolicy features, one golden file per mesh (and
// the ambient data plane on Istio). The pod-template annotations render as
// the partial Deployment the controller applies to each selected workload.
var proxyCases = []struct {
	name string
	spec meshv1alpha1.ProxyPolicySpec
}{
	{"pxp-cpu-request", meshv1alpha1.ProxyPolicySpec{Resources: &meshv1alpha1.ProxyResources{CPURequest: "100m"}}},
	{"pxp-cpu-limit", meshv1alpha1.ProxyPolicySpec{Resources: &meshv1alpha1.ProxyResources{CPULimit: "2"}}},
	{"pxp-memory-request", meshv1alpha1.ProxyPolicySpec{Resources: &meshv1alpha1.ProxyResources{MemoryRequest: "64Mi"}}},
	{"pxp-memory-limit", meshv1alpha1.ProxyPolicySpec{Resources: &meshv1alpha1.ProxyResources{MemoryLimit: "1Gi"}}},
	{"pxp-resources-all", meshv1alpha1.ProxyPolicySpec{Resources: &meshv1alpha1.ProxyResources{CPURequest: "100m", CPULimit: "1", MemoryRequest: "64Mi", MemoryLimit: "256Mi"}}},
	{"pxp-egress-scope", meshv1alpha1.ProxyPolicySpec{EgressScope: &meshv1alpha1.ProxyEgressScope{Hosts: []string{"./*", "istio-system/*"}}}},
	{"pxp-egress-scope-selector", meshv1alpha1.ProxyPolicySpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		EgressScope: &meshv1alpha1.ProxyEgressScope{Hosts: []string{"./*", "*/api.example.com"}}}},
	{"pxp-egress-scope-expressions", meshv1alpha1.ProxyPolicySpec{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "tier", Operator: metav1.LabelSelectorOpExists}}}, EgressScope: &meshv1alpha1.ProxyEgressScope{Hosts: []string{"./*"}}}},
	{"pxp-resources-expressions", meshv1alpha1.ProxyPolicySpec{Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "tier", Operator: metav1.LabelSelectorOpExists}}}, Resources: &meshv1alpha1.ProxyResources{MemoryLimit: "512Mi"}}},
	{"pxp-all", meshv1alpha1.ProxyPolicySpec{Resources: &meshv1alpha1.ProxyResources{CPURequest: "250m", MemoryLimit: "256Mi"},
		EgressScope: &meshv1alpha1.ProxyEgressScope{Hosts: []string{"./*"}}}},
	{"pxp-bad-quantity", meshv1alpha1.ProxyPolicySpec{Resources: &meshv1alpha1.ProxyResources{CPURequest: "lots"}}},
	{"pxp-request-above-limit", meshv1alpha1.ProxyPolicySpec{Resources: &meshv1alpha1.ProxyResources{MemoryRequest: "1Gi", MemoryLimit: "512Mi"}}},
}

// proxyRefusals pins which cases each mesh refuses, and the reason and a
// feature or field the refusal names.
var proxyRefusals = map[string]string{
	"pxp-egress-scope.linkerd":             "UnsupportedFeature ProxyEgressScope",
	"pxp-egress-scope-selector.linkerd":    "UnsupportedFeature ProxyEgressScope",
	"pxp-egress-scope-expressions.linkerd": "UnsupportedFeature ProxyEgressScope",
	"pxp-egress-scope-expressions.istio":   "UnsupportedFeature ProxyEgressScope",
	"pxp-all.linkerd":                      "UnsupportedFeature ProxyEgressScope",
	"pxp-bad-quantity.istio":               "InvalidSpec spec.resources.cpuRequest",
	"pxp-bad-quantity.linkerd":             "InvalidSpec spec.resources.cpuRequest",
	"pxp-request-above-limit.istio":        "InvalidSpec spec.resources.memoryRequest",
	"pxp-request-above-limit.linkerd":      "InvalidSpec spec.resources.memoryRequest",
	"pxp-all-ambient.istio":                "UnsupportedFeature ProxyResources",
	"pxp-egress-scope-ambient.istio":       "UnsupportedFeature ProxyEgressScope",
}

// proxyObjects is a ProxyConfig as the objects the controller applies: the
// owned outputs, then the partial Deployment web of the annotations.
func proxyObjects(cfg mesh.ProxyConfig) []client.Object {
	objs := append([]client.Object(nil), cfg.Objects...)
	if len(cfg.Annotations) > 0 {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("apps/v1")
		u.SetKind("Deployment")
		u.SetNamespace("shop")
		u.SetName("web")
		ann := map[string]any{}
		for k, v := range cfg.Annotations {
			ann[k] = v
		}
		_ = unstructured.SetNestedMap(u.Object, ann, "spec", "template", "metadata", "annotations")
		objs = append(objs, u)
	}
	return objs
}

func proxyTranslations(t *testing.T) []translation {
	t.Helper()
	reg := Registry()
	var out []translation
	translate := func(p meshv1alpha1.Provider, spec meshv1alpha1.ProxyPolicySpec, f mesh.NamespaceFacts) ([]client.Object, error) {
		tr, err := reg.ProxyTranslator(p)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := tr.TranslateProxyPolicy(&meshv1alpha1.ProxyPolicy{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: spec}, f)
		return proxyObjects(cfg), err
	}
	for _, p := range meshv1alpha1.Providers {
		for _, tc := range proxyCases {
			objs, err := translate(p, tc.spec, sidecarShop)
			out = append(out, translation{golden: tc.name + "." + strings.ToLower(string(p)), objs: objs, err: err})
		}
	}
	// Ambient: no per-pod proxy.
	ambient := mesh.NamespaceFacts{Name: "shop", Mode: mesh.Ambient}
	for _, name := range []string{"pxp-all", "pxp-egress-scope"} {
		for _, tc := range proxyCases {
			if tc.name == name {
				objs, err := translate(meshv1alpha1.ProviderIstio, tc.spec, ambient)
				out = append(out, translation{golden: name + "-ambient.istio", objs: objs, err: err})
			}
		}
	}
	return out
}

// TestProxyTranslationGolden pins every ProxyPolicy feature on every mesh:
// the outputs and annotations or the exact refusal, deterministic.
func TestProxyTranslationGolden(t *testing.T) {
	again := proxyTranslations(t)
	for i, tr := range proxyTranslations(t) {
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
			if render(t, again[i]) != got {
				t.Fatalf("translation of %s is not deterministic", tr.golden)
			}
		})
	}
}

// TestProxyRefusals pins which cases are refused, terminally, with the
// reason and the feature or field, that nothing partial comes with a
// refusal, and that Cilium refuses every case naming its node-wide Envoy.
func TestProxyRefusals(t *testing.T) {
	for _, tr := range proxyTranslations(t) {
		want, refused := proxyRefusals[tr.golden]
		if strings.HasSuffix(tr.golden, ".cilium") {
			want, refused = "UnsupportedFeature cilium-envoy", true
		}
		if !refused {
			if tr.err != nil {
				t.Errorf("%s: unexpected error %v", tr.golden, tr.err)
			}
			continue
		}
		reason, what, _ := strings.Cut(want, " ")
		term, ok := outcome.AsTerminal(tr.err)
		if !ok || term.StalledReason() != reason || !strings.Contains(tr.err.Error(), what) || len(tr.objs) > 0 {
			t.Errorf("%s: want terminal %s naming %q and no output, got %v (%d objects)", tr.golden, reason, what, tr.err, len(tr.objs))
		}
		var uf *mesh.UnsupportedFeatureError
		if reason == meshv1alpha1.UnsupportedFeatureReason && !errors.As(tr.err, &uf) {
			t.Errorf("%s: not an UnsupportedFeatureError: %v", tr.golden, tr.err)
		}
	}
}

// TestProxyOutputsAcceptedByRealCRDs creates every owned ProxyPolicy
// output (Istio's Sidecar) on an envtest API server with the real CRDs,
// with strict field validation.
func TestProxyOutputsAcceptedByRealCRDs(t *testing.T) {
	cfg := cluster.UseEnvtest(t, cluster.EnvtestOptions{})
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	applied := 0
	for i, tr := range proxyTranslations(t) {
		if tr.err != nil {
			continue
		}
		ns := fmt.Sprintf("proxy-%d", i)
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		for _, o := range tr.objs {
			if o.GetObjectKind().GroupVersionKind().Kind == "Deployment" {
				continue // a shared field, applied onto existing workloads (controller tests)
			}
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

// TestProxyDecide is the install-aware decision: Istio's proxy
// capabilities hold in sidecar namespaces and are refused in ambient ones,
// naming ztunnel's and the waypoint's settings; Linkerd has resources but
// no scope; Cilium neither.
func TestProxyDecide(t *testing.T) {
	reg := Registry()
	scope := func(mode mesh.DataPlaneMode) mesh.Scope {
		return mesh.Scope{Install: mesh.InstallFactsOf(meshv1alpha1.ProviderIstio, istioInstall(meshv1alpha1.ProfileAmbient), true),
			Namespace: mesh.NamespaceFacts{Name: "shop", Mode: mode}}
	}
	if err := reg.Decide(scope(mesh.Sidecar), mesh.ProxyCapabilities...); err != nil {
		t.Fatalf("sidecar namespace: %v", err)
	}
	err := reg.Decide(scope(mesh.Ambient), mesh.CapProxyResources)
	want := "feature ProxyResources is not supported by Istio as installed by MeshInstall istio in namespace shop (Ambient data plane): " +
		"set proxy resources in a sidecar namespace (namespace shop is ambient): size ztunnel with MeshInstall spec.values ztunnel.resources and a waypoint through its Gateway's spec.infrastructure.parametersRef, or remove the feature from the spec (nothing was applied)"
	if err == nil || err.Error() != want {
		t.Fatalf("ambient namespace:\n got %v\nwant %s", err, want)
	}
	for p, has := range map[meshv1alpha1.Provider][2]bool{
		meshv1alpha1.ProviderLinkerd: {true, false}, meshv1alpha1.ProviderCilium: {false, false}, meshv1alpha1.ProviderIstio: {true, true},
	} {
		prov, _ := reg.Get(p)
		c := prov.Capabilities()
		if c.Has(mesh.CapProxyResources) != has[0] || c.Has(mesh.CapProxyEgressScope) != has[1] {
			t.Errorf("%s: ProxyResources %v ProxyEgressScope %v, want %v", p, c.Has(mesh.CapProxyResources), c.Has(mesh.CapProxyEgressScope), has)
		}
	}
}

// TestParseProxyResources pins the quantity checks and their messages.
func TestParseProxyResources(t *testing.T) {
	for _, tc := range []struct {
		r    meshv1alpha1.ProxyResources
		want string
	}{
		{meshv1alpha1.ProxyResources{CPURequest: "100m", CPULimit: "100m"}, ""},
		{meshv1alpha1.ProxyResources{CPURequest: "0.5", CPULimit: "1"}, ""},
		{meshv1alpha1.ProxyResources{MemoryRequest: "1Gi", MemoryLimit: "1024Mi"}, ""},
		{meshv1alpha1.ProxyResources{CPULimit: "0"}, `spec.resources.cpuLimit "0" is not a positive Kubernetes quantity: write it like "1"`},
		{meshv1alpha1.ProxyResources{MemoryLimit: "-1Mi"}, `spec.resources.memoryLimit "-1Mi" is not a positive Kubernetes quantity: write it like "256Mi"`},
		{meshv1alpha1.ProxyResources{MemoryRequest: "64MB!"}, `spec.resources.memoryRequest "64MB!" is not a positive Kubernetes quantity: write it like "64Mi"`},
		{meshv1alpha1.ProxyResources{CPURequest: "2", CPULimit: "1500m"}, `spec.resources.cpuRequest "2" exceeds spec.resources.cpuLimit "1500m": lower the request or raise the limit`},
	} {
		_, err := mesh.ParseProxyResources(&tc.r)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%+v:\n got %q\nwant %q", tc.r, got, tc.want)
		}
	}
}

func (g *gen) proxyPolicy() *meshv1alpha1.ProxyPolicy {
	spec := meshv1alpha1.ProxyPolicySpec{}
	switch g.intn(3) {
	case 1:
		spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{pick(g, "app", "tier"): pick(g, "web", "db")}}
	case 2:
		spec.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpExists}}}
	}
	if g.intn(2) == 1 {
		q := func(opts ...string) string { return pick(g, append([]string{""}, opts...)...) }
		spec.Resources = &meshv1alpha1.ProxyResources{
			CPURequest: q("10m", "100m", "0.5", "1", "2"), CPULimit: q("100m", "1", "2", "1500m"),
			MemoryRequest: q("32Mi", "64Mi", "1Gi", "100M"), MemoryLimit: q("64Mi", "256Mi", "1Gi", "2G"),
		}
		if *spec.Resources == (meshv1alpha1.ProxyResources{}) {
			spec.Resources.CPURequest = "100m"
		}
	}
	if g.intn(2) == 1 || spec.Resources == nil {
		spec.EgressScope = &meshv1alpha1.ProxyEgressScope{Hosts: []string{pick(g, "./*", "istio-system/*", "*/api.example.com", "~/*")}}
	}
	return &meshv1alpha1.ProxyPolicy{TypeMeta: metav1.TypeMeta{APIVersion: meshv1alpha1.GroupVersion.String(), Kind: "ProxyPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: spec}
}

// FuzzProxyPolicyTranslation: for any ProxyPolicy the Meshplane CRD
// accepts, every mesh and data plane either refuses it terminally with
// nothing partial, or produces deterministic outputs the real CRDs accept
// and annotations that carry exactly the spec's quantities, never a
// request above its limit.
func FuzzProxyPolicyTranslation(f *testing.F) {
	for _, seed := range [][]byte{{}, {1, 1, 1, 1, 1, 1, 1}, {0, 1, 2, 3, 4, 1, 0}, []byte("proxy-seed")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := realSchemas(t)
		pol := (&gen{b: data}).proxyPolicy()
		if !accepted(t, v, pol) {
			return
		}
		reg := Registry()
		for _, p := range meshv1alpha1.Providers {
			tr, _ := reg.ProxyTranslator(p)
			for _, f := range []mesh.NamespaceFacts{sidecarShop, {Name: "shop", Mode: mesh.Ambient}} {
				var cfg mesh.ProxyConfig
				checkOutputs(t, v, "ProxyPolicy on "+string(p), func() ([]client.Object, error) {
					var err error
					cfg, err = tr.TranslateProxyPolicy(pol.DeepCopy(), f)
					return cfg.Objects, err
				})
				checkProxyAnnotations(t, p, pol, cfg.Annotations)
			}
		}
	})
}

// checkProxyAnnotations asserts the annotations carry each set quantity,
// unchanged, and no request above its limit.
func checkProxyAnnotations(t *testing.T, p meshv1alpha1.Provider, pol *meshv1alpha1.ProxyPolicy, ann map[string]string) {
	t.Helper()
	if len(ann) == 0 {
		return
	}
	r := pol.Spec.Resources
	values := []string{r.CPURequest, r.CPULimit, r.MemoryRequest, r.MemoryLimit}
	set := 0
	for _, v := range values {
		if v != "" {
			set++
		}
	}
	if len(ann) != set {
		t.Fatalf("%s: %d annotations for %d settings: %v", p, len(ann), set, ann)
	}
	for k, v := range ann {
		if _, err := resource.ParseQuantity(v); err != nil || !strings.Contains(strings.Join(values, " "), v) {
			t.Fatalf("%s: annotation %s=%q is not one of the spec's quantities", p, k, v)
		}
	}
	for _, pair := range [][2]string{{r.CPURequest, r.CPULimit}, {r.MemoryRequest, r.MemoryLimit}} {
		if pair[0] == "" || pair[1] == "" {
			continue
		}
		req, limit := resource.MustParse(pair[0]), resource.MustParse(pair[1])
		if req.Cmp(limit) > 0 {
			t.Fatalf("%s: request %s above limit %s was translated", p, pair[0], pair[1])
		}
	}
}

// TestProxyScopeRelaxed: a BreakGlass widens a ProxyPolicy's Sidecar
// scope to every host (a proxy that does not know a STRICT-mTLS service
// sends to it in plain text and is refused), keeps an EgressPolicy's
// ALLOW_ANY relaxation, and leaves a widened Sidecar alone.
func TestProxyScopeRelaxed(t *testing.T) {
	prov, err := Registry().Get(meshv1alpha1.ProviderIstio)
	if err != nil {
		t.Fatal(err)
	}
	bg := prov.(mesh.BreakGlassDriver)
	sidecar := func(spec map[string]any) map[string]any {
		return map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "spec": spec}
	}
	scoped := sidecar(map[string]any{"egress": []any{map[string]any{"hosts": []any{"./*", "istio-system/*"}}}})
	got, ok := bg.RelaxPolicy(scoped)
	if want := "map[egress:[map[hosts:[*/*]]]]"; !ok || fmt.Sprint(got) != want {
		t.Fatalf("scoped Sidecar relaxed to %v (%v), want %s", got, ok, want)
	}
	if fmt.Sprint(scoped["spec"]) != "map[egress:[map[hosts:[./* istio-system/*]]]]" {
		t.Fatalf("RelaxPolicy modified its input: %v", scoped["spec"])
	}
	if _, ok := bg.RelaxPolicy(sidecar(got)); ok {
		t.Fatal("a widened Sidecar was relaxed again")
	}
	registryOnly := sidecar(map[string]any{"outboundTrafficPolicy": map[string]any{"mode": "REGISTRY_ONLY"}})
	if got, ok := bg.RelaxPolicy(registryOnly); !ok || fmt.Sprint(got) != "map[outboundTrafficPolicy:map[mode:ALLOW_ANY]]" {
		t.Fatalf("an EgressPolicy's Sidecar relaxed to %v (%v)", got, ok)
	}
}
