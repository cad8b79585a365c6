// Package compose carries a ResiliencePolicy's route-level fields
// (retries, request timeout, faults) on the route a TrafficSplit or a
// Canary writes for the same Service, so a mesh that merges one route per
// host (Istio: one VirtualService) gets one route carrying both. The
// TrafficSplit and Canary controllers call Resilience on their translated
// outputs; the ResiliencePolicy controller then writes no route of its
// own (mesh.ResilienceInput.ComposedWith) and removes composed routes
// whose route owner is gone (Orphans).
//
// Ownership: a composed route is owned by both objects. Its controller
// owner reference, ownership labels and inventory are the route owner's
// (only it writes and prunes the route); it also carries a plain owner
// reference to the ResiliencePolicy. Deleting the policy recomposes the
// route without the policy's fields and without the reference; deleting
// the route owner deletes the route (its own prune or finalizer; the
// garbage collector keeps an object while another owner lives, so the
// policy deletes a route whose controller owner is gone before it writes
// its own).
//
// Transition: a policy that had its own route when a TrafficSplit or
// Canary appears keeps it until its controller prunes it; the route owner
// waits for that (outcome.Wait) before writing the composed route, so a
// watcher never sees two routes for the host at once. For a moment the
// host has none (the Service's default routing).
//
// Trade-offs:
//   - The wait reads the policy's inventory and the cache: a route the
//     policy created a moment ago that neither shows yet is not waited for.
//   - Which objects are the route is found by comparison: the outputs the
//     mesh's RouteComposer changed. A policy whose fields a BreakGlass
//     relaxes away changes nothing and is then not an owner.
package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/overlap"
	"github.com/meshplane/meshplane/internal/ownership"
)

// PolicyKind is the ResiliencePolicy's kind in owner references and
// ownership labels.
const PolicyKind = "ResiliencePolicy"

// OwnRouteWait is how long a route owner waits before looking again for
// the policy's own route to be gone (its status change also wakes it).
const OwnRouteWait = 500 * time.Millisecond

// Route is the TrafficSplit or Canary whose translated route is composed.
type Route struct {
	// Owner is the TrafficSplit or Canary.
	Owner client.Object
	// Service is the Service it routes.
	Service string
	// GatewayAPI is true when the route is a Gateway API HTTPRoute, which
	// does not carry a policy's fields.
	GatewayAPI bool
}

// Resilience sets on the route in objs the route-level fields of the
// ResiliencePolicy that targets the route's Service: a policy for another
// provider, one the mesh cannot fully enforce, or one that loses a
// Conflict is left out (it reports why). The same field set by both is a
// Conflict on the route owner when it is the younger. While a BreakGlass
// relaxes policies, faults are left out. The composed objects get an
// owner reference to the policy; while the policy's own route still
// exists the result is an outcome.Wait.
func Resilience(ctx context.Context, c client.Client, reg *mesh.Registry, route Route, scope mesh.Scope, bg *meshv1alpha1.BreakGlass, objs []client.Object) ([]client.Object, error) {
	provider := scope.Install.Provider
	composer, ok := reg.RouteComposer(provider)
	if !ok || route.GatewayAPI {
		return objs, nil
	}
	rp, err := policyFor(ctx, c, reg, route, scope)
	if err != nil || rp == nil {
		return objs, err
	}
	kind := kindOf(route.Owner)
	if clash := mesh.ClashingRouteFields(overlap.RouteFieldsOf(route.Owner), &rp.Spec); len(clash) > 0 {
		return nil, outcome.Conflict("ResiliencePolicy %s already sets %v for Service %s; one route cannot carry two values — "+
			"remove the field from this %s or from the policy (re-checked when it changes or goes away)", rp.Name, clash, route.Service, kind)
	}
	effective := rp
	if incident.RelaxesPolicies(bg) && incident.Covers(bg, provider) {
		effective = incident.RelaxResilience(rp)
	}
	before := make([]client.Object, len(objs))
	for i, o := range objs {
		before[i] = o.DeepCopyObject().(client.Object)
	}
	composed, err := composer.ComposeRoute(objs, effective)
	if err != nil {
		return nil, err
	}
	var kinds []schema.GroupVersionKind
	for i, o := range composed {
		if i < len(before) && same(before[i], o) {
			continue
		}
		o.SetOwnerReferences(append(o.GetOwnerReferences(), OwnerReference(rp)))
		gvk, err := apiutil.GVKForObject(o, c.Scheme())
		if err != nil {
			return nil, err
		}
		if !slices.Contains(kinds, gvk) {
			kinds = append(kinds, gvk)
		}
	}
	if err := waitOwnRoute(ctx, c, rp, kinds); err != nil {
		return nil, err
	}
	return composed, nil
}

// policyFor returns the ResiliencePolicy whose route-level fields the
// route carries, nil when none.
func policyFor(ctx context.Context, c client.Client, reg *mesh.Registry, route Route, scope mesh.Scope) (*meshv1alpha1.ResiliencePolicy, error) {
	provider := scope.Install.Provider
	t, err := reg.ResilienceTranslator(provider)
	if err != nil {
		return nil, nil //nolint:nilerr // a mesh without resilience composes nothing
	}
	var list meshv1alpha1.ResiliencePolicyList
	if err := c.List(ctx, &list, client.InNamespace(route.Owner.GetNamespace())); err != nil {
		return nil, fmt.Errorf("listing the namespace's ResiliencePolicies: %w", err)
	}
	for i := range list.Items {
		rp := &list.Items[i]
		if rp.Spec.TargetRef.Name != route.Service || !rp.DeletionTimestamp.IsZero() || !mesh.HasRouteFields(&rp.Spec) ||
			(rp.Spec.Provider != "" && rp.Spec.Provider != provider) || mesh.DecideResilience(t, scope, &rp.Spec) != nil {
			continue
		}
		if overlap.Resilience(ctx, c, rp) != nil {
			// Loses to another policy or to this route: it reports the
			// Conflict and is not composed.
			continue
		}
		return rp, nil
	}
	return nil, nil
}

// OwnerReference is the plain (not controller) owner reference a composed
// route carries to the policy.
func OwnerReference(rp *meshv1alpha1.ResiliencePolicy) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: meshv1alpha1.GroupVersion.String(), Kind: PolicyKind, Name: rp.Name, UID: rp.UID}
}

// waitOwnRoute returns an outcome.Wait while the policy still has a route
// of its own of one of kinds: its inventory lists one, or the cache holds
// one with its ownership label.
func waitOwnRoute(ctx context.Context, c client.Client, rp *meshv1alpha1.ResiliencePolicy, kinds []schema.GroupVersionKind) error {
	for _, gvk := range kinds {
		own := slices.ContainsFunc(rp.Status.Inventory, func(ref meshv1alpha1.ObjectReference) bool {
			return ref.APIVersion == gvk.GroupVersion().String() && ref.Kind == gvk.Kind
		})
		if !own {
			n, err := countOwned(ctx, c, gvk, rp.Namespace, ownership.OwnerValue(PolicyKind, rp.Namespace, rp.Name))
			if err != nil {
				return err
			}
			own = n > 0
		}
		if own {
			return outcome.Wait(meshv1alpha1.WaitingReason, OwnRouteWait,
				"waiting for ResiliencePolicy %s to remove its own %s so Service %s has one route, which will carry the policy's retries, timeouts and faults",
				rp.Name, gvk.Kind, rp.Spec.TargetRef.Name)
		}
	}
	return nil
}

// countOwned counts the objects of kind gvk in namespace ns labelled as
// owned by owner, through the cache (typed, as the controllers watch them).
func countOwned(ctx context.Context, c client.Client, gvk schema.GroupVersionKind, ns, owner string) (int, error) {
	obj, err := c.Scheme().New(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err != nil {
		return 0, nil //nolint:nilerr // a kind without a typed list is not a route kind
	}
	list, ok := obj.(client.ObjectList)
	if !ok {
		return 0, nil
	}
	if err := c.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{ownership.OwnerLabel: owner}); err != nil {
		return 0, fmt.Errorf("listing %s of namespace %s: %w", gvk.Kind, ns, err)
	}
	return apimeta.LenList(list), nil
}

func kindOf(o client.Object) string {
	if _, ok := o.(*meshv1alpha1.Canary); ok {
		return "Canary"
	}
	return "TrafficSplit"
}

// same reports whether two objects serialize alike (protobuf-backed kinds
// are not compared with reflection).
func same(a, b client.Object) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
