// Package linkerd implements Meshplane's mesh interfaces for Linkerd.
package linkerd

import (
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/gamma"
)

// Names Linkerd reads.
const (
	// InjectAnnotation on a namespace or pod: enabled, ingress or disabled.
	InjectAnnotation = "linkerd.io/inject"
	// DefaultInboundPolicyAnnotation sets a namespace's default inbound
	// policy (e.g. all-unauthenticated, all-authenticated, deny).
	DefaultInboundPolicyAnnotation = "config.linkerd.io/default-inbound-policy"
	// DefaultNamespace is the control plane's usual namespace.
	DefaultNamespace = "linkerd"
	// InjectorWebhook is the proxy injector's MutatingWebhookConfiguration.
	InjectorWebhook = "linkerd-proxy-injector-webhook-config"
	// StableRepository and EdgeRepository are Linkerd's Helm repositories.
	StableRepository = "https://helm.linkerd.io/stable"
	// EdgeRepository serves edge-YY.M.N releases.
	EdgeRepository = "https://helm.linkerd.io/edge"
)

// Provider is the Linkerd provider.
type Provider struct {
	// Routes: traffic outputs are GAMMA HTTPRoutes.
	gamma.Routes
}

// New returns the Linkerd provider.
func New() *Provider { return &Provider{} }

// Name returns Linkerd.
func (*Provider) Name() meshv1alpha1.Provider { return meshv1alpha1.ProviderLinkerd }

// DefaultNamespace returns linkerd.
func (*Provider) DefaultNamespace() string { return DefaultNamespace }

// Capabilities returns what Linkerd can express. Policies are
// namespace-wide and per port: Linkerd authorizes per Server (pod port) and
// sets a per-workload default only through pod annotations, which Meshplane
// does not write. Routing goes through
// Gateway API HTTPRoute (a header prefix becomes an anchored regular
// expression); Linkerd's proxy implements no request mirroring; Linkerd
// has neither control-plane revisions nor an ambient data plane.
func (*Provider) Capabilities() mesh.Capabilities {
	return mesh.NewCapabilities(
		mesh.CapServiceRouting, mesh.CapWeightedRouting, mesh.CapHeaderMatchExact, mesh.CapHeaderMatchPrefix, mesh.CapHeaderMatchRegex,
		mesh.CapPathMatch, mesh.CapMethodMatch, mesh.CapRequestTimeout, mesh.CapRetries, mesh.CapRetryPerTryTimeout,
		mesh.CapRetryConditions, mesh.CapGatewayAPIOutput,
		mesh.CapMTLSStrict, mesh.CapMTLSPermissive, mesh.CapDefaultDeny,
		mesh.CapAllowFromServiceAccount, mesh.CapAllowFromNamespace, mesh.CapAllowToPort, mesh.CapAllowHTTPMethodPath,
		mesh.CapPolicyAudit,
		mesh.CapHelmInstall, mesh.CapInPlaceUpgrade, mesh.CapSharedRootCA, mesh.CapTrustBundle, mesh.CapDetachInjection,
		mesh.CapAccessLogging, mesh.CapProxyResources,
		mesh.CapEgressAllowList, mesh.CapEgressAudit, mesh.CapEgressHTTPHosts, mesh.CapEgressWildcardHosts,
		mesh.CapIngressGateway, mesh.CapIngressOutsideMesh,
	)
}

// NamespaceMembership reads the namespace's linkerd.io/inject annotation.
func (*Provider) NamespaceMembership(ns *corev1.Namespace) mesh.Membership {
	switch v := ns.Annotations[InjectAnnotation]; v {
	case "enabled", "ingress":
		return mesh.Membership{Level: mesh.ExplicitMember, Source: "annotation " + InjectAnnotation + "=" + v}
	case "disabled":
		return mesh.Membership{Level: mesh.OptedOut, Source: "annotation " + InjectAnnotation + "=disabled"}
	}
	return mesh.Membership{Level: mesh.NotMember}
}

// Charts returns linkerd-crds and linkerd-control-plane from the stable or
// edge repository, as the version says, and the multicluster extension's
// chart (in its own namespace) when spec.linkerd.multicluster asks for it.
func (*Provider) Charts(mi *meshv1alpha1.MeshInstall) []mesh.Chart {
	repo := StableRepository
	if strings.HasPrefix(mi.Spec.Version, "edge-") {
		repo = EdgeRepository
	}
	charts := []mesh.Chart{
		{Name: "linkerd-crds", ReleaseName: "linkerd-crds", Repository: repo, CRDsOnly: true},
		{Name: "linkerd-control-plane", ReleaseName: "linkerd-control-plane", Repository: repo},
	}
	if mi.Spec.Linkerd != nil && mi.Spec.Linkerd.Multicluster != nil {
		charts = append(charts, mesh.Chart{Name: MulticlusterChart, ReleaseName: MulticlusterChart, Repository: repo,
			Namespace: MulticlusterNamespace, NamespaceLabels: map[string]string{ExtensionLabel: "multicluster"}})
	}
	return charts
}

// CRDGroups returns Linkerd's API groups.
func (*Provider) CRDGroups() []string {
	return []string{"linkerd.io", "policy.linkerd.io", "workload.linkerd.io", "gateway.networking.k8s.io"}
}

// InjectionMarkers returns Linkerd's enrolment annotation.
func (*Provider) InjectionMarkers() []mesh.Marker {
	return []mesh.Marker{{Key: InjectAnnotation, Annotation: true}}
}

// IsInjectorWebhook recognises the proxy injector's webhook configuration.
func (*Provider) IsInjectorWebhook(cfg *admissionregistrationv1.MutatingWebhookConfiguration) bool {
	return cfg.Name == InjectorWebhook
}

// IsPolicyValidatingWebhook recognises Linkerd's policy and service-profile
// validators.
func (*Provider) IsPolicyValidatingWebhook(cfg *admissionregistrationv1.ValidatingWebhookConfiguration) bool {
	return cfg.Name == "linkerd-policy-validator-webhook-config" || cfg.Name == "linkerd-sp-validator-webhook-config"
}

// TrustTarget returns Linkerd's issuer Secret and trust-roots ConfigMap.
func (*Provider) TrustTarget(namespace string) mesh.TrustTarget {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return mesh.TrustTarget{
		Namespace: namespace, IssuerSecret: "linkerd-identity-issuer", IssuerSecretType: corev1.SecretTypeTLS,
		CertKey: "tls.crt", KeyKey: "tls.key", RootKey: "ca.crt",
		BundleConfigMap: "linkerd-identity-trust-roots", BundleConfigMapKey: "ca-bundle.crt",
	}
}

var (
	_ mesh.Installer        = (*Provider)(nil)
	_ mesh.BreakGlassDriver = (*Provider)(nil)
	_ mesh.TrustWriter      = (*Provider)(nil)
)
