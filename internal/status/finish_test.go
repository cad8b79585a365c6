package status

import (
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

func TestSummarize(t *testing.T) {
	type want struct {
		ready, reconciling, stalled string // "Status/Reason" or "" for absent
		observed                    int64
	}
	for _, tc := range []struct {
		name string
		sum  Summary
		err  error
		want want
	}{
		{name: "ready", sum: Summary{Message: "ok"}, want: want{ready: "True/Succeeded", observed: 3}},
		{name: "progressing", sum: Summary{State: Progressing, Reason: "Progressing", Message: "step 2"},
			want: want{ready: "False/Progressing", reconciling: "True/Progressing", observed: 1}},
		{name: "progressing the spec asks for", sum: Summary{State: Progressing, Reason: "Waiting", Message: "paused", Current: true},
			want: want{ready: "False/Waiting", reconciling: "True/Waiting", observed: 3}},
		{name: "stalled without error", sum: Summary{State: Stalled, Reason: "AnalysisFailed", Message: "rolled back"},
			want: want{ready: "False/AnalysisFailed", stalled: "True/AnalysisFailed", observed: 3}},
		{name: "terminal error", err: outcome.Stalled("InvalidSpec", "bad port"),
			want: want{ready: "False/InvalidSpec", stalled: "True/InvalidSpec", observed: 3}},
		{name: "wait", err: outcome.Wait("Waiting", time.Second, "istiod"),
			want: want{ready: "False/Waiting", reconciling: "True/Waiting", observed: 1}},
		{name: "transient", err: errors.New("connection refused"),
			want: want{ready: "False/ApplyFailed", reconciling: "True/ApplyFailed", observed: 1}},
		{name: "transient with reason", err: outcome.Transient("ClusterUnreachable", errors.New("dial")),
			want: want{ready: "False/ClusterUnreachable", reconciling: "True/ClusterUnreachable", observed: 1}},
		{name: "conflict", err: outcome.Conflict("VirtualService shop/web exists"),
			want: want{ready: "False/Conflict", stalled: "True/Conflict", observed: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := &meshv1alpha1.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
			ts.Status.ObservedGeneration = 1
			MarkReconciling(&ts.Status.CommonStatus, 1, "Progressing", "before")
			Summarize(ts, tc.sum, tc.err, meshv1alpha1.ApplyFailedReason)
			st := &ts.Status.CommonStatus
			got := func(typ string) string {
				c := Get(st, typ)
				if c == nil {
					return ""
				}
				return string(c.Status) + "/" + c.Reason
			}
			if g := got(meshv1alpha1.ReadyCondition); g != tc.want.ready {
				t.Errorf("Ready = %q, want %q", g, tc.want.ready)
			}
			if g := got(meshv1alpha1.ReconcilingCondition); g != tc.want.reconciling {
				t.Errorf("Reconciling = %q, want %q", g, tc.want.reconciling)
			}
			if g := got(meshv1alpha1.StalledCondition); g != tc.want.stalled {
				t.Errorf("Stalled = %q, want %q", g, tc.want.stalled)
			}
			if st.ObservedGeneration != tc.want.observed {
				t.Errorf("observedGeneration = %d, want %d", st.ObservedGeneration, tc.want.observed)
			}
		})
	}
}
