package canary

import (
	"errors"
	"testing"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/delivery"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/test/testenv"
)

func TestSetStatus(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	inv := apply.Result{Inventory: make([]meshv1alpha1.ObjectReference, 5)}
	decided := func(p meshv1alpha1.CanaryPhase, msg string) *delivery.Decision {
		return &delivery.Decision{State: delivery.State{Phase: p, PhaseSince: t0, Message: msg, LastAppliedSpec: "h2", LastPromotedSpec: "h1"}}
	}
	bg := &meshv1alpha1.BreakGlass{ObjectMeta: metav1.ObjectMeta{Name: "incident"}, Spec: meshv1alpha1.BreakGlassSpec{Reason: "istiod down"}}
	missing := outcome.Stalled(meshv1alpha1.ReferenceNotFoundReason, "Deployment shop/web (spec.targetRef) does not exist")
	ok := func(d *delivery.Decision) result {
		return result{provider: meshv1alpha1.ProviderIstio, refsResolved: true, decision: d, applied: inv, requeue: time.Second}
	}
	for _, tc := range []struct {
		name     string
		suspend  bool
		out      result
		err      error
		conds    string
		observed bool
		requeue  time.Duration
		phase    meshv1alpha1.CanaryPhase
	}{
		{name: "Initialized: Ready and Promoted", out: ok(decided(meshv1alpha1.CanaryPhaseInitialized, "")),
			conds: "ResolvedRefs=True/Succeeded Promoted=True/Succeeded Ready=True/Succeeded", observed: true, requeue: time.Second, phase: meshv1alpha1.CanaryPhaseInitialized},
		{name: "Succeeded: Ready and Promoted", out: ok(decided(meshv1alpha1.CanaryPhaseSucceeded, "promoted")),
			conds: "ResolvedRefs=True/Succeeded Promoted=True/Succeeded Ready=True/Succeeded", observed: true, requeue: time.Second, phase: meshv1alpha1.CanaryPhaseSucceeded},
		{name: "Progressing: Reconciling Progressing, current", out: ok(decided(meshv1alpha1.CanaryPhaseProgressing, "step 1 of 2")),
			conds: "ResolvedRefs=True/Succeeded Promoted=False/Progressing Reconciling=True/Progressing Ready=False/Progressing", observed: true, requeue: time.Second, phase: meshv1alpha1.CanaryPhaseProgressing},
		{name: "Initializing: no Promoted yet", out: ok(decided(meshv1alpha1.CanaryPhaseInitializing, "")),
			conds: "ResolvedRefs=True/Succeeded Reconciling=True/Progressing Ready=False/Progressing", observed: true, requeue: time.Second, phase: meshv1alpha1.CanaryPhaseInitializing},
		{name: "WaitingPromotion: Reconciling Waiting", out: ok(decided(meshv1alpha1.CanaryPhaseWaitingPromotion, "confirm-promotion holds")),
			conds: "ResolvedRefs=True/Succeeded Promoted=False/Progressing Reconciling=True/Waiting Ready=False/Waiting", observed: true, requeue: time.Second, phase: meshv1alpha1.CanaryPhaseWaitingPromotion},
		{name: "suspended: Reconciling Waiting", suspend: true, out: ok(decided(meshv1alpha1.CanaryPhaseProgressing, "suspended")),
			conds: "ResolvedRefs=True/Succeeded Promoted=False/Progressing Reconciling=True/Waiting Ready=False/Waiting", observed: true, requeue: time.Second, phase: meshv1alpha1.CanaryPhaseProgressing},
		{name: "held by a BreakGlass: BreakGlassActive, Reconciling Waiting",
			out: func() result {
				r := ok(decided(meshv1alpha1.CanaryPhaseWaitingPromotion, ""))
				r.breakGlass = bg
				return r
			}(),
			conds: "ResolvedRefs=True/Succeeded BreakGlassActive=True/BreakGlassActive Promoted=False/Progressing Reconciling=True/Waiting Ready=False/Waiting", observed: true, requeue: time.Second, phase: meshv1alpha1.CanaryPhaseWaitingPromotion},
		{name: "Failed: Stalled AnalysisFailed", out: ok(decided(meshv1alpha1.CanaryPhaseFailed, "rolled back")),
			conds: "ResolvedRefs=True/Succeeded Promoted=False/AnalysisFailed Stalled=True/AnalysisFailed Ready=False/AnalysisFailed", observed: true, requeue: time.Second, phase: meshv1alpha1.CanaryPhaseFailed},
		{name: "missing target: ResolvedRefs False, Stalled", out: result{provider: meshv1alpha1.ProviderIstio, refErr: missing}, err: missing,
			conds: "ResolvedRefs=False/ReferenceNotFound Stalled=True/ReferenceNotFound Ready=False/ReferenceNotFound", observed: true},
		{name: "target deleted mid-delivery: Failed, weight 0, Stalled ReferenceNotFound",
			out: result{provider: meshv1alpha1.ProviderIstio, refErr: missing, decision: decided(meshv1alpha1.CanaryPhaseFailed, "rolled back"), hasWeight: true},
			err: missing, conds: "ResolvedRefs=False/ReferenceNotFound Stalled=True/ReferenceNotFound Ready=False/ReferenceNotFound", observed: true, phase: meshv1alpha1.CanaryPhaseFailed},
		{name: "unsupported strategy: Stalled, references resolved", out: result{provider: meshv1alpha1.ProviderLinkerd, refsResolved: true},
			err:   &mesh.UnsupportedFeatureError{Provider: meshv1alpha1.ProviderLinkerd, Features: []mesh.Capability{mesh.CapMirroring}},
			conds: "ResolvedRefs=True/Succeeded Stalled=True/UnsupportedFeature Ready=False/UnsupportedFeature", observed: true},
		{name: "a conflict: Stalled Conflict", out: result{provider: meshv1alpha1.ProviderIstio, refsResolved: true},
			err:   &apply.ConflictError{Kind: "Service", Namespace: "shop", Name: "web"},
			conds: "ResolvedRefs=True/Succeeded Stalled=True/Conflict Ready=False/Conflict", observed: true},
		{name: "transient: Reconciling ApplyFailed, generation not observed", out: result{provider: meshv1alpha1.ProviderIstio, refsResolved: true},
			err:   errors.New("the route read back still routes to the canary"),
			conds: "ResolvedRefs=True/Succeeded Reconciling=True/ApplyFailed Ready=False/ApplyFailed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cn := newCanary("shop", "web")
			cn.Generation = 1
			cn.Spec.Suspend = tc.suspend
			cn.Status.CanaryWeight = 50
			sum := setStatus(cn, tc.out, tc.err)
			status.Summarize(cn, sum, tc.err, meshv1alpha1.ApplyFailedReason)
			if got := testenv.Conditions(&cn.Status.CommonStatus); got != tc.conds {
				t.Errorf("conditions %s, want %s", got, tc.conds)
			}
			if observed := cn.Status.ObservedGeneration == 1; observed != tc.observed {
				t.Errorf("observedGeneration %d, want observed=%v", cn.Status.ObservedGeneration, tc.observed)
			}
			if sum.RequeueAfter != tc.requeue || cn.Status.Phase != tc.phase {
				t.Errorf("requeue %s phase %q, want %s %q", sum.RequeueAfter, cn.Status.Phase, tc.requeue, tc.phase)
			}
			if wantWeight := map[bool]int32{true: 0, false: 50}[tc.out.hasWeight]; cn.Status.CanaryWeight != wantWeight {
				t.Errorf("weight %d, want %d", cn.Status.CanaryWeight, wantWeight)
			}
			if wantInv := map[bool]int{true: 5, false: 0}[tc.err == nil]; len(cn.Status.Inventory) != wantInv {
				t.Errorf("inventory %d, want %d", len(cn.Status.Inventory), wantInv)
			}
			if tc.out.decision != nil && (cn.Status.LastTransitionTime == nil || !cn.Status.LastTransitionTime.Time.Equal(t0)) {
				t.Errorf("lastTransitionTime %v", cn.Status.LastTransitionTime)
			}
		})
	}
}

// TestRequeueCountsFromTheDecision: the next analysis is due an interval
// after the engine's now, not an interval after the reconcile's writes
// ended (100 Canaries stretched a 1 s interval to 1.26 s that way).
func TestRequeueCountsFromTheDecision(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		res     ctrl.Result
		err     error
		took    time.Duration
		decided bool
		want    time.Duration
	}{
		{"writes took 300 ms", ctrl.Result{RequeueAfter: time.Second}, nil, 300 * time.Millisecond, true, 700 * time.Millisecond},
		{"writes took longer than the interval: requeued at once", ctrl.Result{RequeueAfter: time.Second}, nil, 3 * time.Second, true, time.Millisecond},
		{"no requeue stays none", ctrl.Result{}, nil, time.Second, true, 0},
		{"an error leaves the result alone", ctrl.Result{RequeueAfter: time.Second}, errors.New("x"), 300 * time.Millisecond, true, time.Second},
		{"nothing decided (deletion, read failed)", ctrl.Result{RequeueAfter: time.Second}, nil, 300 * time.Millisecond, false, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			decidedAt := time.Time{}
			if tc.decided {
				decidedAt = t0
			}
			if got := sinceDecided(tc.res, tc.err, decidedAt, t0.Add(tc.took)).RequeueAfter; got != tc.want {
				t.Errorf("requeue after %s, want %s", got, tc.want)
			}
		})
	}
}
