package istio

import (
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways,verbs=get;list;watch;create;patch;delete

// Ambient multi-network federation (ambient multicluster, alpha from Istio
// 1.27; multi-primary on different networks is the only topology Istio
// supports in ambient mode): per member an east-west Gateway of class
// istio-east-west, which istiod deploys as a Deployment and a LoadBalancer
// Service of the same name, terminating double-HBONE on port 15008 with
// the mesh's own mTLS; istiod told the member's mesh ID, cluster name and
// network and run with AMBIENT_ENABLE_MULTI_NETWORK=true (off by default
// in every release so far); the network label on the control-plane
// namespace and remote secrets as for sidecar members.
const (
	// EastWestGatewayClass is the GatewayClass of the ambient east-west
	// gateway.
	EastWestGatewayClass = "istio-east-west"
	// HBONEPort is the port the ambient east-west gateway listens on.
	HBONEPort = 15008
	// TLSTerminateModeOption is the listener TLS option that makes an
	// ambient east-west gateway terminate the mesh's own mTLS.
	TLSTerminateModeOption = "gateway.istio.io/tls-terminate-mode"
	// AmbientMultiNetworkEnv is istiod's switch for ambient multi-network.
	AmbientMultiNetworkEnv = "AMBIENT_ENABLE_MULTI_NETWORK"
	// AmbientEastWestGateway names the ambient east-west Gateway and the
	// Service istiod deploys for it. It is not the sidecar gateway's name
	// (EastWestGateway): a member whose profile changes would otherwise
	// find istiod's Service, which goes only after its Gateway, in the way
	// of its sidecar gateway's Service, and the one apply that prunes the
	// Gateway would be refused for it. istiod finds the gateway by its
	// class and network label, not by its name.
	AmbientEastWestGateway = "istio-ambient-eastwestgateway"
)

// ambientEastWestGateway is the member's ambient east-west gateway: the
// Gateway istio-ambient-eastwestgateway labelled with the member's network, one
// listener "mesh" on 15008 speaking HBONE, TLS Terminate in ISTIO_MUTUAL
// mode (the form Istio's ambient multicluster guide and
// gen-eastwest-gateway.sh --ambient write, under a name of its own).
func ambientEastWestGateway(m mesh.FederationMember) client.Object {
	return &gatewayv1.Gateway{
		TypeMeta: metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "Gateway"},
		ObjectMeta: metav1.ObjectMeta{Namespace: nsOr(m.Namespace), Name: AmbientEastWestGateway,
			Labels: map[string]string{NetworkLabel: m.Network}},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: EastWestGatewayClass,
			Listeners: []gatewayv1.Listener{{Name: "mesh", Port: HBONEPort, Protocol: "HBONE",
				TLS: &gatewayv1.ListenerTLSConfig{Mode: ptr.To(gatewayv1.TLSModeTerminate),
					Options: map[gatewayv1.AnnotationKey]gatewayv1.AnnotationValue{TLSTerminateModeOption: "ISTIO_MUTUAL"}}}}},
	}
}

// ambientWriterRules are the rules that write the ambient east-west
// Gateway by name and read the Service istiod deploys for it (its address)
// (beside the reader, its token and the remote secrets, which sidecar and
// ambient members share).
func ambientWriterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"services"}, ResourceNames: []string{AmbientEastWestGateway}, Verbs: []string{"get"}},
		{APIGroups: []string{gatewayv1.GroupName}, Resources: []string{"gateways"}, ResourceNames: []string{AmbientEastWestGateway}, Verbs: []string{"get", "patch", "delete"}},
		{APIGroups: []string{gatewayv1.GroupName}, Resources: []string{"gateways"}, Verbs: []string{"create"}},
	}
}

// ambientInstallRules let Meshplane's identity in an ambient member read
// and patch (server-side apply, its own field manager) the MeshInstalls
// that carry the member's topology settings.
func ambientInstallRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{{APIGroups: []string{meshv1alpha1.GroupVersion.Group}, Resources: []string{"meshinstalls"}, Verbs: []string{"get", "patch"}}}
}

// TopologyInstall: an ambient member's Istio MeshInstall gets spec.istio
// {meshID, clusterName, network} and, for istiod, pilot.env
// AMBIENT_ENABLE_MULTI_NETWORK=true. A sidecar member gets nothing (its
// topology is checked by TopologyCheck) unless it is a primary or a remote
// (sidecarTopology, federation_primary.go). An ambient member without an
// east-west gateway is refused: Istio supports ambient multicluster on
// different networks only, and without the gateway the other networks
// cannot reach it.
func (*Provider) TopologyInstall(m mesh.FederationMember, installs []meshv1alpha1.MeshInstall) (*meshv1alpha1.MeshInstall, map[string]any, string) {
	if m.Profile != meshv1alpha1.ProfileAmbient {
		mi, spec := sidecarTopology(m, installs)
		return mi, spec, ""
	}
	var mi *meshv1alpha1.MeshInstall
	for i := range installs {
		if installs[i].Spec.Provider == meshv1alpha1.ProviderIstio && installs[i].Spec.Profile == meshv1alpha1.ProfileAmbient {
			mi = &installs[i]
			break
		}
	}
	if mi == nil {
		return nil, nil, ""
	}
	if !m.EastWestGateway {
		return nil, nil, fmt.Sprintf("MeshInstall %s installs Istio with profile Ambient and spec.services.eastWestGateway is false: Istio supports ambient multicluster "+
			"on different networks only, through an %s gateway on HBONE port %d; remove spec.services.eastWestGateway (or set it true), or use profile Sidecar for a flat network",
			mi.Name, EastWestGatewayClass, HBONEPort)
	}
	return mi, map[string]any{
		"istio": map[string]any{"meshID": m.MeshID, "clusterName": m.Name, "network": m.Network},
		"components": []any{map[string]any{"chart": "istiod", "values": map[string]any{
			"pilot": map[string]any{"env": map[string]any{AmbientMultiNetworkEnv: "true"}}}}},
	}, ""
}

// PairRefusal refuses two ambient members on one network (Istio supports
// ambient multicluster on different networks only), and an ambient member
// paired with a sidecar one: Istio
// documents ambient multicluster beside sidecar deployments as not working
// (the migrate-sidecar-to-ambient issues), and a sidecar peer's east-west
// gateway speaks mTLS on 15443, not HBONE on 15008.
func (*Provider) PairRefusal(m, p mesh.FederationMember) string {
	ma, pa := m.Profile == meshv1alpha1.ProfileAmbient, p.Profile == meshv1alpha1.ProfileAmbient
	if ma && pa && m.Network == p.Network {
		return fmt.Sprintf("%s and %s both run Istio in ambient mode on network %s: Istio supports ambient multicluster on different networks only "+
			"(single-network ambient is untested upstream); give them different spec.clusters[].network", min(m.Name, p.Name), max(m.Name, p.Name), m.Network)
	}
	if ma == pa {
		return ""
	}
	amb, side := m, p
	if pa {
		amb, side = p, m
	}
	return fmt.Sprintf("%s runs Istio in ambient mode and %s in sidecar mode: Istio does not federate services between ambient and sidecar clusters "+
		"(an ambient east-west gateway speaks HBONE on port %d, a sidecar one mTLS on 15443); they share trust only. Use the same profile (spec.profile of their MeshInstalls) on both",
		amb.Name, side.Name, HBONEPort)
}

var _ mesh.FederationTopology = (*Provider)(nil)
