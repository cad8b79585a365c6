package istio

import (
	"fmt"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// The sidecar injector's resource annotations (istio.io/api
// annotation.SidecarProxyCPU and siblings): read when a pod is injected.
const (
	ProxyCPUAnnotation         = "sidecar.istio.io/proxyCPU"
	ProxyCPULimitAnnotation    = "sidecar.istio.io/proxyCPULimit"
	ProxyMemoryAnnotation      = "sidecar.istio.io/proxyMemory"
	ProxyMemoryLimitAnnotation = "sidecar.istio.io/proxyMemoryLimit"
)

// Why ambient namespaces refuse a ProxyPolicy, per feature.
const (
	ambientProxyResourcesDetail = "an ambient pod has no proxy of its own: ztunnel runs once per node (size it with MeshInstall spec.values ztunnel.resources) " +
		"and a waypoint is a Deployment per namespace or Service (size it through its Gateway's spec.infrastructure.parametersRef)"
	ambientEgressScopeDetail = "the Sidecar resource configures sidecar proxies only: ztunnel and waypoints have no per-workload outbound scope " +
		"(a waypoint serves the Services that use it)"
)

// ProxyOutputKinds returns Sidecar.
func (*Provider) ProxyOutputKinds() []client.Object {
	return []client.Object{&istionetworking.Sidecar{TypeMeta: metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "Sidecar"}}}
}

// TranslateProxyPolicy returns, for a sidecar namespace, the injector's
// sidecar.istio.io/proxyCPU, proxyCPULimit, proxyMemory and
// proxyMemoryLimit pod-template annotations, and for egressScope a
// Sidecar (networking.istio.io/v1) named <policy>-proxy whose one egress
// listener lists the hosts, with the policy's matchLabels as its
// workloadSelector (Istio's selectors take labels only, so
// matchExpressions are refused for egressScope). Ambient namespaces refuse
// both features: there is no per-pod proxy.
func (p *Provider) TranslateProxyPolicy(pol *meshv1alpha1.ProxyPolicy, f mesh.NamespaceFacts) (mesh.ProxyConfig, error) {
	var out mesh.ProxyConfig
	req := mesh.ProxyPolicyRequirements(&pol.Spec)
	if err := mesh.Check(p, req...); err != nil {
		return out, err
	}
	if f.Mode == mesh.Ambient {
		detail := ambientProxyResourcesDetail
		if pol.Spec.Resources == nil {
			detail = ambientEgressScopeDetail
		} else if pol.Spec.EgressScope != nil {
			detail += "; " + ambientEgressScopeDetail
		}
		return out, &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: req,
			Where: fmt.Sprintf("Istio in ambient namespace %s", f.Name), Detail: detail}
	}
	if r := pol.Spec.Resources; r != nil {
		if _, err := mesh.ParseProxyResources(r); err != nil {
			return out, err
		}
		out.Annotations = map[string]string{}
		for k, v := range map[string]string{
			ProxyCPUAnnotation: r.CPURequest, ProxyCPULimitAnnotation: r.CPULimit,
			ProxyMemoryAnnotation: r.MemoryRequest, ProxyMemoryLimitAnnotation: r.MemoryLimit,
		} {
			if v != "" {
				out.Annotations[k] = v
			}
		}
	}
	if e := pol.Spec.EgressScope; e != nil {
		sc, err := p.scopeSidecar(pol, e)
		if err != nil {
			return out, err
		}
		out.Objects = append(out.Objects, sc)
	}
	return out, nil
}

// scopeSidecar is the Sidecar of an egressScope.
func (p *Provider) scopeSidecar(pol *meshv1alpha1.ProxyPolicy, e *meshv1alpha1.ProxyEgressScope) (*istionetworking.Sidecar, error) {
	sc := &istionetworking.Sidecar{
		TypeMeta:   metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "Sidecar"},
		ObjectMeta: metav1.ObjectMeta{Name: ProxySidecarName(pol.Name), Namespace: pol.Namespace},
		Spec: networkingv1alpha3.Sidecar{Egress: []*networkingv1alpha3.IstioEgressListener{{
			Hosts: append([]string(nil), e.Hosts...),
		}}},
	}
	if s := pol.Spec.Selector; s != nil {
		if len(s.MatchExpressions) > 0 {
			return nil, &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{mesh.CapProxyEgressScope},
				Detail: "a Sidecar's workloadSelector takes labels only; express spec.selector with matchLabels"}
		}
		if len(s.MatchLabels) > 0 {
			sc.Spec.WorkloadSelector = &networkingv1alpha3.WorkloadSelector{Labels: s.MatchLabels}
		}
	}
	return sc, nil
}

// ProxySidecarName is the name of a ProxyPolicy's Sidecar: <policy>-proxy
// (the policy's own name when that would be too long), so it does not
// clash with an EgressPolicy's Sidecar of the same name.
func ProxySidecarName(policy string) string {
	if len(policy) > 247 {
		return policy
	}
	return policy + "-proxy"
}

// proxyConditions are the install-aware rows of the proxy capabilities.
func proxyConditions() []mesh.Condition {
	return []mesh.Condition{
		{
			// ProxyPolicy: an ambient pod has no proxy of its own.
			Capabilities: mesh.ProxyCapabilities,
			Doc:          "sidecar namespaces (ambient: no per-pod proxy)",
			Holds:        func(s mesh.Scope) bool { return s.Namespace.Mode != mesh.Ambient },
			Fix: func(s mesh.Scope) string {
				return "set proxy resources in a sidecar namespace (namespace " + s.Namespace.Name + " is ambient): size ztunnel with MeshInstall spec.values ztunnel.resources and a waypoint through its Gateway's spec.infrastructure.parametersRef"
			},
		},
	}
}

var _ mesh.ProxyTranslator = (*Provider)(nil)
