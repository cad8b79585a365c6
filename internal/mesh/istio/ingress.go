package istio

import (
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/gamma"
	"github.com/meshplane/meshplane/internal/outcome"
)

// IngressClass is the GatewayClass of Istio's gateway: istiod creates it
// and deploys an Envoy gateway (Deployment, Service) for each Gateway of
// the class (https://istio.io/latest/docs/tasks/traffic-management/ingress/gateway-api/#automated-deployment).
const IngressClass = "istio"

// ingressClassHint says where class istio comes from.
const ingressClassHint = "istiod creates GatewayClass istio when it runs with the Gateway API CRDs installed " +
	"(PILOT_ENABLE_GATEWAY_API, on by default): check that istiod is running and was started after the CRDs were installed"

var _ mesh.IngressTranslator = (*Provider)(nil)

// ingressCondition documents that Istio's gateway needs the Gateway API
// CRDs.
func ingressCondition() mesh.Condition {
	return mesh.Condition{
		Capabilities: []mesh.Capability{mesh.CapIngressGateway},
		Doc:          "the Gateway API CRDs (istiod then serves GatewayClass istio)",
		Holds:        func(s mesh.Scope) bool { return s.Install.GatewayAPICRDs },
		Fix: func(mesh.Scope) string {
			return "install the Gateway API CRDs (gateway.networking.k8s.io/v1 is not served) and restart istiod"
		},
	}
}

// IngressOutputKinds returns Gateway API's Gateway.
func (*Provider) IngressOutputKinds() []client.Object {
	return []client.Object{gamma.IngressGatewayKind()}
}

// IngressClass is istio: spec.gatewayClassName may be unset or istio.
func (*Provider) IngressClass(g *meshv1alpha1.IngressGateway) (mesh.IngressClass, error) {
	if c := g.Spec.GatewayClassName; c != "" && c != IngressClass {
		return mesh.IngressClass{}, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"spec.gatewayClassName %s: on Istio the gateway is Istio's own, class istio (an Envoy configured by istiod, in the mesh); "+
				"unset spec.gatewayClassName or set it to istio (nothing was applied)", c)
	}
	return mesh.IngressClass{Name: IngressClass, Hint: ingressClassHint}, nil
}

// TranslateIngressGateway returns a Gateway of class istio; istiod
// deploys its Envoy. In a sidecar namespace the gateway has a mesh
// identity and originates mTLS (auto mTLS) to injected backends; in an
// ambient namespace it is its own proxy (ztunnel does not capture it) and
// reaches ambient backends over HBONE. The gateway is always an Istio
// proxy, so spec.meshInjection Disabled is refused.
func (p *Provider) TranslateIngressGateway(g *meshv1alpha1.IngressGateway, _ mesh.Scope) ([]client.Object, error) {
	if g.Spec.MeshInjection == meshv1alpha1.MeshInjectionDisabled {
		return nil, &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{mesh.CapIngressOutsideMesh},
			Detail: "spec.meshInjection Disabled: Istio's gateway is itself an Istio proxy (an Envoy configured by istiod) and cannot run outside the mesh; " +
				"unset spec.meshInjection"}
	}
	class, err := p.IngressClass(g)
	if err != nil {
		return nil, err
	}
	objs := []client.Object{gamma.IngressGateway(g, class.Name, nil, nil)}
	if err := mesh.CheckIngressOutputs(g, objs); err != nil {
		return nil, err
	}
	return objs, nil
}

// IngressReadsPods is false: the answer follows from the class.
func (*Provider) IngressReadsPods() bool { return false }

// BackendMTLS is Yes once the gateway is programmed: it is an Istio proxy
// with a mesh identity.
func (*Provider) BackendMTLS(_ *meshv1alpha1.IngressGateway, s mesh.Scope, obs mesh.GatewayObservation) mesh.MTLSReport {
	if !obs.Programmed {
		return mesh.MTLSReport{Answer: meshv1alpha1.BackendMTLSUnknown, Reason: meshv1alpha1.GatewayNotProgrammedReason,
			Message: "Istio's gateway is an Istio proxy, but istiod has not programmed the Gateway yet"}
	}
	if s.Namespace.Mode == mesh.Ambient {
		return mesh.MTLSReport{Answer: meshv1alpha1.BackendMTLSYes, Reason: "IstioGatewayProxy",
			Message: "the gateway is an Istio proxy in the mesh: it reaches ambient backends over HBONE (mTLS) and sidecar backends over mTLS; " +
				"backends outside the mesh are reached in plain text"}
	}
	return mesh.MTLSReport{Answer: meshv1alpha1.BackendMTLSYes, Reason: "IstioGatewayProxy",
		Message: "the gateway is an Istio proxy with a mesh identity: it originates mTLS (auto mTLS) to backends with sidecars or in ambient mode; " +
			"backends outside the mesh are reached in plain text"}
}
