// Package meshinstall reconciles MeshInstall: it installs a mesh's charts
// with Helm, keeps its control plane healthy, runs in-place and
// revision-based upgrades with batched data-plane migration, and applies
// the deletion policy. See docs/meshinstall.md for the life cycle.
package meshinstall

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/install"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/status"
)

// Finalizer holds a MeshInstall until its deletion policy has been applied.
const Finalizer = "meshplane.io/meshinstall"

// Reconciler reconciles MeshInstall objects.
type Reconciler struct {
	client.Client
	// APIReader reads uncached (Secrets in the operator namespace).
	APIReader client.Reader
	// Registry resolves providers (fails closed).
	Registry *mesh.Registry
	// Helm installs and upgrades charts.
	Helm install.Helm
	// Recorder emits an Event per write.
	Recorder record.EventRecorder
	// OperatorNamespace holds generated identity Secrets and chart
	// credentials.
	OperatorNamespace string
	// Now is the clock (tests).
	Now func() time.Time
}

// Reconcile moves one MeshInstall towards its spec.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	mi := &meshv1alpha1.MeshInstall{}
	if err := r.Get(ctx, req.NamespacedName, mi); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	patcher := status.NewPatcher(r.Client, mi)
	defer func() {
		if err := patcher.Patch(ctx, mi); err != nil && !apierrors.IsConflict(err) {
			retErr = err
		} else if apierrors.IsConflict(err) {
			res = ctrl.Result{Requeue: true}
		}
	}()
	if !mi.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, mi)
	}
	if mi.Spec.Suspend {
		log.FromContext(ctx).V(1).Info("suspended; nothing changes")
		return ctrl.Result{}, nil
	}
	if controllerutil.AddFinalizer(mi, Finalizer) {
		// Persist the finalizer before anything is installed.
		return ctrl.Result{Requeue: true}, nil
	}
	if bg, err := incident.ForMeshInstall(ctx, r.Client, mi); err != nil {
		return computeStatus(mi, ctrl.Result{}, err)
	} else if incident.DetachesInjection(bg) {
		// Helm drift repair, upgrades and tag moves would re-attach the
		// injector webhooks the BreakGlass neutralised.
		incident.MarkHeld(&mi.Status.CommonStatus, mi.Generation, bg, "installs, upgrades, migration and webhook repair are held")
		return ctrl.Result{}, nil
	}
	res, err := r.reconcile(ctx, mi)
	return computeStatus(mi, res, err)
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
