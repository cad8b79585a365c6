package istio

import (
	"fmt"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
)

// Enrolment returns how a namespace joins mi's data plane (mesh.Enroller).
// Sidecar: istio.io/rev=<revision> when the install names a revision,
// otherwise istio-injection=enabled; the ambient label is cleared, and
// workloads restart so the injector adds the sidecar. Ambient (needs an
// install with profile Ambient, which deploys ztunnel):
// istio.io/dataplane-mode=ambient; the sidecar labels are cleared, and
// workloads restart only when one was present, to drop their sidecars.
func (p *Provider) Enrolment(mi *meshv1alpha1.MeshInstall, mode meshv1alpha1.Profile) (mesh.Enrolment, error) {
	if mode == "" {
		mode = mi.Spec.Profile
	}
	switch mode {
	case meshv1alpha1.ProfileAmbient:
		if mi.Spec.Profile != meshv1alpha1.ProfileAmbient {
			return mesh.Enrolment{}, outcome.Stalled(meshv1alpha1.UnsupportedFeatureReason,
				"spec.mode is Ambient but MeshInstall %s installs Istio with profile %s, without ztunnel: set the MeshInstall's spec.profile to Ambient, or spec.mode to Sidecar",
				mi.Name, profileOf(mi))
		}
		return mesh.Enrolment{
			Labels:             map[string]string{DataplaneModeLabel: DataplaneModeAmbient},
			ClearLabels:        []string{InjectionLabel, RevLabel},
			RestartWhenCleared: true,
			Describe:           fmt.Sprintf("label %s=%s", DataplaneModeLabel, DataplaneModeAmbient),
			WaypointLabel:      UseWaypointLabel,
			NoAudit: "Istio ambient cannot run a ZeroTrustPolicy in Audit (ztunnel enforces, ignores or reports an istio.io/dry-run policy depending on its version); " +
				"audit the namespaces in sidecar mode first, or remove spec.waves.audit",
		}, nil
	case meshv1alpha1.ProfileSidecar, "":
		if rev := p.InstallRevision(mi); rev != "" {
			return mesh.Enrolment{
				Labels:        map[string]string{RevLabel: rev},
				ClearLabels:   []string{InjectionLabel, DataplaneModeLabel},
				Restart:       true,
				Describe:      fmt.Sprintf("label %s=%s", RevLabel, rev),
				WouldBeDenied: WouldBeDeniedQuery,
			}, nil
		}
		return mesh.Enrolment{
			Labels:        map[string]string{InjectionLabel: "enabled"},
			ClearLabels:   []string{RevLabel, DataplaneModeLabel},
			Restart:       true,
			Describe:      "label " + InjectionLabel + "=enabled",
			WouldBeDenied: WouldBeDeniedQuery,
		}, nil
	}
	return mesh.Enrolment{}, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "spec.mode %q is not an Istio data-plane mode: use Sidecar or Ambient", mode)
}

// WouldBeDeniedQuery counts the requests dry-run AuthorizationPolicies
// would have denied: Envoy's RBAC filter counts them as shadow_denied under
// Istio's shadow-rules prefixes istio_dry_run_allow_ (ALLOW policies) and
// istio_dry_run_deny_ (DENY policies), exported per inbound listener as
// envoy_http_<stat prefix>_rbac_istio_dry_run_<action>_shadow_denied. The
// proxies export these only when their proxyStatsMatcher includes "rbac"
// (for example inclusionRegexps [".*rbac.*"] in meshConfig.defaultConfig).
// No series counts as zero.
const WouldBeDeniedQuery = `sum(increase({__name__=~"envoy_http_.+_rbac_istio_dry_run_(allow|deny)_shadow_denied",namespace="{{ namespace }}"}[{{ interval }}])) or vector(0)`

func profileOf(mi *meshv1alpha1.MeshInstall) meshv1alpha1.Profile {
	if mi.Spec.Profile == "" {
		return meshv1alpha1.ProfileSidecar
	}
	return mi.Spec.Profile
}
