package linkerd

import (
	"fmt"
	"strings"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// ChartVersion maps an edge release to its chart version (edge-26.1.1 is
// chart 2026.1.1); other versions are used as they are.
func (*Provider) ChartVersion(v string) string {
	rest, ok := strings.CutPrefix(v, "edge-")
	if !ok {
		return strings.TrimPrefix(v, "v")
	}
	var yy, m, n int
	if _, err := fmt.Sscanf(rest, "%d.%d.%d", &yy, &m, &n); err != nil || yy >= 100 {
		return rest
	}
	return fmt.Sprintf("%d.%d.%d", 2000+yy, m, n)
}

// Values returns Meshplane's defaults for Linkerd's charts: high
// availability when asked; the multicluster extension's gateway and
// service-mirror controllers.
func (*Provider) Values(mi *meshv1alpha1.MeshInstall, c mesh.Chart, ic mesh.InstallContext) map[string]any {
	if c.Name == MulticlusterChart {
		return multiclusterValues(mi, ic)
	}
	if c.Name != "linkerd-control-plane" || mi.Spec.Linkerd == nil || !mi.Spec.Linkerd.HighAvailability {
		return map[string]any{}
	}
	// The subset of Linkerd's values-ha.yaml that changes topology.
	return map[string]any{
		"controllerReplicas":        3,
		"enablePodAntiAffinity":     true,
		"enablePodDisruptionBudget": true,
		"webhookFailurePolicy":      "Fail",
	}
}

// multiclusterValues are the extension's gateway and one service-mirror
// controller per listed Link (the extension's controllers value), at the
// install's version, pointed at the install's control-plane namespace.
func multiclusterValues(mi *meshv1alpha1.MeshInstall, ic mesh.InstallContext) map[string]any {
	mc := mi.Spec.Linkerd.Multicluster
	gateway := mc.Gateway == nil || *mc.Gateway
	controllers := make([]any, 0, len(mc.Links))
	for _, l := range mc.Links {
		controllers = append(controllers, map[string]any{
			"link":    map[string]any{"ref": map[string]any{"name": l}},
			"gateway": map[string]any{"enabled": gateway},
		})
	}
	// The namespace-metadata Job only labels the namespace, which the
	// install does itself (Chart.NamespaceLabels): a post-install hook Job
	// would hold every install until it ran.
	return map[string]any{
		"gateway":                    map[string]any{"enabled": gateway},
		"controllers":                controllers,
		"linkerdVersion":             ic.Version,
		"createNamespaceMetadataJob": false,
	}
}

// Enforced sets the identity material Meshplane generated or was given,
// and the control-plane namespace the multicluster extension talks to.
func (*Provider) Enforced(_ *meshv1alpha1.MeshInstall, c mesh.Chart, ic mesh.InstallContext) map[string]any {
	if c.Name == MulticlusterChart {
		return map[string]any{"linkerdNamespace": ic.Namespace}
	}
	if c.Name != "linkerd-control-plane" || ic.Identity == nil {
		return nil
	}
	id := ic.Identity
	if id.External {
		return map[string]any{
			"identityTrustAnchorsPEM": id.TrustAnchorsPEM,
			"identity": map[string]any{
				"externalCA": true,
				"issuer":     map[string]any{"scheme": "kubernetes.io/tls"},
			},
		}
	}
	return map[string]any{
		"identityTrustAnchorsPEM": id.TrustAnchorsPEM,
		"identity": map[string]any{
			"issuer": map[string]any{
				"scheme": "linkerd.io/tls",
				"tls":    map[string]any{"crtPEM": id.IssuerCertPEM, "keyPEM": id.IssuerKeyPEM},
			},
		},
	}
}
