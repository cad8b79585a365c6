package charts

import (
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	ri "helm.sh/helm/v4/pkg/release"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"sigs.k8s.io/yaml"
)

// renderOffline renders a chart like `helm template`.
func renderOffline(t *testing.T, path, ns string, vals map[string]any) (string, error) {
	t.Helper()
	ch, err := loader.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	inst := action.NewInstall(action.NewConfiguration())
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName = "r"
	inst.Namespace = ns
	inst.IncludeCRDs = true
	var r ri.Releaser
	r, err = inst.Run(ch, vals)
	if err != nil {
		return "", err
	}
	return r.(*releasev1.Release).Manifest, nil
}

type head struct {
	Kind     string
	Metadata struct {
		Name, Namespace string
		Labels          map[string]string
	}
	Webhooks []struct {
		Name         string
		ClientConfig struct {
			URL     string
			Service *struct{ Name, Path string }
		} `json:"clientConfig"`
		NamespaceSelector struct {
			MatchExpressions []struct {
				Key, Operator string
				Values        []string
			} `json:"matchExpressions"`
		} `json:"namespaceSelector"`
	}
}

func heads(t *testing.T, manifest string) map[string]head {
	t.Helper()
	out := map[string]head{}
	for _, doc := range strings.Split(manifest, "\n---") {
		var h head
		if err := yaml.Unmarshal([]byte(doc), &h); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if h.Kind != "" {
			out[h.Kind+"/"+h.Metadata.Name] = h
		}
	}
	return out
}

func TestStageAndRenderIstioFixtures(t *testing.T) {
	dir := t.TempDir()
	paths := StageIstio(t, dir, "1.29.0")
	if len(paths) != 4 {
		t.Fatalf("paths = %v", paths)
	}
	for _, p := range paths {
		ch, err := loader.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Metadata.Version != "1.29.0" || ch.Metadata.AppVersion != "1.29.0" {
			t.Errorf("%s: version %s app %s", p, ch.Metadata.Version, ch.Metadata.AppVersion)
		}
		if ch.Metadata.Name == IstioBase && len(ch.CRDObjects()) == 0 {
			t.Errorf("base has no CRDs")
		}
	}

	istiod := filepath.Join(dir, "istiod-1.29.0.tgz")
	m, err := renderOffline(t, istiod, "istio-system", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := heads(t, m)
	for _, want := range []string{"Deployment/istiod", "Service/istiod", "ServiceAccount/istiod", "ConfigMap/istio",
		"ConfigMap/istio-sidecar-injector", "MutatingWebhookConfiguration/istio-sidecar-injector",
		"ValidatingWebhookConfiguration/istio-validator-istio-system"} {
		if _, ok := h[want]; !ok {
			t.Errorf("default revision: missing %s", want)
		}
	}
	if got := h["Deployment/istiod"].Metadata.Labels["istio.io/rev"]; got != "default" {
		t.Errorf("istiod istio.io/rev = %q", got)
	}
	if n := len(h["MutatingWebhookConfiguration/istio-sidecar-injector"].Webhooks); n != 4 {
		t.Errorf("default injector has %d webhooks, want 4", n)
	}

	m, err = renderOffline(t, istiod, "istio-system", map[string]any{
		"revision":     "1-29-0",
		"revisionTags": []any{"default", "prod"},
		"injector":     map[string]any{"url": "https://127.0.0.1:9443", "caBundle": "Zm9v"},
	})
	if err != nil {
		t.Fatal(err)
	}
	h = heads(t, m)
	for _, want := range []string{"Deployment/istiod-1-29-0", "Service/istiod-1-29-0", "ConfigMap/istio-1-29-0",
		"ConfigMap/istio-sidecar-injector-1-29-0", "MutatingWebhookConfiguration/istio-sidecar-injector-1-29-0",
		"MutatingWebhookConfiguration/istio-revision-tag-default", "MutatingWebhookConfiguration/istio-revision-tag-prod",
		"ValidatingWebhookConfiguration/istio-validator-1-29-0-istio-system"} {
		if _, ok := h[want]; !ok {
			t.Errorf("revision 1-29-0: missing %s", want)
		}
	}
	inj := h["MutatingWebhookConfiguration/istio-sidecar-injector-1-29-0"]
	if len(inj.Webhooks) != 2 {
		t.Fatalf("revisioned injector has %d webhooks, want 2", len(inj.Webhooks))
	}
	if u := inj.Webhooks[0].ClientConfig.URL; u != "https://127.0.0.1:9443/inject/1-29-0" {
		t.Errorf("injector url = %q", u)
	}
	ns := inj.Webhooks[0].NamespaceSelector.MatchExpressions
	if len(ns) != 2 || ns[0].Key != "istio.io/rev" || ns[0].Values[0] != "1-29-0" || ns[1].Operator != "DoesNotExist" {
		t.Errorf("rev.namespace selector = %+v", ns)
	}
	if n := len(h["MutatingWebhookConfiguration/istio-revision-tag-default"].Webhooks); n != 4 {
		t.Errorf("tag default has %d webhooks, want 4", n)
	}
	prod := h["MutatingWebhookConfiguration/istio-revision-tag-prod"]
	if len(prod.Webhooks) != 2 || prod.Webhooks[0].NamespaceSelector.MatchExpressions[0].Values[0] != "prod" {
		t.Errorf("tag prod webhooks = %+v", prod.Webhooks)
	}

	// Like Istio's release charts, the fixtures carry no values.schema.json:
	// an unknown key renders, and a bad value is left to the API server.
	if _, err := renderOffline(t, istiod, "istio-system", map[string]any{"bogus": true}); err != nil {
		t.Errorf("unknown top-level key: err = %v, want it rendered as Istio's chart does", err)
	}
	m, err = renderOffline(t, istiod, "istio-system", map[string]any{"pilot": map[string]any{"resources": map[string]any{"requests": map[string]any{"cpu": "lots"}}}})
	if err != nil || !strings.Contains(m, "cpu: lots") {
		t.Errorf("pilot.resources is not rendered into istiod's Deployment: %v", err)
	}
	def, err := renderOffline(t, filepath.Join(dir, "base-1.29.0.tgz"), "istio-system", map[string]any{"defaultRevision": "1-29-0"})
	if err != nil || !strings.Contains(def, "name: istiod-default-validator") || !strings.Contains(def, "name: istiod-1-29-0") {
		t.Errorf("base with defaultRevision renders no istiod-default-validator for istiod-1-29-0: %v\n%s", err, def)
	}
	if m, err := renderOffline(t, filepath.Join(dir, "base-1.29.0.tgz"), "istio-system", map[string]any{"defaultRevision": ""}); err != nil || strings.Contains(m, "istiod-default-validator") {
		t.Errorf("base with defaultRevision \"\" renders the default validator: %v", err)
	}
	for _, c := range []string{"cni-1.29.0.tgz", "ztunnel-1.29.0.tgz", "base-1.29.0.tgz"} {
		if _, err := renderOffline(t, filepath.Join(dir, c), "istio-system", nil); err != nil {
			t.Errorf("%s: %v", c, err)
		}
	}
}

func TestStageRealCharts(t *testing.T) {
	dir := t.TempDir()
	paths := Stage(t, dir,
		Chart{Name: LinkerdCRDs, Version: "2026.1.1"},
		Chart{Name: LinkerdControlPlane, Version: "2026.1.1"},
		Chart{Name: Cilium, Version: "1.19.5"},
		Chart{Name: Istiod, Version: "1.30.0", Unpacked: true},
	)
	for i, want := range []struct{ name, version, app string }{
		{LinkerdCRDs, "2026.1.1", "edge-26.1.1"},
		{LinkerdControlPlane, "2026.1.1", "edge-26.1.1"},
		{Cilium, "1.19.5", "1.19.5"},
		{Istiod, "1.30.0", "1.30.0"},
	} {
		ch, err := loader.Load(paths[i])
		if err != nil {
			t.Fatal(err)
		}
		if ch.Metadata.Name != want.name || ch.Metadata.Version != want.version || ch.Metadata.AppVersion != want.app {
			t.Errorf("%s: got %s %s %s", paths[i], ch.Metadata.Name, ch.Metadata.Version, ch.Metadata.AppVersion)
		}
		if strings.HasPrefix(want.name, "linkerd") && (len(ch.Dependencies()) != 1 || ch.Dependencies()[0].Name() != "partials") {
			t.Errorf("%s: dependencies %v", want.name, ch.Dependencies())
		}
	}
	if got := LinkerdChartVersion("edge-26.1.1"); got != "2026.1.1" {
		t.Errorf("LinkerdChartVersion = %s", got)
	}
	if got := LinkerdEdgeVersion("2026.1.1"); got != "edge-26.1.1" {
		t.Errorf("LinkerdEdgeVersion = %s", got)
	}
}
