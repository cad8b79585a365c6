package outputs

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/status"
)

// HeldBy returns the BreakGlass that relaxed the policies of namespace ns
// on provider (the mesh an object was last translated for), or nil: while
// one holds, the object's outputs are relaxed and recorded for its restore,
// so the object applies nothing (re-applying would undo the relaxation).
func (d *Deps) HeldBy(ctx context.Context, ns string, provider meshv1alpha1.Provider) (*meshv1alpha1.BreakGlass, error) {
	bg, err := incident.ForNamespace(ctx, d.Client, ns)
	if err != nil || !incident.RelaxesPolicies(bg) || !incident.Covers(bg, provider) {
		return nil, err
	}
	return bg, nil
}

// HoldStatus marks st held by bg (BreakGlassActive, Ready=False) and
// returns the summary that leaves the rest of the status as it was, or
// clears the mark and returns false when bg is nil.
func HoldStatus(st *meshv1alpha1.CommonStatus, gen int64, bg *meshv1alpha1.BreakGlass, what string) (status.Summary, bool) {
	if bg == nil {
		incident.ClearHeld(st)
		return status.Summary{}, false
	}
	incident.MarkHeld(st, gen, bg, what)
	return status.Summary{State: status.Custom}, true
}

// PruneOnDelete prunes refs, the outputs of a deleted owner the garbage
// collector does not delete (cluster-scoped outputs, shared fields), then
// removes finalizer; nothing when the owner does not carry it.
func (d *Deps) PruneOnDelete(ctx context.Context, owner apply.Owner, finalizer string, refs []meshv1alpha1.ObjectReference) error {
	obj := owner.Object
	if !controllerutil.ContainsFinalizer(obj, finalizer) {
		return nil
	}
	pruned, err := d.Applier.Prune(ctx, owner, refs)
	if err != nil {
		return err
	}
	if pruned.Wrote() {
		d.Events.Eventf(obj, nil, corev1.EventTypeNormal, "Pruned", "Delete", "%s", pruned)
	}
	controllerutil.RemoveFinalizer(obj, finalizer)
	return nil
}
