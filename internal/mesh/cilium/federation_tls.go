package cilium

import (
	"crypto/x509"
	"net"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshplane/meshplane/internal/mesh"
)

// Secrets of the clustermesh-apiserver's certificates, as Cilium's chart
// mounts them (clustermesh.apiserver.tls.auto disabled: the chart expects
// them to exist).
const (
	ServerCertSecret = "clustermesh-apiserver-server-cert"
	AdminCertSecret  = "clustermesh-apiserver-admin-cert"
	RemoteCertSecret = "clustermesh-apiserver-remote-cert"
	LocalCertSecret  = "clustermesh-apiserver-local-cert"
	// ClusterMeshDomain is clustermesh.config.domain: a peer's agents and
	// KVStoreMesh reach m's clustermesh-apiserver as <m>.mesh.cilium.io
	// (host aliases of its load-balancer IPs).
	ClusterMeshDomain = "mesh.cilium.io"
	// serverCommonName is the server certificate's common name in
	// Cilium's chart.
	serverCommonName = "clustermesh-apiserver.cilium.io"
)

// FederationCertificates are the clustermesh-apiserver's certificates,
// with the names and alternative names Cilium's chart gives them (its
// tls-helm templates) in authMode cluster:
//   - server (etcd and KVStoreMesh serve with it): CN
//     clustermesh-apiserver.cilium.io, DNS clustermesh-apiserver.cilium.io,
//     *.mesh.cilium.io, clustermesh-apiserver.<namespace>.svc and the
//     gateway's load-balancer host names (a peer given a host name
//     connects to it), IPs 127.0.0.1 and ::1;
//   - admin (the clustermesh-apiserver's own etcd client): CN admin-<m>;
//   - local (the agents' client of the local KVStoreMesh): CN local-<m>;
//   - remote (KVStoreMesh's client of every peer): CN remote-<m>, the etcd
//     user each peer creates for m (clustermesh-remote-users).
func (*Provider) FederationCertificates(m mesh.FederationMember, gw *corev1.Service) []mesh.Certificate {
	ns := nsOr(m.Namespace)
	dns := []string{serverCommonName, "*." + ClusterMeshDomain, ClusterMeshAPIServer + "." + ns + ".svc"}
	if gw != nil {
		for _, in := range gw.Status.LoadBalancer.Ingress {
			if in.Hostname != "" {
				dns = append(dns, in.Hostname)
			}
		}
	}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return []mesh.Certificate{
		{Namespace: ns, Secret: ServerCertSecret, CommonName: serverCommonName, DNSNames: dns,
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback},
			Usages:      []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}},
		{Namespace: ns, Secret: AdminCertSecret, CommonName: "admin-" + m.Name, Usages: client},
		{Namespace: ns, Secret: LocalCertSecret, CommonName: "local-" + m.Name, Usages: client},
		{Namespace: ns, Secret: RemoteCertSecret, CommonName: "remote-" + m.Name, Usages: client},
	}
}

var _ mesh.FederationCertificates = (*Provider)(nil)
