package linkerd

import (
	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
)

// Enrolment returns how a namespace joins Linkerd (mesh.Enroller): the
// namespace annotation linkerd.io/inject=enabled, and a restart so the
// proxy injector adds linkerd-proxy. Linkerd has one data-plane mode.
func (*Provider) Enrolment(mi *meshv1alpha1.MeshInstall, mode meshv1alpha1.Profile) (mesh.Enrolment, error) {
	if mode != "" && mode != meshv1alpha1.ProfileSidecar {
		return mesh.Enrolment{}, outcome.Stalled(meshv1alpha1.UnsupportedFeatureReason,
			"spec.mode is %s but MeshInstall %s runs Linkerd, which has one data-plane mode (its proxy in every pod): remove spec.mode", mode, mi.Name)
	}
	return mesh.Enrolment{
		Annotations: map[string]string{InjectAnnotation: "enabled"},
		Restart:     true,
		Describe:    "annotation " + InjectAnnotation + "=enabled",
	}, nil
}
