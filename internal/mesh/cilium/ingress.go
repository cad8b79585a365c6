package cilium

import (
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/gamma"
	"github.com/meshplane/meshplane/internal/outcome"
)

// IngressClass is the GatewayClass of Cilium's Gateway API support: the
// operator creates it and serves each Gateway of the class with its node
// Envoy behind a LoadBalancer Service
// (https://docs.cilium.io/en/stable/network/servicemesh/gateway-api/gateway-api/).
const IngressClass = "cilium"

// ingressClassHint says where class cilium comes from.
const ingressClassHint = "the Cilium operator creates GatewayClass cilium when Gateway API support is on " +
	"(Helm value gatewayAPI.enabled, MeshInstall spec.cilium.gatewayAPI) and the Gateway API CRDs were installed before Cilium started: " +
	"install the CRDs and restart the cilium-operator"

var _ mesh.IngressTranslator = (*Provider)(nil)

// ingressCondition: Cilium serves Gateways only with Gateway API support
// and its Envoy on, and the CRDs installed.
func ingressCondition() mesh.Condition {
	return mesh.Condition{
		Capabilities: []mesh.Capability{mesh.CapIngressGateway},
		Doc:          "spec.cilium.gatewayAPI, spec.cilium.envoy and the Gateway API CRDs (the operator then serves GatewayClass cilium)",
		Holds: func(s mesh.Scope) bool {
			return s.Install.GatewayAPI && s.Install.Envoy && s.Install.GatewayAPICRDs
		},
		Fix: routingFix,
	}
}

// IngressOutputKinds returns Gateway API's Gateway.
func (*Provider) IngressOutputKinds() []client.Object {
	return []client.Object{gamma.IngressGatewayKind()}
}

// IngressClass is cilium: spec.gatewayClassName may be unset or cilium.
func (*Provider) IngressClass(g *meshv1alpha1.IngressGateway) (mesh.IngressClass, error) {
	if c := g.Spec.GatewayClassName; c != "" && c != IngressClass {
		return mesh.IngressClass{}, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"spec.gatewayClassName %s: on Cilium the gateway is Cilium's own, class cilium (its node Envoy); "+
				"unset spec.gatewayClassName or set it to cilium (nothing was applied)", c)
	}
	return mesh.IngressClass{Name: IngressClass, Hint: ingressClassHint}, nil
}

// TranslateIngressGateway returns a Gateway of class cilium. Cilium's
// gateway is its per-node Envoy, part of the datapath: there are no
// gateway pods to leave out of the mesh, so spec.meshInjection Disabled is
// refused.
func (p *Provider) TranslateIngressGateway(g *meshv1alpha1.IngressGateway, _ mesh.Scope) ([]client.Object, error) {
	if g.Spec.MeshInjection == meshv1alpha1.MeshInjectionDisabled {
		return nil, &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{mesh.CapIngressOutsideMesh},
			Detail: "spec.meshInjection Disabled: Cilium's gateway is its node Envoy, part of the datapath, with no pods of its own to leave out; " +
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

// IngressReadsPods is false: the answer follows from the install.
func (*Provider) IngressReadsPods() bool { return false }

// BackendMTLS follows the install, as mtls.mode Strict does: Cilium's
// gateway traffic is mutually authenticated and encrypted only with
// mutual authentication (SPIRE) and transparent encryption both on, and
// then only to backends whose policy requires authentication.
func (*Provider) BackendMTLS(_ *meshv1alpha1.IngressGateway, s mesh.Scope, obs mesh.GatewayObservation) mesh.MTLSReport {
	var missing []string
	if !s.Install.MutualAuth {
		missing = append(missing, "mutual authentication (spec.cilium.mutualAuth)")
	}
	if s.Install.Encryption == "" {
		missing = append(missing, "transparent encryption (spec.cilium.encryption)")
	}
	switch {
	case len(missing) > 0:
		msg := fmt.Sprintf("Cilium's gateway (its node Envoy) reaches backends without mTLS: %s is off on %s", joinAnd(missing), installName(s))
		if s.Install.Encryption != "" {
			msg += fmt.Sprintf("; the traffic is encrypted (%s) but not mutually authenticated", s.Install.Encryption)
		}
		return mesh.MTLSReport{Answer: meshv1alpha1.BackendMTLSNo, Reason: "CiliumWithoutMutualAuth", Message: msg}
	case !obs.Programmed:
		return mesh.MTLSReport{Answer: meshv1alpha1.BackendMTLSUnknown, Reason: meshv1alpha1.GatewayNotProgrammedReason,
			Message: "Cilium has not programmed the Gateway yet"}
	}
	return mesh.MTLSReport{Answer: meshv1alpha1.BackendMTLSYes, Reason: "CiliumMutualAuth",
		Message: fmt.Sprintf("mutual authentication and %s encryption are on: the gateway's traffic is encrypted, and authenticated to backends "+
			"whose policy requires it (a ZeroTrustPolicy with mtls.mode Strict)", s.Install.Encryption)}
}

func joinAnd(parts []string) string {
	if len(parts) == 2 {
		return parts[0] + " and " + parts[1]
	}
	return parts[0]
}
