package cilium

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// Names of Cilium ClusterMesh as service federation configures it.
const (
	// ClusterMeshAPIServer is the clustermesh-apiserver Service whose
	// load-balancer address the other members connect to.
	ClusterMeshAPIServer = "clustermesh-apiserver"
	// MaxClusterNameLength is the longest cluster.name Cilium accepts.
	MaxClusterNameLength = 32
)

func nsOr(n string) string {
	if n == "" {
		return DefaultNamespace
	}
	return n
}

// FederationReader is empty: ClusterMesh members connect through their
// clustermesh-apiservers with certificates of the federation's root
// (FederationCertificates), not through each other's Kubernetes API.
func (*Provider) FederationReader(m mesh.FederationMember) mesh.FederationReader {
	return mesh.FederationReader{Namespace: nsOr(m.Namespace)}
}

// FederationOutputs is empty: the clustermesh-apiserver is rendered by
// Cilium's chart from the MeshInstall's settings.
func (*Provider) FederationOutputs(mesh.FederationMember) []client.Object { return nil }

// FederationNamespaceLabels is empty.
func (*Provider) FederationNamespaceLabels(mesh.FederationMember) map[string]string { return nil }

// PeerCredential is never written (see FederationReader).
func (*Provider) PeerCredential(_, _ mesh.FederationMember, _ []byte) client.Object { return nil }

// PeerCredentialKey names the cilium-clustermesh Secret the chart renders;
// Meshplane never writes it.
func (*Provider) PeerCredentialKey(m, p mesh.FederationMember) (namespace, name, key string) {
	return nsOr(m.Namespace), "cilium-clustermesh", p.Name
}

// FederationGateway is the clustermesh-apiserver Service: every member
// needs it, on a flat network too.
func (*Provider) FederationGateway(m mesh.FederationMember) (namespace, name string, ok bool) {
	return nsOr(m.Namespace), ClusterMeshAPIServer, true
}

// FederationRefusal refuses no Cilium install on its own facts; what
// breaks ClusterMesh is ClusterMeshInstall's.
func (*Provider) FederationRefusal(mesh.InstallFacts) string { return "" }

// FederationWriterRules: get on the clustermesh-apiserver Service; get,
// patch and delete on the four certificate Secrets (create cannot be
// limited by name); and get and patch on MeshInstalls (the settings are a
// field of the member's MeshInstall; list is granted to every member's
// remote identity).
func (*Provider) FederationWriterRules(m mesh.FederationMember, _ []string) (namespaced, cluster []rbacv1.PolicyRule) {
	namespaced = []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"services"}, ResourceNames: []string{ClusterMeshAPIServer}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{ServerCertSecret, AdminCertSecret, LocalCertSecret, RemoteCertSecret},
			Verbs: []string{"get", "patch", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
	}
	cluster = []rbacv1.PolicyRule{{APIGroups: []string{meshv1alpha1.GroupVersion.Group}, Resources: []string{"meshinstalls"}, Verbs: []string{"get", "patch"}}}
	return namespaced, cluster
}

// ClusterMeshInstall is the member's Cilium MeshInstall. Refused: no
// cluster id or a Cilium cluster name longer than 32 characters, no
// Cilium MeshInstall to write into, and Istio ambient installed alongside
// (ztunnel's mTLS redirects pod traffic that ClusterMesh's cross-cluster
// routing and identities do not see).
func (*Provider) ClusterMeshInstall(m mesh.FederationMember, id int32, installs []meshv1alpha1.MeshInstall) (*meshv1alpha1.MeshInstall, string) {
	if id < 1 || id > 255 {
		return nil, fmt.Sprintf("spec.clusters[%s].clusterID is not set: Cilium ClusterMesh needs a cluster.id from 1 to 255, unique across the members", m.Name)
	}
	if len(m.Name) > MaxClusterNameLength {
		return nil, fmt.Sprintf("member name %s is longer than %d characters, the most Cilium's cluster.name takes", m.Name, MaxClusterNameLength)
	}
	var mi *meshv1alpha1.MeshInstall
	for i := range installs {
		in := &installs[i]
		if in.Spec.Provider == meshv1alpha1.ProviderIstio && in.Spec.Profile == meshv1alpha1.ProfileAmbient {
			return nil, fmt.Sprintf("cluster %s also runs Istio ambient (MeshInstall %s): ztunnel's mTLS is not compatible with Cilium ClusterMesh, so the member is not connected",
				m.Name, in.Name)
		}
		if in.Spec.Provider == meshv1alpha1.ProviderCilium && mi == nil {
			mi = in
		}
	}
	if mi == nil {
		return nil, fmt.Sprintf("cluster %s has no MeshInstall of Cilium: the ClusterMesh settings (cluster.name, cluster.id, the peers' clustermesh-apiservers) "+
			"are written into it; create one (spec.adopt takes over a running Cilium)", m.Name)
	}
	return mi, ""
}

// ClusterMeshPeer is the peer's clustermesh-apiserver: its load-balancer
// IPs (or host name) and the Service's port (node port for a NodePort
// Service).
func (*Provider) ClusterMeshPeer(p mesh.FederationMember, gw *corev1.Service) (meshv1alpha1.CiliumClusterMeshPeer, string) {
	peer := meshv1alpha1.CiliumClusterMeshPeer{Name: p.Name}
	where := fmt.Sprintf("Service %s/%s of %s", nsOr(p.Namespace), ClusterMeshAPIServer, p.Name)
	if gw == nil {
		return peer, "waiting for the clustermesh-apiserver " + where
	}
	for _, in := range gw.Status.LoadBalancer.Ingress {
		switch {
		case in.IP != "":
			peer.IPs = append(peer.IPs, in.IP)
		case in.Hostname != "" && peer.Address == "":
			peer.Address = in.Hostname
		}
	}
	if len(peer.IPs) > 0 {
		peer.Address = ""
	}
	if peer.Address == "" && len(peer.IPs) == 0 {
		return peer, "the clustermesh-apiserver " + where + " has no load-balancer ingress yet"
	}
	if len(gw.Spec.Ports) == 0 {
		return peer, "the clustermesh-apiserver " + where + " has no port"
	}
	peer.Port = gw.Spec.Ports[0].Port
	return peer, ""
}

// ClusterMeshSpec is spec.cilium.clusterMesh.
func (*Provider) ClusterMeshSpec(m mesh.FederationMember, id int32, peers []meshv1alpha1.CiliumClusterMeshPeer) map[string]any {
	cm := meshv1alpha1.CiliumClusterMesh{ClusterName: m.Name, ClusterID: id, Peers: peers}
	b, _ := json.Marshal(cm)
	var v map[string]any
	_ = json.Unmarshal(b, &v)
	return map[string]any{"cilium": map[string]any{"clusterMesh": v}}
}

// CrossClusterPolicy reads clustermesh.policyDefaultLocalCluster from the
// install's values (components[cilium] over spec.values), else the
// chart's default: true from Cilium 1.19 (policies without a cluster
// selector then select endpoints of the local cluster only), false before.
func (*Provider) CrossClusterPolicy(mi *meshv1alpha1.MeshInstall) (bool, string) {
	local, from := false, ""
	if v, ok := policyDefaultLocalCluster(mi.Spec.Values); ok {
		local, from = v, "set in spec.values"
	}
	for _, c := range mi.Spec.Components {
		if c.Chart == "cilium" {
			if v, ok := policyDefaultLocalCluster(&c.Values); ok {
				local, from = v, "set in spec.components[cilium].values"
			}
		}
	}
	if from == "" {
		local, from = atLeast119(mi.Spec.Version), "the default of Cilium "+mi.Spec.Version
	}
	if local {
		return false, fmt.Sprintf("clustermesh.policyDefaultLocalCluster is true (%s) in MeshInstall %s: network policies without a cluster selector "+
			"select endpoints of this cluster only; add io.cilium.k8s.policy.cluster to cross-cluster rules, or set the value to false", from, mi.Name)
	}
	return true, fmt.Sprintf("clustermesh.policyDefaultLocalCluster is false (%s) in MeshInstall %s: policies without a cluster selector select endpoints of every cluster",
		from, mi.Name)
}

func policyDefaultLocalCluster(v *apiextensionsv1.JSON) (bool, bool) {
	if v == nil || len(v.Raw) == 0 {
		return false, false
	}
	var vals struct {
		ClusterMesh struct {
			PolicyDefaultLocalCluster *bool `json:"policyDefaultLocalCluster"`
		} `json:"clustermesh"`
	}
	if json.Unmarshal(v.Raw, &vals) != nil || vals.ClusterMesh.PolicyDefaultLocalCluster == nil {
		return false, false
	}
	return *vals.ClusterMesh.PolicyDefaultLocalCluster, true
}

// atLeast119 reports whether a Cilium version is 1.19 or later.
func atLeast119(v string) bool {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return err1 == nil && err2 == nil && (major > 1 || major == 1 && minor >= 19)
}

// clusterMeshValues are the chart values of spec.cilium.clusterMesh:
// cluster.name and cluster.id, the clustermesh-apiserver (a LoadBalancer
// Service) with the chart's TLS generation off (tls.auto.enabled false,
// tls.enableSecrets false: the MeshFederation writes the four certificate
// Secrets, FederationCertificates, signed by the member's intermediate of
// the federation's root) and etcd users per cluster (tls.authMode cluster,
// which needs that one root), and the peers in clustermesh.config.clusters
// (without tls: KVStoreMesh uses the clustermesh-apiserver-remote-cert).
func clusterMeshValues(cm *meshv1alpha1.CiliumClusterMesh) (cluster, clustermesh map[string]any) {
	clusters := make([]any, 0, len(cm.Peers))
	for _, p := range cm.Peers {
		c := map[string]any{"name": p.Name, "port": int64(p.Port)}
		if len(p.IPs) > 0 {
			ips := make([]any, 0, len(p.IPs))
			for _, ip := range p.IPs {
				ips = append(ips, ip)
			}
			c["ips"] = ips
		} else {
			c["address"] = p.Address
		}
		clusters = append(clusters, c)
	}
	return map[string]any{"name": cm.ClusterName, "id": int64(cm.ClusterID)},
		map[string]any{
			"useAPIServer": true,
			"apiserver": map[string]any{
				"service": map[string]any{"type": "LoadBalancer"},
				"tls": map[string]any{
					"auto":          map[string]any{"enabled": false},
					"enableSecrets": false,
					"authMode":      "cluster",
				},
			},
			"config": map[string]any{"enabled": true, "clusters": clusters},
		}
}

var (
	_ mesh.ServiceFederation = (*Provider)(nil)
	_ mesh.ClusterMesh       = (*Provider)(nil)
)
