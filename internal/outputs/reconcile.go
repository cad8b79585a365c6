package outputs

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/status"
)

// Outcome is what a kind's phases report to Reconcile: the provider and
// what was applied (for the Event and the drift condition), and the
// kind's summary of its status (its setStatus).
type Outcome struct {
	// Provider is the mesh the object was translated for.
	Provider meshv1alpha1.Provider
	// Applied is the apply's result.
	Applied apply.Result
}

// Reconcile is the Reconcile of a kind whose outputs are owned (the
// garbage collector deletes them with the object, so no finalizer): read
// the object, stop when it is gone or being deleted, run the phases, set
// the kind's status from their result, record the Event and finish with
// one status patch. phases returns the kind's result R; outcome extracts
// the provider and the apply from it.
func Reconcile[T status.Object, R any](ctx context.Context, d *Deps, key client.ObjectKey, obj T,
	phases func(context.Context, T) (R, error), outcome func(R) Outcome, setStatus func(T, R, error) status.Summary) (ctrl.Result, error) {
	patcher, err := status.Begin(ctx, d.Client, d.Client, key, obj)
	if patcher == nil || !obj.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, err
	}
	out, err := phases(ctx, obj)
	sum := setStatus(obj, out, err)
	o := outcome(out)
	d.Record(ctx, obj, o.Provider, o.Applied, err)
	return status.Finish(ctx, patcher, obj, sum, err, meshv1alpha1.ApplyFailedReason)
}
