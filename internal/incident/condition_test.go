package incident

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
)

func TestCovers(t *testing.T) {
	bg := func(target, observed meshv1alpha1.Provider, phase meshv1alpha1.BreakGlassPhase) *meshv1alpha1.BreakGlass {
		b := &meshv1alpha1.BreakGlass{}
		b.Spec.Target.Provider = target
		b.Status.Provider, b.Status.Phase = observed, phase
		return b
	}
	cases := []struct {
		name     string
		bg       *meshv1alpha1.BreakGlass
		provider meshv1alpha1.Provider
		want     bool
	}{
		{"same mesh", bg(meshv1alpha1.ProviderIstio, meshv1alpha1.ProviderIstio, meshv1alpha1.BreakGlassEngaged), meshv1alpha1.ProviderIstio, true},
		{"another mesh in the namespace", bg(meshv1alpha1.ProviderIstio, meshv1alpha1.ProviderIstio, meshv1alpha1.BreakGlassEngaged), meshv1alpha1.ProviderLinkerd, false},
		{"target by MeshInstall, provider observed", bg("", meshv1alpha1.ProviderLinkerd, meshv1alpha1.BreakGlassEngaging), meshv1alpha1.ProviderLinkerd, true},
		{"provider not resolved yet", bg("", "", meshv1alpha1.BreakGlassPending), meshv1alpha1.ProviderCilium, true},
		{"object's provider unknown", bg(meshv1alpha1.ProviderIstio, meshv1alpha1.ProviderIstio, meshv1alpha1.BreakGlassEngaged), "", true},
		{"restored", bg(meshv1alpha1.ProviderIstio, meshv1alpha1.ProviderIstio, meshv1alpha1.BreakGlassRestored), meshv1alpha1.ProviderIstio, false},
		{"nil", nil, meshv1alpha1.ProviderIstio, false},
	}
	for _, tc := range cases {
		if got := Covers(tc.bg, tc.provider); got != tc.want {
			t.Errorf("%s: Covers = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestMarkHeldAndClear(t *testing.T) {
	st := &meshv1alpha1.CommonStatus{}
	status.MarkReconciling(st, 3, meshv1alpha1.ProgressingReason, "working")
	b := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "outage"}, Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod down"}}
	MarkHeld(st, 4, b, "traffic pinned")
	if st.ObservedGeneration != 4 {
		t.Errorf("observedGeneration = %d", st.ObservedGeneration)
	}
	a := status.Get(st, meshv1alpha1.BreakGlassActiveCondition)
	r := status.Get(st, meshv1alpha1.ReadyCondition)
	if a == nil || a.Status != metav1.ConditionTrue || a.Reason != meshv1alpha1.BreakGlassActiveReason ||
		a.Message != "traffic pinned: BreakGlass outage is active (istiod down); fields it relaxed are not re-applied until it is deleted and restored" {
		t.Errorf("BreakGlassActive = %+v", a)
	}
	if r == nil || r.Status != metav1.ConditionFalse || r.Reason != meshv1alpha1.BreakGlassActiveReason {
		t.Errorf("Ready = %+v", r)
	}
	if status.Get(st, meshv1alpha1.ReconcilingCondition) != nil || status.Get(st, meshv1alpha1.StalledCondition) != nil {
		t.Errorf("Reconciling/Stalled left: %+v", st.Conditions)
	}
	ClearHeld(st)
	if status.Get(st, meshv1alpha1.BreakGlassActiveCondition) != nil {
		t.Error("ClearHeld left the condition")
	}
}
