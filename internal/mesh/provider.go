package mesh

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Provider is what every mesh implements: its name, what it can express,
// and how to tell whether it serves a namespace. The other interfaces in
// this package are implemented by the providers that support the kind.
type Provider interface {
	// Name is the provider's API name.
	Name() meshv1alpha1.Provider
	// Capabilities is the set of features the mesh can express.
	Capabilities() Capabilities
	// DefaultNamespace is the control-plane namespace used when a
	// MeshInstall does not name one.
	DefaultNamespace() string
	// NamespaceMembership says whether, and why, the mesh serves ns.
	NamespaceMembership(ns *corev1.Namespace) Membership
}

// MembershipLevel grades how a namespace belongs to a mesh.
type MembershipLevel int

const (
	// NotMember: nothing ties the namespace to the mesh.
	NotMember MembershipLevel = iota
	// ImplicitMember: the mesh serves every namespace once installed
	// (Cilium, as the CNI), unless another mesh is chosen explicitly.
	ImplicitMember
	// ExplicitMember: a namespace label or annotation enrols it.
	ExplicitMember
	// OptedOut: a label or annotation explicitly disables the mesh.
	OptedOut
)

// Membership is a provider's answer for one namespace.
type Membership struct {
	// Level grades the membership.
	Level MembershipLevel
	// Revision is the control-plane revision the namespace selects (Istio
	// istio.io/rev), empty for the default.
	Revision string
	// Profile is the data-plane mode the namespace uses (Istio Ambient).
	Profile meshv1alpha1.Profile
	// Source names the label or annotation that decided, e.g.
	// "label istio.io/rev=1-28-1".
	Source string
}

// Chart is one Helm chart of a mesh, in install order.
type Chart struct {
	// Name of the chart in its repository, e.g. istiod.
	Name string
	// ReleaseName is the Helm release name Meshplane uses.
	ReleaseName string
	// Repository is the project's official chart repository.
	Repository string
	// CRDsOnly is true for charts that install only CRDs (never
	// uninstalled).
	CRDsOnly bool
	// Namespace is the release's namespace when it is not the install's
	// (an extension with a namespace of its own, e.g. linkerd-multicluster).
	Namespace string
	// NamespaceLabels are set on Namespace (as the control-plane
	// namespace's labels are: prior values recorded, restored when the
	// release goes), e.g. the label by which the mesh's CLI finds an
	// extension.
	NamespaceLabels map[string]string
}

// ReleaseNamespace is the namespace of chart c's release for an install
// whose control plane lives in ns.
func (c Chart) ReleaseNamespace(ns string) string {
	if c.Namespace != "" {
		return c.Namespace
	}
	return ns
}

// Installer installs a mesh with Helm (MeshInstall, MeshRevision).
type Installer interface {
	Provider
	// Charts returns the mesh's charts for a MeshInstall, in install order.
	Charts(mi *meshv1alpha1.MeshInstall) []Chart
	// CRDGroups returns the API groups of the mesh's CRDs; a MeshInstall is
	// Ready only when every CRD of these groups is Established.
	CRDGroups() []string
	// ChartVersion maps a mesh version (spec.version) to the version of its
	// charts, e.g. Linkerd edge-26.1.1 to 2026.1.1.
	ChartVersion(meshVersion string) string
	// Values returns Meshplane's defaults for one chart of the mesh: the
	// provider's and the profile's values and the settings the install
	// context dictates. The caller merges the user's values over them and
	// Enforced values over those.
	Values(mi *meshv1alpha1.MeshInstall, chart Chart, ic InstallContext) map[string]any
	// Enforced returns values the user may not override because Meshplane
	// depends on them (Istio's revision, Linkerd's identity material).
	Enforced(mi *meshv1alpha1.MeshInstall, chart Chart, ic InstallContext) map[string]any
}

// InstallContext is what a chart's values depend on besides the
// MeshInstall's spec.
type InstallContext struct {
	// Namespace of the control plane.
	Namespace string
	// Version of the mesh this release runs; differs from spec.version for
	// an older revision during a revision-based upgrade.
	Version string
	// Revision is the Istio revision of an istiod release; empty for none.
	Revision string
	// Identity is Linkerd's trust material; nil for other meshes.
	Identity *Identity
}

// Identity is a mesh's trust anchor and issuer, PEM encoded.
type Identity struct {
	// TrustAnchorsPEM is the trust bundle (one or more roots).
	TrustAnchorsPEM string
	// IssuerCertPEM and IssuerKeyPEM are the issuer's certificate and key.
	IssuerCertPEM, IssuerKeyPEM string
	// External hands the issuer to another controller (a MeshFederation):
	// the chart is installed without the issuer's key.
	External bool
}

// TrafficTranslator turns a TrafficSplit into the mesh's routing objects.
// It is pure: no I/O.
type TrafficTranslator interface {
	Provider
	// TranslateTrafficSplit returns the desired objects for ts, or an
	// *UnsupportedFeatureError naming what the mesh cannot express.
	TranslateTrafficSplit(ts *meshv1alpha1.TrafficSplit) ([]client.Object, error)
}

// PolicyTranslator turns a ZeroTrustPolicy into the mesh's security
// objects. It is pure: no I/O.
type PolicyTranslator interface {
	Provider
	// TranslateZeroTrustPolicy returns the desired objects for p, or an
	// *UnsupportedFeatureError naming what the mesh cannot express.
	TranslateZeroTrustPolicy(p *meshv1alpha1.ZeroTrustPolicy) ([]client.Object, error)
}

// Marker is a namespace label or annotation a mesh uses to enrol a
// namespace.
type Marker struct {
	// Key of the label or annotation.
	Key string
	// Annotation is true for annotations, false for labels.
	Annotation bool
}

// BreakGlassDriver knows how to detach a mesh from namespaces while its
// control plane is down (BreakGlass). A mesh without sidecar injection
// (Cilium) returns no markers and matches no webhook, so detachInjection is
// a no-op for it while the other actions still apply.
type BreakGlassDriver interface {
	Provider
	// InjectionMarkers are the namespace labels and annotations that enrol
	// namespaces in the mesh's data plane.
	InjectionMarkers() []Marker
	// IsInjectorWebhook reports whether a mutating webhook configuration
	// belongs to the mesh's sidecar injector.
	IsInjectorWebhook(cfg *admissionregistrationv1.MutatingWebhookConfiguration) bool
	// IsPolicyValidatingWebhook reports whether a validating webhook
	// configuration guards the mesh's own resources; with the control plane
	// down and failurePolicy Fail it would block relaxing policies, so a
	// BreakGlass neutralises (and records) it first.
	IsPolicyValidatingWebhook(cfg *admissionregistrationv1.ValidatingWebhookConfiguration) bool
	// PolicyKinds are the kinds of the mesh's security policies that
	// relaxPolicies may relax.
	PolicyKinds() []schema.GroupVersionKind
	// RelaxPolicy returns the relaxed spec of a policy of one of
	// PolicyKinds (unstructured), or false when the policy is already as
	// permissive as it gets or has no safe relaxed form. It is pure and
	// must not modify obj.
	RelaxPolicy(obj map[string]any) (spec map[string]any, ok bool)
	// RelaxedNamespaceAnnotations are namespace annotations relaxPolicies
	// sets on every namespace in scope (Linkerd's default inbound policy).
	RelaxedNamespaceAnnotations() map[string]string
}

// TrustTarget says where a mesh reads its CA material in a cluster.
type TrustTarget struct {
	// Namespace of the objects (the control-plane namespace).
	Namespace string
	// IssuerSecret holds the intermediate (issuer) certificate and key.
	IssuerSecret string
	// IssuerSecretType is the Secret's type.
	IssuerSecretType corev1.SecretType
	// CertKey, KeyKey, RootKey and ChainKey are the Secret keys of the
	// issuer certificate, its key, the root bundle and the chain; empty
	// when the mesh has no such key.
	CertKey, KeyKey, RootKey, ChainKey string
	// BundleConfigMap, when set, is a ConfigMap holding the trust bundle
	// under BundleConfigMapKey (Linkerd's trust roots).
	BundleConfigMap, BundleConfigMapKey string
}

// TrustWriter tells where a mesh reads trust material (MeshFederation).
type TrustWriter interface {
	Provider
	// TrustTarget returns the objects and keys for a control-plane
	// namespace (the default namespace when empty).
	TrustTarget(namespace string) TrustTarget
}
