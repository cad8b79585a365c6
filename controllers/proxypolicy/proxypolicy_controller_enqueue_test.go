package proxypolicy

import (
	"slices"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestWorkloadEventsEnqueueOnlySelectingPolicies checks that a workload's
// event (a Deployment's status changes with every pod it rolls) reconciles
// only the ProxyPolicies whose selector matches its pod template before
// or after the change and the namespace-wide ones, not every ProxyPolicy
// of the namespace.
func TestWorkloadEventsEnqueueOnlySelectingPolicies(t *testing.T) {
	c := testenv.NewClient(t, env.Cfg(t))
	ns := istioNamespace(t, c)
	for _, app := range []string{"web", "db", "cache"} {
		must(t, c.Create(ctx, policy(ns, app, app)))
	}
	must(t, c.Create(ctx, policy(ns, "everything", "")))
	web := deployment(ns, "web", nil)
	got := queued(t, selecting(c, &meshv1alpha1.ProxyPolicyList{}), func(h handler.EventHandler, q queue) {
		h.Create(ctx, event.CreateEvent{Object: web}, q)
	})
	if want := []string{"everything", "web"}; !slices.Equal(got, want) {
		t.Errorf("Deployment web created: enqueued %v, want %v", got, want)
	}
	moved := web.DeepCopy()
	moved.Spec.Template.Labels = map[string]string{"app": "db"}
	got = queued(t, selecting(c, &meshv1alpha1.ProxyPolicyList{}), func(h handler.EventHandler, q queue) {
		h.Update(ctx, event.UpdateEvent{ObjectOld: web, ObjectNew: moved}, q)
	})
	if want := []string{"db", "everything", "web"}; !slices.Equal(got, want) {
		t.Errorf("Deployment web relabelled app=db: enqueued %v, want %v", got, want)
	}
}

// TestEgressEventsEnqueueOnlyScopedContenders checks that an EgressPolicy's
// event reconciles only the ProxyPolicies with an egressScope whose
// selector may share a workload with it, and those held by a Conflict.
func TestEgressEventsEnqueueOnlyScopedContenders(t *testing.T) {
	c := testenv.NewClient(t, env.Cfg(t))
	ns := istioNamespace(t, c)
	scoped := func(name, app string) *meshv1alpha1.ProxyPolicy {
		p := policy(ns, name, app)
		p.Spec.EgressScope = &meshv1alpha1.ProxyEgressScope{Hosts: []string{"./*"}}
		must(t, c.Create(ctx, p))
		return p
	}
	scoped("web-scoped", "web")
	scoped("db-scoped", "db")
	must(t, c.Create(ctx, policy(ns, "web", "web"))) // no egressScope: never contends with an EgressPolicy
	held := scoped("held", "cache")
	apimeta.SetStatusCondition(&held.Status.Conditions, metav1.Condition{Type: meshv1alpha1.StalledCondition, Status: metav1.ConditionTrue,
		Reason: meshv1alpha1.ConflictReason, Message: "held"})
	must(t, c.Status().Update(ctx, held))
	e := &meshv1alpha1.EgressPolicy{ObjectMeta: metav1.ObjectMeta{Name: "egress", Namespace: ns},
		Spec: meshv1alpha1.EgressPolicySpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	got := queued(t, egressContenders(c), func(h handler.EventHandler, q queue) {
		h.Create(ctx, event.CreateEvent{Object: e}, q)
	})
	if want := []string{"held", "web-scoped"}; !slices.Equal(got, want) {
		t.Errorf("EgressPolicy for app=web created: enqueued %v, want %v", got, want)
	}
}

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// queued returns the sorted names send enqueues through h.
func queued(t *testing.T, h handler.EventHandler, send func(h handler.EventHandler, q queue)) []string {
	t.Helper()
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	send(h, q)
	var names []string
	for q.Len() > 0 {
		r, _ := q.Get()
		names = append(names, r.Name)
		q.Done(r)
	}
	slices.Sort(names)
	return names
}
