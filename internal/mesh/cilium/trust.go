package cilium

import "github.com/meshplane/meshplane/internal/mesh"

// IntermediateName names the ClusterMesh CA meshplane-clustermesh-ca-<cluster>
// with the cluster's SPIFFE trust domain.
func (*Provider) IntermediateName(cluster, trustDomain string) mesh.IntermediateName {
	return mesh.IntermediateName{CommonName: "meshplane-clustermesh-ca-" + cluster, TrustDomain: trustDomain}
}

// SelfSignedCA is the cilium-ca Secret the chart generates (for Hubble and,
// with the chart's own TLS, ClusterMesh): in BundleMerge mode it is the
// member's own CA, written with the merged bundle into ClusterMeshCASecret.
func (*Provider) SelfSignedCA(namespace string) (mesh.SelfSignedCA, bool) {
	return mesh.SelfSignedCA{Namespace: nsOr(namespace), Secret: "cilium-ca", CertKey: "ca.crt", KeyKey: "ca.key"}, true
}

// CertificatePods are the agents and the clustermesh-apiserver, which load
// the CA.
func (*Provider) CertificatePods() []mesh.PodSelector {
	return []mesh.PodSelector{
		{Label: "k8s-app", Value: "cilium", InMeshNamespace: true},
		{Label: "k8s-app", Value: "clustermesh-apiserver", InMeshNamespace: true},
	}
}

var _ mesh.FederationTrust = (*Provider)(nil)
