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
// availability when asked.
func (*Provider) Values(mi *meshv1alpha1.MeshInstall, c mesh.Chart, _ mesh.InstallContext) map[string]any {
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

// Enforced sets the identity material Meshplane generated or was given.
func (*Provider) Enforced(_ *meshv1alpha1.MeshInstall, c mesh.Chart, ic mesh.InstallContext) map[string]any {
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
