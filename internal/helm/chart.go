package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
)

// Releaser is the part of the Engine the MeshInstall and MeshRevision
// controllers use; tests wrap it to count the calls that write.
type Releaser interface {
	Render(ctx context.Context, rel Release) (string, error)
	// Validate renders every release of a change and dry-runs every
	// rendered object against the API server; nothing is written.
	Validate(ctx context.Context, rels []Release) error
	Ensure(ctx context.Context, rel Release, wait bool, timeout time.Duration) (Result, error)
	Adopt(ctx context.Context, rel Release, wait bool, timeout time.Duration) (Result, error)
	Get(ctx context.Context, name, namespace string) (*ReleaseInfo, error)
	Uninstall(ctx context.Context, name, namespace string, wait bool, timeout time.Duration) error
	// Rollback rolls a release back to the revision deployed before the
	// current one.
	Rollback(ctx context.Context, name, namespace string, wait bool, timeout time.Duration) error
}

// SourceFor resolves where a chart of the mesh comes from: spec.chart (with
// its credentials and CA read from Secrets in the operator namespace), or
// the chart's official repository.
func SourceFor(ctx context.Context, r client.Reader, mi *meshv1alpha1.MeshInstall, c mesh.Chart, operatorNamespace string) (Source, error) {
	cs := mi.Spec.Chart
	if cs == nil || (cs.Repository == "" && cs.Path == "") {
		src := Source{RepoURL: c.Repository}
		return src, addAuth(ctx, r, cs, operatorNamespace, &src)
	}
	if HasUserinfo(cs.Repository) {
		// Stored before the API refused it: never used, never echoed.
		return Source{}, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"spec.chart.repository %s carries credentials (user:password@host): remove them and put them in a Secret in namespace %s "+
				"(keys username and password) referenced by spec.chart.credentialsSecretRef", RedactURLs(cs.Repository), operatorNamespace)
	}
	src := Source{RepoURL: cs.Repository, Path: cs.Path}
	return src, addAuth(ctx, r, cs, operatorNamespace, &src)
}

func addAuth(ctx context.Context, r client.Reader, cs *meshv1alpha1.ChartSource, ns string, src *Source) error {
	if cs == nil {
		return nil
	}
	read := func(ref *meshv1alpha1.SecretKeyReference, what string) (*corev1.Secret, error) {
		var s corev1.Secret
		if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, &s); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason,
					"spec.chart.%s names Secret %s/%s, which does not exist; create it in the operator namespace", what, ns, ref.Name)
			}
			return nil, err
		}
		return &s, nil
	}
	if ref := cs.CredentialsSecretRef; ref != nil {
		s, err := read(ref, "credentialsSecretRef")
		if err != nil {
			return err
		}
		src.Username, src.Password = string(s.Data["username"]), string(s.Data["password"])
		if src.Username == "" {
			return outcome.Stalled(meshv1alpha1.InvalidSpecReason, "Secret %s/%s has no key username (keys username and password are expected)", ns, ref.Name)
		}
	}
	if ref := cs.CASecretRef; ref != nil {
		s, err := read(ref, "caSecretRef")
		if err != nil {
			return err
		}
		key := "ca.crt"
		if ref.Key != "" {
			key = ref.Key
		}
		if len(s.Data[key]) == 0 {
			return outcome.Stalled(meshv1alpha1.InvalidSpecReason, "Secret %s/%s has no key %s with the repository's CA bundle", ns, ref.Name, key)
		}
		src.CAData = s.Data[key]
	}
	return nil
}

// ChartVersion is the chart version to install for a mesh version:
// spec.chart.chartVersion when set, else the provider's mapping.
func ChartVersion(p mesh.Installer, mi *meshv1alpha1.MeshInstall, meshVersion string) string {
	if mi.Spec.Chart != nil && mi.Spec.Chart.ChartVersion != "" && meshVersion == mi.Spec.Version {
		return mi.Spec.Chart.ChartVersion
	}
	return p.ChartVersion(meshVersion)
}

// Digest identifies a release's chart, version, source and values; an
// unchanged digest means no Helm call is needed.
func Digest(rel Release) string {
	b, _ := json.Marshal(struct {
		Chart, Version, Repo, Path string
		Values                     map[string]any
	}{rel.Chart, rel.Version, rel.Source.RepoURL, rel.Source.Path, rel.Values})
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ReleaseStatus renders a release for status.
func ReleaseStatus(rel Release, info *ReleaseInfo, digest string) meshv1alpha1.HelmReleaseStatus {
	s := meshv1alpha1.HelmReleaseStatus{Name: rel.Name, Namespace: rel.Namespace, Chart: fmt.Sprintf("%s-%s", rel.Chart, rel.Version), ValuesDigest: digest}
	if info != nil {
		s.Revision = int32(info.Revision)
		s.Status = info.Status
		s.Chart = info.Chart + "-" + info.ChartVersion
	}
	return s
}

var _ Releaser = (*Engine)(nil)
