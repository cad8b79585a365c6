package istio

import (
	"fmt"
	"strings"

	"github.com/blang/semver/v4"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// Service export in ambient mode: services are cluster-local unless
// labelled istio.io/global=true (ambient multicluster, alpha from Istio
// 1.27); the label goes on the exporter's own Service. Sidecar mode needs
// no mark: every Service of a multi-primary member is global by default
// (ExportScope checks meshConfig.serviceSettings instead).
const (
	// GlobalLabel makes a Service global in ambient multicluster.
	GlobalLabel = "istio.io/global"
	// AmbientMulticlusterVersion is the first Istio release with ambient
	// multicluster (alpha).
	AmbientMulticlusterVersion = "1.27.0"
)

// ServiceMarks labels an exported Service istio.io/global=true when the
// member runs Istio in ambient mode, and refuses the export when the
// installed Istio is older than AmbientMulticlusterVersion. A member
// without a MeshInstall, or in sidecar mode, sets nothing.
func (*Provider) ServiceMarks(mi *meshv1alpha1.MeshInstall, _ mesh.FederationMember, svc mesh.ExportedService, exporter bool) (mesh.ServiceMarks, string) {
	f := mesh.InstallFactsOf(meshv1alpha1.ProviderIstio, mi, false)
	if mi == nil || f.Profile != meshv1alpha1.ProfileAmbient {
		return mesh.ServiceMarks{}, ""
	}
	if !ambientMulticluster(f.Version) {
		return mesh.ServiceMarks{}, fmt.Sprintf("Istio %s in ambient mode (MeshInstall %s) cannot take part in the export of %s/%s: ambient multicluster (the istio.io/global Service label) "+
			"needs Istio %s or later; upgrade MeshInstall %s (spec.version), or delete the ServiceExport",
			orUnknown(f.Version), mi.Name, svc.Namespace, svc.Name, AmbientMulticlusterVersion, mi.Name)
	}
	if !exporter {
		return mesh.ServiceMarks{}, ""
	}
	return mesh.ServiceMarks{Labels: map[string]string{GlobalLabel: "true"}}, ""
}

// ambientMulticluster reports whether Istio version v has ambient
// multicluster; an unparsable version has not (fail closed).
func ambientMulticluster(v string) bool {
	got, err := semver.ParseTolerant(strings.TrimPrefix(v, "v"))
	if err != nil {
		return false
	}
	got.Pre, got.Build = nil, nil
	return got.GTE(semver.MustParse(AmbientMulticlusterVersion))
}

func orUnknown(v string) string {
	if v == "" {
		return "(version unknown)"
	}
	return v
}

var _ mesh.ServiceMarker = (*Provider)(nil)
