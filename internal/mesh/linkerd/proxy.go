package linkerd

import (
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// The proxy injector's resource annotations, read when a pod is injected
// (https://linkerd.io/2/reference/proxy-configuration/).
const (
	ProxyCPURequestAnnotation    = "config.linkerd.io/proxy-cpu-request"
	ProxyCPULimitAnnotation      = "config.linkerd.io/proxy-cpu-limit"
	ProxyMemoryRequestAnnotation = "config.linkerd.io/proxy-memory-request"
	ProxyMemoryLimitAnnotation   = "config.linkerd.io/proxy-memory-limit"
)

// proxyEgressScopeDetail says why Linkerd refuses egressScope.
const proxyEgressScopeDetail = "Linkerd's proxy resolves destinations on demand through the destination controller, so there is no per-proxy " +
	"outbound configuration to narrow; to limit which external hosts workloads reach, use an EgressPolicy"

// ProxyOutputKinds returns nothing: the annotations are fields of the
// workloads, which are shared and never owned.
func (*Provider) ProxyOutputKinds() []client.Object { return nil }

// TranslateProxyPolicy returns the injector's config.linkerd.io/proxy-cpu-
// request, proxy-cpu-limit, proxy-memory-request and proxy-memory-limit
// pod-template annotations (the CPU limit also sizes the proxy's worker
// threads). egressScope is refused (proxyEgressScopeDetail).
func (p *Provider) TranslateProxyPolicy(pol *meshv1alpha1.ProxyPolicy, _ mesh.NamespaceFacts) (mesh.ProxyConfig, error) {
	var out mesh.ProxyConfig
	if missing := p.Capabilities().Missing(mesh.ProxyPolicyRequirements(&pol.Spec)...); len(missing) > 0 {
		return out, &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: missing, Detail: proxyEgressScopeDetail}
	}
	r := pol.Spec.Resources
	if r == nil {
		return out, nil
	}
	if _, err := mesh.ParseProxyResources(r); err != nil {
		return out, err
	}
	out.Annotations = map[string]string{}
	for k, v := range map[string]string{
		ProxyCPURequestAnnotation: r.CPURequest, ProxyCPULimitAnnotation: r.CPULimit,
		ProxyMemoryRequestAnnotation: r.MemoryRequest, ProxyMemoryLimitAnnotation: r.MemoryLimit,
	} {
		if v != "" {
			out.Annotations[k] = v
		}
	}
	return out, nil
}

var _ mesh.ProxyTranslator = (*Provider)(nil)
