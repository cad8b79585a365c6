package hostile

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// Capability cases: features a mesh can express in general but not as it
// is installed, or not with the namespace's data plane. Each is refused
// with UnsupportedFeature naming exactly what to change, writes nothing,
// keeps a previous generation in force, and stops nothing else. Cases that
// need a MeshInstall are Isolated: a Cilium MeshInstall claims every
// namespace, a Linkerd one every Linkerd namespace of the shared cluster.

// tail is the end of every install-aware refusal.
const tail = ", or remove the feature from the spec (nothing was applied)"

// strictPolicy is GoodZeroTrustPolicy with mtls.mode left to its default,
// Strict.
func strictPolicy(ns, name string, m Mesh) *meshv1alpha1.ZeroTrustPolicy {
	p := GoodZeroTrustPolicy(ns, name, m)
	p.Spec.MTLS = nil
	return p
}

// l7Policy is GoodZeroTrustPolicy narrowed to GET on /api/*.
func l7Policy(ns, name string, m Mesh) *meshv1alpha1.ZeroTrustPolicy {
	p := GoodZeroTrustPolicy(ns, name, m)
	p.Spec.Rules[0].To[0].Methods = []meshv1alpha1.HTTPMethod{"GET"}
	p.Spec.Rules[0].To[0].Paths = []string{"/api/*"}
	return p
}

// meshInstall creates MeshInstall name of provider p at version v, edited
// by edit, in the case's cluster.
func meshInstall(h *H, name string, p meshv1alpha1.Provider, v string, edit func(*meshv1alpha1.MeshInstallSpec)) {
	h.Helper()
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: meshv1alpha1.MeshInstallSpec{Provider: p, Version: v}}
	if edit != nil {
		edit(&mi.Spec)
	}
	h.Create(mi)
}

// cilium creates MeshInstall cilium with the given mutual authentication,
// encryption and Envoy, and starts the case's manager.
func cilium(h *H, mutual bool, enc meshv1alpha1.CiliumEncryptionType, envoy bool) {
	h.Helper()
	meshInstall(h, "cilium", meshv1alpha1.ProviderCilium, "1.19.5", func(s *meshv1alpha1.MeshInstallSpec) {
		s.Cilium = &meshv1alpha1.CiliumInstallSpec{MutualAuth: mutual, Envoy: &envoy}
		s.Cilium.Encryption = encryption(enc)
	})
	h.StartManager()
}

// setCilium changes MeshInstall cilium's mutual authentication and
// encryption.
func setCilium(h *H, mutual bool, enc meshv1alpha1.CiliumEncryptionType) {
	h.Helper()
	mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium"}}
	h.Must(h.Update(mi, func() {
		mi.Spec.Cilium.MutualAuth, mi.Spec.Cilium.Encryption = mutual, encryption(enc)
	}))
}

// encryption is Cilium's encryption of type enc (nil for none), with the
// key Secret IPsec needs.
func encryption(enc meshv1alpha1.CiliumEncryptionType) *meshv1alpha1.CiliumEncryption {
	switch enc {
	case "":
		return nil
	case meshv1alpha1.CiliumEncryptionIPsec:
		return &meshv1alpha1.CiliumEncryption{Type: enc, IPsecKeySecretRef: &meshv1alpha1.SecretKeyReference{Name: "cilium-ipsec-keys"}}
	}
	return &meshv1alpha1.CiliumEncryption{Type: enc}
}

func ciliumStrict(ns, set string) string {
	return "feature MTLSStrict is not supported by Cilium as installed by MeshInstall cilium in namespace " + ns +
		" (CiliumNode data plane): set " + set + " on MeshInstall cilium (mTLS Strict means authenticated and encrypted), " +
		"or use mtls.mode Permissive" + tail
}

// ambientNamespace is a namespace in Istio's ambient mode without a
// waypoint.
func ambientNamespace(h *H) string {
	h.Helper()
	return testenv.Namespace(h.T, h.C, map[string]string{"istio.io/dataplane-mode": "ambient"})
}

func init() {
	Register(sharedCapabilityCases()...)
	Register(linkerdCases()...)
	Register(isolatedCapabilityCases()...)
}

func sharedCapabilityCases() []Case {
	return []Case{
		{Category: "capability", Kind: "ZeroTrustPolicy", Mesh: Cilium, Name: "Strict on a Cilium Meshplane did not install",
			Run: func(h *H) {
				ns := h.Namespace(Cilium)
				before := h.Inventory(ns)
				p := strictPolicy(ns, "strict", Cilium)
				h.Create(p)
				h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, "feature MTLSStrict is not supported by Cilium (not installed by a MeshInstall) in namespace "+ns+
					" (CiliumNode data plane): set spec.cilium.mutualAuth and spec.cilium.encryption on a MeshInstall of Cilium "+
					"(this Cilium was not installed by Meshplane, so its settings are unknown) (mTLS Strict means authenticated and encrypted), "+
					"or use mtls.mode Permissive"+tail)
				h.Same(ns, before)
				h.Control("ZeroTrustPolicy", Cilium)
			}},
		{Category: "capability", Kind: "ZeroTrustPolicy", Mesh: Cilium, Name: "update Permissive to Strict on a Cilium Meshplane did not install",
			Run: func(h *H) {
				ns := h.Namespace(Cilium)
				p := GoodZeroTrustPolicy(ns, "policy", Cilium)
				h.Create(p)
				h.Ready(p)
				before := h.Inventory(ns)
				h.Must(h.Update(p, func() { p.Spec.MTLS = nil }))
				h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, "feature MTLSStrict is not supported by Cilium (not installed by a MeshInstall)")
				h.Same(ns, before)
			}},
		{Category: "capability", Kind: "ZeroTrustPolicy", Mesh: Istio, Name: "ambient L7 rule without a waypoint",
			Run: func(h *H) {
				ns := ambientNamespace(h)
				before := h.Inventory(ns)
				p := l7Policy(ns, "l7", Istio)
				h.Create(p)
				h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, noWaypointForL7(ns))
				h.Same(ns, before)
				h.Control("ZeroTrustPolicy", Istio)
			}},
		{Category: "capability", Kind: "ZeroTrustPolicy", Mesh: Istio, Name: "ambient update L4 rule to L7 without a waypoint",
			Run: func(h *H) {
				ns := ambientNamespace(h)
				p := GoodZeroTrustPolicy(ns, "policy", Istio)
				h.Create(p)
				h.Ready(p)
				before := h.Inventory(ns)
				h.Must(h.Update(p, func() { p.Spec.Rules[0].To[0].Methods = []meshv1alpha1.HTTPMethod{"POST"} }))
				h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, noWaypointForL7(ns))
				h.Same(ns, before)
			}},
		{Category: "capability", Kind: "TrafficSplit", Mesh: Istio, Name: "ambient split without a waypoint",
			Run: func(h *H) {
				ns := ambientNamespace(h)
				for _, s := range []string{"web", "web-v1", "web-v2"} {
					h.Service(ns, s)
				}
				before := h.Inventory(ns)
				ts := GoodTrafficSplit(ns, "split", Istio)
				h.Create(ts)
				h.Stalled(ts, meshv1alpha1.UnsupportedFeatureReason, noWaypointForService(ns, ""))
				h.Same(ns, before)
				h.Control("TrafficSplit", Istio)
			}},
	}
}

// refusedEncryption is a Cilium MeshInstall with encryption enc, which the
// API server must refuse.
func refusedEncryption(enc meshv1alpha1.CiliumEncryption) func(h *H) {
	return func(h *H) {
		mi := &meshv1alpha1.MeshInstall{ObjectMeta: metav1.ObjectMeta{Name: "cilium-" + h.Namespace(AnyMesh)},
			Spec: meshv1alpha1.MeshInstallSpec{Provider: meshv1alpha1.ProviderCilium, Version: "1.19.5",
				Cilium: &meshv1alpha1.CiliumInstallSpec{Encryption: &enc}}}
		h.Refused(mi, "spec.cilium.encryption: Invalid value",
			"spec.cilium.encryption.ipsecKeySecretRef is required with type IPsec and only allowed with it")
		h.Control("ZeroTrustPolicy", Cilium)
	}
}

// linkerdOverlap is the refusal of two rules narrowing port 8080.
const linkerdOverlap = "feature AllowHTTPMethodPath is not supported by Linkerd: spec.rules[0] and spec.rules[1] both narrow port 8080 by method or path; " +
	"Linkerd authorizes a request only by the one route it matches, so one rule's sources would be refused on the other's requests: " +
	"narrow each port by method or path in one rule only, or use different ports; remove the feature from the spec or choose another provider (nothing was applied)"

// linkerdCases are policies Linkerd would enforce differently from the
// intent (found by the semantic oracle, test/oracle).
func linkerdCases() []Case {
	second := meshv1alpha1.AllowRule{From: []meshv1alpha1.TrafficSource{{Namespaces: []string{"ops"}}},
		To: []meshv1alpha1.TrafficDestination{{Ports: []int32{8080}, Paths: []string{"/admin/*"}}}}
	return []Case{
		{Category: "capability", Kind: "ZeroTrustPolicy", Mesh: Linkerd, Name: "two rules narrow one port by method or path",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				before := h.Inventory(ns)
				p := l7Policy(ns, "overlap", Linkerd)
				p.Spec.Rules = append(p.Spec.Rules, second)
				h.Create(p)
				h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, linkerdOverlap)
				h.Same(ns, before)
				h.Control("ZeroTrustPolicy", Linkerd)
			}},
		{Category: "capability", Kind: "ZeroTrustPolicy", Mesh: Linkerd, Name: "update adds a second rule narrowing the port",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				p := l7Policy(ns, "policy", Linkerd)
				h.Create(p)
				h.Ready(p)
				before := h.Inventory(ns)
				h.Must(h.Update(p, func() { p.Spec.Rules = append(p.Spec.Rules, second) }))
				h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, linkerdOverlap)
				h.Same(ns, before)
			}},
		{Category: "capability", Kind: "ZeroTrustPolicy", Mesh: Linkerd, Name: "path prefix inside a segment",
			Run: func(h *H) {
				ns := h.Namespace(Linkerd)
				before := h.Inventory(ns)
				p := l7Policy(ns, "prefix", Linkerd)
				p.Spec.Rules[0].To[0].Paths = []string{"/ap*"}
				h.Create(p)
				h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, `spec.rules[0].to[0].paths: "/ap*": Linkerd matches path prefixes by whole segments; end the prefix with /* (e.g. "/ap/*")`)
				h.Same(ns, before)
			}},
	}
}

func isolatedCapabilityCases() []Case {
	return []Case{
		{Category: "capability", Kind: "MeshInstall", Mesh: Cilium, Name: "IPsec encryption without a key Secret",
			Run: refusedEncryption(meshv1alpha1.CiliumEncryption{Type: meshv1alpha1.CiliumEncryptionIPsec})},
		{Category: "capability", Kind: "MeshInstall", Mesh: Cilium, Name: "WireGuard encryption with an IPsec key Secret",
			Run: refusedEncryption(meshv1alpha1.CiliumEncryption{Type: meshv1alpha1.CiliumEncryptionWireGuard,
				IPsecKeySecretRef: &meshv1alpha1.SecretKeyReference{Name: "keys"}})},
		{Category: "capability", Kind: "ZeroTrustPolicy", Mesh: Cilium, Isolated: true, Name: "Strict without mutualAuth, then fixed",
			Run: func(h *H) {
				cilium(h, false, meshv1alpha1.CiliumEncryptionWireGuard, true)
				ns := h.Namespace(Cilium)
				before := h.Inventory(ns)
				p := strictPolicy(ns, "strict", Cilium)
				h.Create(p)
				h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, ciliumStrict(ns, "spec.cilium.mutualAuth"))
				h.Same(ns, before)
				setCilium(h, true, meshv1alpha1.CiliumEncryptionWireGuard)
				h.Condition(p, meshv1alpha1.ReadyCondition, metav1.ConditionTrue, "",
					"identity-based L3/L4 policy enforced; traffic mutually authenticated and encrypted (WireGuard)")
			}},
		{Category: "capability", Kind: "ZeroTrustPolicy", Mesh: Cilium, Isolated: true, Name: "Strict without encryption",
			Run: func(h *H) {
				cilium(h, true, "", true)
				ns := h.Namespace(Cilium)
				before := h.Inventory(ns)
				p := strictPolicy(ns, "strict", Cilium)
				h.Create(p)
				h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, ciliumStrict(ns, "spec.cilium.encryption"))
				h.Same(ns, before)
				h.Control("ZeroTrustPolicy", Cilium)
			}},
		{Category: "capability", Kind: "ZeroTrustPolicy", Mesh: Cilium, Isolated: true, Name: "Strict without mutualAuth and encryption; Permissive says what is not enforced",
			Run: func(h *H) {
				cilium(h, false, "", true)
				ns := h.Namespace(Cilium)
				p := strictPolicy(ns, "strict", Cilium)
				h.Create(p)
				h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, ciliumStrict(ns, "spec.cilium.mutualAuth and spec.cilium.encryption"))
				// Strict and Permissive on one namespace conflict (issue 14):
				// the refused Strict policy goes first.
				h.Must(h.C.Delete(h.Ctx, p))
				perm := GoodZeroTrustPolicy(ns, "permissive", Cilium)
				h.Create(perm)
				h.Condition(perm, meshv1alpha1.ReadyCondition, metav1.ConditionTrue, "",
					"identity-based L3/L4 policy enforced; traffic not authenticated (mutual auth off) and not encrypted (encryption off)")
			}},
		{Category: "capability", Kind: "ZeroTrustPolicy", Mesh: Cilium, Isolated: true, Name: "MeshInstall loses encryption under a Ready Strict policy",
			Run: func(h *H) {
				cilium(h, true, meshv1alpha1.CiliumEncryptionIPsec, true)
				ns := h.Namespace(Cilium)
				p := strictPolicy(ns, "strict", Cilium)
				h.Create(p)
				h.Ready(p)
				before := h.Inventory(ns)
				setCilium(h, true, "")
				h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, ciliumStrict(ns, "spec.cilium.encryption"))
				h.Same(ns, before)
			}},
		{Category: "capability", Kind: "ZeroTrustPolicy", Mesh: Cilium, Isolated: true, Name: "L7 rule without Envoy",
			Run: func(h *H) {
				cilium(h, true, meshv1alpha1.CiliumEncryptionWireGuard, false)
				ns := h.Namespace(Cilium)
				before := h.Inventory(ns)
				p := l7Policy(ns, "l7", Cilium)
				p.Spec.MTLS = nil
				h.Create(p)
				h.Stalled(p, meshv1alpha1.UnsupportedFeatureReason, "feature AllowHTTPMethodPath is not supported by Cilium as installed by MeshInstall cilium in namespace "+ns+
					" (CiliumNode data plane): set spec.cilium.envoy to true on MeshInstall cilium (L7 HTTP rules are enforced by Cilium's Envoy proxy)"+tail)
				h.Same(ns, before)
			}},
		{Category: "capability", Kind: "TrafficSplit", Mesh: Cilium, Isolated: true, Name: "split with Gateway API off",
			Run: func(h *H) {
				meshInstall(h, "cilium", meshv1alpha1.ProviderCilium, "1.19.5", func(s *meshv1alpha1.MeshInstallSpec) {
					s.Cilium = &meshv1alpha1.CiliumInstallSpec{GatewayAPI: ptrTo(false)}
				})
				h.StartManager()
				ns := h.Namespace(Cilium)
				for _, s := range []string{"web", "web-v1", "web-v2"} {
					h.Service(ns, s)
				}
				before := h.Inventory(ns)
				ts := GoodTrafficSplit(ns, "split", Cilium)
				h.Create(ts)
				h.Stalled(ts, meshv1alpha1.UnsupportedFeatureReason, "features ServiceRouting, WeightedRouting are not supported by Cilium as installed by MeshInstall cilium in namespace "+ns+
					" (CiliumNode data plane): set spec.cilium.gatewayAPI and spec.cilium.envoy to true on MeshInstall cilium"+tail)
				h.Same(ns, before)
			}},
		{Category: "capability", Kind: "TrafficSplit", Mesh: Linkerd, Isolated: true, Name: "retries on a Linkerd before 2.16",
			Run: func(h *H) {
				meshInstall(h, "linkerd", meshv1alpha1.ProviderLinkerd, "edge-24.7.5", nil)
				h.StartManager()
				ns := h.Namespace(Linkerd)
				for _, s := range []string{"web", "web-v1", "web-v2"} {
					h.Service(ns, s)
				}
				before := h.Inventory(ns)
				ts := GoodTrafficSplit(ns, "split", Linkerd)
				ts.Spec.Retries = &meshv1alpha1.RetryPolicy{Attempts: 2}
				h.Create(ts)
				h.Stalled(ts, meshv1alpha1.UnsupportedFeatureReason, "feature Retries is not supported by Linkerd as installed by MeshInstall linkerd in namespace "+ns+
					" (LinkerdProxy data plane): upgrade MeshInstall linkerd to Linkerd 2.16 (edge-24.8) or later (it runs edge-24.7.5, which has no retry and timeout annotations)"+tail)
				h.Same(ns, before)
				h.Control("TrafficSplit", Linkerd)
			}},
		{Category: "capability", Kind: "TrafficSplit", Mesh: Linkerd, Isolated: true, Name: "routing on a Linkerd before 2.14",
			Run: func(h *H) {
				meshInstall(h, "linkerd", meshv1alpha1.ProviderLinkerd, "edge-23.7.1", nil)
				h.StartManager()
				ns := h.Namespace(Linkerd)
				for _, s := range []string{"web", "web-v1", "web-v2"} {
					h.Service(ns, s)
				}
				before := h.Inventory(ns)
				ts := GoodTrafficSplit(ns, "split", Linkerd)
				h.Create(ts)
				h.Stalled(ts, meshv1alpha1.UnsupportedFeatureReason, "features ServiceRouting, WeightedRouting are not supported by Linkerd as installed by MeshInstall linkerd in namespace "+ns+
					" (LinkerdProxy data plane): upgrade MeshInstall linkerd to Linkerd 2.14 (edge-23.8) or later (it runs edge-23.7.1, which has no Gateway API HTTPRoute routing)"+tail)
				h.Same(ns, before)
				// Policy has no version gate.
				p := GoodZeroTrustPolicy(ns, "policy", Linkerd)
				h.Create(p)
				h.Ready(p)
			}},
	}
}
