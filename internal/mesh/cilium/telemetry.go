package cilium

import (
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// telemetryDetail explains what Cilium has instead, for refusals.
const telemetryDetail = "Cilium has no per-namespace or per-workload tracing, access-log or metric-label setting: Hubble records every flow " +
	"(and HTTP flows where an L7 policy applies) cluster-wide, configured at install time (MeshInstall spec.values hubble.enabled, " +
	"hubble.export, hubble.metrics.enabled with its labelsContext); read one namespace with hubble observe --namespace"

// TelemetryOutputKinds returns nothing: every TelemetryPolicy is refused.
func (*Provider) TelemetryOutputKinds() []client.Object { return nil }

// TelemetryEffect is empty: nothing is written.
func (*Provider) TelemetryEffect([]client.Object) string { return "" }

// TranslateTelemetryPolicy refuses every feature the policy uses, naming
// Hubble's install-time settings (telemetryDetail).
func (p *Provider) TranslateTelemetryPolicy(pol *meshv1alpha1.TelemetryPolicy, _ mesh.NamespaceFacts) ([]client.Object, error) {
	missing := p.Capabilities().Missing(mesh.TelemetryPolicyRequirements(&pol.Spec)...)
	if len(missing) == 0 {
		// A policy uses at least one feature (CEL), none of which Cilium
		// has; an empty spec decoded tolerantly still writes nothing.
		return nil, nil
	}
	return nil, &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: missing, Detail: telemetryDetail}
}

var _ mesh.TelemetryTranslator = (*Provider)(nil)
