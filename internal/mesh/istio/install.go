package istio

import (
	"strings"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

// RevisionLabelValue is what pods and namespaces carry in RevLabel for the
// default (unrevisioned) control plane.
const RevisionLabelValue = "default"

// ChartVersion returns the version without a leading v: Istio publishes its
// charts under the release version.
func (*Provider) ChartVersion(v string) string { return strings.TrimPrefix(v, "v") }

// RevisionName turns a version into a revision name, as Istio's docs do:
// 1.28.1 becomes 1-28-1.
func RevisionName(version string) string {
	v := strings.ToLower(strings.TrimPrefix(version, "v"))
	return strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			return r
		}
		return '-'
	}, v)
}

// IstiodReleaseName is the Helm release name of a revision's istiod.
func IstiodReleaseName(revision string) string {
	if revision == "" {
		return "istiod"
	}
	return "istiod-" + revision
}

// InjectorWebhookName is the injector MutatingWebhookConfiguration of a
// revision, as Istio's istiod chart names it: istio-sidecar-injector, plus
// -<revision>, plus -<namespace> outside istio-system.
func InjectorWebhookName(revision, namespace string) string {
	n := "istio-sidecar-injector"
	if revision != "" {
		n += "-" + revision
	}
	if namespace != "" && namespace != DefaultNamespace {
		n += "-" + namespace
	}
	return n
}

// TagWebhookName is the MutatingWebhookConfiguration of a revision tag.
func TagWebhookName(tag string) string { return "istio-revision-tag-" + tag }

// Values returns Meshplane's defaults for Istio's charts.
func (*Provider) Values(mi *meshv1alpha1.MeshInstall, c mesh.Chart, ic mesh.InstallContext) map[string]any {
	global := map[string]any{"istioNamespace": ic.Namespace}
	if is := mi.Spec.Istio; is != nil {
		if is.MeshID != "" {
			global["meshID"] = is.MeshID
		}
		if is.Network != "" {
			global["network"] = is.Network
		}
		if is.ClusterName != "" {
			global["multiCluster"] = map[string]any{"clusterName": is.ClusterName}
		}
	}
	v := map[string]any{"global": global}
	if mi.Spec.Profile == meshv1alpha1.ProfileAmbient {
		v["profile"] = "ambient"
	}
	switch c.Name {
	case "base":
		// The default validator (istiod-default-validator) belongs to
		// whichever revision the default tag points at: Meshplane writes
		// it with the tag (EnsureTag). An adopted in-place install keeps
		// the one its base release renders.
		if mi.Spec.Adopt == nil || (mi.Spec.Upgrade != nil && mi.Spec.Upgrade.Strategy == meshv1alpha1.UpgradeRevisionBased) {
			v["defaultRevision"] = ""
		}
	case "istiod":
		if is := mi.Spec.Istio; is != nil && is.TrustDomain != "" {
			v["meshConfig"] = map[string]any{"trustDomain": is.TrustDomain}
		}
	}
	return v
}

// Enforced pins istiod's revision and leaves revision tags to Meshplane,
// which moves them itself (a tag owned by one release could not move to
// another release without a gap).
func (*Provider) Enforced(_ *meshv1alpha1.MeshInstall, c mesh.Chart, ic mesh.InstallContext) map[string]any {
	if c.Name != "istiod" {
		return nil
	}
	return map[string]any{"revision": ic.Revision, "revisionTags": []any{}}
}
