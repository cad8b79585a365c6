package providers

import (
	"errors"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

func ciliumInstall(mutual bool, enc meshv1alpha1.CiliumEncryptionType, envoy bool) *meshv1alpha1.MeshInstall {
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5",
			Cilium: &meshv1alpha1.CiliumInstallSpec{MutualAuth: mutual, Envoy: &envoy}}}
	if enc != "" {
		mi.Spec.Cilium.Encryption = &meshv1alpha1.CiliumEncryption{Type: enc}
	}
	return mi
}

func istioInstall(profile meshv1alpha1.Profile) *meshv1alpha1.MeshInstall {
	return &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "istio"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderIstio, Version: "1.30.2", Profile: profile}}
}

func linkerdInstall(version string) *meshv1alpha1.MeshInstall {
	return &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderLinkerd, Version: version}}
}

// TestDecide is the capability decisions per install and namespace, with
// the exact refusal messages.
func TestDecide(t *testing.T) {
	reg := Registry()
	ns := func(mode mesh.DataPlaneMode, waypoint string) mesh.NamespaceFacts {
		return mesh.NamespaceFacts{Name: "shop", Mode: mode, Waypoint: waypoint}
	}
	for _, tc := range []struct {
		name     string
		provider meshv1alpha1.Provider
		mi       *meshv1alpha1.MeshInstall
		noCRDs   bool
		ns       mesh.NamespaceFacts
		required []mesh.Capability
		want     string
	}{
		{name: "cilium strict with mutual auth and encryption", provider: meshv1alpha1.ProviderCilium,
			mi: ciliumInstall(true, meshv1alpha1.CiliumEncryptionWireGuard, true), ns: ns(mesh.CiliumNode, ""),
			required: []mesh.Capability{mesh.CapMTLSStrict, mesh.CapDefaultDeny}},
		{name: "cilium strict without either", provider: meshv1alpha1.ProviderCilium,
			mi: ciliumInstall(false, "", true), ns: ns(mesh.CiliumNode, ""), required: []mesh.Capability{mesh.CapMTLSStrict},
			want: "feature MTLSStrict is not supported by Cilium as installed by MeshInstall cilium in namespace shop (CiliumNode data plane): " +
				"set spec.cilium.mutualAuth and spec.cilium.encryption on MeshInstall cilium (mTLS Strict means authenticated and encrypted), " +
				"or use mtls.mode Permissive, or remove the feature from the spec (nothing was applied)"},
		{name: "cilium strict without encryption", provider: meshv1alpha1.ProviderCilium,
			mi: ciliumInstall(true, "", true), ns: ns(mesh.CiliumNode, ""), required: []mesh.Capability{mesh.CapMTLSStrict},
			want: "feature MTLSStrict is not supported by Cilium as installed by MeshInstall cilium in namespace shop (CiliumNode data plane): " +
				"set spec.cilium.encryption on MeshInstall cilium (mTLS Strict means authenticated and encrypted), " +
				"or use mtls.mode Permissive, or remove the feature from the spec (nothing was applied)"},
		{name: "cilium strict without mutual auth", provider: meshv1alpha1.ProviderCilium,
			mi: ciliumInstall(false, meshv1alpha1.CiliumEncryptionIPsec, true), ns: ns(mesh.CiliumNode, ""), required: []mesh.Capability{mesh.CapMTLSStrict},
			want: "feature MTLSStrict is not supported by Cilium as installed by MeshInstall cilium in namespace shop (CiliumNode data plane): " +
				"set spec.cilium.mutualAuth on MeshInstall cilium (mTLS Strict means authenticated and encrypted), " +
				"or use mtls.mode Permissive, or remove the feature from the spec (nothing was applied)"},
		{name: "cilium permissive without either", provider: meshv1alpha1.ProviderCilium,
			mi: ciliumInstall(false, "", true), ns: ns(mesh.CiliumNode, ""), required: []mesh.Capability{mesh.CapMTLSPermissive}},
		{name: "cilium strict not installed by Meshplane", provider: meshv1alpha1.ProviderCilium,
			ns: ns(mesh.CiliumNode, ""), required: []mesh.Capability{mesh.CapMTLSStrict},
			want: "feature MTLSStrict is not supported by Cilium (not installed by a MeshInstall) in namespace shop (CiliumNode data plane): " +
				"set spec.cilium.mutualAuth and spec.cilium.encryption on a MeshInstall of Cilium (this Cilium was not installed by Meshplane, so its settings are unknown) " +
				"(mTLS Strict means authenticated and encrypted), or use mtls.mode Permissive, or remove the feature from the spec (nothing was applied)"},
		{name: "cilium L7 without envoy", provider: meshv1alpha1.ProviderCilium,
			mi: ciliumInstall(true, meshv1alpha1.CiliumEncryptionWireGuard, false), ns: ns(mesh.CiliumNode, ""),
			required: []mesh.Capability{mesh.CapMTLSStrict, mesh.CapAllowHTTPMethodPath},
			want: "feature AllowHTTPMethodPath is not supported by Cilium as installed by MeshInstall cilium in namespace shop (CiliumNode data plane): " +
				"set spec.cilium.envoy to true on MeshInstall cilium (L7 HTTP rules are enforced by Cilium's Envoy proxy), or remove the feature from the spec (nothing was applied)"},
		{name: "cilium routing without envoy", provider: meshv1alpha1.ProviderCilium,
			mi: ciliumInstall(false, "", false), ns: ns(mesh.CiliumNode, ""),
			required: []mesh.Capability{mesh.CapServiceRouting, mesh.CapWeightedRouting},
			want: "features ServiceRouting, WeightedRouting are not supported by Cilium as installed by MeshInstall cilium in namespace shop (CiliumNode data plane): " +
				"set spec.cilium.gatewayAPI and spec.cilium.envoy to true on MeshInstall cilium, or remove the feature from the spec (nothing was applied)"},
		{name: "cilium routing without the Gateway API CRDs", provider: meshv1alpha1.ProviderCilium, noCRDs: true,
			mi: ciliumInstall(false, "", true), ns: ns(mesh.CiliumNode, ""), required: []mesh.Capability{mesh.CapServiceRouting},
			want: "feature ServiceRouting is not supported by Cilium as installed by MeshInstall cilium in namespace shop (CiliumNode data plane): " +
				"install the Gateway API CRDs (HTTPRoute gateway.networking.k8s.io/v1 is not served), or remove the feature from the spec (nothing was applied)"},
		{name: "cilium retries stay unsupported whatever the install", provider: meshv1alpha1.ProviderCilium,
			mi: ciliumInstall(true, meshv1alpha1.CiliumEncryptionWireGuard, true), ns: ns(mesh.CiliumNode, ""),
			required: []mesh.Capability{mesh.CapRetries},
			want:     "feature Retries is not supported by Cilium; remove the feature from the spec or choose another provider (nothing was applied)"},
		{name: "istio sidecar L7", provider: meshv1alpha1.ProviderIstio, mi: istioInstall(meshv1alpha1.ProfileSidecar),
			ns: ns(mesh.Sidecar, ""), required: []mesh.Capability{mesh.CapAllowHTTPMethodPath, mesh.CapWeightedRouting}},
		{name: "istio ambient L4 without waypoint", provider: meshv1alpha1.ProviderIstio, mi: istioInstall(meshv1alpha1.ProfileAmbient),
			ns: ns(mesh.Ambient, ""), required: []mesh.Capability{mesh.CapMTLSStrict, mesh.CapAllowFromServiceAccount, mesh.CapAllowToPort}},
		// Without a waypoint, routing and L7 rules pass the decision: the
		// ambient translation refuses them, naming the Service or rule
		// (TestAmbientTranslation).
		{name: "istio ambient L7 policy without waypoint is left to the translation", provider: meshv1alpha1.ProviderIstio, mi: istioInstall(meshv1alpha1.ProfileAmbient),
			ns: ns(mesh.Ambient, ""), required: []mesh.Capability{mesh.CapMTLSStrict, mesh.CapAllowHTTPMethodPath}},
		{name: "istio ambient routing without waypoint is left to the translation", provider: meshv1alpha1.ProviderIstio, mi: istioInstall(meshv1alpha1.ProfileAmbient),
			ns: ns(mesh.Ambient, ""), required: []mesh.Capability{mesh.CapServiceRouting}},
		{name: "istio ambient with waypoint", provider: meshv1alpha1.ProviderIstio, mi: istioInstall(meshv1alpha1.ProfileAmbient),
			ns: ns(mesh.Ambient, "waypoint"), required: []mesh.Capability{mesh.CapServiceRouting, mesh.CapAllowHTTPMethodPath}},
		{name: "istio ambient namespace on a sidecar install", provider: meshv1alpha1.ProviderIstio, mi: istioInstall(meshv1alpha1.ProfileSidecar),
			ns: ns(mesh.Ambient, "waypoint"), required: []mesh.Capability{mesh.CapMTLSStrict},
			want: "feature MTLSStrict is not supported by Istio as installed by MeshInstall istio in namespace shop (Ambient data plane): " +
				"set spec.profile Ambient on MeshInstall istio (namespace shop is labelled istio.io/dataplane-mode=ambient but ztunnel is not installed), " +
				"or remove the feature from the spec (nothing was applied)"},
		{name: "linkerd current", provider: meshv1alpha1.ProviderLinkerd, mi: linkerdInstall("edge-26.1.1"),
			ns: ns(mesh.LinkerdProxy, ""), required: []mesh.Capability{mesh.CapServiceRouting, mesh.CapRetries}},
		{name: "linkerd 2.15 retries", provider: meshv1alpha1.ProviderLinkerd, mi: linkerdInstall("2.15.1"),
			ns: ns(mesh.LinkerdProxy, ""), required: []mesh.Capability{mesh.CapServiceRouting, mesh.CapRetries, mesh.CapRequestTimeout},
			want: "features RequestTimeout, Retries are not supported by Linkerd as installed by MeshInstall linkerd in namespace shop (LinkerdProxy data plane): " +
				"upgrade MeshInstall linkerd to Linkerd 2.16 (edge-24.8) or later (it runs 2.15.1, which has no retry and timeout annotations), " +
				"or remove the feature from the spec (nothing was applied)"},
		{name: "linkerd edge-24.7 routing ok, retries not", provider: meshv1alpha1.ProviderLinkerd, mi: linkerdInstall("edge-24.7.5"),
			ns: ns(mesh.LinkerdProxy, ""), required: []mesh.Capability{mesh.CapRetries},
			want: "feature Retries is not supported by Linkerd as installed by MeshInstall linkerd in namespace shop (LinkerdProxy data plane): " +
				"upgrade MeshInstall linkerd to Linkerd 2.16 (edge-24.8) or later (it runs edge-24.7.5, which has no retry and timeout annotations), " +
				"or remove the feature from the spec (nothing was applied)"},
		{name: "linkerd 2.13 routing", provider: meshv1alpha1.ProviderLinkerd, mi: linkerdInstall("stable-2.13.7"),
			ns: ns(mesh.LinkerdProxy, ""), required: []mesh.Capability{mesh.CapServiceRouting},
			want: "feature ServiceRouting is not supported by Linkerd as installed by MeshInstall linkerd in namespace shop (LinkerdProxy data plane): " +
				"upgrade MeshInstall linkerd to Linkerd 2.14 (edge-23.8) or later (it runs stable-2.13.7, which has no Gateway API HTTPRoute routing), " +
				"or remove the feature from the spec (nothing was applied)"},
		{name: "linkerd policy has no version gate", provider: meshv1alpha1.ProviderLinkerd, mi: linkerdInstall("stable-2.13.7"),
			ns: ns(mesh.LinkerdProxy, ""), required: []mesh.Capability{mesh.CapMTLSStrict, mesh.CapAllowHTTPMethodPath}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mesh.Scope{Install: mesh.InstallFactsOf(tc.provider, tc.mi, !tc.noCRDs), Namespace: tc.ns}
			err := reg.Decide(s, tc.required...)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				return
			}
			var uf *mesh.UnsupportedFeatureError
			if !errors.As(err, &uf) {
				t.Fatalf("want UnsupportedFeature, got %v", err)
			}
			if err.Error() != tc.want {
				t.Fatalf("message\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

// TestCiliumEnforcement is what the status says an accepted Cilium policy
// is enforced as.
func TestCiliumEnforcement(t *testing.T) {
	reg := Registry()
	permissive := &meshv1alpha1.ZeroTrustPolicySpec{MTLS: &meshv1alpha1.MTLSSettings{Mode: meshv1alpha1.MTLSPermissive}}
	strictL7 := &meshv1alpha1.ZeroTrustPolicySpec{Rules: []meshv1alpha1.AllowRule{{To: []meshv1alpha1.TrafficDestination{{Ports: []int32{80}, Methods: []meshv1alpha1.HTTPMethod{"GET"}}}}}}
	for _, tc := range []struct {
		mi   *meshv1alpha1.MeshInstall
		spec *meshv1alpha1.ZeroTrustPolicySpec
		want string
	}{
		{ciliumInstall(false, "", true), permissive,
			"identity-based L3/L4 policy enforced; traffic not authenticated (mutual auth off) and not encrypted (encryption off)"},
		{ciliumInstall(true, "", true), permissive,
			"identity-based L3/L4 policy enforced; traffic not authenticated (mtls.mode Permissive) and not encrypted (encryption off)"},
		{ciliumInstall(false, meshv1alpha1.CiliumEncryptionWireGuard, true), permissive,
			"identity-based L3/L4 policy enforced; traffic not authenticated (mutual auth off) and encrypted (WireGuard)"},
		{ciliumInstall(true, meshv1alpha1.CiliumEncryptionIPsec, true), strictL7,
			"identity-based L3/L4 policy enforced, L7 HTTP rules by Cilium's Envoy; traffic mutually authenticated and encrypted (IPsec)"},
	} {
		s := mesh.Scope{Install: mesh.InstallFactsOf(meshv1alpha1.ProviderCilium, tc.mi, true)}
		if got := reg.Enforcement(s, tc.spec); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}
