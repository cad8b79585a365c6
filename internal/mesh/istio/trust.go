package istio

import "github.com/meshplane/meshplane/internal/mesh"

// SelfSignedCASecret is the Secret in which istiod keeps the CA it
// generated when no cacerts Secret is plugged in.
const SelfSignedCASecret = "istio-ca-secret"

// IntermediateName names the intermediate meshplane-intermediate-<cluster>
// with the cluster's SPIFFE trust domain.
func (*Provider) IntermediateName(cluster, trustDomain string) mesh.IntermediateName {
	return mesh.IntermediateName{CommonName: "meshplane-intermediate-" + cluster, TrustDomain: trustDomain}
}

// SelfSignedCA returns istiod's own CA Secret, istio-ca-secret.
func (*Provider) SelfSignedCA(namespace string) (mesh.SelfSignedCA, bool) {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return mesh.SelfSignedCA{Namespace: namespace, Secret: SelfSignedCASecret, CertKey: "ca-cert.pem", KeyKey: "ca-key.pem"}, true
}

// CertificatePods are sidecars (security.istio.io/tlsMode), gateways,
// istiod and ztunnel.
func (*Provider) CertificatePods() []mesh.PodSelector {
	return []mesh.PodSelector{
		{Label: "security.istio.io/tlsMode"}, {Label: "app", Value: "istiod", InMeshNamespace: true},
		{Label: "app", Value: "ztunnel", InMeshNamespace: true}, {Label: "istio.io/gateway-name"},
	}
}

var _ mesh.FederationTrust = (*Provider)(nil)
