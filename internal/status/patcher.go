package status

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Patcher remembers an object as it was read and later patches the
// differences. Create one right after the Get, before any change.
type Patcher struct {
	c      client.Client
	before client.Object
}

// NewPatcher snapshots obj.
func NewPatcher(c client.Client, obj client.Object) *Patcher {
	return &Patcher{c: c, before: obj.DeepCopyObject().(client.Object)}
}

// Patch sends the metadata and the status changes of obj since the
// snapshot, each as one merge patch, and nothing when nothing changed. A
// deleted object (NotFound) is not an error once its finalizers are gone.
//
// Both patches carry the snapshot's resourceVersion (an optimistic lock):
// when the object changed since it was read — a reconcile that read a
// stale cache, or another writer — the API server refuses the patch with
// Conflict (apierrors.IsConflict on the returned error) and nothing is
// written, so a stale reconcile never overwrites newer status. Finish
// turns that Conflict into a requeue. After a successful patch obj carries
// the new resourceVersion, so a reconcile may patch again (record first,
// act second) and Finish still applies.
func (p *Patcher) Patch(ctx context.Context, obj client.Object) error {
	return p.patch(ctx, obj, false)
}

// Commit is Patch for a reconcile about to act on what its status says
// (record first, act second): it always sends the status patch under the
// lock, even when nothing changed, so it returns nil only when obj's
// status is stored and obj was not stale. A Conflict means: do not act,
// requeue.
func (p *Patcher) Commit(ctx context.Context, obj client.Object) error {
	return p.patch(ctx, obj, true)
}

func (p *Patcher) patch(ctx context.Context, obj client.Object, force bool) error {
	metaChanged := !equality.Semantic.DeepEqual(p.before.GetLabels(), obj.GetLabels()) ||
		!equality.Semantic.DeepEqual(p.before.GetAnnotations(), obj.GetAnnotations()) ||
		!equality.Semantic.DeepEqual(p.before.GetFinalizers(), obj.GetFinalizers())
	statusChanged, err := StatusChanged(p.before, obj)
	if err != nil {
		return err
	}
	if statusChanged || force {
		s := obj.DeepCopyObject().(client.Object)
		if err := p.c.Status().Patch(ctx, s, locked(p.before)); err != nil {
			if client.IgnoreNotFound(err) == nil && len(obj.GetFinalizers()) == 0 {
				return nil
			}
			return fmt.Errorf("patching status of %s: %w", obj.GetName(), err)
		}
		// The metadata patch below is locked on the version the status
		// patch produced.
		p.before.SetResourceVersion(s.GetResourceVersion())
		obj.SetResourceVersion(s.GetResourceVersion())
	}
	if metaChanged {
		m := obj.DeepCopyObject().(client.Object)
		if err := p.c.Patch(ctx, m, locked(p.before)); err != nil {
			if client.IgnoreNotFound(err) == nil {
				return nil
			}
			return fmt.Errorf("patching metadata of %s: %w", obj.GetName(), err)
		}
		obj.SetResourceVersion(m.GetResourceVersion())
	}
	p.before = obj.DeepCopyObject().(client.Object)
	return nil
}

// locked is a merge patch from before that fails with Conflict unless the
// object is still at before's resourceVersion.
func locked(before client.Object) client.Patch {
	return client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
}

// StatusChanged reports whether the status field of two objects of the same
// type differs.
func StatusChanged(before, after runtime.Object) (bool, error) {
	b, err := runtime.DefaultUnstructuredConverter.ToUnstructured(before)
	if err != nil {
		return false, err
	}
	a, err := runtime.DefaultUnstructuredConverter.ToUnstructured(after)
	if err != nil {
		return false, err
	}
	return !equality.Semantic.DeepEqual(b["status"], a["status"]), nil
}
