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
		Annotations:   map[string]string{InjectAnnotation: "enabled"},
		Restart:       true,
		Describe:      "annotation " + InjectAnnotation + "=enabled",
		WouldBeDenied: WouldBeDeniedQuery,
	}, nil
}

// WouldBeDeniedQuery counts the requests and connections Linkerd's audit
// policy let through that no authorization covered: the proxy allows them
// and labels the authorization authz_kind="default", authz_name="audit" on
// its inbound_http_authz_allow_total and inbound_tcp_authz_allow_total
// counters. No series counts as zero.
const WouldBeDeniedQuery = `(sum(increase(inbound_http_authz_allow_total{namespace="{{ namespace }}",authz_kind="default",authz_name="audit"}[{{ interval }}])) or vector(0))` +
	` + (sum(increase(inbound_tcp_authz_allow_total{namespace="{{ namespace }}",authz_kind="default",authz_name="audit"}[{{ interval }}])) or vector(0))`
