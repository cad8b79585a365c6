package cilium

import "github.com/meshplane/meshplane/internal/mesh"

// IntermediateName names the ClusterMesh CA meshplane-clustermesh-ca-<cluster>
// with the cluster's SPIFFE trust domain.
func (*Provider) IntermediateName(cluster, trustDomain string) mesh.IntermediateName {
	return mesh.IntermediateName{CommonName: "meshplane-clustermesh-ca-" + cluster, TrustDomain: trustDomain}
}

// SelfSignedCA: Cilium's generated CA is cilium-ca itself (the TrustTarget).
func (*Provider) SelfSignedCA(string) (mesh.SelfSignedCA, bool) { return mesh.SelfSignedCA{}, false }

// CertificatePods are the agents and the clustermesh-apiserver, which load
// the CA.
func (*Provider) CertificatePods() []mesh.PodSelector {
	return []mesh.PodSelector{
		{Label: "k8s-app", Value: "cilium", InMeshNamespace: true},
		{Label: "k8s-app", Value: "clustermesh-apiserver", InMeshNamespace: true},
	}
}

var _ mesh.FederationTrust = (*Provider)(nil)
