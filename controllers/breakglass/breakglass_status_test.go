package breakglass

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

// TestSetStatus: each phase and error gives its summary, Engaged and
// phase; the record's counts and times land in status.
func TestSetStatus(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	start := now.Add(-time.Minute)
	ns := incident.ObjectRef{Version: "v1", Kind: "Namespace", Name: "shop"}
	rec := &incident.Record{Provider: "Istio", StartTime: start.Format(time.RFC3339Nano), Namespaces: []string{"shop"},
		Changes: []incident.Change{{Step: incident.StepNamespaces, Object: ns, Path: []string{"metadata", "labels", "istio-injection"},
			Prior: incident.ValueOf("enabled"), Set: incident.Absent}}}
	conflict := incident.Conflict{Change: rec.Changes[0], Current: incident.ValueOf("disabled")}
	withRecord := func(o result) result {
		o.record, o.secret, o.secretNamespace, o.provider, o.now = rec, "breakglass-bg", "meshplane-system", meshv1alpha1.ProviderIstio, now
		return o
	}
	for _, tc := range []struct {
		name      string
		before    meshv1alpha1.BreakGlassPhase
		out       result
		err       error
		wantState status.State
		wantPhase meshv1alpha1.BreakGlassPhase
		// engaged is "Status/Reason" of the Engaged condition.
		engaged, reason, message string
	}{
		{name: "engaging", out: withRecord(result{phase: meshv1alpha1.BreakGlassEngaging, applied: 0, requeueAfter: time.Second}),
			wantState: status.Progressing, wantPhase: meshv1alpha1.BreakGlassEngaging, engaged: "False/Progressing",
			reason: meshv1alpha1.ProgressingReason, message: "engaging: 0 of 1 recorded change(s) in place"},
		{name: "engaged", out: withRecord(result{phase: meshv1alpha1.BreakGlassEngaged, applied: 1}),
			wantState: status.Ready, wantPhase: meshv1alpha1.BreakGlassEngaged, engaged: "True/Succeeded",
			message: "engaged for Istio (istiod is down): 1 of 1 recorded change(s) in place"},
		{name: "restoring", out: withRecord(result{phase: meshv1alpha1.BreakGlassRestoring, restoring: true}),
			wantState: status.Progressing, wantPhase: meshv1alpha1.BreakGlassRestoring, engaged: "False/Deleting",
			reason: meshv1alpha1.DeletingReason, message: "restoring: "},
		{name: "restored with a conflict kept", out: result{phase: meshv1alpha1.BreakGlassRestored, restoring: true, conflicts: []incident.Conflict{conflict}},
			wantState: status.Ready, wantPhase: meshv1alpha1.BreakGlassRestored, engaged: "False/Succeeded",
			message: "restored the recorded state; 1 field(s) changed by others"},
		{name: "terminal error after the record fails", before: meshv1alpha1.BreakGlassEngaging,
			out: withRecord(result{phase: meshv1alpha1.BreakGlassEngaging}), err: outcome.Stalled(meshv1alpha1.InvalidSpecReason, "bad"),
			wantState: status.Ready, wantPhase: meshv1alpha1.BreakGlassFailed, engaged: "False/InvalidSpec", message: "bad"},
		{name: "terminal error before the record stays Pending", out: result{}, err: outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason, "no MeshInstall"),
			wantState: status.Ready, wantPhase: meshv1alpha1.BreakGlassPending, engaged: "False/ReferenceNotFound", message: "no MeshInstall"},
		{name: "transient error while restoring keeps the phase", before: meshv1alpha1.BreakGlassRestoring,
			out: withRecord(result{phase: meshv1alpha1.BreakGlassRestoring, restoring: true}), err: errors.New("connection refused"),
			wantState: status.Ready, wantPhase: meshv1alpha1.BreakGlassRestoring, engaged: "False/ApplyFailed", message: "connection refused"},
		{name: "transient error with its own reason", out: result{}, err: outcome.Transient("ClusterUnreachable", errors.New("timeout")),
			wantState: status.Ready, wantPhase: meshv1alpha1.BreakGlassPending, engaged: "False/ClusterUnreachable", message: "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "bg", Generation: 3},
				Spec:   meshv1alpha1.BreakGlassSpec{Reason: "istiod is down", ExpiresAfter: &metav1.Duration{Duration: time.Hour}},
				Status: meshv1alpha1.BreakGlassStatus{Phase: tc.before}}
			sum := setStatus(bg, tc.out, tc.err)
			if tc.err == nil && (sum.State != tc.wantState || sum.Reason != tc.reason || !strings.HasPrefix(sum.Message, tc.message) ||
				sum.RequeueAfter != tc.out.requeueAfter) {
				t.Fatalf("summary %+v", sum)
			}
			if tc.err != nil && sum != (status.Summary{}) {
				t.Fatalf("summary %+v for an error (status.Finish reports it)", sum)
			}
			if bg.Status.Phase != tc.wantPhase {
				t.Fatalf("phase %s, want %s", bg.Status.Phase, tc.wantPhase)
			}
			c := status.Get(&bg.Status.CommonStatus, meshv1alpha1.EngagedCondition)
			if c == nil || string(c.Status)+"/"+c.Reason != tc.engaged || !strings.HasPrefix(c.Message, tc.message) || c.ObservedGeneration != 3 {
				t.Fatalf("Engaged %+v, want %s %q", c, tc.engaged, tc.message)
			}
			if tc.out.record != nil {
				if bg.Status.StartTime == nil || !bg.Status.StartTime.Time.Equal(start) || !bg.Status.ExpiryTime.Time.Equal(start.Add(time.Hour)) ||
					bg.Status.Touched.Namespaces != 1 || bg.Status.RecordSecretRef.Name != "breakglass-bg" || bg.Status.Provider != meshv1alpha1.ProviderIstio {
					t.Fatalf("record status %+v", bg.Status)
				}
			}
			if tc.wantPhase == meshv1alpha1.BreakGlassEngaged && (bg.Status.EngagedTime == nil || !bg.Status.EngagedTime.Time.Equal(now)) {
				t.Fatalf("engagedTime %v, want the reconcile's time", bg.Status.EngagedTime)
			}
			if len(tc.out.conflicts) > 0 && (len(bg.Status.Conflicts) != 1 || bg.Status.Conflicts[0].Field != "metadata.labels[istio-injection]") {
				t.Fatalf("conflicts %+v", bg.Status.Conflicts)
			}
		})
	}
}
