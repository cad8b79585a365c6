package helm

import (
	"reflect"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/istio"
	"github.com/meshplane/meshplane/internal/mesh/linkerd"
	"github.com/meshplane/meshplane/internal/outcome"
)

func TestMerge(t *testing.T) {
	base := map[string]any{"a": 1, "m": map[string]any{"x": 1, "y": 2}, "l": []any{1}}
	cases := []struct {
		name string
		over map[string]any
		want map[string]any
	}{
		{"empty", nil, base},
		{"scalar wins", map[string]any{"a": 2}, map[string]any{"a": 2, "m": map[string]any{"x": 1, "y": 2}, "l": []any{1}}},
		{"nested merge", map[string]any{"m": map[string]any{"y": 3, "z": 4}}, map[string]any{"a": 1, "m": map[string]any{"x": 1, "y": 3, "z": 4}, "l": []any{1}}},
		{"null deletes", map[string]any{"a": nil, "m": map[string]any{"x": nil}}, map[string]any{"m": map[string]any{"y": 2}, "l": []any{1}}},
		{"list replaced", map[string]any{"l": []any{2, 3}}, map[string]any{"a": 1, "m": map[string]any{"x": 1, "y": 2}, "l": []any{2, 3}}},
		{"map replaces scalar", map[string]any{"a": map[string]any{"b": 1}}, map[string]any{"a": map[string]any{"b": 1}, "m": map[string]any{"x": 1, "y": 2}, "l": []any{1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Merge(base, c.over)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Merge = %v, want %v", got, c.want)
			}
		})
	}
	if base["a"] != 1 || base["m"].(map[string]any)["x"] != 1 {
		t.Fatalf("Merge modified its input: %v", base)
	}
}

func raw(s string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(s)} }

func TestComposeIstio(t *testing.T) {
	mi := &meshv1alpha1.MeshInstall{Spec: meshv1alpha1.MeshInstallSpec{
		Provider: meshv1alpha1.ProviderIstio, Version: "1.28.1", Profile: meshv1alpha1.ProfileAmbient,
		Values:     raw(`{"global":{"hub":"example.org"},"revision":"user-tries","pilot":{"replicaCount":2}}`),
		Components: []meshv1alpha1.ComponentValues{{Chart: "istiod", Values: *raw(`{"pilot":{"replicaCount":3}}`)}},
		Istio:      &meshv1alpha1.IstioInstallSpec{TrustDomain: "example.org"},
	}}
	p := istio.New()
	got, err := Compose(p, mi, mesh.Chart{Name: "istiod"}, mesh.InstallContext{Namespace: "istio-system", Revision: "1-28-1"}, raw(`{"pilot":{"env":{"A":"b"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"global":       map[string]any{"istioNamespace": "istio-system", "hub": "example.org"},
		"profile":      "ambient",
		"meshConfig":   map[string]any{"trustDomain": "example.org"},
		"revision":     "1-28-1", // enforced over the user's value
		"revisionTags": []any{},
		"pilot":        map[string]any{"replicaCount": float64(3), "env": map[string]any{"A": "b"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Compose istiod =\n%v\nwant\n%v", got, want)
	}
	base, err := Compose(p, mi, mesh.Chart{Name: "base"}, mesh.InstallContext{Namespace: "istio-system"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if base["defaultRevision"] != "" || base["revision"] != "user-tries" {
		t.Fatalf("base values = %v", base)
	}
}

func TestComposeLinkerdIdentity(t *testing.T) {
	mi := &meshv1alpha1.MeshInstall{Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd, Version: "edge-26.1.1",
		Linkerd: &meshv1alpha1.LinkerdInstallSpec{HighAvailability: true},
		Values:  raw(`{"identityTrustAnchorsPEM":"user","controllerReplicas":5}`)}}
	id := &mesh.Identity{TrustAnchorsPEM: "anchor", IssuerCertPEM: "crt", IssuerKeyPEM: "key"}
	got, err := Compose(linkerd.New(), mi, mesh.Chart{Name: "linkerd-control-plane"}, mesh.InstallContext{Identity: id}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got["identityTrustAnchorsPEM"] != "anchor" || got["controllerReplicas"] != float64(5) || got["enablePodAntiAffinity"] != true {
		t.Fatalf("values = %v", got)
	}
	tls := got["identity"].(map[string]any)["issuer"].(map[string]any)["tls"].(map[string]any)
	if tls["crtPEM"] != "crt" || tls["keyPEM"] != "key" {
		t.Fatalf("issuer values = %v", tls)
	}
}

func TestComposeErrors(t *testing.T) {
	mi := &meshv1alpha1.MeshInstall{Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Values: raw(`[1,2]`)}}
	if _, err := Compose(istio.New(), mi, mesh.Chart{Name: "istiod"}, mesh.InstallContext{}, nil); !outcome.IsTerminal(err) {
		t.Fatalf("non-object values: err = %v, want terminal", err)
	}
	mi = &meshv1alpha1.MeshInstall{Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio,
		Components: []meshv1alpha1.ComponentValues{{Chart: "ztunnel", Values: *raw(`{}`)}}}}
	err := UnknownComponents(mi, istio.New().Charts(mi))
	if !outcome.IsTerminal(err) {
		t.Fatalf("ztunnel without Ambient: err = %v, want terminal", err)
	}
}

func TestVersions(t *testing.T) {
	cases := []struct{ got, want string }{
		{linkerd.New().ChartVersion("edge-26.1.1"), "2026.1.1"},
		{linkerd.New().ChartVersion("edge-25.12.3"), "2025.12.3"},
		{linkerd.New().ChartVersion("2.19.0"), "2.19.0"},
		{istio.New().ChartVersion("v1.28.1"), "1.28.1"},
		{istio.RevisionName("1.28.1"), "1-28-1"},
		{istio.RevisionName("v1.29.0-beta.1"), "1-29-0-beta-1"},
		{istio.InjectorWebhookName("1-28-1", "istio-system"), "istio-sidecar-injector-1-28-1"},
		{istio.InjectorWebhookName("", "mesh"), "istio-sidecar-injector-mesh"},
		{istio.IstiodReleaseName(""), "istiod"},
	}
	for i, c := range cases {
		if c.got != c.want {
			t.Errorf("case %d: got %q, want %q", i, c.got, c.want)
		}
	}
}
