package mesh_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/cilium"
	"github.com/meshplane/meshplane/internal/mesh/istio"
	"github.com/meshplane/meshplane/internal/mesh/providers"
	"github.com/meshplane/meshplane/internal/outcome"
)

func ptr[T any](v T) *T { return &v }

func TestRegistryFailsClosed(t *testing.T) {
	reg := providers.Registry()
	if got := reg.Names(); !slices.Equal(got, []meshv1alpha1.Provider{"Cilium", "Istio", "Linkerd"}) {
		t.Fatalf("Names() = %v", got)
	}
	for _, name := range []meshv1alpha1.Provider{"Kuma", "", "istio"} {
		_, err := reg.Get(name)
		var unknown *mesh.UnknownProviderError
		if !errors.As(err, &unknown) {
			t.Fatalf("Get(%q): want UnknownProviderError, got %v", name, err)
		}
		term, ok := outcome.AsTerminal(err)
		if !ok || term.StalledReason() != meshv1alpha1.ProviderUnknownReason {
			t.Fatalf("Get(%q): not terminal with ProviderUnknown: %v", name, err)
		}
		if !strings.Contains(err.Error(), "registered: Cilium, Istio, Linkerd") {
			t.Fatalf("message does not list the registered providers: %v", err)
		}
		if _, err := reg.Installer(name); err == nil {
			t.Fatalf("Installer(%q) did not fail", name)
		}
	}
	// A registry without a provider's translator fails closed with a
	// terminal error naming the provider, and never falls back to another
	// mesh.
	bare, err := mesh.NewRegistry(bareProvider{})
	if err != nil {
		t.Fatal(err)
	}
	{
		_, err := bare.TrafficTranslator("Bare")
		var ni *mesh.NotImplementedError
		if !errors.As(err, &ni) || !outcome.IsTerminal(err) || !strings.Contains(err.Error(), "Bare") {
			t.Fatalf("TrafficTranslator(Bare): want terminal NotImplementedError, got %v", err)
		}
	}
	for _, p := range meshv1alpha1.Providers {
		if _, err := reg.TrafficTranslator(p); err != nil {
			t.Fatalf("TrafficTranslator(%s): %v", p, err)
		}
		if _, err := reg.PolicyTranslator(p); err != nil {
			t.Fatalf("PolicyTranslator(%s): %v", p, err)
		}
	}
	for _, p := range meshv1alpha1.Providers {
		if _, err := reg.BreakGlassDriver(p); err != nil {
			t.Fatalf("BreakGlassDriver(%s): %v", p, err)
		}
	}
	for _, p := range meshv1alpha1.Providers {
		if _, err := reg.Installer(p); err != nil {
			t.Fatalf("Installer(%s): %v", p, err)
		}
		if _, err := reg.TrustWriter(p); err != nil {
			t.Fatalf("TrustWriter(%s): %v", p, err)
		}
	}
}

// bareProvider implements only Provider.
type bareProvider struct{}

func (bareProvider) Name() meshv1alpha1.Provider                           { return "Bare" }
func (bareProvider) Capabilities() mesh.Capabilities                       { return nil }
func (bareProvider) DefaultNamespace() string                              { return "bare" }
func (bareProvider) NamespaceMembership(*corev1.Namespace) mesh.Membership { return mesh.Membership{} }

func TestNewRegistryRejectsDuplicates(t *testing.T) {
	if _, err := mesh.NewRegistry(istio.New(), istio.New()); err == nil || !strings.Contains(err.Error(), "registered twice") {
		t.Fatalf("want duplicate error, got %v", err)
	}
	if _, err := mesh.NewRegistry(nil); err == nil {
		t.Fatal("want error for nil provider")
	}
}

func TestTrafficSplitRequirementsAndCheck(t *testing.T) {
	spec := &meshv1alpha1.TrafficSplitSpec{
		Service:  meshv1alpha1.ServiceReference{Name: "app"},
		Backends: []meshv1alpha1.WeightedBackend{{Name: "app-v1", Weight: 90}, {Name: "app-v2", Weight: 10}},
		Rules: []meshv1alpha1.TrafficRule{{
			Matches: []meshv1alpha1.HTTPMatch{{
				Headers: []meshv1alpha1.HTTPHeaderMatch{{Name: "x-user", Type: meshv1alpha1.HeaderMatchPrefix, Value: "beta-"}},
				Method:  "GET",
			}},
			Backends: []meshv1alpha1.WeightedBackend{{Name: "app-v2", Weight: 100}},
		}},
		Mirror:  &meshv1alpha1.MirrorPolicy{Backend: meshv1alpha1.ServiceReference{Name: "app-shadow"}, Percent: ptr[int32](20)},
		Timeout: &metav1.Duration{},
		Retries: &meshv1alpha1.RetryPolicy{Attempts: 2, RetryOn: []meshv1alpha1.RetryOn{"5xx"}},
	}
	got := mesh.TrafficSplitRequirements(spec)
	want := []mesh.Capability{mesh.CapServiceRouting, mesh.CapWeightedRouting, mesh.CapHeaderMatchPrefix, mesh.CapMethodMatch,
		mesh.CapMirroring, mesh.CapMirrorPercent, mesh.CapRequestTimeout, mesh.CapRetries, mesh.CapRetryConditions}
	if !slices.Equal(got, want) {
		t.Fatalf("requirements\n got %v\nwant %v", got, want)
	}

	reg := providers.Registry()
	for _, tc := range []struct {
		provider meshv1alpha1.Provider
		missing  string
	}{
		{meshv1alpha1.ProviderIstio, ""},
		{meshv1alpha1.ProviderLinkerd, "features MirrorPercent, Mirroring are not supported by Linkerd"},
		{meshv1alpha1.ProviderCilium, "features Retries, RetryConditions are not supported by Cilium"},
	} {
		p, _ := reg.Get(tc.provider)
		err := mesh.Check(p, got...)
		if tc.missing == "" {
			if err != nil {
				t.Fatalf("%s: %v", tc.provider, err)
			}
			continue
		}
		var uf *mesh.UnsupportedFeatureError
		if !errors.As(err, &uf) || !strings.Contains(err.Error(), tc.missing) {
			t.Fatalf("%s: want %q, got %v", tc.provider, tc.missing, err)
		}
		if term, ok := outcome.AsTerminal(err); !ok || term.StalledReason() != meshv1alpha1.UnsupportedFeatureReason {
			t.Fatalf("%s: not terminal UnsupportedFeature", tc.provider)
		}
	}
}

func TestNativeOutputIsARequirement(t *testing.T) {
	reg := providers.Registry()
	spec := &meshv1alpha1.TrafficSplitSpec{Output: meshv1alpha1.OutputNative,
		Backends: []meshv1alpha1.WeightedBackend{{Name: "a", Weight: 100}}}
	p, _ := reg.Get(meshv1alpha1.ProviderLinkerd)
	if err := mesh.Check(p, mesh.TrafficSplitRequirements(spec)...); err == nil || !strings.Contains(err.Error(), "NativeRoutingOutput") {
		t.Fatalf("Linkerd with output Native: got %v", err)
	}
	spec.Output = ""
	if err := mesh.Check(p, mesh.TrafficSplitRequirements(spec)...); err != nil {
		t.Fatalf("Linkerd with default output: %v", err)
	}
}

func TestZeroTrustPolicyRequirements(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec meshv1alpha1.ZeroTrustPolicySpec
		want []mesh.Capability
	}{
		{name: "empty spec is strict deny", want: []mesh.Capability{mesh.CapMTLSStrict, mesh.CapDefaultDeny}},
		{
			name: "permissive allow on a workload",
			spec: meshv1alpha1.ZeroTrustPolicySpec{
				MTLS:          &meshv1alpha1.MTLSSettings{Mode: meshv1alpha1.MTLSPermissive},
				DefaultAction: meshv1alpha1.ActionAllow,
				Selector:      &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			},
			want: []mesh.Capability{mesh.CapMTLSPermissive, mesh.CapPerWorkloadMTLSMode},
		},
		{
			name: "rules",
			spec: meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{
				From: []meshv1alpha1.TrafficSource{{ServiceAccounts: []string{"shop/web"}, Namespaces: []string{"ops"}}},
				To:   []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Methods: []meshv1alpha1.HTTPMethod{"GET"}}},
			}}},
			want: []mesh.Capability{mesh.CapMTLSStrict, mesh.CapDefaultDeny, mesh.CapAllowFromServiceAccount,
				mesh.CapAllowFromNamespace, mesh.CapAllowToPort, mesh.CapAllowHTTPMethodPath},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mesh.ZeroTrustPolicyRequirements(&tc.spec); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMeshInstallRequirements(t *testing.T) {
	reg := providers.Registry()
	ambient := meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd, Profile: meshv1alpha1.ProfileAmbient,
		Upgrade: &meshv1alpha1.UpgradeSpec{Strategy: meshv1alpha1.UpgradeRevisionBased}}
	p, _ := reg.Get(meshv1alpha1.ProviderLinkerd)
	err := mesh.Check(p, mesh.MeshInstallRequirements(&ambient)...)
	if err == nil || !strings.Contains(err.Error(), "features Ambient, Revisions are not supported by Linkerd") {
		t.Fatalf("got %v", err)
	}
	ip, _ := reg.Get(meshv1alpha1.ProviderIstio)
	if err := mesh.Check(ip, mesh.MeshInstallRequirements(&ambient)...); err != nil {
		t.Fatalf("Istio: %v", err)
	}
}

func TestIstioCharts(t *testing.T) {
	mi := &meshv1alpha1.MeshInstall{Spec: meshv1alpha1.MeshInstallSpec{Provider: "Istio", Profile: meshv1alpha1.ProfileAmbient,
		Istio: &meshv1alpha1.IstioInstallSpec{Revision: "1-28-1"}}}
	var names []string
	for _, c := range istio.New().Charts(mi) {
		names = append(names, c.Name+"/"+c.ReleaseName)
	}
	if want := []string{"base/istio-base", "istiod/istiod-1-28-1", "cni/istio-cni", "ztunnel/ztunnel"}; !slices.Equal(names, want) {
		t.Fatalf("charts %v, want %v", names, want)
	}
}

func TestCiliumImplicitMembership(t *testing.T) {
	m := cilium.New().NamespaceMembership(&corev1.Namespace{})
	if m.Level != mesh.ImplicitMember {
		t.Fatalf("level = %v", m.Level)
	}
}
