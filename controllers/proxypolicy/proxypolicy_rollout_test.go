package proxypolicy

import (
	"fmt"
	"testing"

	"k8s.io/utils/ptr"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

func ref(name string) meshv1alpha1.ObjectReference {
	return meshv1alpha1.ObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: name}
}

func wl(name string, ready bool, ann map[string]string) workload {
	return workload{ref: ref(name), annotations: ann, ready: ready, why: "not rolled out"}
}

func field(name, key string, prev *string) meshv1alpha1.SharedField {
	return meshv1alpha1.SharedField{Object: ref(name), Field: templateAnnotations + key + "]", Previous: prev}
}

// TestPlanRollout pins the rollout decisions: all at once, batches behind
// the health gate, pause, a changed value, a dropped annotation's previous
// value held until release.
func TestPlanRollout(t *testing.T) {
	want := map[string]string{"cpu": "100m"}
	done := map[string]string{"cpu": "100m"}
	for _, tc := range []struct {
		name    string
		want    map[string]string
		sel     []workload
		rec     []meshv1alpha1.SharedField
		rollout *meshv1alpha1.ProxyRollout
		// desired is "name=annotations" per workload written or held;
		// states "name:State[/rolledOut]".
		desired, states string
		pending         int
		waiting         string
	}{
		{name: "all at once", want: want, sel: []workload{wl("a", true, nil), wl("b", false, nil)},
			desired: "a=map[cpu:100m] b=map[cpu:100m]", states: "a:Applied b:Applied"},
		{name: "nothing to set touches nothing", want: nil, sel: []workload{wl("a", true, nil)}, desired: "", states: ""},
		{name: "configured and rolled out", want: want, sel: []workload{wl("a", true, done)},
			rec: []meshv1alpha1.SharedField{field("a", "cpu", nil)}, desired: "a=map[cpu:100m]", states: "a:Applied/rolledOut"},
		{name: "first batch", want: want, sel: []workload{wl("a", true, nil), wl("b", true, nil), wl("c", true, nil)},
			rollout: &meshv1alpha1.ProxyRollout{BatchSize: ptr.To[int32](2)},
			desired: "a=map[cpu:100m] b=map[cpu:100m]", states: "a:Applied b:Applied c:Pending", pending: 1},
		{name: "gate closed while a configured workload rolls out", want: want, sel: []workload{wl("a", false, done), wl("b", true, nil)},
			rec: []meshv1alpha1.SharedField{field("a", "cpu", nil)}, rollout: &meshv1alpha1.ProxyRollout{BatchSize: ptr.To[int32](1)},
			desired: "a=map[cpu:100m]", states: "a:Applied b:Pending", pending: 1, waiting: "Deployment a: not rolled out"},
		{name: "gate open", want: want, sel: []workload{wl("a", true, done), wl("b", true, nil)},
			rec: []meshv1alpha1.SharedField{field("a", "cpu", nil)}, rollout: &meshv1alpha1.ProxyRollout{BatchSize: ptr.To[int32](1)},
			desired: "a=map[cpu:100m] b=map[cpu:100m]", states: "a:Applied/rolledOut b:Applied"},
		{name: "paused holds a changed value at the live one", want: map[string]string{"cpu": "200m"}, sel: []workload{wl("a", true, done), wl("b", true, nil)},
			rec: []meshv1alpha1.SharedField{field("a", "cpu", nil)}, rollout: &meshv1alpha1.ProxyRollout{Paused: true},
			desired: "a=map[cpu:100m]", states: "a:Pending b:Pending", pending: 2},
		{name: "a dropped annotation keeps its previous value until release", want: map[string]string{"mem": "1Gi"},
			sel: []workload{wl("a", true, map[string]string{"cpu": "100m"})},
			rec: []meshv1alpha1.SharedField{field("a", "cpu", ptr.To("50m"))}, desired: "a=map[cpu:50m mem:1Gi]", states: "a:Applied"},
		{name: "a dropped annotation that was absent is removed", want: map[string]string{"mem": "1Gi"},
			sel: []workload{wl("a", true, map[string]string{"cpu": "100m", "mem": "1Gi"})},
			rec: []meshv1alpha1.SharedField{field("a", "cpu", nil), field("a", "mem", nil)}, desired: "a=map[mem:1Gi]", states: "a:Applied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := planRollout(tc.want, tc.sel, recordsOf(tc.rec), tc.rollout)
			desired, states := "", ""
			for _, w := range tc.sel {
				if d, ok := plan.desired[w.ref]; ok {
					desired += fmt.Sprintf(" %s=%v", w.ref.Name, d)
				}
			}
			for _, s := range plan.states {
				states += " " + s.Name + ":" + string(s.State)
				if s.RolledOut {
					states += "/rolledOut"
				}
			}
			if got := trim(desired); got != tc.desired {
				t.Errorf("desired %q, want %q", got, tc.desired)
			}
			if got := trim(states); got != tc.states {
				t.Errorf("states %q, want %q", got, tc.states)
			}
			if plan.pending != tc.pending || plan.waitingFor != tc.waiting {
				t.Errorf("pending %d waiting %q, want %d %q", plan.pending, plan.waitingFor, tc.pending, tc.waiting)
			}
		})
	}
}

func trim(s string) string {
	if s != "" {
		return s[1:]
	}
	return s
}
