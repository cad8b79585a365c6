package istio

import (
	"fmt"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// +kubebuilder:rbac:groups=networking.istio.io,resources=gateways;virtualservices;destinationrules,verbs=get;list;watch;create;update;patch;delete

// Egress gateway ports: Istio's egress gateway (istioctl profiles and the
// gateway chart) listens on 80 for HTTP and 443 for TLS passthrough.
const (
	egressGatewayHTTPPort = 80
	egressGatewayTLSPort  = 443
)

// egressGatewaySubset is the DestinationRule subset of the egress gateway.
const egressGatewaySubset = "egress"

// EgressGatewayService returns the Service of the egress gateway an
// EgressPolicy in a sidecar namespace routes through: spec.gateway.name
// in spec.gateway.namespace (the policy's namespace when unset). ok is
// false when the policy names none there (ambient namespaces name a
// waypoint, checked by the translation).
func (*Provider) EgressGatewayService(pol *meshv1alpha1.EgressPolicy, f mesh.NamespaceFacts) (types.NamespacedName, bool) {
	g := pol.Spec.Gateway
	if g == nil || g.Name == "" || f.Mode == mesh.Ambient {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: gatewayNamespace(pol), Name: g.Name}, true
}

var _ mesh.EgressGatewayServiceNamer = (*Provider)(nil)

func gatewayNamespace(pol *meshv1alpha1.EgressPolicy) string {
	if ns := pol.Spec.Gateway.Namespace; ns != "" {
		return ns
	}
	return pol.Namespace
}

// checkSidecarGateway refuses, per field, what Istio's egress gateway
// cannot carry: it routes exact host names, HTTP on port 80 (by Host) and
// TLS on port 443 (passthrough by SNI).
func (p *Provider) checkSidecarGateway(pol *meshv1alpha1.EgressPolicy) error {
	g := pol.Spec.Gateway
	refuse := func(format string, args ...any) error {
		return &mesh.UnsupportedFeatureError{Provider: p.Name(), Features: []mesh.Capability{mesh.CapEgressGateway},
			Detail: fmt.Sprintf(format, args...)}
	}
	if g.Name == "" || len(g.NodeSelector) > 0 || g.EgressIP != "" {
		return refuse("spec.gateway: Istio routes egress through the egress gateway whose Service spec.gateway.name names; " +
			"nodeSelector and egressIP are Cilium's: set name and remove them")
	}
	for i, r := range pol.Spec.Rules {
		if len(r.CIDRs) > 0 {
			return refuse("spec.rules[%d].cidrs: Istio's egress gateway routes host names (by Host or SNI), not addresses; "+
				"remove the rule from a policy with spec.gateway", i)
		}
		if hasWildcard(r.Hosts) {
			return refuse("spec.rules[%d].hosts: a wildcard host through Istio's egress gateway needs an SNI proxy Meshplane does not deploy; "+
				"list the exact hosts", i)
		}
		for j, port := range r.Ports {
			ok := (port.Protocol == meshv1alpha1.EgressHTTP && port.Number == egressGatewayHTTPPort) ||
				(port.Protocol == meshv1alpha1.EgressTLS && port.Number == egressGatewayTLSPort)
			if !ok {
				return refuse("spec.rules[%d].ports[%d]: %s on port %d: Istio's egress gateway routes HTTP on port 80 and TLS on port 443 "+
					"(TCP has no host to route by); use one of those or remove spec.gateway", i, j, port.Protocol, port.Number)
			}
		}
	}
	return nil
}

// egressGatewayObjects returns the chain of Istio's "Egress Gateways"
// task for the policy's rules: a Gateway on the egress gateway's pods
// (label app=<spec.gateway.name>, which istioctl's and the gateway chart's
// deployments carry), a DestinationRule with the gateway's subset and, per
// rule, a VirtualService that sends the mesh's traffic for the hosts to
// the gateway and the gateway's to the hosts.
func egressGatewayObjects(pol *meshv1alpha1.EgressPolicy) ([]client.Object, error) {
	svc := pol.Spec.Gateway.Name + "." + gatewayNamespace(pol) + ".svc.cluster.local"
	gwName := pol.Name + "-egress"
	gwRef := pol.Namespace + "/" + gwName
	gw := &istionetworking.Gateway{
		TypeMeta:   metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "Gateway"},
		ObjectMeta: metav1.ObjectMeta{Name: gwName, Namespace: pol.Namespace},
	}
	gw.Spec.Selector = map[string]string{"app": pol.Spec.Gateway.Name}
	dr := &istionetworking.DestinationRule{
		TypeMeta:   metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "DestinationRule"},
		ObjectMeta: metav1.ObjectMeta{Name: gwName, Namespace: pol.Namespace},
	}
	dr.Spec.Host = svc
	dr.Spec.ExportTo = []string{"."}
	dr.Spec.Subsets = []*networkingv1alpha3.Subset{{Name: egressGatewaySubset}}
	objs := []client.Object{nil, dr}
	var httpHosts, tlsHosts []string
	for i, r := range pol.Spec.Rules {
		vs := &istionetworking.VirtualService{
			TypeMeta:   metav1.TypeMeta{APIVersion: istionetworking.SchemeGroupVersion.String(), Kind: "VirtualService"},
			ObjectMeta: metav1.ObjectMeta{Name: pol.Name + "-" + mesh.EgressRuleName(r, i), Namespace: pol.Namespace},
		}
		vs.Spec.Hosts = r.Hosts
		vs.Spec.Gateways = []string{gwRef, "mesh"}
		vs.Spec.ExportTo = []string{"."}
		for _, port := range r.Ports {
			if port.Protocol == meshv1alpha1.EgressHTTP {
				httpHosts = append(httpHosts, r.Hosts...)
				vs.Spec.Http = append(vs.Spec.Http, httpLegs(svc, gwRef, r.Hosts)...)
				continue
			}
			tlsHosts = append(tlsHosts, r.Hosts...)
			vs.Spec.Tls = append(vs.Spec.Tls, tlsLegs(svc, gwRef, r.Hosts)...)
		}
		objs = append(objs, vs)
	}
	if len(httpHosts) > 0 {
		gw.Spec.Servers = append(gw.Spec.Servers, &networkingv1alpha3.Server{Hosts: httpHosts,
			Port: &networkingv1alpha3.Port{Number: egressGatewayHTTPPort, Name: "http", Protocol: "HTTP"}})
	}
	if len(tlsHosts) > 0 {
		gw.Spec.Servers = append(gw.Spec.Servers, &networkingv1alpha3.Server{Hosts: tlsHosts,
			Port: &networkingv1alpha3.Port{Number: egressGatewayTLSPort, Name: "tls", Protocol: "TLS"},
			Tls:  &networkingv1alpha3.ServerTLSSettings{Mode: networkingv1alpha3.ServerTLSSettings_PASSTHROUGH}})
	}
	// PASSTHROUGH is TLS mode's zero value, which Istio's JSON leaves
	// out (tls: {}) and reads as PASSTHROUGH; inside the servers list it
	// cannot be written out and still compare equal to what is live.
	objs[0] = gw
	return objs, nil
}

// httpLegs are the two HTTP routes per host: mesh → gateway, gateway →
// host. A rule with several hosts matches each by its authority (Host).
func httpLegs(svc, gwRef string, hosts []string) []*networkingv1alpha3.HTTPRoute {
	var out []*networkingv1alpha3.HTTPRoute
	for _, h := range hosts {
		leg := func(gateway, dest, subset string) *networkingv1alpha3.HTTPRoute {
			m := &networkingv1alpha3.HTTPMatchRequest{Gateways: []string{gateway}, Port: egressGatewayHTTPPort}
			if len(hosts) > 1 {
				m.Authority = &networkingv1alpha3.StringMatch{MatchType: &networkingv1alpha3.StringMatch_Exact{Exact: h}}
			}
			return &networkingv1alpha3.HTTPRoute{
				Match: []*networkingv1alpha3.HTTPMatchRequest{m},
				Route: []*networkingv1alpha3.HTTPRouteDestination{{Weight: 100, Destination: &networkingv1alpha3.Destination{
					Host: dest, Subset: subset, Port: &networkingv1alpha3.PortSelector{Number: egressGatewayHTTPPort}}}},
			}
		}
		out = append(out, leg("mesh", svc, egressGatewaySubset), leg(gwRef, h, ""))
	}
	return out
}

// tlsLegs are the two TLS routes by SNI: mesh → gateway, gateway → host.
func tlsLegs(svc, gwRef string, hosts []string) []*networkingv1alpha3.TLSRoute {
	var out []*networkingv1alpha3.TLSRoute
	for _, h := range hosts {
		leg := func(gateway, dest, subset string) *networkingv1alpha3.TLSRoute {
			return &networkingv1alpha3.TLSRoute{
				Match: []*networkingv1alpha3.TLSMatchAttributes{{Gateways: []string{gateway}, Port: egressGatewayTLSPort, SniHosts: []string{h}}},
				Route: []*networkingv1alpha3.RouteDestination{{Weight: 100, Destination: &networkingv1alpha3.Destination{
					Host: dest, Subset: subset, Port: &networkingv1alpha3.PortSelector{Number: egressGatewayTLSPort}}}},
			}
		}
		out = append(out, leg("mesh", svc, egressGatewaySubset), leg(gwRef, h, ""))
	}
	return out
}
