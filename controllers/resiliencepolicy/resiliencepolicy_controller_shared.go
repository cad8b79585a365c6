package resiliencepolicy

import (
	"context"
	"slices"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/status"
)

// Finalizer is set while the policy holds fields of its target Service
// (a mesh whose settings are Service annotations), so its deletion
// restores them.
const Finalizer = outputs.SharedFieldsFinalizer

// sharedKinds: a policy never creates a Service, so a Service among its
// outputs (a mesh whose settings are annotations of the target Service) is
// shared: only the fields given are applied, and they are restored when
// released.
var sharedKinds = []schema.GroupKind{{Kind: "Service"}}

// owner is the apply owner of rp.
func owner(rp *meshv1alpha1.ResiliencePolicy) apply.Owner {
	return apply.Owner{Object: rp, Kind: Kind, SharedFields: rp.Status.SharedFields, SharedKinds: sharedKinds}
}

// record points at rp's inventory and shared fields.
func record(rp *meshv1alpha1.ResiliencePolicy) outputs.SharedRecord {
	return outputs.SharedRecord{Inventory: &rp.Status.Inventory, Fields: &rp.Status.SharedFields, Kinds: sharedKinds}
}

// isShared reports whether an inventory entry is the target Service, whose
// fields are released rather than the object deleted (a policy never
// creates a Service).
func isShared(ref meshv1alpha1.ObjectReference) bool {
	return ref.APIVersion == "v1" && ref.Kind == "Service"
}

// applyShared applies objs for rp all or nothing. Before the first write
// of a Service field it persists the finalizer and the field's previous
// value (status.sharedFields), so a deletion or a crash in between still
// restores it; the finalizer stays exactly while the inventory holds a
// Service.
func (r *Reconciler) applyShared(ctx context.Context, rp *meshv1alpha1.ResiliencePolicy, objs []client.Object, patcher *status.Patcher) (apply.Result, error) {
	plan, err := r.Prepare(ctx, owner(rp), objs, rp.Status.Inventory)
	if err != nil {
		return plan.Failed(), err
	}
	if slices.ContainsFunc(plan.Inventory(), isShared) {
		if err := outputs.RecordShared(ctx, rp, plan, patcher, record(rp)); err != nil {
			return plan.Failed(), err
		}
	}
	res, err := plan.Commit(ctx)
	if err == nil {
		if slices.ContainsFunc(res.Inventory, isShared) {
			controllerutil.AddFinalizer(rp, Finalizer)
		} else {
			controllerutil.RemoveFinalizer(rp, Finalizer)
		}
	}
	return res, err
}
