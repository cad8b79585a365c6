package mesh

// PrimaryRemote is implemented by a ServiceFederation whose members can
// run without a control plane of their own, controlled by another member's
// (Istio primary-remote). A remote (FederationMember.Primary set) gets no
// credentials of its peers: only its primary, and the other members with
// a control plane, read it. Its primary exposes its control plane through
// its east-west gateway (FederationOutputs of a member with Remotes), and
// both get settings in their own MeshInstall (FederationTopology's
// TopologyInstall, with PrimaryAddress once the primary's gateway has
// one).
type PrimaryRemote interface {
	// RemoteRefusal says why m cannot be a remote of primary p as both
	// are installed (a data-plane mode without primary-remote); empty
	// when it can.
	RemoteRefusal(m, p FederationMember) string
}
