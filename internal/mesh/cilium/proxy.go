package cilium

import (
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// proxyDetail explains what Cilium has instead, for refusals.
const proxyDetail = "Cilium has no per-pod proxy: its Envoy runs once per node (the cilium-envoy DaemonSet, sized with MeshInstall spec.values " +
	"envoy.resources) and receives only the L7 policies and routes that apply on that node, so there are no per-workload proxy resources or " +
	"outbound scope to set"

// ProxyOutputKinds returns nothing: every ProxyPolicy is refused.
func (*Provider) ProxyOutputKinds() []client.Object { return nil }

// TranslateProxyPolicy refuses every feature the policy uses, naming the
// node-wide Envoy's install values (proxyDetail).
func (p *Provider) TranslateProxyPolicy(pol *meshv1alpha1.ProxyPolicy, _ mesh.NamespaceFacts) (mesh.ProxyConfig, error) {
	missing := p.Capabilities().Missing(mesh.ProxyPolicyRequirements(&pol.Spec)...)
	if len(missing) == 0 {
		// A policy uses at least one feature (CEL); an empty spec decoded
		// tolerantly writes nothing.
		return mesh.ProxyConfig{}, nil
	}
	return mesh.ProxyConfig{}, &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: missing, Detail: proxyDetail}
}

var _ mesh.ProxyTranslator = (*Provider)(nil)
