package providers

import (
	"reflect"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

func TestInjectorWebhooks(t *testing.T) {
	reg := Registry()
	for _, tc := range []struct {
		provider meshv1alpha1.Provider
		webhook  string
		want     bool
	}{
		{meshv1alpha1.ProviderIstio, "istio-sidecar-injector", true},
		{meshv1alpha1.ProviderIstio, "istio-sidecar-injector-1-28-1", true},
		{meshv1alpha1.ProviderIstio, "istio-revision-tag-default", true},
		{meshv1alpha1.ProviderIstio, "istio-validator-istio-system", false},
		{meshv1alpha1.ProviderIstio, "linkerd-proxy-injector-webhook-config", false},
		{meshv1alpha1.ProviderLinkerd, "linkerd-proxy-injector-webhook-config", true},
		{meshv1alpha1.ProviderLinkerd, "linkerd-policy-validator-webhook-config", false},
		{meshv1alpha1.ProviderLinkerd, "istio-sidecar-injector", false},
	} {
		d, err := reg.BreakGlassDriver(tc.provider)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: tc.webhook}}
		if got := d.IsInjectorWebhook(cfg); got != tc.want {
			t.Errorf("%s.IsInjectorWebhook(%s) = %v, want %v", tc.provider, tc.webhook, got, tc.want)
		}
	}
}

func TestTrustTargets(t *testing.T) {
	reg := Registry()
	for _, tc := range []struct {
		provider  meshv1alpha1.Provider
		namespace string
		want      mesh.TrustTarget
	}{
		{meshv1alpha1.ProviderIstio, "", mesh.TrustTarget{Namespace: "istio-system", IssuerSecret: "cacerts",
			IssuerSecretType: corev1.SecretTypeOpaque, CertKey: "ca-cert.pem", KeyKey: "ca-key.pem", RootKey: "root-cert.pem", ChainKey: "cert-chain.pem"}},
		{meshv1alpha1.ProviderLinkerd, "linkerd-prod", mesh.TrustTarget{Namespace: "linkerd-prod", IssuerSecret: "linkerd-identity-issuer",
			IssuerSecretType: corev1.SecretTypeTLS, CertKey: "tls.crt", KeyKey: "tls.key", RootKey: "ca.crt",
			BundleConfigMap: "linkerd-identity-trust-roots", BundleConfigMapKey: "ca-bundle.crt"}},
		{meshv1alpha1.ProviderCilium, "", mesh.TrustTarget{Namespace: "kube-system", IssuerSecret: "meshplane-clustermesh-ca",
			IssuerSecretType: corev1.SecretTypeOpaque, CertKey: "ca.crt", KeyKey: "ca.key"}},
	} {
		w, err := reg.TrustWriter(tc.provider)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.TrustTarget(tc.namespace); got != tc.want {
			t.Errorf("%s: got %+v\nwant %+v", tc.provider, got, tc.want)
		}
	}
}

func TestChartsAndDefaults(t *testing.T) {
	reg := Registry()
	for _, tc := range []struct {
		spec      meshv1alpha1.MeshInstallSpec
		wantRepo  string
		wantNames []string
		wantNS    string
	}{
		{meshv1alpha1.MeshInstallSpec{Provider: "Linkerd", Version: "edge-26.1.1"}, "https://helm.linkerd.io/edge",
			[]string{"linkerd-crds", "linkerd-control-plane"}, "linkerd"},
		{meshv1alpha1.MeshInstallSpec{Provider: "Linkerd", Version: "2.19.0"}, "https://helm.linkerd.io/stable",
			[]string{"linkerd-crds", "linkerd-control-plane"}, "linkerd"},
		{meshv1alpha1.MeshInstallSpec{Provider: "Cilium", Version: "1.19.5"}, "https://helm.cilium.io", []string{"cilium"}, "kube-system"},
		{meshv1alpha1.MeshInstallSpec{Provider: "Istio", Version: "1.28.1"}, "https://istio-release.storage.googleapis.com/charts",
			[]string{"base", "istiod"}, "istio-system"},
	} {
		inst, err := reg.Installer(tc.spec.Provider)
		if err != nil {
			t.Fatal(err)
		}
		charts := inst.Charts(&meshv1alpha1.MeshInstall{Spec: tc.spec})
		if len(charts) != len(tc.wantNames) {
			t.Fatalf("%s: %d charts, want %v", tc.spec.Provider, len(charts), tc.wantNames)
		}
		for i, c := range charts {
			if c.Name != tc.wantNames[i] || c.Repository != tc.wantRepo {
				t.Errorf("%s chart %d = %+v, want %s from %s", tc.spec.Provider, i, c, tc.wantNames[i], tc.wantRepo)
			}
		}
		if !charts[0].CRDsOnly && tc.spec.Provider != "Cilium" {
			t.Errorf("%s: first chart should be the CRD chart (never uninstalled)", tc.spec.Provider)
		}
		if inst.DefaultNamespace() != tc.wantNS {
			t.Errorf("%s: default namespace %s, want %s", tc.spec.Provider, inst.DefaultNamespace(), tc.wantNS)
		}
		if len(inst.CRDGroups()) == 0 {
			t.Errorf("%s: no CRD groups", tc.spec.Provider)
		}
	}
}

// TestLinkerdMulticlusterChart: spec.linkerd.multicluster adds the
// extension's chart in its own namespace, with one service-mirror
// controller per Link, the gateway as asked, the install's version, and the
// control-plane namespace enforced.
func TestLinkerdMulticlusterChart(t *testing.T) {
	inst, err := Registry().Installer(meshv1alpha1.ProviderLinkerd)
	if err != nil {
		t.Fatal(err)
	}
	off := false
	mi := &meshv1alpha1.MeshInstall{Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd, Version: "edge-26.1.1",
		Linkerd: &meshv1alpha1.LinkerdInstallSpec{Multicluster: &meshv1alpha1.LinkerdMulticluster{Gateway: &off, Links: []string{"east", "west"}}}}}
	charts := inst.Charts(mi)
	if len(charts) != 3 {
		t.Fatalf("charts: %+v", charts)
	}
	mc := charts[2]
	if mc.Name != "linkerd-multicluster" || mc.ReleaseNamespace("linkerd") != "linkerd-multicluster" || mc.NamespaceLabels["linkerd.io/extension"] != "multicluster" {
		t.Fatalf("multicluster chart: %+v", mc)
	}
	if charts[1].ReleaseNamespace("linkerd") != "linkerd" {
		t.Fatalf("control plane namespace: %s", charts[1].ReleaseNamespace("linkerd"))
	}
	ic := mesh.InstallContext{Namespace: "linkerd", Version: "edge-26.1.1"}
	want := map[string]any{
		"gateway": map[string]any{"enabled": false},
		"controllers": []any{
			map[string]any{"link": map[string]any{"ref": map[string]any{"name": "east"}}, "gateway": map[string]any{"enabled": false}},
			map[string]any{"link": map[string]any{"ref": map[string]any{"name": "west"}}, "gateway": map[string]any{"enabled": false}},
		},
		"linkerdVersion":             "edge-26.1.1",
		"createNamespaceMetadataJob": false,
	}
	if got := inst.Values(mi, mc, ic); !reflect.DeepEqual(got, want) {
		t.Fatalf("values:\n got %v\nwant %v", got, want)
	}
	if got := inst.Enforced(mi, mc, ic); !reflect.DeepEqual(got, map[string]any{"linkerdNamespace": "linkerd"}) {
		t.Fatalf("enforced: %v", got)
	}
	mi.Spec.Linkerd.Multicluster = nil
	if n := len(inst.Charts(mi)); n != 2 {
		t.Fatalf("without multicluster: %d charts", n)
	}
}
