package meshrevision

import (
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

func TestSetStatus(t *testing.T) {
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "outage"}, Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod down"}}
	for _, tc := range []struct {
		name      string
		out       result
		err       error
		want      status.Summary
		wantPhase meshv1alpha1.MeshRevisionPhase
		wantHeld  bool
	}{
		{name: "ready", out: result{requeueAfter: 2 * time.Second},
			want: status.Summary{Message: "istiod 1.29.0 (revision 1-29-0) is Available; phase Ready", RequeueAfter: 2 * time.Second}, wantPhase: "Ready"},
		{name: "terminal error fails the phase", err: outcome.Stalled(meshv1alpha1.InvalidSpecReason, "bad"), want: status.Summary{}, wantPhase: "Failed"},
		{name: "transient error keeps the phase", err: errors.New("connection refused"), want: status.Summary{}, wantPhase: "Ready"},
		{name: "wait keeps the phase", err: outcome.Wait(meshv1alpha1.ComponentsNotReadyReason, 5*time.Second, "istiod"), want: status.Summary{}, wantPhase: "Ready"},
		{name: "held by a BreakGlass", out: result{heldBy: bg}, want: status.Summary{State: status.Custom}, wantPhase: "Ready", wantHeld: true},
		{name: "draining", out: result{deleting: true, message: "deletion held", requeueAfter: 5 * time.Second},
			want: status.Summary{State: status.Progressing, Reason: meshv1alpha1.DeletingReason, Message: "deletion held", RequeueAfter: 5 * time.Second}, wantPhase: "Ready"},
		{name: "orphaned", out: result{deleting: true}, want: status.Summary{State: status.Custom}, wantPhase: "Ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rv := &meshv1alpha1.MeshRevision{ObjectMeta: metav1.ObjectMeta{Name: "1-29-0", Generation: 2},
				Spec: meshv1alpha1.MeshRevisionSpec{Version: "1.29.0"}}
			rv.Status.Phase = "Ready"
			got := setStatus(rv, tc.out, tc.err)
			if got != tc.want {
				t.Fatalf("summary = %+v, want %+v", got, tc.want)
			}
			if rv.Status.Phase != tc.wantPhase {
				t.Fatalf("phase = %q, want %q", rv.Status.Phase, tc.wantPhase)
			}
			if held := status.IsTrue(&rv.Status.CommonStatus, meshv1alpha1.BreakGlassActiveCondition); held != tc.wantHeld {
				t.Fatalf("BreakGlassActive = %v, want %v", held, tc.wantHeld)
			}
		})
	}
}
