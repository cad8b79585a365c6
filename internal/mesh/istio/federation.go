package istio

import (
	"fmt"

	networkingapi "istio.io/api/networking/v1"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.istio.io,resources=gateways,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind;escalate

// Names of what Istio service federation (multi-primary, multi-network)
// writes into a member.
const (
	// NetworkLabel is Istio's network label, on the control-plane
	// namespace and on the east-west gateway.
	NetworkLabel = "topology.istio.io/network"
	// MultiClusterLabel marks a remote secret istiod watches.
	MultiClusterLabel = "istio/multiCluster"
	// ClusterAnnotation names the cluster a remote secret reaches.
	ClusterAnnotation = "networking.istio.io/cluster"
	// ReaderServiceAccount is the identity peers' istiods read a member
	// with; the ClusterRole and binding carry its name.
	ReaderServiceAccount = "meshplane-istio-reader"
	// EastWestGateway names the east-west gateway's Deployment, Service
	// and ServiceAccount.
	EastWestGateway = "istio-eastwestgateway"
	// CrossNetworkGateway names the Gateway that passes mTLS traffic of
	// other networks through port 15443.
	CrossNetworkGateway = "cross-network-gateway"
	// RemoteSecretPrefix prefixes the remote secret of each peer.
	RemoteSecretPrefix = "istio-remote-secret-"
)

// readerRoleName names the reader's ClusterRole and binding:
// meshplane-istio-reader for a control plane in istio-system, with the
// namespace appended for another one, so two control planes of one
// cluster never share them.
func readerRoleName(ns string) string {
	if ns == DefaultNamespace {
		return ReaderServiceAccount
	}
	return ReaderServiceAccount + "-" + ns
}

func nsOr(n string) string {
	if n == "" {
		return DefaultNamespace
	}
	return n
}

// readerRules are what istiod needs to discover a remote cluster's
// endpoints (a subset of Istio's istio-reader-clusterrole): Services,
// Endpoints, EndpointSlices, Pods, Nodes and Namespaces, and the
// WorkloadEntries that carry VM endpoints; read only, no Secrets.
var readerRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"services", "endpoints", "pods", "nodes", "namespaces"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"networking.istio.io"}, Resources: []string{"workloadentries"}, Verbs: []string{"get", "list", "watch"}},
}

// FederationReader is the ServiceAccount meshplane-istio-reader in the
// control-plane namespace, bound cluster-wide to read-only endpoint
// discovery.
func (*Provider) FederationReader(m mesh.FederationMember) mesh.FederationReader {
	ns := nsOr(m.Namespace)
	role := readerRoleName(ns)
	return mesh.FederationReader{Namespace: ns, ServiceAccount: ReaderServiceAccount, Objects: []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ReaderServiceAccount}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role}, Rules: readerRules},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: ReaderServiceAccount}}},
	}}
}

// FederationNamespaceLabels sets topology.istio.io/network on the
// control-plane namespace: istiod then knows the network of its own
// cluster's workloads.
func (*Provider) FederationNamespaceLabels(m mesh.FederationMember) map[string]string {
	return map[string]string{NetworkLabel: m.Network}
}

// FederationOutputs is the east-west gateway of the member's network, as
// Istio's gateway chart renders it for multi-network (a Deployment
// injected with the gateway template, asking for its own network's view; a
// LoadBalancer Service labelled with the network, which istiod reads as
// the network's gateway), and a Gateway exposing every *.local service
// through port 15443 with AUTO_PASSTHROUGH (mTLS end to end, routed by
// SNI).
//
// An ambient member's east-west gateway is a Gateway of class
// istio-east-west instead (federation_ambient.go).
func (*Provider) FederationOutputs(m mesh.FederationMember) []client.Object {
	if !m.EastWestGateway {
		return nil
	}
	if m.Profile == meshv1alpha1.ProfileAmbient {
		return []client.Object{ambientEastWestGateway(m)}
	}
	ns := nsOr(m.Namespace)
	labels := map[string]string{"app": EastWestGateway, "istio": "eastwestgateway", NetworkLabel: m.Network}
	podLabels := map[string]string{"app": EastWestGateway, "istio": "eastwestgateway", NetworkLabel: m.Network,
		"sidecar.istio.io/inject": "true"}
	port := func(name string, p int32) corev1.ServicePort {
		return corev1.ServicePort{Name: name, Port: p, TargetPort: intstr.FromInt32(p), Protocol: corev1.ProtocolTCP}
	}
	svcPorts := []corev1.ServicePort{port("status-port", 15021), port("tls", 15443)}
	ctrPorts := []corev1.ContainerPort{{ContainerPort: 15021, Name: "status-port", Protocol: corev1.ProtocolTCP}, {ContainerPort: 15443, Name: "tls", Protocol: corev1.ProtocolTCP}}
	var extra []client.Object
	if len(m.Remotes) > 0 {
		sp, cp := istiodPorts()
		svcPorts, ctrPorts, extra = append(svcPorts, sp...), append(ctrPorts, cp...), exposeIstiod(m)
	}
	return append([]client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: EastWestGateway}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: EastWestGateway, Labels: labels},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](1),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": EastWestGateway, "istio": "eastwestgateway"}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: map[string]string{"inject.istio.io/templates": "gateway"}},
					Spec: corev1.PodSpec{ServiceAccountName: EastWestGateway, Containers: []corev1.Container{{
						Name: "istio-proxy", Image: "auto",
						Env:   []corev1.EnvVar{{Name: "ISTIO_META_REQUESTED_NETWORK_VIEW", Value: m.Network}},
						Ports: ctrPorts,
					}}},
				},
			}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: EastWestGateway, Labels: labels},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
				Selector: map[string]string{"app": EastWestGateway, "istio": "eastwestgateway"},
				Ports:    svcPorts}},
		&istionetworking.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: CrossNetworkGateway},
			Spec: networkingapi.Gateway{
				Selector: map[string]string{"istio": "eastwestgateway"},
				Servers: []*networkingapi.Server{{
					Port:  &networkingapi.Port{Number: 15443, Name: "tls", Protocol: "TLS"},
					Tls:   &networkingapi.ServerTLSSettings{Mode: networkingapi.ServerTLSSettings_AUTO_PASSTHROUGH},
					Hosts: []string{"*.local"},
				}},
			}},
	}, extra...)
}

// PeerCredentialKey is the remote secret istio-remote-secret-<peer> in the
// member's control-plane namespace, whose key <peer> holds the kubeconfig
// (the layout istioctl create-remote-secret writes).
func (*Provider) PeerCredentialKey(m, p mesh.FederationMember) (namespace, name, key string) {
	return nsOr(m.Namespace), RemoteSecretPrefix + p.Name, p.Name
}

// PeerCredential is the remote secret istiod watches (label
// istio/multiCluster=true) through which it reads peer p's endpoints.
func (pr *Provider) PeerCredential(m, p mesh.FederationMember, kubeconfig []byte) client.Object {
	ns, name, key := pr.PeerCredentialKey(m, p)
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels:      map[string]string{MultiClusterLabel: "true"},
			Annotations: map[string]string{ClusterAnnotation: p.Name}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{key: kubeconfig},
	}
}

// FederationGateway is the east-west gateway's Service (for an ambient
// member the Service istiod deploys for the Gateway, of the same name).
func (*Provider) FederationGateway(m mesh.FederationMember) (namespace, name string, ok bool) {
	if m.Profile == meshv1alpha1.ProfileAmbient {
		return nsOr(m.Namespace), AmbientEastWestGateway, m.EastWestGateway
	}
	return nsOr(m.Namespace), EastWestGateway, m.EastWestGateway
}

// FederationWriterRules: in the control-plane namespace, create and (by
// name) get, patch and delete on the remote secrets of the peers, the
// ServiceAccounts, the east-west gateway's Deployment and Service and the
// Gateway, and create on the reader's token; cluster-wide, the reader's
// ClusterRole and binding by name (escalate and bind on that ClusterRole
// only, so Meshplane needs no read access of its own), and get and patch
// on the control-plane namespace for the network label. An ambient member
// (m.Profile) needs the istio-east-west Gateway (gateway.networking.k8s.io)
// instead of the sidecar gateway's Deployment, Service, ServiceAccount and
// Istio Gateway, and get and patch on MeshInstalls for its topology
// settings. A primary with remotes also writes the istiod-gateway Gateway
// and the istiod-vs VirtualService by name; a primary and a remote get
// and patch MeshInstalls (their primary-remote settings).
func (*Provider) FederationWriterRules(m mesh.FederationMember, peers []string) (namespaced, cluster []rbacv1.PolicyRule) {
	secrets := make([]string, 0, len(peers))
	for _, p := range peers {
		secrets = append(secrets, RemoteSecretPrefix+p)
	}
	rw := []string{"get", "patch", "delete"}
	named := func(group, resource string, names ...string) []rbacv1.PolicyRule {
		return []rbacv1.PolicyRule{
			{APIGroups: []string{group}, Resources: []string{resource}, ResourceNames: names, Verbs: rw},
			{APIGroups: []string{group}, Resources: []string{resource}, Verbs: []string{"create"}},
		}
	}
	if m.Profile == meshv1alpha1.ProfileAmbient {
		namespaced = append(namespaced, named("", "serviceaccounts", ReaderServiceAccount)...)
	} else {
		namespaced = append(namespaced, named("", "serviceaccounts", ReaderServiceAccount, EastWestGateway)...)
	}
	namespaced = append(namespaced, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"},
		ResourceNames: []string{ReaderServiceAccount}, Verbs: []string{"create"}})
	if len(secrets) > 0 && m.Primary == "" {
		// A remote (Primary set) holds no remote secret: it runs no istiod.
		namespaced = append(namespaced, named("", "secrets", secrets...)...)
	}
	if m.Profile == meshv1alpha1.ProfileAmbient {
		namespaced = append(namespaced, ambientWriterRules()...)
		cluster = append(cluster, ambientInstallRules()...)
	} else {
		namespaced = append(namespaced, named("", "services", EastWestGateway)...)
		namespaced = append(namespaced, named("apps", "deployments", EastWestGateway)...)
		if len(m.Remotes) > 0 {
			namespaced = append(namespaced, named("networking.istio.io", "gateways", CrossNetworkGateway, IstiodGateway)...)
			namespaced = append(namespaced, primaryWriterRules()...)
		} else {
			namespaced = append(namespaced, named("networking.istio.io", "gateways", CrossNetworkGateway)...)
		}
		if m.Primary != "" || len(m.Remotes) > 0 {
			cluster = append(cluster, ambientInstallRules()...)
		}
	}
	role := readerRoleName(nsOr(m.Namespace))
	cluster = append(cluster, named("rbac.authorization.k8s.io", "clusterroles", role)...)
	cluster = append(cluster, rbacv1.PolicyRule{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles"},
		ResourceNames: []string{role}, Verbs: []string{"bind", "escalate"}})
	cluster = append(cluster, named("rbac.authorization.k8s.io", "clusterrolebindings", role)...)
	cluster = append(cluster, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"namespaces"},
		ResourceNames: []string{nsOr(m.Namespace)}, Verbs: []string{"get", "patch"}})
	return namespaced, cluster
}

// FederationRefusal refuses an ambient install older than ambient
// multicluster (Istio 1.27), naming the installed version. From 1.27 an
// ambient member is federated on its own network through an
// istio-east-west Gateway (federation_ambient.go); the sidecar east-west
// gateway (15443 AUTO_PASSTHROUGH) would be silently ignored by ztunnel.
func (*Provider) FederationRefusal(facts mesh.InstallFacts) string {
	if facts.Profile == meshv1alpha1.ProfileAmbient && !ambientMulticluster(facts.Version) {
		return fmt.Sprintf("MeshInstall %s installs Istio %s with profile Ambient: ambient multicluster (Services labelled %s, an istio-east-west Gateway on HBONE port 15008) "+
			"needs Istio %s or later; upgrade spec.version, or use profile Sidecar to federate this member", facts.MeshInstall, orUnknown(facts.Version), GlobalLabel, AmbientMulticlusterVersion)
	}
	return ""
}

var _ mesh.ServiceFederation = (*Provider)(nil)
