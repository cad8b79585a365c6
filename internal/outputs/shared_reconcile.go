package outputs

import (
	"context"
	"errors"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/status"
)

// ReconcileShared is Reconcile for a kind that also sets fields of shared
// objects (SharedFieldsFinalizer): an object being deleted releases them
// (restoring their previous values) and lets go; otherwise the phases run
// with the status patcher (ApplyShared persists the record before the
// first write), then the kind's status, the Event and one status patch.
func ReconcileShared[T status.Object, R any](ctx context.Context, d *Deps, key client.ObjectKey, obj T, kind string, rec func(T) SharedRecord,
	phases func(context.Context, T, *status.Patcher) (R, error), outcome func(R) Outcome, setStatus func(T, R, error) status.Summary) (ctrl.Result, error) {
	patcher, err := status.Begin(ctx, d.Client, d.Client, key, obj)
	if patcher == nil {
		return ctrl.Result{}, err
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		err := d.ReleaseShared(ctx, obj, kind, rec(obj))
		return ctrl.Result{}, errors.Join(err, patcher.Patch(ctx, obj))
	}
	out, err := phases(ctx, obj, patcher)
	sum := setStatus(obj, out, err)
	o := outcome(out)
	d.Record(ctx, obj, o.Provider, o.Applied, err)
	return status.Finish(ctx, patcher, obj, sum, err, meshv1alpha1.ApplyFailedReason)
}

// ApplyShared applies objs for obj all or nothing (PrepareToCommit, then Commit);
// the fields of shared objects among them are recorded with their
// previous values, with the finalizer that restores them, before the
// first write (RecordShared). The finalizer stays while fields are held.
func (d *Deps) ApplyShared(ctx context.Context, obj status.Object, kind string, rec SharedRecord, patcher *status.Patcher, objs []client.Object) (apply.Result, error) {
	plan, err := d.PrepareToCommit(ctx, apply.Owner{Object: obj, Kind: kind, SharedFields: *rec.Fields, SharedKinds: rec.Kinds}, objs, *rec.Inventory)
	if err != nil {
		return plan.Failed(), err
	}
	if err := RecordShared(ctx, obj, plan, patcher, rec); err != nil {
		return plan.Failed(), err
	}
	res, err := plan.Commit(ctx)
	if err == nil {
		if len(res.SharedFields) > 0 {
			controllerutil.AddFinalizer(obj, SharedFieldsFinalizer)
		} else {
			controllerutil.RemoveFinalizer(obj, SharedFieldsFinalizer)
		}
	}
	return res, err
}
