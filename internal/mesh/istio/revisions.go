package istio

import (
	"context"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/mesh"
)

// RBAC for the kinds only Istio's charts contain.
//
// +kubebuilder:rbac:groups=networking.istio.io,resources=envoyfilters,verbs=get;list;watch;create;update;patch;delete

// RevisionChart is istiod: one release per revision.
func (*Provider) RevisionChart() string { return "istiod" }

// InstallRevision is spec.istio.revision.
func (*Provider) InstallRevision(mi *meshv1alpha1.MeshInstall) string {
	if mi.Spec.Istio == nil {
		return ""
	}
	return mi.Spec.Istio.Revision
}

// RevisionName turns a version into a revision name (RevisionName).
func (*Provider) RevisionName(version string) string { return RevisionName(version) }

// DefaultTag is spec.istio.defaultTag, "default" when unset.
func (*Provider) DefaultTag(mi *meshv1alpha1.MeshInstall) string {
	if mi.Spec.Istio != nil && mi.Spec.Istio.DefaultTag != "" {
		return mi.Spec.Istio.DefaultTag
	}
	return "default"
}

// RevisionLabel is istio.io/rev.
func (*Provider) RevisionLabel() string { return RevLabel }

// InMigration: istio-injection=enabled follows the default tag,
// istio-injection=disabled opts out, and istio.io/rev selects a revision
// or a tag.
func (*Provider) InMigration(l map[string]string, tag, from, to string) bool {
	switch l[InjectionLabel] {
	case "enabled":
		return tag == "default"
	case "disabled":
		return false
	}
	rev := l[RevLabel]
	return rev != "" && (rev == from || rev == to || rev == tag)
}

// SelectsRevision: a namespace without istio.io/rev, or with
// istio.io/rev=default, selects the default revision.
func (*Provider) SelectsRevision(m mesh.Membership, revision string) bool {
	if revision != "" {
		return m.Revision == revision
	}
	return m.Revision == "" || m.Revision == RevisionLabelValue
}

// EnsureDefaultValidator is EnsureDefaultValidator.
func (*Provider) EnsureDefaultValidator(ctx context.Context, w mesh.TagWriter, revision, namespace string) (apply.Result, error) {
	return EnsureDefaultValidator(ctx, w, revision, namespace)
}

// EnsureTag is EnsureTag.
func (*Provider) EnsureTag(ctx context.Context, w mesh.TagWriter, tag, revision, namespace string) (apply.Result, error) {
	return EnsureTag(ctx, w, tag, revision, namespace)
}

// PruneTags is PruneTags.
func (*Provider) PruneTags(ctx context.Context, w mesh.TagWriter, keep []string) (apply.ChangeSet, error) {
	return PruneTags(ctx, w, keep)
}

var _ mesh.Revisioner = (*Provider)(nil)
