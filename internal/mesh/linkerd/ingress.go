package linkerd

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/gamma"
	"github.com/meshplane/meshplane/internal/outcome"
)

// linkerdIngressHint says where the class comes from on Linkerd.
const linkerdIngressHint = "Linkerd ships no ingress: install the Gateway API implementation that serves this class (e.g. Envoy Gateway), " +
	"or name the class of the one you run in spec.gatewayClassName"

var _ mesh.IngressTranslator = (*Provider)(nil)

// ingressCondition documents what Linkerd's ingress needs: a Gateway API
// implementation of your choice (decided by IngressClass and the class
// check) and the Gateway API CRDs.
func ingressCondition() mesh.Condition {
	return mesh.Condition{
		Capabilities: []mesh.Capability{mesh.CapIngressGateway},
		Doc:          "the Gateway API CRDs and spec.gatewayClassName naming an installed implementation (Linkerd ships none)",
		Holds:        func(s mesh.Scope) bool { return s.Install.GatewayAPICRDs },
		Fix: func(mesh.Scope) string {
			return "install the Gateway API CRDs (gateway.networking.k8s.io/v1 is not served) and a Gateway API implementation"
		},
	}
}

// IngressOutputKinds returns Gateway API's Gateway.
func (*Provider) IngressOutputKinds() []client.Object {
	return []client.Object{gamma.IngressGatewayKind()}
}

// IngressClass is spec.gatewayClassName, which Linkerd requires.
func (*Provider) IngressClass(g *meshv1alpha1.IngressGateway) (mesh.IngressClass, error) {
	if g.Spec.GatewayClassName == "" {
		return mesh.IngressClass{}, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"spec.gatewayClassName is required on Linkerd: Linkerd ships no ingress gateway; install a Gateway API implementation "+
				"(e.g. Envoy Gateway) and set spec.gatewayClassName to its GatewayClass (nothing was applied)")
	}
	return mesh.IngressClass{Name: g.Spec.GatewayClassName, Hint: linkerdIngressHint}, nil
}

// TranslateIngressGateway returns a Gateway of the user's class. Unless
// spec.meshInjection is Disabled, its spec.infrastructure.annotations
// carry linkerd.io/inject: enabled (Gateway API v1.1+), which the
// implementation copies to the gateway's pods, so Linkerd's injector adds
// the proxy: the gateway then has a mesh identity and reaches meshed
// backends over mTLS (by endpoint address, as gateways route).
func (p *Provider) TranslateIngressGateway(g *meshv1alpha1.IngressGateway, _ mesh.Scope) ([]client.Object, error) {
	class, err := p.IngressClass(g)
	if err != nil {
		return nil, err
	}
	var anns map[string]string
	if g.Spec.MeshInjection != meshv1alpha1.MeshInjectionDisabled {
		anns = map[string]string{InjectAnnotation: "enabled"}
	}
	objs := []client.Object{gamma.IngressGateway(g, class.Name, nil, anns)}
	if err := mesh.CheckIngressOutputs(g, objs); err != nil {
		return nil, err
	}
	return objs, nil
}

// IngressReadsPods is true: only the gateway's pods say whether the
// implementation copied the annotation and the injector added the proxy.
func (*Provider) IngressReadsPods() bool { return true }

// BackendMTLS is Yes when every gateway pod runs linkerd-proxy.
func (*Provider) BackendMTLS(g *meshv1alpha1.IngressGateway, _ mesh.Scope, obs mesh.GatewayObservation) mesh.MTLSReport {
	if g.Spec.MeshInjection == meshv1alpha1.MeshInjectionDisabled {
		return mesh.MTLSReport{Answer: meshv1alpha1.BackendMTLSNo, Reason: "InjectionDisabled",
			Message: "spec.meshInjection is Disabled: the gateway's pods run without Linkerd's proxy and reach backends in plain text"}
	}
	var pods, without []string
	for _, p := range obs.Pods {
		if !p.DeletionTimestamp.IsZero() {
			continue
		}
		pods = append(pods, p.Namespace+"/"+p.Name)
		if !hasProxy(&p) {
			without = append(without, p.Namespace+"/"+p.Name)
		}
	}
	switch {
	case len(pods) == 0:
		return mesh.MTLSReport{Answer: meshv1alpha1.BackendMTLSUnknown, Reason: "NoGatewayPods",
			Message: fmt.Sprintf("no pod labelled %s=%s, %s=%s runs: the implementation of class %s has not started the gateway yet, "+
				"or does not copy the Gateway's spec.infrastructure labels to its pods", mesh.IngressGatewayLabel, g.Name,
				mesh.IngressGatewayNamespaceLabel, g.Namespace, g.Spec.GatewayClassName)}
	case len(without) > 0:
		slices.Sort(without)
		return mesh.MTLSReport{Answer: meshv1alpha1.BackendMTLSNo, Reason: "GatewayPodsNotInjected",
			Message: fmt.Sprintf("%d of %d gateway pod(s) run without %s (%s): they reach backends in plain text; the implementation of class %s "+
				"may not copy spec.infrastructure.annotations to its pods (then annotate the namespace its pods run in with %s: enabled), "+
				"or they started before the annotation or while the injector was down: restart them",
				len(without), len(pods), ProxyContainer, strings.Join(without, ", "), g.Spec.GatewayClassName, InjectAnnotation)}
	}
	return mesh.MTLSReport{Answer: meshv1alpha1.BackendMTLSYes, Reason: "GatewayPodsInjected",
		Message: fmt.Sprintf("%d of %d gateway pod(s) run %s: the gateway reaches meshed backends over mTLS; backends outside the mesh in plain text",
			len(pods), len(pods), ProxyContainer)}
}

// hasProxy reports whether a pod runs Linkerd's proxy, as a container or
// a native sidecar.
func hasProxy(p *corev1.Pod) bool {
	named := func(c corev1.Container) bool { return c.Name == ProxyContainer }
	return slices.ContainsFunc(p.Spec.Containers, named) || slices.ContainsFunc(p.Spec.InitContainers, named)
}
