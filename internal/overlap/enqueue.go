package overlap

import (
	"context"

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
// Route). EnqueueNamespace would reconcile every route of the namespace on
// every change: with a thousand TrafficSplits in one namespace, a thousand
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
		keep := func(o client.Object) bool {
			_, svc, ok := routedService(o)
			return ok && services[svc]
		}
		for _, r := range outputs.Requests(ctx, c, list, objs[0].GetNamespace(), keep) {
			q.Add(r)
		}
	}
	return handler.Funcs{
		CreateFunc:  func(ctx context.Context, e event.CreateEvent, q queue) { add(ctx, q, e.Object) },
		UpdateFunc:  func(ctx context.Context, e event.UpdateEvent, q queue) { add(ctx, q, e.ObjectOld, e.ObjectNew) },
		DeleteFunc:  func(ctx context.Context, e event.DeleteEvent, q queue) { add(ctx, q, e.Object) },
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q queue) { add(ctx, q, e.Object) },
	}
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
