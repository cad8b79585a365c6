package meshadoption

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

func TestSetStatus(t *testing.T) {
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "inc"}, Spec: meshv1alpha1.BreakGlassSpec{Reason: "outage"}}
	for _, tc := range []struct {
		name      string
		out       result
		err       error
		phase     meshv1alpha1.MeshAdoptionPhase
		wantPhase meshv1alpha1.MeshAdoptionPhase
		state     status.State
		held      bool
	}{
		{name: "fresh, waiting", err: outcome.Wait(meshv1alpha1.WaitingReason, 0, "x"), wantPhase: meshv1alpha1.AdoptionPending},
		{name: "completed", out: result{message: "5 of 5"}, phase: meshv1alpha1.AdoptionCompleted, wantPhase: meshv1alpha1.AdoptionCompleted, state: status.Ready},
		{name: "gate failed", err: outcome.Stalled(meshv1alpha1.HealthGateFailedReason, "wave 1"), phase: meshv1alpha1.AdoptionEnrolling, wantPhase: meshv1alpha1.AdoptionHeld},
		{name: "other terminal", err: outcome.Stalled(meshv1alpha1.UnsupportedFeatureReason, "x"), phase: meshv1alpha1.AdoptionEnrolling, wantPhase: meshv1alpha1.AdoptionEnrolling},
		{name: "break glass", out: result{heldBy: bg}, phase: meshv1alpha1.AdoptionEnrolling, wantPhase: meshv1alpha1.AdoptionPaused, state: status.Custom, held: true},
		{name: "deleting", out: result{deleting: true}, phase: meshv1alpha1.AdoptionCompleted, wantPhase: meshv1alpha1.AdoptionCompleted, state: status.Custom},
	} {
		ma := &meshv1alpha1.MeshAdoption{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
		ma.Status.Phase = tc.phase
		sum := setStatus(ma, tc.out, tc.err)
		if ma.Status.Phase != tc.wantPhase || sum.State != tc.state {
			t.Errorf("%s: phase %s state %v, want %s %v", tc.name, ma.Status.Phase, sum.State, tc.wantPhase, tc.state)
		}
		if held := status.IsTrue(&ma.Status.CommonStatus, meshv1alpha1.BreakGlassActiveCondition); held != tc.held {
			t.Errorf("%s: BreakGlassActive %v", tc.name, held)
		}
		if tc.held && ma.Status.ObservedGeneration != 3 {
			t.Errorf("%s: observedGeneration %d", tc.name, ma.Status.ObservedGeneration)
		}
	}
}
