package gamma

import (
	"maps"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// IngressGateway builds the Gateway API Gateway every mesh writes for an
// IngressGateway: named like it, of class class, one listener per spec
// listener (HTTPS terminates TLS with the listener's Secrets), routes
// admitted from the namespaces spec.routeNamespaces says, and the spec's
// infrastructure metadata plus Meshplane's pod labels
// (mesh.IngressGatewayLabel, mesh.IngressGatewayNamespaceLabel) and the
// provider's annotations. The Gateway's own labels are labels.
func IngressGateway(g *meshv1alpha1.IngressGateway, class string, labels, annotations map[string]string) *gatewayv1.Gateway {
	from := gatewayv1.NamespacesFromSame
	if g.Spec.RouteNamespaces == meshv1alpha1.IngressRoutesAll {
		from = gatewayv1.NamespacesFromAll
	}
	listeners := make([]gatewayv1.Listener, 0, len(g.Spec.Listeners))
	for _, l := range g.Spec.Listeners {
		gl := gatewayv1.Listener{Name: gatewayv1.SectionName(l.Name), Port: gatewayv1.PortNumber(l.Port),
			Protocol: gatewayv1.HTTPProtocolType,
			AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: &from},
				Kinds: []gatewayv1.RouteGroupKind{{Group: ptr(gatewayv1.Group(gatewayv1.GroupName)), Kind: "HTTPRoute"}}}}
		if l.Hostname != "" {
			gl.Hostname = ptr(gatewayv1.Hostname(l.Hostname))
		}
		if l.Protocol == meshv1alpha1.IngressHTTPS {
			gl.Protocol = gatewayv1.HTTPSProtocolType
			tls := &gatewayv1.ListenerTLSConfig{Mode: ptr(gatewayv1.TLSModeTerminate)}
			for _, ref := range l.CertificateRefs {
				tls.CertificateRefs = append(tls.CertificateRefs, gatewayv1.SecretObjectReference{
					Group: ptr(gatewayv1.Group("")), Kind: ptr(gatewayv1.Kind("Secret")), Name: gatewayv1.ObjectName(ref.Name)})
			}
			gl.TLS = tls
		}
		listeners = append(listeners, gl)
	}
	infra := &gatewayv1.GatewayInfrastructure{Labels: map[gatewayv1.LabelKey]gatewayv1.LabelValue{
		mesh.IngressGatewayLabel:          gatewayv1.LabelValue(g.Name),
		mesh.IngressGatewayNamespaceLabel: gatewayv1.LabelValue(g.Namespace),
	}}
	anns := map[string]string{}
	if in := g.Spec.Infrastructure; in != nil {
		for k, v := range in.Labels {
			infra.Labels[gatewayv1.LabelKey(k)] = gatewayv1.LabelValue(v)
		}
		maps.Copy(anns, in.Annotations)
	}
	maps.Copy(anns, annotations)
	for k, v := range anns {
		if infra.Annotations == nil {
			infra.Annotations = map[gatewayv1.AnnotationKey]gatewayv1.AnnotationValue{}
		}
		infra.Annotations[gatewayv1.AnnotationKey(k)] = gatewayv1.AnnotationValue(v)
	}
	return &gatewayv1.Gateway{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "Gateway"},
		ObjectMeta: metav1.ObjectMeta{Name: g.Name, Namespace: g.Namespace, Labels: labels},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: gatewayv1.ObjectName(class), Listeners: listeners,
			Infrastructure: infra},
	}
}

// IngressGatewayKind is an empty Gateway with its TypeMeta, for the
// translators' IngressOutputKinds.
func IngressGatewayKind() *gatewayv1.Gateway {
	return &gatewayv1.Gateway{TypeMeta: metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "Gateway"}}
}
