// Package cilium implements Meshplane's mesh interfaces for Cilium's
// service-mesh features.
package cilium

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/gamma"
)

const (
	// DefaultNamespace is where Cilium's agent and operator run.
	DefaultNamespace = "kube-system"
	// ChartRepository is Cilium's official Helm repository.
	ChartRepository = "https://helm.cilium.io"
)

// Provider is the Cilium provider.
type Provider struct {
	// Routes: traffic outputs are GAMMA HTTPRoutes.
	gamma.Routes
}

// New returns the Cilium provider.
func New() *Provider { return &Provider{} }

// Name returns Cilium.
func (*Provider) Name() meshv1alpha1.Provider { return meshv1alpha1.ProviderCilium }

// DefaultNamespace returns kube-system.
func (*Provider) DefaultNamespace() string { return DefaultNamespace }

// Capabilities returns what Cilium can express. Routing goes through
// Gateway API HTTPRoute (a header prefix becomes an anchored regular
// expression). HTTPRoute retries are only in Gateway API's experimental
// channel and Meshplane does not generate a CiliumEnvoyConfig route for a
// TrafficSplit, so retries are refused. Cilium has no sidecar
// injection to detach, no revisions and no ambient profile, and its mutual
// authentication has no trust-bundle input. MTLSStrict needs a MeshInstall
// with cilium.mutualAuth.
func (*Provider) Capabilities() mesh.Capabilities {
	return mesh.NewCapabilities(
		mesh.CapServiceRouting, mesh.CapWeightedRouting, mesh.CapHeaderMatchExact, mesh.CapHeaderMatchPrefix, mesh.CapHeaderMatchRegex,
		mesh.CapPathMatch, mesh.CapMethodMatch, mesh.CapMirroring, mesh.CapMirrorPercent, mesh.CapRequestTimeout,
		mesh.CapGatewayAPIOutput,
		mesh.CapMTLSStrict, mesh.CapMTLSPermissive, mesh.CapPerWorkloadMTLSMode, mesh.CapDefaultDeny,
		mesh.CapAllowFromServiceAccount, mesh.CapAllowFromNamespace, mesh.CapAllowToPort, mesh.CapAllowAnyPort, mesh.CapAllowHTTPMethodPath,
		mesh.CapHelmInstall, mesh.CapInPlaceUpgrade, mesh.CapSharedRootCA,
		mesh.CapEgressAllowList, mesh.CapEgressHTTPHosts, mesh.CapEgressTLSHosts, mesh.CapEgressTCPHosts,
		mesh.CapEgressWildcardHosts, mesh.CapEgressCIDRs, mesh.CapEgressPerWorkload, mesh.CapEgressGateway,
		mesh.CapIngressGateway,
	)
}

// NamespaceMembership is implicit: as the CNI, Cilium serves every
// namespace unless a sidecar mesh is chosen for it explicitly.
func (*Provider) NamespaceMembership(*corev1.Namespace) mesh.Membership {
	return mesh.Membership{Level: mesh.ImplicitMember, Source: "Cilium serves every namespace as the CNI"}
}

// Charts returns the cilium chart.
func (*Provider) Charts(*meshv1alpha1.MeshInstall) []mesh.Chart {
	return []mesh.Chart{{Name: "cilium", ReleaseName: "cilium", Repository: ChartRepository}}
}

// CRDGroups returns Cilium's API group.
func (*Provider) CRDGroups() []string { return []string{"cilium.io", "gateway.networking.k8s.io"} }

// InjectionMarkers returns nothing: Cilium injects no sidecars.
func (*Provider) InjectionMarkers() []mesh.Marker { return nil }

// IsInjectorWebhook is false: Cilium has no injector.
func (*Provider) IsInjectorWebhook(*admissionregistrationv1.MutatingWebhookConfiguration) bool {
	return false
}

// IsPolicyValidatingWebhook is false: Cilium validates its policies in the
// agent, not through an admission webhook.
func (*Provider) IsPolicyValidatingWebhook(*admissionregistrationv1.ValidatingWebhookConfiguration) bool {
	return false
}

// ClusterMeshCASecret holds a member's ClusterMesh issuer: the
// federation's intermediate, which signs the clustermesh-apiserver's
// certificates (FederationCertificates). It is Meshplane's, not the
// chart's cilium-ca, which the chart renders and keeps for Hubble.
const ClusterMeshCASecret = "meshplane-clustermesh-ca"

// TrustTarget returns the Secret of the member's ClusterMesh issuer
// (ClusterMeshCASecret).
func (*Provider) TrustTarget(namespace string) mesh.TrustTarget {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return mesh.TrustTarget{
		Namespace: namespace, IssuerSecret: ClusterMeshCASecret, IssuerSecretType: corev1.SecretTypeOpaque,
		CertKey: "ca.crt", KeyKey: "ca.key",
	}
}

var (
	_ mesh.Installer        = (*Provider)(nil)
	_ mesh.BreakGlassDriver = (*Provider)(nil)
	_ mesh.TrustWriter      = (*Provider)(nil)
)
