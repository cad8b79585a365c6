package mesh

import (
	"crypto/x509"
	"net"

	corev1 "k8s.io/api/core/v1"
)

// FederationCertificates is implemented by a mesh whose members connect to
// each other with TLS certificates Meshplane issues (Cilium ClusterMesh:
// the clustermesh-apiserver's server certificate and its admin, local and
// remote client certificates). Each is signed by the member's issuer (its
// intermediate of the federation's root) and written as a
// kubernetes.io/tls Secret: tls.crt holds the certificate followed by the
// issuer, so a peer that trusts only the root can verify it; ca.crt holds
// the federation's root bundle. They are service federation outputs: in
// the member's inventory, removed exactly on release.
type FederationCertificates interface {
	// FederationCertificates are the certificates member m needs; gateway
	// is m's gateway Service (FederationGateway) when it could be read, so
	// a server certificate can name its load-balancer host names.
	FederationCertificates(m FederationMember, gateway *corev1.Service) []Certificate
}

// Certificate is one end-entity certificate and the Secret it is written
// to.
type Certificate struct {
	// Namespace and Secret name the kubernetes.io/tls Secret.
	Namespace, Secret string
	// CommonName is the subject's common name (a client's user name).
	CommonName string
	// DNSNames and IPAddresses are the subject alternative names.
	DNSNames    []string
	IPAddresses []net.IP
	// Usages are the extended key usages.
	Usages []x509.ExtKeyUsage
}
