package outputs

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/status"
)

// SharedFieldsFinalizer is set on an object while its inventory holds
// fields of a shared object (a Namespace's annotation), so that its
// deletion releases them.
const SharedFieldsFinalizer = "meshplane.io/shared-fields"

// DeletionStarted passes the update that starts an object's deletion (its
// finalizer then releases shared fields).
var DeletionStarted = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
}}

// SharedRecord is an owner's record of what it wrote: its inventory and
// the fields of shared objects with their previous values.
type SharedRecord struct {
	// Inventory and Fields point into the owner's status.
	Inventory *[]meshv1alpha1.ObjectReference
	Fields    *[]meshv1alpha1.SharedField
	// Kinds are further shared kinds besides Namespace
	// (apply.Owner.SharedKinds): a ResiliencePolicy's target Service, a
	// ProxyPolicy's workloads.
	Kinds []schema.GroupKind
}

// shares reports whether an inventory entry is a shared object of the
// record: a Namespace or one of its Kinds.
func (rec SharedRecord) shares(ref meshv1alpha1.ObjectReference) bool {
	return IsSharedRef(ref) || isKindRef(ref, rec.Kinds)
}

func isKindRef(ref meshv1alpha1.ObjectReference, kinds []schema.GroupKind) bool {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && slices.Contains(kinds, gv.WithKind(ref.Kind).GroupKind())
}

// IsSharedRef reports whether an inventory entry is a shared object whose
// fields an owner sets (a Namespace), released rather than deleted.
func IsSharedRef(ref meshv1alpha1.ObjectReference) bool {
	return ref.APIVersion == "v1" && ref.Kind == "Namespace"
}

// ReleaseShared releases the shared fields obj holds (restoring their
// previous values), then its SharedFieldsFinalizer; owned outputs are
// left to the garbage collector. kind is obj's owner kind.
func (d *Deps) ReleaseShared(ctx context.Context, obj client.Object, kind string, rec SharedRecord) error {
	if !controllerutil.ContainsFinalizer(obj, SharedFieldsFinalizer) {
		return nil
	}
	var shared []meshv1alpha1.ObjectReference
	for _, ref := range *rec.Inventory {
		if rec.shares(ref) {
			shared = append(shared, ref)
		}
	}
	pruned, err := d.Applier.Prune(ctx, apply.Owner{Object: obj, Kind: kind, SharedFields: *rec.Fields, SharedKinds: rec.Kinds}, shared)
	if err != nil {
		return err
	}
	if pruned.Wrote() {
		d.Events.Eventf(obj, nil, corev1.EventTypeNormal, "Pruned", "Delete", "%s", pruned)
	}
	controllerutil.RemoveFinalizer(obj, SharedFieldsFinalizer)
	return nil
}

// RecordShared persists, before a plan writes a field of a shared object,
// the finalizer that releases it and the field's previous value (with the
// inventory): a deletion or a crash in between then still restores it.
func RecordShared(ctx context.Context, obj status.Object, plan *apply.Plan, patcher *status.Patcher, rec SharedRecord) error {
	shared := plan.SharedFields()
	if !plan.Writes() || len(shared) == 0 {
		return nil
	}
	added := controllerutil.AddFinalizer(obj, SharedFieldsFinalizer)
	if !added && equality.Semantic.DeepEqual(shared, *rec.Fields) {
		return nil
	}
	*rec.Fields, *rec.Inventory = shared, plan.Inventory()
	return patcher.Patch(ctx, obj)
}

// GuardShared sets SharedFieldsFinalizer on obj while inventory holds a
// shared object (a Namespace, or one of kinds), and removes it otherwise.
func GuardShared(obj client.Object, inventory []meshv1alpha1.ObjectReference, kinds ...schema.GroupKind) {
	if slices.ContainsFunc(inventory, func(ref meshv1alpha1.ObjectReference) bool { return IsSharedRef(ref) || isKindRef(ref, kinds) }) {
		controllerutil.AddFinalizer(obj, SharedFieldsFinalizer)
	} else {
		controllerutil.RemoveFinalizer(obj, SharedFieldsFinalizer)
	}
}
