package zerotrustpolicy

import (
	"slices"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/overlap"
	"github.com/meshplane/meshplane/test/testenv"
)

// TestPolicyEventsEnqueueOnlyContenders checks that a ZeroTrustPolicy's
// event re-checks only the policies it can block or free — those whose
// selectors may share a workload with it under another mode (before or
// after the change) and those held by a Conflict — not every policy of
// the namespace: a thousand policies with disjoint selectors reconciled
// each other a million times while they were created.
func TestPolicyEventsEnqueueOnlyContenders(t *testing.T) {
	c := testenv.NewClient(t, env.Cfg(t))
	ns := testenv.Namespace(t, c, nil)
	mk := func(name, app string, action meshv1alpha1.PolicyAction) *meshv1alpha1.ZeroTrustPolicy {
		p := &meshv1alpha1.ZeroTrustPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: meshv1alpha1.ZeroTrustPolicySpec{DefaultAction: action,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}}
		testenv.Must(t, c.Create(ctx, p))
		return p
	}
	deny := meshv1alpha1.ActionDeny
	a := mk("a", "a", deny)
	mk("a-allow", "a", meshv1alpha1.ActionAllow) // conflicts with a
	mk("a-deny", "a", deny)                      // composes with a
	mk("b-allow", "b", meshv1alpha1.ActionAllow) // conflicts with a only once a selects app=b
	held := mk("held", "c", deny)                // disjoint, but held by a Conflict
	apimeta.SetStatusCondition(&held.Status.Conditions, metav1.Condition{Type: meshv1alpha1.StalledCondition, Status: metav1.ConditionTrue,
		Reason: meshv1alpha1.ConflictReason, Message: "held"})
	testenv.Must(t, c.Status().Update(ctx, held))
	for i := range 5 {
		mk("other-"+string(rune('0'+i)), "other-"+string(rune('0'+i)), meshv1alpha1.ActionAllow)
	}
	h := overlap.EnqueuePolicies(c)
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
		h.Create(ctx, event.CreateEvent{Object: a}, q)
	})
	if want := []string{"a-allow", "held"}; !slices.Equal(got, want) {
		t.Errorf("policy a created: enqueued %v, want %v", got, want)
	}
	moved := a.DeepCopy()
	moved.Spec.Selector.MatchLabels["app"] = "b"
	got = queued(func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		h.Update(ctx, event.UpdateEvent{ObjectOld: a, ObjectNew: moved}, q)
	})
	if want := []string{"a-allow", "b-allow", "held"}; !slices.Equal(got, want) {
		t.Errorf("policy a moved from app=a to app=b: enqueued %v, want %v", got, want)
	}
	got = queued(func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		h.Delete(ctx, event.DeleteEvent{Object: mk("lone", "lone", deny)}, q)
	})
	if want := []string{"held"}; !slices.Equal(got, want) {
		t.Errorf("a disjoint policy deleted: enqueued %v, want %v", got, want)
	}
}
