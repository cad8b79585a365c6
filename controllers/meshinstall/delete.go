package meshinstall

import (
	"context"
	"slices"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/helm"
	"github.com/meshplane/meshplane/internal/mesh/istio"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
)

// reconcileDelete applies the deletion policy. Orphan (the default) leaves
// the mesh running; Uninstall removes the control plane's releases in
// reverse install order. Either way the MeshRevisions this MeshInstall
// created go first (each applies the same policy to its istiod), CRD-only
// charts are never uninstalled, and every CRD is kept.
func (r *Reconciler) reconcileDelete(ctx context.Context, mi *meshv1alpha1.MeshInstall) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(mi, Finalizer) {
		return ctrl.Result{}, nil
	}
	st := &mi.Status.CommonStatus
	status.MarkReconciling(st, mi.Generation, meshv1alpha1.DeletingReason, "deleting with deletionPolicy "+string(policy(mi)))
	revs, err := r.revisions(ctx, mi)
	if err != nil {
		return ctrl.Result{}, err
	}
	pending := 0
	for i := range revs {
		rv := &revs[i]
		if !ownership.IsOwnedBy(rv, "MeshInstall", "", mi.Name) {
			continue
		}
		pending++
		if rv.DeletionTimestamp.IsZero() {
			if err := r.Delete(ctx, rv); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, err
			}
		}
	}
	if pending > 0 {
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	if policy(mi) == meshv1alpha1.DeletionUninstall {
		if err := r.uninstall(ctx, mi); err != nil {
			status.MarkError(st, mi.Generation, err, meshv1alpha1.DeletingReason)
			return ctrl.Result{}, err
		}
	} else {
		r.Recorder.Eventf(mi, corev1.EventTypeNormal, "Orphaned", "deletionPolicy Orphan: %s keeps running", mi.Spec.Provider)
	}
	controllerutil.RemoveFinalizer(mi, Finalizer)
	return ctrl.Result{}, nil
}

func policy(mi *meshv1alpha1.MeshInstall) meshv1alpha1.DeletionPolicy {
	if mi.Spec.DeletionPolicy == "" {
		return meshv1alpha1.DeletionOrphan
	}
	return mi.Spec.DeletionPolicy
}

// uninstall removes the releases (reverse order, CRD-only charts kept) and
// the revision-tag webhooks Meshplane created.
func (r *Reconciler) uninstall(ctx context.Context, mi *meshv1alpha1.MeshInstall) error {
	p, err := r.Registry.Installer(mi.Spec.Provider)
	if err != nil {
		return err
	}
	ns := mi.Status.Namespace
	if ns == "" {
		ns = p.DefaultNamespace()
	}
	charts := p.Charts(mi)
	slices.Reverse(charts)
	for _, c := range charts {
		if c.CRDsOnly || (revisionBased(mi) && c.Name == "istiod") {
			continue
		}
		name := c.ReleaseName
		if a := mi.Spec.Adopt; a != nil && a.ReleaseNames[c.Name] != "" {
			name = a.ReleaseNames[c.Name]
		}
		if err := r.Helm.Uninstall(ctx, name, ns, false, 0); err != nil {
			return err
		}
		r.Recorder.Eventf(mi, corev1.EventTypeNormal, "Uninstalled", "uninstalled Helm release %s/%s (CRDs kept)", ns, name)
	}
	var hooks admissionregistrationv1.MutatingWebhookConfigurationList
	if err := r.List(ctx, &hooks, client.MatchingLabels{ownership.OwnerLabel: ownership.OwnerValue("MeshInstall", "", mi.Name)}); err != nil {
		return err
	}
	for i := range hooks.Items {
		if err := r.Delete(ctx, &hooks.Items[i]); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	mi.Status.Releases = nil
	return nil
}

var (
	_ = istio.RevLabel
	_ = helm.ErrReleaseNotFound
	_ = metav1.Now
)
