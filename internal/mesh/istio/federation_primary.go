package istio

import (
	"fmt"

	networkingapi "istio.io/api/networking/v1"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// +kubebuilder:rbac:groups=networking.istio.io,resources=virtualservices,verbs=get;list;watch;create;patch;delete

// Istio primary-remote (sidecar mode): the primary's istiod is exposed to
// its remotes through the primary's east-west gateway (the istiod-gateway
// Gateway and istiod-vs VirtualService of Istio's expose-istiod.yaml, and
// ports 15012 and 15017 on the gateway), the primary's istiod runs with
// global.externalIstiod (EXTERNAL_ISTIOD) and reads each remote through a
// remote secret; a remote's istiod chart is rendered with Istio's remote
// profile pointing at the primary's gateway, so its injection webhook and
// its istiod Service reach the primary.
const (
	// IstiodGateway is the Gateway that passes istiod's ports through the
	// primary's east-west gateway.
	IstiodGateway = "istiod-gateway"
	// IstiodVirtualService routes the IstiodGateway's ports to istiod.
	IstiodVirtualService = "istiod-vs"
	// IstiodXDSPort is istiod's xDS and CA port, IstiodWebhookPort its
	// injection webhook's port, as the east-west gateway exposes them.
	IstiodXDSPort     = 15012
	IstiodWebhookPort = 15017
	// ExternalIstiodEnv is istiod's switch to serve remote clusters.
	ExternalIstiodEnv = "EXTERNAL_ISTIOD"
)

// exposeIstiod are the objects a primary with remotes gets beside its
// east-west gateway: TLS passthrough of 15012 and 15017 for any host,
// routed by port to istiod's Service (15012, and its webhook port 443).
// PASSTHROUGH is the zero value of Istio's TLS mode, so the written
// Gateway shows tls: {} (Istio reads it as PASSTHROUGH).
func exposeIstiod(m mesh.FederationMember) []client.Object {
	ns := nsOr(m.Namespace)
	host := "istiod." + ns + ".svc.cluster.local"
	server := func(name string, port uint32) *networkingapi.Server {
		return &networkingapi.Server{Port: &networkingapi.Port{Number: port, Name: name, Protocol: "TLS"},
			Tls: &networkingapi.ServerTLSSettings{Mode: networkingapi.ServerTLSSettings_PASSTHROUGH}, Hosts: []string{"*"}}
	}
	route := func(port, target uint32) *networkingapi.TLSRoute {
		return &networkingapi.TLSRoute{
			Match: []*networkingapi.TLSMatchAttributes{{Port: port, SniHosts: []string{"*"}}},
			Route: []*networkingapi.RouteDestination{{Destination: &networkingapi.Destination{Host: host, Port: &networkingapi.PortSelector{Number: target}}}},
		}
	}
	return []client.Object{
		&istionetworking.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: IstiodGateway},
			Spec: networkingapi.Gateway{Selector: map[string]string{"istio": "eastwestgateway"},
				Servers: []*networkingapi.Server{server("tls-istiod", IstiodXDSPort), server("tls-istiodwebhook", IstiodWebhookPort)}}},
		&istionetworking.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: IstiodVirtualService},
			Spec: networkingapi.VirtualService{Hosts: []string{"*"}, Gateways: []string{IstiodGateway},
				Tls: []*networkingapi.TLSRoute{route(IstiodXDSPort, IstiodXDSPort), route(IstiodWebhookPort, 443)}}},
	}
}

// istiodPorts are the Service and container ports the east-west gateway of
// a primary with remotes opens for istiod.
func istiodPorts() ([]corev1.ServicePort, []corev1.ContainerPort) {
	svc := []corev1.ServicePort{
		{Name: "tls-istiod", Port: IstiodXDSPort, TargetPort: intstr.FromInt32(IstiodXDSPort), Protocol: corev1.ProtocolTCP},
		{Name: "tls-webhook", Port: IstiodWebhookPort, TargetPort: intstr.FromInt32(IstiodWebhookPort), Protocol: corev1.ProtocolTCP},
	}
	ctr := []corev1.ContainerPort{
		{Name: "tls-istiod", ContainerPort: IstiodXDSPort, Protocol: corev1.ProtocolTCP},
		{Name: "tls-webhook", ContainerPort: IstiodWebhookPort, Protocol: corev1.ProtocolTCP},
	}
	return svc, ctr
}

// primaryWriterRules write the istiod-gateway Gateway and the istiod-vs
// VirtualService by name (the Gateway's create is granted with the
// cross-network Gateway's).
func primaryWriterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"networking.istio.io"}, Resources: []string{"virtualservices"}, ResourceNames: []string{IstiodVirtualService}, Verbs: []string{"get", "patch", "delete"}},
		{APIGroups: []string{"networking.istio.io"}, Resources: []string{"virtualservices"}, Verbs: []string{"create"}},
	}
}

// sidecarTopology is the settings of a sidecar member's MeshInstall in
// primary-remote: a primary's istiod serves remotes (global.externalIstiod,
// EXTERNAL_ISTIOD); a remote's istiod chart renders Istio's remote
// profile (no istiod Deployment; an istiod Service and injection webhook
// reaching global.remotePilotAddress, the primary's east-west gateway,
// with the injection path that names its cluster and network). Both get
// their mesh ID, cluster name and network. A member of neither kind, or
// without an Istio MeshInstall, gets none; a remote whose primary has no
// gateway address yet gets mi and no settings (what it holds stays).
func sidecarTopology(m mesh.FederationMember, installs []meshv1alpha1.MeshInstall) (*meshv1alpha1.MeshInstall, map[string]any) {
	if m.Primary == "" && len(m.Remotes) == 0 {
		return nil, nil
	}
	var mi *meshv1alpha1.MeshInstall
	for i := range installs {
		if installs[i].Spec.Provider == meshv1alpha1.ProviderIstio && installs[i].Spec.Profile != meshv1alpha1.ProfileAmbient {
			mi = &installs[i]
			break
		}
	}
	if mi == nil {
		return nil, nil
	}
	var values map[string]any
	switch {
	case m.Primary == "":
		values = map[string]any{"global": map[string]any{"externalIstiod": true},
			"pilot": map[string]any{"env": map[string]any{ExternalIstiodEnv: "true"}}}
	case m.PrimaryAddress == "":
		return mi, nil
	default:
		values = map[string]any{"profile": "remote",
			"global":       map[string]any{"remotePilotAddress": m.PrimaryAddress, "configCluster": false},
			"istiodRemote": map[string]any{"enabled": true, "injectionPath": fmt.Sprintf("/inject/cluster/%s/net/%s", m.Name, m.Network)}}
	}
	return mi, map[string]any{
		"istio":      map[string]any{"meshID": m.MeshID, "clusterName": m.Name, "network": m.Network},
		"components": []any{map[string]any{"chart": "istiod", "values": values}},
	}
}

// RemoteRefusal refuses primary-remote in ambient mode, on either side:
// Istio supports ambient multicluster only as multi-primary on different
// networks.
func (*Provider) RemoteRefusal(m, p mesh.FederationMember) string {
	switch {
	case m.Profile == meshv1alpha1.ProfileAmbient:
		return fmt.Sprintf("spec.clusters[%s].primary is %s, but %s runs Istio in ambient mode: Istio does not support primary-remote in ambient mode "+
			"(ambient multicluster is multi-primary on different networks only); remove primary (the member then runs its own istiod), or use profile Sidecar on both", m.Name, p.Name, m.Name)
	case p.Profile == meshv1alpha1.ProfileAmbient:
		return fmt.Sprintf("spec.clusters[%s].primary is %s, which runs Istio in ambient mode: Istio does not support primary-remote in ambient mode "+
			"(ambient multicluster is multi-primary on different networks only); remove primary (the member then runs its own istiod), or use profile Sidecar on both", m.Name, p.Name)
	}
	return ""
}

var _ mesh.PrimaryRemote = (*Provider)(nil)
