package linkerd

import "github.com/meshplane/meshplane/internal/mesh"

// IntermediateName names the issuer identity.linkerd.<trust domain> (with
// the same DNS name), which Linkerd's identity controller checks; it
// carries no SPIFFE URI.
func (*Provider) IntermediateName(_, trustDomain string) mesh.IntermediateName {
	if trustDomain == "" {
		trustDomain = "cluster.local"
	}
	name := "identity.linkerd." + trustDomain
	return mesh.IntermediateName{CommonName: name, DNSNames: []string{name}}
}

// SelfSignedCA: Linkerd keeps no CA of its own beyond the issuer Secret.
func (*Provider) SelfSignedCA(string) (mesh.SelfSignedCA, bool) { return mesh.SelfSignedCA{}, false }

// CertificatePods are the pods of the data and control plane
// (linkerd.io/control-plane-ns).
func (*Provider) CertificatePods() []mesh.PodSelector {
	return []mesh.PodSelector{{Label: "linkerd.io/control-plane-ns"}}
}

var _ mesh.FederationTrust = (*Provider)(nil)
