package compose

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/ownership"
)

// CarriedBy returns the live route owner (TrafficSplit or Canary) whose
// composed route still carries rp (an object of one of kinds with an owner
// reference to rp, labelled as the route owner's), nil when none does. Composed routes whose route owner
// is gone or being deleted are deleted first: the garbage collector keeps
// an object while one owner lives, and the route goes with its route
// owner. The policy writes its own route only once none is left, so the
// host never has two.
func CarriedBy(ctx context.Context, c client.Client, rp *meshv1alpha1.ResiliencePolicy, kinds []client.Object) (client.Object, error) {
	own := ownership.OwnerValue(PolicyKind, rp.Namespace, rp.Name)
	for _, k := range kinds {
		items, err := listKind(ctx, c, k, rp.Namespace)
		if err != nil {
			return nil, err
		}
		for _, o := range items {
			if o.GetLabels()[ownership.OwnerLabel] == own || !refers(o, rp) || !composedRoute(o) {
				continue
			}
			owner, err := liveController(ctx, c, o)
			if err != nil {
				return nil, err
			}
			if owner != nil {
				return owner, nil
			}
			uid := o.GetUID()
			if err := c.Delete(ctx, o, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
				return nil, fmt.Errorf("deleting %s %s, the composed route of a route owner that is gone: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
			}
		}
	}
	return nil, nil
}

// composedRoute reports whether o is a route Meshplane composed: its
// controller is a TrafficSplit or Canary and its ownership labels name
// that owner. Anything else (a foreign object that points at the policy)
// is never touched.
func composedRoute(o client.Object) bool {
	ref := metav1.GetControllerOf(o)
	return ref != nil && (ref.Kind == "TrafficSplit" || ref.Kind == "Canary") && ref.APIVersion == meshv1alpha1.GroupVersion.String() &&
		ownership.IsOwnedBy(o, ref.Kind, o.GetNamespace(), ref.Name)
}

func refers(o client.Object, rp *meshv1alpha1.ResiliencePolicy) bool {
	for _, ref := range o.GetOwnerReferences() {
		if ref.UID == rp.UID {
			return true
		}
	}
	return false
}

// liveController returns o's controller owner when it exists and is not
// being deleted, nil otherwise.
func liveController(ctx context.Context, c client.Client, o client.Object) (client.Object, error) {
	ref := metav1.GetControllerOf(o)
	if ref == nil {
		return nil, nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, nil //nolint:nilerr // an unreadable reference names no live owner
	}
	obj, err := c.Scheme().New(gv.WithKind(ref.Kind))
	if err != nil {
		return nil, nil //nolint:nilerr // a kind Meshplane does not know is no route owner
	}
	owner, ok := obj.(client.Object)
	if !ok {
		return nil, nil
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: ref.Name}, owner); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	if owner.GetUID() != ref.UID || !owner.GetDeletionTimestamp().IsZero() {
		return nil, nil
	}
	return owner, nil
}

// listKind lists the objects of kind k in namespace ns through the cache,
// typed; kinds without a typed list are skipped.
func listKind(ctx context.Context, c client.Client, k client.Object, ns string) ([]client.Object, error) {
	gvk, err := apiutil.GVKForObject(k, c.Scheme())
	if err != nil {
		return nil, nil //nolint:nilerr // not a typed kind
	}
	obj, err := c.Scheme().New(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err != nil {
		return nil, nil //nolint:nilerr // not a typed kind
	}
	list, ok := obj.(client.ObjectList)
	if !ok {
		return nil, nil
	}
	if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing %s of namespace %s: %w", gvk.Kind, ns, err)
	}
	items, err := apimeta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	out := make([]client.Object, 0, len(items))
	for _, it := range items {
		if o, ok := it.(client.Object); ok {
			o.GetObjectKind().SetGroupVersionKind(gvk)
			out = append(out, o)
		}
	}
	return out, nil
}
