package meshrevision

import (
	"context"
	"fmt"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh/istio"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
)

// reconcileDelete removes the revision. While the MeshInstall lives, a
// revision still in use is held (phase Draining, naming what uses it) and
// uninstalled once nothing does. When its MeshInstall is gone or being
// deleted, the MeshInstall's deletionPolicy decides: Orphan leaves istiod
// running, Uninstall removes it at once.
func (r *Reconciler) reconcileDelete(ctx context.Context, rv *meshv1alpha1.MeshRevision, mi *meshv1alpha1.MeshInstall) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(rv, Finalizer) {
		return ctrl.Result{}, nil
	}
	st := &rv.Status.CommonStatus
	meshGoing := mi == nil || !mi.DeletionTimestamp.IsZero()
	orphan := mi == nil || mi.Spec.DeletionPolicy == "" || mi.Spec.DeletionPolicy == meshv1alpha1.DeletionOrphan
	if meshGoing && orphan {
		r.Recorder.Eventf(rv, corev1.EventTypeNormal, "Orphaned", "istiod of revision %s keeps running (MeshInstall deletionPolicy Orphan)", rv.Name)
		controllerutil.RemoveFinalizer(rv, Finalizer)
		return ctrl.Result{}, nil
	}
	if !meshGoing {
		u, err := r.usage(ctx, rv)
		if err != nil {
			return ctrl.Result{}, err
		}
		// The revision's own tags go with it; anything else holds it.
		u.Tags = nil
		if len(u.Namespaces) > 0 || u.Pods > 0 {
			r.recordUsage(rv, u)
			rv.Status.Phase = "Draining"
			msg := fmt.Sprintf("deletion held: revision %s is still used by namespaces %v and %d pods; move them to another revision", rv.Name, u.Namespaces, u.Pods)
			status.MarkReconciling(st, rv.Generation, meshv1alpha1.DeletingReason, msg)
			return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
		}
	}
	status.MarkReconciling(st, rv.Generation, meshv1alpha1.DeletingReason, "uninstalling istiod of revision "+rv.Name)
	var hooks admissionregistrationv1.MutatingWebhookConfigurationList
	if err := r.List(ctx, &hooks, client.MatchingLabels{ownership.OwnerLabel: ownership.OwnerValue("MeshRevision", "", rv.Name)}); err != nil {
		return ctrl.Result{}, err
	}
	for i := range hooks.Items {
		if err := r.Delete(ctx, &hooks.Items[i]); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, err
		}
	}
	ns := istio.DefaultNamespace
	if mi != nil {
		ns = namespaceOf(mi)
	}
	if err := r.Helm.Uninstall(ctx, istio.IstiodReleaseName(rv.Name), ns, false, 0); err != nil {
		return ctrl.Result{}, err
	}
	r.Recorder.Eventf(rv, corev1.EventTypeNormal, "Uninstalled", "uninstalled istiod of revision %s", rv.Name)
	controllerutil.RemoveFinalizer(rv, Finalizer)
	return ctrl.Result{}, nil
}
