package canary

import (
	"context"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
)

// finalize hands the workload back before the Canary goes away.
//
// By default the primary keeps serving: the primary Deployment and the
// routed Service (which selects the primary's pods) are released — owner
// reference and ownership labels removed, so neither the garbage collector
// nor a prune deletes them — then the route and the -primary/-canary
// Services are deleted, and requests to the Service name reach the
// primary directly.
//
// With spec.revertOnDeletion the target is scaled back up first; once it
// is Available the routed Service is moved to the target's pods and
// released, the route is deleted, then the primary and the other Services.
// Until the target is Available, finalize returns an outcome.Wait.
func (r *Reconciler) finalize(ctx context.Context, cn *meshv1alpha1.Canary) error {
	if !controllerutil.ContainsFinalizer(cn, Finalizer) {
		return nil
	}
	cn.Status.Phase = meshv1alpha1.CanaryPhaseTerminating
	n := namesOf(cn)
	keep := []keepRef{{"Service", n.service}}
	if cn.Spec.RevertOnDeletion && len(cn.Status.Inventory) > 0 {
		kept, err := r.revert(ctx, cn, n)
		if err != nil {
			return err
		}
		keep = append(keep, kept...)
	} else {
		keep = append(keep, keepRef{"Deployment", n.primary})
	}
	// Release what stays, then delete the rest: routes first, so no route
	// ever points at a deleted Service.
	if err := r.release(ctx, cn, keep); err != nil {
		return err
	}
	var routes, rest []meshv1alpha1.ObjectReference
	for _, ref := range cn.Status.Inventory {
		switch {
		case !isWorkloadRef(ref):
			routes = append(routes, ref)
		case !slices.Contains(keep, keepRef{ref.Kind, ref.Name}):
			rest = append(rest, ref)
		}
	}
	owner := apply.Owner{Object: cn, Kind: Kind}
	if _, err := r.Applier.Prune(ctx, owner, routes); err != nil {
		return err
	}
	if _, err := r.Applier.Prune(ctx, owner, rest); err != nil {
		return err
	}
	r.Events.Eventf(cn, nil, corev1.EventTypeNormal, "Deleted", "Delete", "kept %v serving; removed the route and Meshplane's other outputs", keep)
	controllerutil.RemoveFinalizer(cn, Finalizer)
	return nil
}

// revert scales the target back up and, once it is Available, moves the
// routed Service to its pods. It returns what else to keep: the primary,
// when there is no target to revert to.
func (r *Reconciler) revert(ctx context.Context, cn *meshv1alpha1.Canary, n names) ([]keepRef, error) {
	target := &appsv1.Deployment{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: n.target}, target)
	switch {
	case apierrors.IsNotFound(err):
		// Nothing to revert to: keep the primary serving.
		return []keepRef{{"Deployment", n.primary}}, nil
	case err != nil:
		return nil, err
	}
	primary := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: n.primary}, primary); client.IgnoreNotFound(err) != nil {
		return nil, err
	}
	w := &world{n: n, target: target}
	if primary.Name != "" {
		w.primary = primary
	}
	var out result
	if err := r.scale(ctx, target, replicasOf(w), &out); err != nil {
		return nil, err
	}
	if !available(target) {
		return nil, outcome.Wait(meshv1alpha1.DeletingReason, 2*time.Second,
			"revertOnDeletion: waiting for Deployment %s to become Available before moving traffic to it", n.target)
	}
	return nil, r.moveService(ctx, cn, n.service, target.Spec.Selector.MatchLabels)
}

// isWorkloadRef reports whether an inventory entry is one of the Canary's
// own workload outputs (its Services and the primary Deployment); every
// other entry is a route the mesh's translator wrote.
func isWorkloadRef(ref meshv1alpha1.ObjectReference) bool {
	return (ref.APIVersion == "v1" && ref.Kind == "Service") || (ref.APIVersion == "apps/v1" && ref.Kind == "Deployment")
}

// keepRef names an output that outlives the Canary.
type keepRef struct{ kind, name string }

func (k keepRef) String() string { return k.kind + " " + k.name }

// release removes the owner reference and ownership labels from the kept
// Deployments and Services this Canary owns.
func (r *Reconciler) release(ctx context.Context, cn *meshv1alpha1.Canary, keep []keepRef) error {
	for _, k := range keep {
		var obj client.Object = &corev1.Service{}
		if k.kind == "Deployment" {
			obj = &appsv1.Deployment{}
		}
		name := k.name
		{
			if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: name}, obj); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return err
			}
			if !ownership.IsOwnedBy(obj, Kind, cn.Namespace, cn.Name) {
				continue
			}
			patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
			labels := obj.GetLabels()
			delete(labels, ownership.OwnerLabel)
			delete(labels, ownership.ManagedByLabel)
			obj.SetLabels(labels)
			obj.SetOwnerReferences(slices.DeleteFunc(obj.GetOwnerReferences(), func(o metav1.OwnerReference) bool { return o.UID == cn.UID }))
			if err := r.Client.Patch(ctx, obj, patch); err != nil {
				return fmt.Errorf("releasing %s: %w", name, err)
			}
		}
	}
	return nil
}

// moveService points the routed Service at sel.
func (r *Reconciler) moveService(ctx context.Context, cn *meshv1alpha1.Canary, name string, sel map[string]string) error {
	svc := &corev1.Service{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: cn.Namespace, Name: name}, svc); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !ownership.IsOwnedBy(svc, Kind, cn.Namespace, cn.Name) {
		return nil
	}
	patch := client.MergeFrom(svc.DeepCopy())
	svc.Spec.Selector = sel
	return r.Client.Patch(ctx, svc, patch)
}
