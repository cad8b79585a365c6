package linkerd

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// +kubebuilder:rbac:groups=policy.linkerd.io,resources=egressnetworks,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;update;patch;delete

// egressRelease: EgressNetwork and routes attached to it came with Linkerd
// 2.17 (https://linkerd.io/2.17/features/egress/); the edge month is taken
// conservatively (fail closed).
var egressRelease = release{stable: 17, edgeYear: 24, edgeMonth: 11}

// egressConditions are the install requirements of EgressPolicy on
// Linkerd: the release with EgressNetwork, and the Gateway API HTTPRoute
// its host rules attach.
func egressConditions() []mesh.Condition {
	return []mesh.Condition{
		versionGate(mesh.EgressCapabilities, egressRelease, "EgressNetwork"),
		{
			Capabilities: []mesh.Capability{mesh.CapEgressHTTPHosts, mesh.CapEgressWildcardHosts},
			Doc:          "the Gateway API CRDs",
			Holds:        func(s mesh.Scope) bool { return s.Install.GatewayAPICRDs },
			Fix: func(mesh.Scope) string {
				return "install the Gateway API CRDs (HTTPRoute gateway.networking.k8s.io/v1 is not served)"
			},
		},
	}
}

// EgressOutputKinds returns EgressNetwork and Gateway API's HTTPRoute.
func (*Provider) EgressOutputKinds() []client.Object {
	return []client.Object{
		&EgressNetwork{TypeMeta: metav1.TypeMeta{APIVersion: PolicyV1alpha1.String(), Kind: "EgressNetwork"}},
		&gatewayv1.HTTPRoute{TypeMeta: metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"}},
	}
}

// TranslateEgressPolicy returns an EgressNetwork named like the policy,
// covering every address outside the cluster's networks, with
// trafficPolicy Deny (AllowList) or Allow (Audit: Linkerd's metrics name
// the EgressNetwork and the route each connection took), and per HTTP rule
// and port a gateway.networking.k8s.io/v1 HTTPRoute attached to it (parent
// and backend the EgressNetwork on that port: the request goes to the
// address the client resolved) whose hostnames are the rule's hosts.
//
// Refused, each naming the field: a workload selector (an EgressNetwork
// applies to every client of its namespace); cidrs (which of two
// overlapping EgressNetworks a connection uses is not defined, so an
// allowed network cannot be carved out of the denied rest); TLS and TCP
// rules (Linkerd edge-26.1 reads TLSRoute and TCPRoute only as
// gateway.networking.k8s.io/v1alpha2, which Gateway API 1.5 and later no
// longer serve, so a route Meshplane writes would be ignored; TCP also has
// no host name); an egress gateway (Linkerd enforces egress in each pod's
// proxy).
func (p *Provider) TranslateEgressPolicy(pol *meshv1alpha1.EgressPolicy, _ mesh.NamespaceFacts) ([]client.Object, error) {
	if err := p.checkEgress(pol); err != nil {
		return nil, err
	}
	policy := "Deny"
	if mesh.EgressMode(&pol.Spec) == meshv1alpha1.EgressAudit {
		policy = "Allow"
	}
	objs := []client.Object{&EgressNetwork{
		TypeMeta:   metav1.TypeMeta{APIVersion: PolicyV1alpha1.String(), Kind: "EgressNetwork"},
		ObjectMeta: metav1.ObjectMeta{Name: pol.Name, Namespace: pol.Namespace},
		Spec:       EgressNetworkSpec{TrafficPolicy: policy},
	}}
	for i, r := range pol.Spec.Rules {
		for _, port := range r.Ports {
			objs = append(objs, egressRoute(pol, r, i, port.Number))
		}
	}
	if err := mesh.CheckEgressOutputs(pol, objs); err != nil {
		return nil, err
	}
	return objs, nil
}

// checkEgress refuses what Linkerd's EgressNetwork cannot express, naming
// the field.
func (p *Provider) checkEgress(pol *meshv1alpha1.EgressPolicy) error {
	refuse := func(c mesh.Capability, detail string, args ...any) error {
		return &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{c}, Detail: fmt.Sprintf(detail, args...)}
	}
	spec := &pol.Spec
	if s := spec.Selector; s != nil && (len(s.MatchLabels) > 0 || len(s.MatchExpressions) > 0) {
		return refuse(mesh.CapEgressPerWorkload, "spec.selector: an EgressNetwork applies to every client of its namespace; remove spec.selector or move the workloads to their own namespace")
	}
	if spec.Gateway != nil {
		return refuse(mesh.CapEgressGateway, "spec.gateway: Linkerd enforces egress in each pod's proxy and has no egress gateway; remove spec.gateway")
	}
	for i, r := range spec.Rules {
		if len(r.CIDRs) > 0 {
			return refuse(mesh.CapEgressCIDRs, "spec.rules[%d].cidrs: which of two overlapping EgressNetworks a connection uses is not defined, "+
				"so an allowed network cannot be carved out of the denied rest; allow the destinations by host name", i)
		}
		for j, port := range r.Ports {
			switch port.Protocol {
			case meshv1alpha1.EgressTLS:
				return refuse(mesh.CapEgressTLSHosts, "spec.rules[%d].ports[%d]: Linkerd matches TLS by SNI through TLSRoute gateway.networking.k8s.io/v1alpha2, "+
					"which Gateway API 1.5 and later no longer serve, so the route would be ignored; use protocol HTTP or another mesh", i, j)
			case meshv1alpha1.EgressTCP:
				return refuse(mesh.CapEgressTCPHosts, "spec.rules[%d].ports[%d]: opaque TCP carries no host name, and a TCPRoute on the port "+
					"would allow it to every external address", i, j)
			}
		}
	}
	return mesh.Check(p, mesh.EgressPolicyRequirements(spec)...)
}

// egressRoute is the HTTPRoute of rule i on port.
func egressRoute(pol *meshv1alpha1.EgressPolicy, r meshv1alpha1.EgressRule, i int, port int32) *gatewayv1.HTTPRoute {
	group, kind := gatewayv1.Group(PolicyGroup), gatewayv1.Kind("EgressNetwork")
	pn := gatewayv1.PortNumber(port)
	hostnames := make([]gatewayv1.Hostname, 0, len(r.Hosts))
	for _, h := range r.Hosts {
		hostnames = append(hostnames, gatewayv1.Hostname(h))
	}
	return &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%s-%d", pol.Name, mesh.EgressRuleName(r, i), port), Namespace: pol.Namespace},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Group: &group, Kind: &kind, Name: gatewayv1.ObjectName(pol.Name), Port: &pn,
			}}},
			Hostnames: hostnames,
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Group: &group, Kind: &kind, Name: gatewayv1.ObjectName(pol.Name), Port: &pn},
			}}}}},
		},
	}
}

var _ mesh.EgressTranslator = (*Provider)(nil)
