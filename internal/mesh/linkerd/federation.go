package linkerd

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	linkv1alpha3 "github.com/linkerd/linkerd2/controller/gen/apis/link/v1alpha3"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// +kubebuilder:rbac:groups=multicluster.linkerd.io,resources=links,verbs=get;list;watch;create;patch;delete

// Names of what Linkerd service federation writes into a member, as
// `linkerd multicluster link-gen` generates them, and of what it reads
// from the multicluster extension.
const (
	// MulticlusterNamespace is the multicluster extension's namespace:
	// Links, their credentials, the gateway and the reader live there.
	MulticlusterNamespace = "linkerd-multicluster"
	// MulticlusterChart is the extension's chart and release name.
	MulticlusterChart = "linkerd-multicluster"
	// ExtensionLabel marks an extension's namespace (what the chart's
	// namespace-metadata Job would set; `linkerd check` looks for it).
	ExtensionLabel = "linkerd.io/extension"
	// GatewayService is the extension's gateway Service, whose
	// load-balancer address, mc-gateway port, mc-probe port and
	// annotations a peer's Link copies.
	GatewayService = "linkerd-gateway"
	// ReaderServiceAccount is the identity peers' service mirror and
	// destination controllers read a member with (the extension's chart
	// names its own linkerd-service-mirror-remote-access-default).
	ReaderServiceAccount = "linkerd-service-mirror-remote-access-meshplane"
	// CredentialsPrefix prefixes the credentials Secret of each peer, in
	// the multicluster namespace (service mirror) and in the control-plane
	// namespace (destination controller: remote discovery and federated
	// services).
	CredentialsPrefix = "cluster-credentials-"
	// CredentialsSecretType is the type of a credentials Secret.
	CredentialsSecretType corev1.SecretType = "mirror.linkerd.io/remote-kubeconfig"
	// CredentialsKey holds the kubeconfig in a credentials Secret.
	CredentialsKey = "kubeconfig"
	// ClusterNameLabel, TrustDomainAnnotation and ClusterDomainAnnotation
	// mark the destination controller's credentials.
	ClusterNameLabel        = "multicluster.linkerd.io/cluster-name"
	TrustDomainAnnotation   = "multicluster.linkerd.io/trust-domain"
	ClusterDomainAnnotation = "multicluster.linkerd.io/cluster-domain"
	// GatewayIdentityAnnotation, ProbePathAnnotation and
	// ProbePeriodAnnotation are read from a peer's gateway Service.
	GatewayIdentityAnnotation = "mirror.linkerd.io/gateway-identity"
	ProbePathAnnotation       = "mirror.linkerd.io/probe-path"
	ProbePeriodAnnotation     = "mirror.linkerd.io/probe-period"
	// GatewayPortName and ProbePortName name the gateway Service's ports.
	GatewayPortName = "mc-gateway"
	ProbePortName   = "mc-probe"
	// ClusterDomain and TrustDomain are the defaults every member is
	// assumed to use (Meshplane installs them; a member with others is not
	// read).
	ClusterDomain = "cluster.local"
	TrustDomain   = "cluster.local"
)

// Selectors of the Services a Link mirrors: exported=true through the
// gateway, exported=remote-discovery without a mirror's endpoints, and
// federated=member into a federated Service.
var (
	exportedSelector        = &metav1.LabelSelector{MatchLabels: map[string]string{"mirror.linkerd.io/exported": "true"}}
	remoteDiscoverySelector = &metav1.LabelSelector{MatchLabels: map[string]string{"mirror.linkerd.io/exported": "remote-discovery"}}
	federatedSelector       = &metav1.LabelSelector{MatchLabels: map[string]string{"mirror.linkerd.io/federated": "member"}}
)

// readerRoleName names the reader's ClusterRole and binding, with the
// control plane's namespace appended for another than linkerd.
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

// readerRules are the rules the extension's chart gives its
// remote-access ServiceAccount (remote-access-service-mirror-rbac.yaml):
// read Services, Endpoints, EndpointSlices, Pods and their owners
// (ReplicaSets, Jobs), Servers and the linkerd-config ConfigMap by name,
// and write Events; no Secrets.
var readerRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"list", "get", "watch"}},
	{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"list", "get", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"pods", "endpoints", "services"}, Verbs: []string{"list", "get", "watch"}},
	{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "get", "watch"}},
	{APIGroups: []string{"policy.linkerd.io"}, Resources: []string{"servers"}, Verbs: []string{"list", "get", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"linkerd-config"}, Verbs: []string{"get"}},
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
}

// FederationReader is the ServiceAccount
// linkerd-service-mirror-remote-access-meshplane in linkerd-multicluster,
// bound cluster-wide to the rules above. Its tokens are requested with a
// lifetime (no long-lived token Secret as the chart creates).
func (*Provider) FederationReader(m mesh.FederationMember) mesh.FederationReader {
	role := readerRoleName(nsOr(m.Namespace))
	return mesh.FederationReader{Namespace: MulticlusterNamespace, ServiceAccount: ReaderServiceAccount, Objects: []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: MulticlusterNamespace, Name: ReaderServiceAccount}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role}, Rules: readerRules},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: MulticlusterNamespace, Name: ReaderServiceAccount}}},
	}}
}

// FederationOutputs is empty: the gateway belongs to the multicluster
// extension.
func (*Provider) FederationOutputs(mesh.FederationMember) []client.Object { return nil }

// FederationNamespaceLabels is empty: Linkerd has no network label.
func (*Provider) FederationNamespaceLabels(mesh.FederationMember) map[string]string { return nil }

// PeerCredentialKey is cluster-credentials-<peer> in linkerd-multicluster,
// key kubeconfig (the layout link-gen writes).
func (*Provider) PeerCredentialKey(_, p mesh.FederationMember) (namespace, name, key string) {
	return MulticlusterNamespace, CredentialsPrefix + p.Name, CredentialsKey
}

// PeerCredential is the service mirror's credentials Secret for peer p.
func (pr *Provider) PeerCredential(m, p mesh.FederationMember, kubeconfig []byte) client.Object {
	ns, name, key := pr.PeerCredentialKey(m, p)
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type: CredentialsSecretType, Data: map[string][]byte{key: kubeconfig}}
}

// FederationGateway is the extension's linkerd-gateway Service, when the
// federation runs through gateways (spec.services.eastWestGateway).
func (*Provider) FederationGateway(m mesh.FederationMember) (namespace, name string, ok bool) {
	return MulticlusterNamespace, GatewayService, m.EastWestGateway
}

// FederationRefusal refuses no Linkerd install: what a member lacks (the
// multicluster extension) is LinkExtension's.
func (*Provider) FederationRefusal(mesh.InstallFacts) string { return "" }

// LinkExtension is the Link kind of the multicluster extension.
func (*Provider) LinkExtension(m mesh.FederationMember) (schema.GroupVersionKind, string) {
	return linkv1alpha3.SchemeGroupVersion.WithKind("Link"), fmt.Sprintf("the Linkerd multicluster extension is not installed in cluster %s "+
		"(no Link kind multicluster.linkerd.io/v1alpha3): set spec.linkerd.multicluster on its MeshInstall "+
		"(gateway: %t, links: the peers' names), or install the linkerd-multicluster chart into namespace %s "+
		"(gateway.enabled=%t), listing each peer in its controllers values (controllers[].link.ref.name)", m.Name, m.EastWestGateway, MulticlusterNamespace, m.EastWestGateway)
}

// PeerLinks are, for peer p, the destination controller's credentials
// (cluster-credentials-<p> in the control-plane namespace) and the Link
// <p>: through p's gateway when m.EastWestGateway (address, port,
// identity and probe from p's linkerd-gateway Service), else gateway-less
// (a flat network: remote discovery and federated services only).
func (*Provider) PeerLinks(m, p mesh.FederationMember, kubeconfig []byte, gateway *corev1.Service) ([]client.Object, string) {
	dest := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsOr(m.Namespace), Name: CredentialsPrefix + p.Name,
		Labels:      map[string]string{ClusterNameLabel: p.Name},
		Annotations: map[string]string{TrustDomainAnnotation: TrustDomain, ClusterDomainAnnotation: ClusterDomain}},
		Type: CredentialsSecretType, Data: map[string][]byte{CredentialsKey: kubeconfig}}
	link := &linkv1alpha3.Link{ObjectMeta: metav1.ObjectMeta{Namespace: MulticlusterNamespace, Name: p.Name},
		Spec: linkv1alpha3.LinkSpec{
			TargetClusterName:             p.Name,
			TargetClusterDomain:           ClusterDomain,
			TargetClusterLinkerdNamespace: nsOr(p.Namespace),
			ClusterCredentialsSecret:      CredentialsPrefix + p.Name,
			RemoteDiscoverySelector:       remoteDiscoverySelector,
			FederatedServiceSelector:      federatedSelector,
		}}
	if !m.EastWestGateway {
		return []client.Object{dest, link}, ""
	}
	if gateway == nil {
		return []client.Object{dest, link}, fmt.Sprintf("waiting for the gateway Service %s/%s of %s (the multicluster extension with gateway.enabled=true)",
			MulticlusterNamespace, GatewayService, p.Name)
	}
	if why := gatewayInto(&link.Spec, gateway); why != "" {
		return []client.Object{dest, link}, fmt.Sprintf("%s: the gateway Service %s/%s %s", p.Name, MulticlusterNamespace, GatewayService, why)
	}
	link.Spec.Selector = exportedSelector
	return []client.Object{dest, link}, ""
}

// gatewayInto copies the gateway's address, port, identity and probe into
// spec as link-gen does; it says what is missing.
func gatewayInto(spec *linkv1alpha3.LinkSpec, gw *corev1.Service) string {
	var addrs []string
	for _, in := range gw.Status.LoadBalancer.Ingress {
		if in.IP != "" {
			addrs = append(addrs, in.IP)
		} else if in.Hostname != "" {
			addrs = append(addrs, in.Hostname)
		}
	}
	if len(addrs) == 0 {
		return "has no load-balancer ingress yet"
	}
	identity := gw.Annotations[GatewayIdentityAnnotation]
	if identity == "" {
		return "has no " + GatewayIdentityAnnotation + " annotation"
	}
	port, probe := int32(0), int32(0)
	for _, p := range gw.Spec.Ports {
		n := p.Port
		if gw.Spec.Type == corev1.ServiceTypeNodePort {
			n = p.NodePort
		}
		switch p.Name {
		case GatewayPortName:
			port = n
		case ProbePortName:
			probe = p.Port
		}
	}
	if port == 0 || probe == 0 {
		return "has no ports named " + GatewayPortName + " and " + ProbePortName
	}
	path := gw.Annotations[ProbePathAnnotation]
	if path == "" {
		return "has no " + ProbePathAnnotation + " annotation"
	}
	period := gw.Annotations[ProbePeriodAnnotation]
	if secs, err := strconv.ParseInt(period, 10, 64); err == nil {
		period = (time.Duration(secs) * time.Second).String()
	} else if _, err := time.ParseDuration(period); err != nil {
		return fmt.Sprintf("has an unreadable %s annotation %q", ProbePeriodAnnotation, period)
	}
	spec.GatewayAddress = strings.Join(addrs, ",")
	spec.GatewayPort = strconv.Itoa(int(port))
	spec.GatewayIdentity = identity
	spec.ProbeSpec = linkv1alpha3.ProbeSpec{Path: path, Port: strconv.Itoa(int(probe)), Period: period}
	return ""
}

// FederationWriterRules: in linkerd-multicluster, create and (by name)
// get, patch and delete on the reader ServiceAccount, the peers' Links
// and credentials Secrets, create on the reader's token, and get on the
// gateway Service; cluster-wide, the reader's ClusterRole and binding by
// name (bind and escalate on that ClusterRole only); list on EndpointSlices
// (the links' health).
func (*Provider) FederationWriterRules(m mesh.FederationMember, peers []string) (namespaced, cluster []rbacv1.PolicyRule) {
	secrets := make([]string, 0, len(peers))
	for _, p := range peers {
		secrets = append(secrets, CredentialsPrefix+p)
	}
	namespaced = append(namespaced, named("", "serviceaccounts", ReaderServiceAccount)...)
	namespaced = append(namespaced, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"},
		ResourceNames: []string{ReaderServiceAccount}, Verbs: []string{"create"}},
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"services"}, ResourceNames: []string{GatewayService}, Verbs: []string{"get"}})
	if len(peers) > 0 {
		namespaced = append(namespaced, named("", "secrets", secrets...)...)
		namespaced = append(namespaced, named("multicluster.linkerd.io", "links", peers...)...)
	}
	role := readerRoleName(nsOr(m.Namespace))
	cluster = append(cluster, named("rbac.authorization.k8s.io", "clusterroles", role)...)
	cluster = append(cluster, rbacv1.PolicyRule{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles"},
		ResourceNames: []string{role}, Verbs: []string{"bind", "escalate"}})
	cluster = append(cluster, named("rbac.authorization.k8s.io", "clusterrolebindings", role)...)
	// The extension's settings are a field of the member's MeshInstall
	// (ExtensionInstall; list is granted to every member's identity).
	cluster = append(cluster, rbacv1.PolicyRule{APIGroups: []string{meshv1alpha1.GroupVersion.Group}, Resources: []string{"meshinstalls"}, Verbs: []string{"get", "patch"}})
	// The links' health (LinkHealth): the mirrored Services' EndpointSlices,
	// in any namespace.
	cluster = append(cluster, rbacv1.PolicyRule{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list"}})
	return namespaced, cluster
}

// FederationExtraWriterRules: in the control-plane namespace, the
// destination controller's credentials Secrets of the peers.
func (*Provider) FederationExtraWriterRules(m mesh.FederationMember, peers []string) map[string][]rbacv1.PolicyRule {
	if len(peers) == 0 {
		return nil
	}
	secrets := make([]string, 0, len(peers))
	for _, p := range peers {
		secrets = append(secrets, CredentialsPrefix+p)
	}
	return map[string][]rbacv1.PolicyRule{nsOr(m.Namespace): named("", "secrets", secrets...)}
}

// named is get, patch and delete on the named objects, and create.
func named(group, resource string, names ...string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{group}, Resources: []string{resource}, ResourceNames: names, Verbs: []string{"get", "patch", "delete"}},
		{APIGroups: []string{group}, Resources: []string{resource}, Verbs: []string{"create"}},
	}
}

var (
	_ mesh.ServiceFederation = (*Provider)(nil)
	_ mesh.PeerLinks         = (*Provider)(nil)
)

// ExtensionInstall: without the Link kind, the member's one Linkerd
// MeshInstall (installing the extension); with it, the Linkerd
// MeshInstall that set spec.linkerd.multicluster (a hand-installed
// extension is left to its owner, who lists the controllers).
func (*Provider) ExtensionInstall(_ mesh.FederationMember, installs []meshv1alpha1.MeshInstall, served bool) *meshv1alpha1.MeshInstall {
	var found []*meshv1alpha1.MeshInstall
	for i := range installs {
		mi := &installs[i]
		if mi.Spec.Provider != meshv1alpha1.ProviderLinkerd {
			continue
		}
		if served && (mi.Spec.Linkerd == nil || mi.Spec.Linkerd.Multicluster == nil) {
			continue
		}
		found = append(found, mi)
	}
	if len(found) != 1 {
		return nil
	}
	return found[0]
}

// ExtensionInstallSpec is spec.linkerd.multicluster: the gateway as the
// member has one, and one service-mirror controller per peer (Links are
// named after the peers).
func (*Provider) ExtensionInstallSpec(m mesh.FederationMember, peers []string) map[string]any {
	links := make([]any, 0, len(peers))
	for _, p := range slices.Sorted(slices.Values(peers)) {
		links = append(links, p)
	}
	return map[string]any{"linkerd": map[string]any{"multicluster": map[string]any{"gateway": m.EastWestGateway, "links": links}}}
}

// ExtensionPending names the install that is installing the extension.
func (*Provider) ExtensionPending(m mesh.FederationMember, mi *meshv1alpha1.MeshInstall) string {
	return fmt.Sprintf("the Linkerd multicluster extension is being installed in cluster %s by MeshInstall %s (spec.linkerd.multicluster, set by this federation); "+
		"the links follow once it serves the Link kind", m.Name, mi.Name)
}

var _ mesh.ExtensionInstaller = (*Provider)(nil)
