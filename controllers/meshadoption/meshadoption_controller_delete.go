package meshadoption

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/meshplane/meshplane/internal/adoption"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/ownership"
)

// reconcileDelete leaves every namespace where it is (an enrolled
// namespace stays in the mesh: deleting the adoption accepts its result)
// and removes this adoption's records from them, then the finalizer.
func (r *Reconciler) reconcileDelete(ctx context.Context, s *scope) (result, error) {
	ma := s.ma
	if !controllerutil.ContainsFinalizer(ma, Finalizer) {
		return result{deleting: true}, nil
	}
	var list corev1.NamespaceList
	if err := r.List(ctx, &list); err != nil {
		return result{}, err
	}
	n := 0
	for i := range list.Items {
		ns := &list.Items[i]
		if ns.Annotations[adoption.OwnerAnnotation] != ma.Name && ns.Annotations[mesh.AuditHoldAnnotation] != ma.Name {
			continue
		}
		patch := client.MergeFromWithOptions(ns.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if ns.Annotations[adoption.OwnerAnnotation] == ma.Name {
			delete(ns.Annotations, adoption.OwnerAnnotation)
			delete(ns.Annotations, adoption.PriorAnnotation)
			// A move between meshes ends where the labels are: the
			// controllers keep only that mesh's outputs.
			delete(ns.Annotations, mesh.MigratingFromAnnotation)
			delete(ns.Annotations, mesh.MigratingToAnnotation)
			// So does a move from sidecar to ambient: only the form of
			// the mode the labels select stays.
			delete(ns.Annotations, mesh.DataPlaneFromAnnotation)
		}
		if ns.Annotations[mesh.AuditHoldAnnotation] == ma.Name {
			// The policies return to their own spec.enforcement.
			delete(ns.Annotations, mesh.AuditHoldAnnotation)
			delete(ns.Annotations, mesh.AuditHoldProviderAnnotation)
		}
		if err := r.Patch(ctx, ns, patch, client.FieldOwner(ownership.FieldManager)); err != nil {
			return result{}, fmt.Errorf("removing the adoption record from namespace %s: %w", ns.Name, client.IgnoreNotFound(err))
		}
		n++
	}
	if n > 0 {
		r.event(ma, "RecordsRemoved", "Delete", "removed the adoption records of %d namespaces; their labels stay as they are", n)
	}
	controllerutil.RemoveFinalizer(ma, Finalizer)
	return result{deleting: true}, nil
}
