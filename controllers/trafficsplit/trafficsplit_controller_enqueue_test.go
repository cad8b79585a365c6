package trafficsplit

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/overlap"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestRouteEventsEnqueueOnlyTheirService checks that a TrafficSplit's
// event re-checks only the other routes of the Service it routed or
// routes (the only ones it can block or free; the route itself is its own
// For() event), not every TrafficSplit of the namespace:
// with a thousand splits in one namespace, every change reconciled a
// thousand.
func TestRouteEventsEnqueueOnlyTheirService(t *testing.T) {
	c := testenv.NewClient(t, env.Cfg(t))
	ns := testenv.Namespace(t, c, nil)
	mk := func(name, svc string) *meshv1alpha1.TrafficSplit {
		ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: meshv1alpha1.TrafficSplitSpec{Service: meshv1alpha1.ServiceReference{Name: svc},
				Backends: []meshv1alpha1.WeightedBackend{{Name: svc, Weight: 100}}}}
		testenv.Must(t, c.Create(ctx, ts))
		return ts
	}
	a1, _, _ := mk("a1", "a"), mk("a2", "a"), mk("b1", "b")
	h := overlap.EnqueueRoutes(c, &meshv1alpha1.TrafficSplitList{})
	queued := func(send func(q workqueue.TypedRateLimitingInterface[reconcile.Request])) []string {
		q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
		defer q.ShutDown()
		send(q)
		var names []string
		for q.Len() > 0 {
			r, _ := q.Get()
			names = append(names, r.Name)
			q.Done(r)
		}
		slices.Sort(names)
		return names
	}
	got := queued(func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		h.Create(ctx, event.CreateEvent{Object: a1}, q)
	})
	if want := []string{"a2"}; !slices.Equal(got, want) {
		t.Errorf("a route of Service a created: enqueued %v, want %v", got, want)
	}
	moved := a1.DeepCopy()
	moved.Spec.Service.Name = "b"
	got = queued(func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		h.Update(ctx, event.UpdateEvent{ObjectOld: a1, ObjectNew: moved}, q)
	})
	if want := []string{"a2", "b1"}; !slices.Equal(got, want) {
		t.Errorf("a route moved from Service a to b: enqueued %v, want %v", got, want)
	}
	got = queued(func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		h.Delete(ctx, event.DeleteEvent{Object: mk("c1", "c")}, q)
	})
	if len(got) != 0 {
		t.Errorf("the only route of Service c deleted: enqueued %v, want none (its own controller has the event)", got)
	}
}
