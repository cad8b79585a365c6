package meshrevision

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh/istio"
)

// reconcileDelete removes the revision. While the MeshInstall lives, a
// revision still in use is held (phase Draining, naming what uses it) and
// uninstalled once nothing does. When its MeshInstall is gone or being
// deleted, the MeshInstall's deletionPolicy decides: Orphan leaves istiod
// running, Uninstall removes it at once.
func (r *Reconciler) reconcileDelete(ctx context.Context, rv *meshv1alpha1.MeshRevision, mi *meshv1alpha1.MeshInstall) (result, error) {
	out := result{deleting: true}
	if !controllerutil.ContainsFinalizer(rv, Finalizer) {
		return out, nil
	}
	meshGoing := mi == nil || !mi.DeletionTimestamp.IsZero()
	orphan := mi == nil || mi.Spec.DeletionPolicy == "" || mi.Spec.DeletionPolicy == meshv1alpha1.DeletionOrphan
	if meshGoing && orphan {
		r.event(rv, "Orphaned", "Delete", "istiod of revision %s keeps running (MeshInstall deletionPolicy Orphan)", rv.Name)
		controllerutil.RemoveFinalizer(rv, Finalizer)
		return out, nil
	}
	if !meshGoing {
		u, err := r.usage(ctx, rv)
		if err != nil {
			return out, err
		}
		// The revision's own tags go with it; anything else holds it.
		u.Tags = nil
		if len(u.Namespaces) > 0 || u.Pods > 0 {
			r.recordUsage(rv, u)
			rv.Status.Phase = "Draining"
			out.message = fmt.Sprintf("deletion held: revision %s is still used by namespaces %v and %d pods; move them to another revision", rv.Name, u.Namespaces, u.Pods)
			out.requeueAfter = 5 * time.Second
			return out, nil
		}
	}
	out.message = "uninstalling istiod of revision " + rv.Name
	if _, err := istio.PruneTags(ctx, r.tagWriter(rv), nil); err != nil {
		return out, err
	}
	ns := istio.DefaultNamespace
	if mi != nil {
		ns = namespaceOf(mi)
	}
	if err := r.Helm.Uninstall(ctx, istio.IstiodReleaseName(rv.Name), ns, false, 0); err != nil {
		return out, err
	}
	r.event(rv, "Uninstalled", "Delete", "uninstalled istiod of revision %s", rv.Name)
	controllerutil.RemoveFinalizer(rv, Finalizer)
	return out, nil
}
