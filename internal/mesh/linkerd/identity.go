package linkerd

import (
	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// Subject common names of a generated Linkerd identity, as Linkerd's docs
// create them.
const (
	TrustAnchorName = "root.linkerd.cluster.local"
	IssuerName      = "identity.linkerd.cluster.local"
)

// IdentitySpec reads spec.linkerd.identity.
func (*Provider) IdentitySpec(mi *meshv1alpha1.MeshInstall) mesh.IdentitySpec {
	out := mesh.IdentitySpec{Field: "spec.linkerd.identity", AnchorName: TrustAnchorName, IssuerName: IssuerName}
	if mi.Spec.Linkerd == nil || mi.Spec.Linkerd.Identity == nil {
		return out
	}
	id := mi.Spec.Linkerd.Identity
	out.External = id.External != nil && *id.External
	out.TrustAnchorRef, out.IssuerRef = id.TrustAnchorSecretRef, id.IssuerSecretRef
	if id.IssuerLifetime != nil && id.IssuerLifetime.Duration > 0 {
		out.IssuerLifetime = id.IssuerLifetime.Duration
	}
	return out
}

// ControlPlaneLabels are the labels Linkerd's webhooks rely on to skip the
// control plane's own namespace.
func (*Provider) ControlPlaneLabels(ns string) map[string]string {
	return map[string]string{
		"linkerd.io/is-control-plane":          "true",
		"config.linkerd.io/admission-webhooks": "disabled",
		"linkerd.io/control-plane-ns":          ns,
	}
}

var (
	_ mesh.IdentityInstaller   = (*Provider)(nil)
	_ mesh.ControlPlaneLabeler = (*Provider)(nil)
)
