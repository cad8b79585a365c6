package mesh

import meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"

// FederationTrust is what a MeshFederation needs to know of a mesh beyond
// where it reads trust material (TrustWriter): how a member's intermediate
// must be named, where the mesh keeps a CA it generated on its own, and
// which pods carry certificates from its CA. The controller names no mesh;
// everything mesh-specific about trust is answered here.
type FederationTrust interface {
	TrustWriter
	// IntermediateName names the intermediate of member cluster cluster
	// whose trust domain is trustDomain (empty: the mesh's default).
	IntermediateName(cluster, trustDomain string) IntermediateName
	// SelfSignedCA returns where the mesh keeps the CA it generates when
	// none is plugged in, in its control-plane namespace namespace (the
	// default when empty); ok is false when it keeps none Meshplane can
	// read (BundleMerge mode then needs a CA or bundle of the mesh's own in
	// the TrustTarget objects).
	SelfSignedCA(namespace string) (ca SelfSignedCA, ok bool)
	// CertificatePods select the pods whose certificates come from the
	// mesh's CA (proxies and the control plane that loads the CA): a root
	// rotation waits until every one of them restarted.
	CertificatePods() []PodSelector
}

// IntermediateName is the subject a member's intermediate CA must carry for
// the mesh to accept it.
type IntermediateName struct {
	// CommonName of the subject.
	CommonName string
	// DNSNames the mesh checks on its issuer (Linkerd's
	// identity.linkerd.<trust domain>); none when empty.
	DNSNames []string
	// TrustDomain adds the URI SAN spiffe://<trust domain>; none when
	// empty.
	TrustDomain string
}

// SelfSignedCA is a Secret in which a mesh keeps the CA it generated itself.
type SelfSignedCA struct {
	// Namespace and Secret name the Secret.
	Namespace, Secret string
	// CertKey and KeyKey are the keys of the CA certificate and its key.
	CertKey, KeyKey string
}

// PodSelector selects pods by one label.
type PodSelector struct {
	// Label is the label key.
	Label string
	// Value is the label's value; any value when empty.
	Value string
	// InMeshNamespace limits the selector to the mesh's control-plane
	// namespace.
	InMeshNamespace bool
}

// FederationTrust returns the named provider's FederationTrust.
func (r *Registry) FederationTrust(name meshv1alpha1.Provider) (FederationTrust, error) {
	return lookup[FederationTrust](r, name, "trust distribution (MeshFederation)")
}
