package canary

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// TestHeldIntervalsWriteNoStatus: an interval that changes nothing but
// lastAnalysisTime leaves the status as it was (the time is remembered
// and used by the next interval) until the status's time is
// AnalysisHeartbeat old; any other change writes the time with it.
func TestHeldIntervalsWriteNoStatus(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	mk := func(at time.Time, weight int32) *meshv1alpha1.Canary {
		ts := metav1.NewMicroTime(at)
		return &meshv1alpha1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "u1"},
			Status: meshv1alpha1.CanaryStatus{Phase: meshv1alpha1.CanaryPhaseWaitingPromotion, CanaryWeight: weight, LastAnalysisTime: &ts}}
	}
	for _, tc := range []struct {
		name        string
		after       time.Duration
		weight      int32
		wantWritten bool
	}{
		{"held interval", time.Second, 50, false},
		{"held, the status's time a heartbeat old", AnalysisHeartbeat, 50, true},
		{"weight changed", time.Second, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a analysed
			before := mk(t0, 50).Status
			cn := mk(t0.Add(tc.after), tc.weight)
			a.hold(cn, &before)
			written := cn.Status.LastAnalysisTime.Time
			if got := written.Equal(t0.Add(tc.after)); got != tc.wantWritten {
				t.Fatalf("status.lastAnalysisTime %s, written=%v, want written=%v", written, got, tc.wantWritten)
			}
			if got := a.last(cn, written); !got.Equal(t0.Add(tc.after)) {
				t.Errorf("next interval counted from %s, want %s", got, t0.Add(tc.after))
			}
			other := mk(t0, 50)
			other.UID = "u2" // the same name, re-created
			if got := a.last(other, t0); !got.Equal(t0) {
				t.Errorf("a re-created Canary counted from %s, want its status's %s", got, t0)
			}
		})
	}
}
