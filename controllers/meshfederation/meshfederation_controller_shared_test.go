package meshfederation

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/trust"
)

// TestRotationFromStatusRecovers covers the states a lost status patch
// leaves behind.
func TestRotationFromStatusRecovers(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	a, _ := trust.GenerateRoot(trust.RootOptions{}, now)
	b, _ := trust.GenerateRoot(trust.RootOptions{}, now)
	fed := func(phase meshv1alpha1.RotationPhase, old, new string) *meshv1alpha1.MeshFederation {
		f := &meshv1alpha1.MeshFederation{}
		ts := metav1.NewTime(now.Add(-time.Minute))
		f.Status.Rotation = &meshv1alpha1.RotationStatus{Phase: phase, OldRootFingerprint: old, NewRootFingerprint: new, PhaseStartTime: &ts}
		return f
	}
	for _, tc := range []struct {
		name      string
		fed       *meshv1alpha1.MeshFederation
		rt        *roots
		want      meshv1alpha1.RotationPhase
		stalled   bool
		wantStart bool
	}{
		{"idle", fed(meshv1alpha1.RotationIdle, a.Fingerprint(), ""), &roots{current: a}, meshv1alpha1.RotationIdle, false, false},
		{"next root without status resumes at AddingRoot", fed(meshv1alpha1.RotationCompleted, "", ""), &roots{current: a, next: b},
			meshv1alpha1.RotationAddingRoot, false, true},
		{"running", fed(meshv1alpha1.RotationWaitingForReload, a.Fingerprint(), b.Fingerprint()), &roots{current: a, next: b},
			meshv1alpha1.RotationWaitingForReload, false, false},
		{"completion stored only in the Secret", fed(meshv1alpha1.RotationRemovingOldRoot, a.Fingerprint(), b.Fingerprint()), &roots{current: b},
			meshv1alpha1.RotationIdle, false, false},
		{"abort stored only in the Secret", fed(meshv1alpha1.RotationAborting, a.Fingerprint(), b.Fingerprint()), &roots{current: a},
			meshv1alpha1.RotationIdle, false, false},
		{"Secret edited under a rotation", fed(meshv1alpha1.RotationSwitchingIntermediates, a.Fingerprint(), b.Fingerprint()), &roots{current: b},
			meshv1alpha1.RotationSwitchingIntermediates, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rot, err := rotationFromStatus(tc.fed.Name, tc.fed.Status.Rotation, tc.rt, now)
			if tc.stalled != outcome.IsTerminal(err) || (!tc.stalled && err != nil) {
				t.Fatalf("err = %v", err)
			}
			if rot.Phase != tc.want {
				t.Fatalf("phase %s, want %s", rot.Phase, tc.want)
			}
			if st := tc.fed.Status.Rotation.Phase; !tc.stalled && rot.Phase == meshv1alpha1.RotationIdle && st != meshv1alpha1.RotationIdle && st != meshv1alpha1.RotationCompleted {
				t.Fatalf("status left in phase %s", st)
			}
			if tc.wantStart && !rot.PhaseStart.Equal(now) {
				t.Fatalf("phase start %s", rot.PhaseStart)
			}
			if !tc.stalled && !rot.Active() && rot.Old != tc.rt.current.Fingerprint() {
				t.Fatalf("idle on %s, want the current root", rot.Old)
			}
		})
	}
}
