package trust

import (
	"testing"
	"time"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// TestRotationHoldsOnUnhealthyLinks: every phase but an abort is held
// while a link between members reports unhealthy, whatever else allows
// the advance; an abort goes on (back to the root the links worked with).
func TestRotationHoldsOnUnhealthyLinks(t *testing.T) {
	ok := Observation{Now: now.Add(time.Hour), Synced: true, WorkloadsRolled: true}
	bad := ok
	bad.LinksUnhealthy = "west → east: gateway down"
	for _, p := range []meshv1alpha1.RotationPhase{meshv1alpha1.RotationAddingRoot, meshv1alpha1.RotationWaitingForReload,
		meshv1alpha1.RotationSwitchingIntermediates, meshv1alpha1.RotationWaitingForWorkloads, meshv1alpha1.RotationRemovingOldRoot} {
		r := Rotation{Phase: p, Old: "a", New: "b", PhaseStart: now}
		n, why, _ := r.Step(bad)
		if n.Phase != p || why != "links between members not healthy: west → east: gateway down" {
			t.Errorf("%s: moved to %s (%q)", p, n.Phase, why)
		}
		if n, _, _ := r.Step(ok); n.Phase == p {
			t.Errorf("%s: held with healthy links", p)
		}
	}
	r := Rotation{Phase: meshv1alpha1.RotationAborting, Old: "a", New: "b", PhaseStart: now}
	if n, why, _ := r.Step(bad); n.Phase != meshv1alpha1.RotationIdle {
		t.Errorf("abort held by links: %s %q", n.Phase, why)
	}
}
