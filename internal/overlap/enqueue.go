package overlap

import (
	"context"
	"reflect"
	"slices"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outputs"
)

// EnqueueRoutes enqueues the objects of list's kind (TrafficSplits or
// Canaries) in the namespace of a route's event that route the Service the
// route routed before or routes after the change: only they can have been
// blocked or freed by it (routes of other Services never contend, see
// Route). Enqueuing the whole namespace would reconcile every route of it
// on every change: with a thousand TrafficSplits in one namespace, a thousand
// reconciles per change.
func EnqueueRoutes(c client.Reader, list client.ObjectList) handler.EventHandler {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	add := func(ctx context.Context, q queue, objs ...client.Object) {
		services := map[string]bool{}
		for _, o := range objs {
			if _, svc, ok := routedService(o); ok {
				services[svc] = true
			}
		}
		// The route itself is its own controller's For() event: enqueued
		// twice, it would run again on a cache that may not hold the status
		// it just wrote (a status Conflict and a retry).
		self := objs[0]
		keep := func(o client.Object) bool {
			if reflect.TypeOf(o) == reflect.TypeOf(self) && o.GetName() == self.GetName() {
				return false
			}
			_, svc, ok := routedService(o)
			return ok && services[svc]
		}
		for _, r := range outputs.Requests(ctx, c, list, objs[0].GetNamespace(), keep) {
			q.Add(r)
		}
	}
	return OnObjects(add)
}

// EnqueuePolicies enqueues, for a ZeroTrustPolicy's event, the policies of
// its namespace the change can block or free: those that conflict with
// the policy's spec before or after the change (PoliciesConflict), and
// those held by a Conflict now (Stalled, reason Conflict: a winner that
// changed or went away, or a namespace-wide mesh policy given up, may
// free them). A policy in force that does not conflict with the changed
// one cannot be displaced by it (the one already holding a namespace-wide
// mesh policy keeps it), so it is left alone: with a thousand policies of
// disjoint selectors in one namespace, enqueuing the namespace reconciled every
// one of them for every policy created. A Conflict missed here (the
// status not yet in the cache) is re-checked after outcome.ConflictRetry.
func EnqueuePolicies(c client.Reader) handler.EventHandler {
	return EnqueueContenders(c, &meshv1alpha1.ZeroTrustPolicyList{}, PoliciesConflict,
		func(p *meshv1alpha1.ZeroTrustPolicy) *meshv1alpha1.CommonStatus { return &p.Status.CommonStatus })
}

// EnqueueContenders is EnqueuePolicies for any kind whose objects contend
// pairwise within a namespace (ProxyPolicy, EgressPolicy, TelemetryPolicy):
// for an event of a C, the Ts of its namespace that conflict with it
// before or after the change, and those held by a Conflict now; never the
// event's own object (its controller's For() event reconciles it).
func EnqueueContenders[C, T client.Object](c client.Reader, list client.ObjectList, conflict func(changed C, other T) bool,
	status func(T) *meshv1alpha1.CommonStatus) handler.EventHandler {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	add := func(ctx context.Context, q queue, objs ...client.Object) {
		var changed []C
		for _, o := range objs {
			if p, ok := o.(C); ok {
				changed = append(changed, p)
			}
		}
		if len(changed) == 0 {
			return
		}
		self := objs[0]
		keep := func(o client.Object) bool {
			p, ok := o.(T)
			if !ok || reflect.TypeOf(o) == reflect.TypeOf(self) && o.GetName() == self.GetName() {
				return false
			}
			if heldByConflict(status(p)) {
				return true
			}
			return slices.ContainsFunc(changed, func(c C) bool { return conflict(c, p) })
		}
		for _, r := range outputs.Requests(ctx, c, list, self.GetNamespace(), keep) {
			q.Add(r)
		}
	}
	return OnObjects(add)
}

// heldByConflict reports whether st says its object is Stalled by a
// Conflict.
func heldByConflict(st *meshv1alpha1.CommonStatus) bool {
	c := apimeta.FindStatusCondition(st.Conditions, meshv1alpha1.StalledCondition)
	return c != nil && c.Status == metav1.ConditionTrue && c.Reason == meshv1alpha1.ConflictReason
}

// routedService is routeOf for any object: false for one that routes no
// Service.
func routedService(o client.Object) (contender, string, bool) {
	switch o.(type) {
	case *meshv1alpha1.TrafficSplit, *meshv1alpha1.Canary:
		self, svc, _ := routeOf(o)
		return self, svc, true
	}
	return contender{}, "", false
}

// OnObjects is an event handler that calls add with the object of every
// event (the old and the new one of an update).
func OnObjects(add func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], objs ...client.Object)) handler.EventHandler {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	return handler.Funcs{
		CreateFunc:  func(ctx context.Context, e event.CreateEvent, q queue) { add(ctx, q, e.Object) },
		UpdateFunc:  func(ctx context.Context, e event.UpdateEvent, q queue) { add(ctx, q, e.ObjectOld, e.ObjectNew) },
		DeleteFunc:  func(ctx context.Context, e event.DeleteEvent, q queue) { add(ctx, q, e.Object) },
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q queue) { add(ctx, q, e.Object) },
	}
}
