package mesh

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// InstallFacts is what a MeshInstall (and discovery) says about how a mesh
// was installed: what decides, beside the provider, which features the
// mesh can enforce.
type InstallFacts struct {
	// Provider is the mesh.
	Provider meshv1alpha1.Provider
	// MeshInstall names the MeshInstall; empty when the mesh runs without
	// one (installed outside Meshplane), and then nothing below is known
	// from a spec: security features that depend on the install are
	// refused (fail closed), routing depends on GatewayAPICRDs.
	MeshInstall string
	// Version is the mesh version installed (status.installedVersion, or
	// spec.version before the first install).
	Version string
	// Profile is the Istio profile (Sidecar or Ambient).
	Profile meshv1alpha1.Profile
	// MutualAuth is Cilium's SPIRE-based mutual authentication.
	MutualAuth bool
	// Encryption is Cilium's transparent encryption, empty when off.
	Encryption meshv1alpha1.CiliumEncryptionType
	// Envoy is Cilium's L7 proxy.
	Envoy bool
	// GatewayAPI is Cilium's Gateway API and GAMMA support.
	GatewayAPI bool
	// GatewayAPICRDs says whether the API server serves Gateway API's
	// HTTPRoute (discovery).
	GatewayAPICRDs bool
}

// InstallFactsOf reads the facts of provider p from its MeshInstall mi
// (nil for a mesh not installed by Meshplane); crds says whether Gateway
// API's HTTPRoute is served.
func InstallFactsOf(p meshv1alpha1.Provider, mi *meshv1alpha1.MeshInstall, crds bool) InstallFacts {
	f := InstallFacts{Provider: p, GatewayAPICRDs: crds}
	if mi == nil {
		// Unknown install: assume the L7 parts are there when their API
		// is served; never assume security features.
		f.Envoy, f.GatewayAPI = crds, crds
		return f
	}
	f.MeshInstall, f.Version, f.Profile = mi.Name, mi.Spec.Version, mi.Spec.Profile
	if mi.Status.InstalledVersion != "" {
		f.Version = mi.Status.InstalledVersion
	}
	on := func(b *bool) bool { return b == nil || *b }
	f.Envoy, f.GatewayAPI = true, true
	if c := mi.Spec.Cilium; c != nil {
		f.MutualAuth, f.Envoy, f.GatewayAPI = c.MutualAuth, on(c.Envoy), on(c.GatewayAPI)
		if c.Encryption != nil {
			f.Encryption = c.Encryption.Type
		}
	}
	return f
}

// Scope is a mesh as installed, seen from one namespace: the question
// every capability decision answers.
type Scope struct {
	// Install is how the mesh was installed.
	Install InstallFacts
	// Namespace is the namespace's data plane.
	Namespace NamespaceFacts
}

// Where names the install and namespace for messages, e.g. "Cilium as
// installed by MeshInstall cilium, namespace shop (CiliumNode)".
func (s Scope) Where() string {
	w := string(s.Install.Provider)
	if s.Install.MeshInstall != "" {
		w += " as installed by MeshInstall " + s.Install.MeshInstall
	} else {
		w += " (not installed by a MeshInstall)"
	}
	if s.Namespace.Name != "" {
		w += fmt.Sprintf(" in namespace %s", s.Namespace.Name)
		if s.Namespace.Mode != "" {
			w += fmt.Sprintf(" (%s data plane)", s.Namespace.Mode)
		}
	}
	return w
}

// Condition is one install or namespace requirement of capabilities in a
// mesh: the capabilities are enforced only where Holds.
type Condition struct {
	// Capabilities the condition applies to.
	Capabilities []Capability
	// Doc describes the requirement for the capability document, e.g.
	// "spec.cilium.mutualAuth and spec.cilium.encryption".
	Doc string
	// Holds reports whether the requirement is met.
	Holds func(Scope) bool
	// Fix says what to change when it is not, naming the field and the
	// object, e.g. "set spec.cilium.encryption on MeshInstall cilium".
	Fix func(Scope) string
}

// Conditional is implemented by meshes whose capabilities depend on the
// install or the namespace's data plane.
type Conditional interface {
	// Conditions lists the requirements, in documentation order.
	Conditions() []Condition
}

// Enforcer is implemented by meshes that can say what a ZeroTrustPolicy
// they accept is, and is not, enforced as, given the install (Cilium
// without mutual authentication or encryption).
type Enforcer interface {
	// Enforcement returns a sentence for the policy's status, empty when
	// the policy is enforced as written.
	Enforcement(s Scope, spec *meshv1alpha1.ZeroTrustPolicySpec) string
}

// Decide answers whether the mesh of s, as installed and with the
// namespace's data plane, can enforce every capability of required: nil,
// or an *UnsupportedFeatureError naming the features, where, and what to
// change.
func (r *Registry) Decide(s Scope, required ...Capability) error {
	p, err := r.Get(s.Install.Provider)
	if err != nil {
		return err
	}
	if err := Check(p, required...); err != nil {
		return err
	}
	c, ok := p.(Conditional)
	if !ok {
		return nil
	}
	var features []Capability
	var fixes []string
	for _, cond := range c.Conditions() {
		var hit []Capability
		for _, cp := range cond.Capabilities {
			if slices.Contains(required, cp) {
				hit = append(hit, cp)
			}
		}
		if len(hit) == 0 || cond.Holds(s) {
			continue
		}
		features = append(features, hit...)
		if fix := cond.Fix(s); !slices.Contains(fixes, fix) {
			fixes = append(fixes, fix)
		}
	}
	if len(features) == 0 {
		return nil
	}
	slices.Sort(features)
	return &UnsupportedFeatureError{Provider: p.Name(), Features: slices.Compact(features),
		Where: s.Where(), Fix: strings.Join(fixes, "; ")}
}

// Enforcement returns what a ZeroTrustPolicy is and is not enforced as in
// s, empty when as written (or when the mesh does not say).
func (r *Registry) Enforcement(s Scope, spec *meshv1alpha1.ZeroTrustPolicySpec) string {
	p, err := r.Get(s.Install.Provider)
	if err != nil {
		return ""
	}
	if e, ok := p.(Enforcer); ok {
		return e.Enforcement(s, spec)
	}
	return ""
}

// ConditionsOf returns the conditions of p on capability c.
func ConditionsOf(p Provider, c Capability) []Condition {
	cp, ok := p.(Conditional)
	if !ok {
		return nil
	}
	var out []Condition
	for _, cond := range cp.Conditions() {
		if slices.Contains(cond.Capabilities, c) {
			out = append(out, cond)
		}
	}
	return out
}

// TrafficCapabilities are the capabilities of TrafficSplit and Canary
// routing.
var TrafficCapabilities = []Capability{
	CapServiceRouting, CapWeightedRouting, CapHeaderMatchExact, CapHeaderMatchPrefix, CapHeaderMatchRegex,
	CapPathMatch, CapMethodMatch, CapMirroring, CapMirrorPercent, CapRequestTimeout,
	CapRetries, CapRetryPerTryTimeout, CapRetryConditions, CapOrderedRules, CapGatewayAPIOutput, CapNativeRoutingOutput,
}

// PolicyCapabilities are the capabilities of ZeroTrustPolicy.
var PolicyCapabilities = []Capability{
	CapMTLSStrict, CapMTLSPermissive, CapPerWorkloadMTLSMode, CapDefaultDeny,
	CapAllowFromServiceAccount, CapAllowFromNamespace, CapAllowToPort, CapAllowAnyPort, CapAllowHTTPMethodPath,
}

// DataPlane returns the facts of namespace ns for provider p: the
// provider's answer when it describes data planes, else the name alone.
func (r *Registry) DataPlane(p meshv1alpha1.Provider, ns *corev1.Namespace) NamespaceFacts {
	if prov, err := r.Get(p); err == nil {
		if d, ok := prov.(DataPlaneDescriber); ok {
			return d.DataPlane(ns)
		}
	}
	return NamespaceFacts{Name: ns.Name}
}
