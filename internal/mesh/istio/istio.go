// Package istio implements Meshplane's mesh interfaces for Istio, sidecar
// and ambient.
package istio

import (
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// Namespace labels Istio reads.
const (
	// InjectionLabel enables (enabled) or disables (disabled) sidecar
	// injection for the default revision; it takes precedence over RevLabel.
	InjectionLabel = "istio-injection"
	// RevLabel selects a control-plane revision or revision tag.
	RevLabel = "istio.io/rev"
	// DataplaneModeLabel set to ambient enrols a namespace in ambient mode.
	DataplaneModeLabel = "istio.io/dataplane-mode"
	// DataplaneModeAmbient is DataplaneModeLabel's ambient value.
	DataplaneModeAmbient = "ambient"
	// DefaultNamespace is istiod's usual namespace.
	DefaultNamespace = "istio-system"
	// ChartRepository is Istio's official Helm repository.
	ChartRepository = "https://istio-release.storage.googleapis.com/charts"
)

// Provider is the Istio provider.
type Provider struct{}

// New returns the Istio provider.
func New() *Provider { return &Provider{} }

// Name returns Istio.
func (*Provider) Name() meshv1alpha1.Provider { return meshv1alpha1.ProviderIstio }

// DefaultNamespace returns istio-system.
func (*Provider) DefaultNamespace() string { return DefaultNamespace }

// Capabilities returns what Istio can express: everything in Meshplane's
// API but opaque TCP egress to host names (Istio matches TCP by address and
// port only).
func (*Provider) Capabilities() mesh.Capabilities {
	c := mesh.NewCapabilities(mesh.AllCapabilities...)
	delete(c, mesh.CapEgressTCPHosts)
	delete(c, mesh.CapIngressOutsideMesh) // the gateway is an Istio proxy
	return c
}

// NamespaceMembership follows Istio's own precedence: sidecar injection
// (istio-injection=enabled) wins over ambient, because Istio gives pods
// with a sidecar precedence over ztunnel; then ambient mode; then
// istio-injection=disabled opts out; then istio.io/rev selects a revision.
func (*Provider) NamespaceMembership(ns *corev1.Namespace) mesh.Membership {
	l := ns.Labels
	rev := l[RevLabel]
	if l[InjectionLabel] == "enabled" {
		return mesh.Membership{Level: mesh.ExplicitMember, Profile: meshv1alpha1.ProfileSidecar,
			Source: "label " + InjectionLabel + "=enabled"}
	}
	if l[DataplaneModeLabel] == DataplaneModeAmbient {
		return mesh.Membership{Level: mesh.ExplicitMember, Profile: meshv1alpha1.ProfileAmbient, Revision: rev,
			Source: "label " + DataplaneModeLabel + "=" + DataplaneModeAmbient}
	}
	if l[InjectionLabel] == "disabled" {
		return mesh.Membership{Level: mesh.OptedOut, Source: "label " + InjectionLabel + "=disabled"}
	}
	if rev != "" {
		return mesh.Membership{Level: mesh.ExplicitMember, Profile: meshv1alpha1.ProfileSidecar, Revision: rev,
			Source: "label " + RevLabel + "=" + rev}
	}
	return mesh.Membership{Level: mesh.NotMember}
}

// Charts returns base and istiod, plus cni and ztunnel for Ambient.
func (*Provider) Charts(mi *meshv1alpha1.MeshInstall) []mesh.Chart {
	istiod := "istiod"
	if mi.Spec.Istio != nil && mi.Spec.Istio.Revision != "" {
		istiod += "-" + mi.Spec.Istio.Revision
	}
	charts := []mesh.Chart{
		{Name: "base", ReleaseName: "istio-base", Repository: ChartRepository, CRDsOnly: true},
		{Name: "istiod", ReleaseName: istiod, Repository: ChartRepository},
	}
	if mi.Spec.Profile == meshv1alpha1.ProfileAmbient {
		charts = append(charts,
			mesh.Chart{Name: "cni", ReleaseName: "istio-cni", Repository: ChartRepository},
			mesh.Chart{Name: "ztunnel", ReleaseName: "ztunnel", Repository: ChartRepository})
	}
	return charts
}

// CRDGroups returns Istio's API groups.
func (*Provider) CRDGroups() []string {
	return []string{"networking.istio.io", "security.istio.io", "telemetry.istio.io", "extensions.istio.io"}
}

// InjectionMarkers returns Istio's enrolment labels, and the namespace's
// use-waypoint label (see breakglass_ambient.go).
func (*Provider) InjectionMarkers() []mesh.Marker {
	return append([]mesh.Marker{{Key: InjectionLabel}, {Key: RevLabel}, {Key: DataplaneModeLabel}}, ambientMarkers...)
}

// IsInjectorWebhook recognises istiod's injector and revision-tag webhooks.
func (*Provider) IsInjectorWebhook(cfg *admissionregistrationv1.MutatingWebhookConfiguration) bool {
	return strings.HasPrefix(cfg.Name, "istio-sidecar-injector") || strings.HasPrefix(cfg.Name, "istio-revision-tag-")
}

// IsPolicyValidatingWebhook recognises istiod's validating webhooks
// (istio-validator-<rev>-<ns> and istiod-default-validator).
func (*Provider) IsPolicyValidatingWebhook(cfg *admissionregistrationv1.ValidatingWebhookConfiguration) bool {
	return strings.HasPrefix(cfg.Name, "istio-validator") || cfg.Name == "istiod-default-validator"
}

// TrustTarget returns Istio's plug-in CA Secret, cacerts.
func (p *Provider) TrustTarget(namespace string) mesh.TrustTarget {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return mesh.TrustTarget{
		Namespace: namespace, IssuerSecret: "cacerts", IssuerSecretType: corev1.SecretTypeOpaque,
		CertKey: "ca-cert.pem", KeyKey: "ca-key.pem", RootKey: "root-cert.pem", ChainKey: "cert-chain.pem",
	}
}

var (
	_ mesh.Installer        = (*Provider)(nil)
	_ mesh.BreakGlassDriver = (*Provider)(nil)
	_ mesh.TrustWriter      = (*Provider)(nil)
)
