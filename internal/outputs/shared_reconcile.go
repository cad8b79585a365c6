package outputs

import (
	"context"
	"errors"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
)

// ReconcileShared is Reconcile for a kind whose outputs may include fields
// of shared objects (SharedFieldsFinalizer): an object being deleted
// releases them (ReleaseShared with record's), the others run phases,
// which get the patcher to record shared fields before writing them
// (RecordShared).
func ReconcileShared[T status.Object, R any](ctx context.Context, d *Deps, key client.ObjectKey, obj T, kind string, record func(T) SharedRecord,
	phases func(context.Context, T, *status.Patcher) (R, error), outcome func(R) Outcome, setStatus func(T, R, error) status.Summary) (ctrl.Result, error) {
	patcher, err := status.Begin(ctx, d.Client, d.Client, key, obj)
	if patcher == nil {
		return ctrl.Result{}, err
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		err := d.ReleaseShared(ctx, obj, kind, record(obj))
		return ctrl.Result{}, errors.Join(err, patcher.Patch(ctx, obj))
	}
	out, err := phases(ctx, obj, patcher)
	sum := setStatus(obj, out, err)
	o := outcome(out)
	d.Record(ctx, obj, o.Provider, o.Applied, err)
	return status.Finish(ctx, patcher, obj, sum, err, meshv1alpha1.ApplyFailedReason)
}
