package delivery

import (
	"testing"
	"time"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// fakeProbe answers gates and analyses from fields and records calls.
type fakeProbe struct {
	rollback bool
	closed   map[meshv1alpha1.WebhookType]bool
	fail     bool
	preFail  bool
	analyses int
	gates    []meshv1alpha1.WebhookType
}

func (f *fakeProbe) Gate(t meshv1alpha1.WebhookType) (bool, string) {
	f.gates = append(f.gates, t)
	if f.closed[t] {
		return false, string(t) + " returned 403"
	}
	return true, ""
}
func (f *fakeProbe) RollbackRequested() (bool, string) { return f.rollback, "stop" }
func (f *fakeProbe) PreRollout() CheckResult {
	f.analyses++
	return CheckResult{Failed: f.preFail, Message: "pre"}
}
func (f *fakeProbe) Analyse() CheckResult {
	f.analyses++
	if f.fail {
		return CheckResult{Failed: true, Message: "request-success-rate 50 below 99"}
	}
	return CheckResult{Message: "ok"}
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func obs() Observation {
	return Observation{Now: t0.Add(time.Hour), TargetHash: "h1", CanaryAvailable: true, PrimaryAvailable: true, PrimaryHash: "h0",
		Interval: time.Minute, ProgressDeadline: 10 * time.Minute, Threshold: 2,
		Plan: Plan{{Weight: 10}, {Weight: 20}}}
}

func TestStep(t *testing.T) {
	an := t0.Add(time.Hour - 2*time.Minute) // an analysis is due
	recent := t0.Add(time.Hour - 10*time.Second)
	for _, tc := range []struct {
		name   string
		state  State
		obs    func(*Observation)
		probe  fakeProbe
		phase  meshv1alpha1.CanaryPhase
		iter   int32
		failed int32
		route  Route
		scale  Scale
		check  func(t *testing.T, d Decision)
	}{
		{name: "new object starts initializing", state: State{}, obs: func(o *Observation) { o.PrimaryAvailable = false },
			phase: meshv1alpha1.CanaryPhaseInitializing, route: Primary, scale: ScaleKeep},
		{name: "primary available initializes", state: State{Phase: meshv1alpha1.CanaryPhaseInitializing},
			phase: meshv1alpha1.CanaryPhaseInitialized, route: Primary, scale: ScaleDown,
			check: func(t *testing.T, d Decision) {
				if d.State.LastAppliedSpec != "h1" || d.State.LastPromotedSpec != "h1" {
					t.Errorf("specs %+v", d.State)
				}
			}},
		{name: "idle without new revision", state: State{Phase: meshv1alpha1.CanaryPhaseInitialized, LastAppliedSpec: "h1"},
			phase: meshv1alpha1.CanaryPhaseInitialized, route: Primary, scale: ScaleDown},
		{name: "new revision starts progressing at the primary", state: State{Phase: meshv1alpha1.CanaryPhaseSucceeded, LastAppliedSpec: "h0"},
			phase: meshv1alpha1.CanaryPhaseProgressing, route: Primary, scale: ScaleUp},
		{name: "new revision after a failure starts again", state: State{Phase: meshv1alpha1.CanaryPhaseFailed, LastAppliedSpec: "h0", FailedChecks: 5},
			phase: meshv1alpha1.CanaryPhaseProgressing, route: Primary, scale: ScaleUp},
		{name: "failed revision stays down", state: State{Phase: meshv1alpha1.CanaryPhaseFailed, LastAppliedSpec: "h1", FailedChecks: 2},
			phase: meshv1alpha1.CanaryPhaseFailed, failed: 2, route: Primary, scale: ScaleDown},
		{name: "confirm-rollout closed waits", state: State{Phase: meshv1alpha1.CanaryPhaseInitialized, LastAppliedSpec: "h0"},
			probe: fakeProbe{closed: map[meshv1alpha1.WebhookType]bool{meshv1alpha1.WebhookConfirmRollout: true}},
			phase: meshv1alpha1.CanaryPhaseWaiting, route: Primary, scale: ScaleUp},
		{name: "confirm-rollout opens", state: State{Phase: meshv1alpha1.CanaryPhaseWaiting, LastAppliedSpec: "h1", LastAnalysis: an},
			phase: meshv1alpha1.CanaryPhaseProgressing, route: Primary, scale: ScaleUp},
		{name: "suspend holds an idle canary", state: State{Phase: meshv1alpha1.CanaryPhaseInitialized, LastAppliedSpec: "h0"},
			obs: func(o *Observation) { o.Suspend = true }, phase: meshv1alpha1.CanaryPhaseInitialized, route: Primary, scale: ScaleDown},
		{name: "first step after pre-rollout", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1"},
			phase: meshv1alpha1.CanaryPhaseProgressing, iter: 1, route: Route{Weight: 10}, scale: ScaleUp},
		{name: "canary not available: no weight", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", PhaseSince: t0.Add(59 * time.Minute)},
			obs: func(o *Observation) { o.CanaryAvailable = false }, phase: meshv1alpha1.CanaryPhaseProgressing, route: Primary, scale: ScaleUp},
		{name: "progress deadline rolls back", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", PhaseSince: t0},
			obs: func(o *Observation) { o.CanaryAvailable = false }, phase: meshv1alpha1.CanaryPhaseFailed, route: Primary, scale: ScaleDown,
			check: func(t *testing.T, d Decision) {
				if !d.Rollback || len(d.Notify) != 1 || d.Notify[0] != meshv1alpha1.WebhookPostRollout {
					t.Errorf("rollback %v notify %v", d.Rollback, d.Notify)
				}
			}},
		{name: "checks pass: next step", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", Iterations: 1, LastAnalysis: an},
			phase: meshv1alpha1.CanaryPhaseProgressing, iter: 2, route: Route{Weight: 20}, scale: ScaleUp},
		{name: "interval not elapsed: nothing", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", Iterations: 1, LastAnalysis: recent},
			phase: meshv1alpha1.CanaryPhaseProgressing, iter: 1, route: Route{Weight: 10}, scale: ScaleUp,
			check: func(t *testing.T, d Decision) {
				if d.Requeue != 50*time.Second {
					t.Errorf("requeue %s", d.Requeue)
				}
			}},
		{name: "check fails below threshold", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", Iterations: 1, LastAnalysis: an},
			probe: fakeProbe{fail: true}, phase: meshv1alpha1.CanaryPhaseProgressing, iter: 1, failed: 1, route: Route{Weight: 10}, scale: ScaleUp},
		{name: "threshold reached rolls back in the same decision", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", Iterations: 2, FailedChecks: 1, LastAnalysis: an},
			probe: fakeProbe{fail: true}, phase: meshv1alpha1.CanaryPhaseFailed, iter: 2, failed: 2, route: Primary, scale: ScaleDown},
		{name: "pre-rollout failure counts", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1"},
			probe: fakeProbe{preFail: true}, phase: meshv1alpha1.CanaryPhaseProgressing, failed: 1, route: Primary, scale: ScaleUp},
		{name: "confirm-traffic-increase holds", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", Iterations: 1, LastAnalysis: an},
			probe: fakeProbe{closed: map[meshv1alpha1.WebhookType]bool{meshv1alpha1.WebhookConfirmTrafficIncrease: true}},
			phase: meshv1alpha1.CanaryPhaseProgressing, iter: 1, route: Route{Weight: 10}, scale: ScaleUp},
		{name: "last step passed promotes", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", Iterations: 2, LastAnalysis: an},
			phase: meshv1alpha1.CanaryPhasePromoting, iter: 2, route: Route{Weight: 100}, scale: ScaleUp,
			check: func(t *testing.T, d Decision) {
				if !d.PromotePrimary {
					t.Error("PromotePrimary not set")
				}
			}},
		{name: "confirm-promotion holds", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", Iterations: 2, LastAnalysis: an},
			probe: fakeProbe{closed: map[meshv1alpha1.WebhookType]bool{meshv1alpha1.WebhookConfirmPromotion: true}},
			phase: meshv1alpha1.CanaryPhaseWaitingPromotion, iter: 2, route: Route{Weight: 20}, scale: ScaleUp},
		{name: "confirm-promotion still closed", state: State{Phase: meshv1alpha1.CanaryPhaseWaitingPromotion, LastAppliedSpec: "h1", Iterations: 2, LastAnalysis: an},
			probe: fakeProbe{closed: map[meshv1alpha1.WebhookType]bool{meshv1alpha1.WebhookConfirmPromotion: true}},
			phase: meshv1alpha1.CanaryPhaseWaitingPromotion, iter: 2, route: Route{Weight: 20}, scale: ScaleUp},
		{name: "a failing check while waiting for promotion rolls back", state: State{Phase: meshv1alpha1.CanaryPhaseWaitingPromotion, LastAppliedSpec: "h1", Iterations: 2, FailedChecks: 1, LastAnalysis: an},
			probe: fakeProbe{fail: true, closed: map[meshv1alpha1.WebhookType]bool{meshv1alpha1.WebhookConfirmPromotion: true}},
			phase: meshv1alpha1.CanaryPhaseFailed, iter: 2, failed: 2, route: Primary, scale: ScaleDown},
		{name: "confirm-promotion opens", state: State{Phase: meshv1alpha1.CanaryPhaseWaitingPromotion, LastAppliedSpec: "h1", Iterations: 2, LastAnalysis: an},
			phase: meshv1alpha1.CanaryPhasePromoting, iter: 2, route: Route{Weight: 100}, scale: ScaleUp},
		{name: "a rollback webhook answering 2xx rolls back", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", Iterations: 1, LastAnalysis: an},
			probe: fakeProbe{rollback: true}, phase: meshv1alpha1.CanaryPhaseFailed, iter: 1, route: Primary, scale: ScaleDown},
		{name: "a rollback webhook rolls back a waiting promotion", state: State{Phase: meshv1alpha1.CanaryPhaseWaitingPromotion, LastAppliedSpec: "h1", Iterations: 2, LastAnalysis: an},
			probe: fakeProbe{rollback: true}, phase: meshv1alpha1.CanaryPhaseFailed, iter: 2, route: Primary, scale: ScaleDown},
		{name: "abort rolls back", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", Iterations: 1, LastAnalysis: recent},
			obs: func(o *Observation) { o.Action = ActionAbort }, phase: meshv1alpha1.CanaryPhaseFailed, iter: 1, route: Primary, scale: ScaleDown,
			check: func(t *testing.T, d Decision) {
				if !d.ClearAction {
					t.Error("annotation not cleared")
				}
			}},
		{name: "abort while waiting for promotion", state: State{Phase: meshv1alpha1.CanaryPhaseWaitingPromotion, LastAppliedSpec: "h1", Iterations: 2},
			obs: func(o *Observation) { o.Action = ActionAbort }, phase: meshv1alpha1.CanaryPhaseFailed, iter: 2, route: Primary, scale: ScaleDown},
		{name: "promote annotation promotes now", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", Iterations: 1, LastAnalysis: recent},
			obs: func(o *Observation) { o.Action = ActionPromote }, phase: meshv1alpha1.CanaryPhasePromoting, iter: 1, route: Route{Weight: 100}, scale: ScaleUp},
		{name: "promote annotation waits for an Available canary", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", PhaseSince: t0.Add(59 * time.Minute)},
			obs: func(o *Observation) { o.Action = ActionPromote; o.CanaryAvailable = false }, phase: meshv1alpha1.CanaryPhaseProgressing, route: Primary, scale: ScaleUp,
			check: func(t *testing.T, d Decision) {
				if d.ClearAction {
					t.Error("annotation cleared before acting")
				}
			}},
		{name: "action on an idle canary is cleared", state: State{Phase: meshv1alpha1.CanaryPhaseSucceeded, LastAppliedSpec: "h1"},
			obs: func(o *Observation) { o.Action = ActionAbort }, phase: meshv1alpha1.CanaryPhaseSucceeded, route: Primary, scale: ScaleDown,
			check: func(t *testing.T, d Decision) {
				if !d.ClearAction {
					t.Error("annotation not cleared")
				}
			}},
		{name: "suspend holds the analysis", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", Iterations: 1, LastAnalysis: an},
			obs: func(o *Observation) { o.Suspend = true }, probe: fakeProbe{fail: true},
			phase: meshv1alpha1.CanaryPhaseProgressing, iter: 1, route: Route{Weight: 10}, scale: ScaleUp},
		{name: "skipAnalysis promotes", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1"},
			obs: func(o *Observation) { o.SkipAnalysis = true }, probe: fakeProbe{fail: true},
			phase: meshv1alpha1.CanaryPhasePromoting, route: Route{Weight: 100}, scale: ScaleUp},
		{name: "new revision mid-analysis restarts", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h0", Iterations: 2, FailedChecks: 1, LastAnalysis: an},
			phase: meshv1alpha1.CanaryPhaseProgressing, route: Primary, scale: ScaleUp,
			check: func(t *testing.T, d Decision) {
				if d.State.LastAppliedSpec != "h1" || d.State.PhaseSince != t0.Add(time.Hour) || d.Reason != "AnalysisRestarted" {
					t.Errorf("state %+v reason %s", d.State, d.Reason)
				}
			}},
		{name: "new revision while waiting for promotion restarts", state: State{Phase: meshv1alpha1.CanaryPhaseWaitingPromotion, LastAppliedSpec: "h0", Iterations: 2},
			phase: meshv1alpha1.CanaryPhaseProgressing, route: Primary, scale: ScaleUp},
		{name: "promoting waits for the primary", state: State{Phase: meshv1alpha1.CanaryPhasePromoting, LastAppliedSpec: "h1"},
			obs: func(o *Observation) { o.PrimaryAvailable = false }, phase: meshv1alpha1.CanaryPhasePromoting, route: Route{Weight: 100}, scale: ScaleUp},
		{name: "promoting waits for the primary's new template", state: State{Phase: meshv1alpha1.CanaryPhasePromoting, LastAppliedSpec: "h1"},
			phase: meshv1alpha1.CanaryPhasePromoting, route: Route{Weight: 100}, scale: ScaleUp},
		{name: "past the deadline the canary keeps serving", state: State{Phase: meshv1alpha1.CanaryPhasePromoting, LastAppliedSpec: "h1", PhaseSince: t0},
			obs: func(o *Observation) { o.PrimaryAvailable = false }, phase: meshv1alpha1.CanaryPhasePromoting, route: Route{Weight: 100}, scale: ScaleUp},
		{name: "primary promoted: finalising", state: State{Phase: meshv1alpha1.CanaryPhasePromoting, LastAppliedSpec: "h1"},
			obs: func(o *Observation) { o.PrimaryHash = "h1" }, phase: meshv1alpha1.CanaryPhaseFinalising, route: Primary, scale: ScaleDown,
			check: func(t *testing.T, d Decision) {
				if d.State.LastPromotedSpec != "h1" {
					t.Errorf("LastPromotedSpec %q", d.State.LastPromotedSpec)
				}
			}},
		{name: "a new revision during the promotion is not copied", state: State{Phase: meshv1alpha1.CanaryPhasePromoting, LastAppliedSpec: "h0"},
			obs: func(o *Observation) { o.PrimaryHash = "old" }, phase: meshv1alpha1.CanaryPhaseProgressing, route: Primary, scale: ScaleUp,
			check: func(t *testing.T, d Decision) {
				if d.PromotePrimary || d.State.LastAppliedSpec != "h1" {
					t.Errorf("promote %v state %+v", d.PromotePrimary, d.State)
				}
			}},
		{name: "a new revision after the primary was written waits for it", state: State{Phase: meshv1alpha1.CanaryPhasePromoting, LastAppliedSpec: "h0"},
			obs: func(o *Observation) { o.PrimaryHash = "h0"; o.PrimaryAvailable = false }, phase: meshv1alpha1.CanaryPhasePromoting, route: Route{Weight: 100}, scale: ScaleUp,
			check: func(t *testing.T, d Decision) {
				if d.PromotePrimary {
					t.Error("the new revision would be copied to the primary")
				}
			}},
		{name: "canary unavailable mid-analysis gets no traffic", state: State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", Iterations: 2, PhaseSince: t0.Add(59 * time.Minute)},
			obs: func(o *Observation) { o.CanaryAvailable = false }, phase: meshv1alpha1.CanaryPhaseProgressing, iter: 2, route: Primary, scale: ScaleUp},
		{name: "finalising waits for the canary at zero", state: State{Phase: meshv1alpha1.CanaryPhaseFinalising, LastAppliedSpec: "h1"},
			phase: meshv1alpha1.CanaryPhaseFinalising, route: Primary, scale: ScaleDown},
		{name: "finalised: succeeded", state: State{Phase: meshv1alpha1.CanaryPhaseFinalising, LastAppliedSpec: "h1", LastPromotedSpec: "h1"},
			obs: func(o *Observation) { o.CanaryScaledDown = true }, phase: meshv1alpha1.CanaryPhaseSucceeded, route: Primary, scale: ScaleDown,
			check: func(t *testing.T, d Decision) {
				if len(d.Notify) != 1 || d.Notify[0] != meshv1alpha1.WebhookPostRollout {
					t.Errorf("notify %v", d.Notify)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := obs()
			if tc.obs != nil {
				tc.obs(&o)
			}
			probe := tc.probe
			d := Step(tc.state, o, &probe)
			if d.State.Phase != tc.phase || d.State.Iterations != tc.iter || d.State.FailedChecks != tc.failed || d.Route != tc.route || d.Scale != tc.scale {
				t.Fatalf("got phase %s iter %d failed %d route %+v scale %d (%s), want %s %d %d %+v %d",
					d.State.Phase, d.State.Iterations, d.State.FailedChecks, d.Route, d.Scale, d.State.Message, tc.phase, tc.iter, tc.failed, tc.route, tc.scale)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}

// TestStepRunsOneAnalysisPerInterval drives a whole canary with a clock:
// one analysis per interval, rollback exactly at the threshold.
func TestThresholdWithinIntervals(t *testing.T) {
	for _, threshold := range []int32{1, 2, 5} {
		o := obs()
		o.Threshold = threshold
		o.Plan = Plan{{Weight: 10}, {Weight: 20}, {Weight: 30}, {Weight: 40}, {Weight: 50}}
		s := State{Phase: meshv1alpha1.CanaryPhaseProgressing, LastAppliedSpec: "h1", PhaseSince: o.Now}
		p := &fakeProbe{}
		s = Step(s, o, p).State // first step
		p.fail = true
		intervals := 0
		for s.Phase == meshv1alpha1.CanaryPhaseProgressing && intervals < 20 {
			// Reconciles between intervals do nothing.
			o.Now = o.Now.Add(o.Interval / 2)
			if d := Step(s, o, p); d.State.FailedChecks != s.FailedChecks {
				t.Fatalf("analysis before the interval elapsed")
			}
			o.Now = o.Now.Add(o.Interval / 2)
			s = Step(s, o, p).State
			intervals++
		}
		if s.Phase != meshv1alpha1.CanaryPhaseFailed || intervals != int(threshold) {
			t.Errorf("threshold %d: phase %s after %d intervals", threshold, s.Phase, intervals)
		}
	}
}

func TestShouldRollback(t *testing.T) {
	for _, tc := range []struct {
		failed, threshold int32
		want              bool
	}{{0, 1, false}, {1, 1, true}, {4, 5, false}, {5, 5, true}, {6, 5, true}, {1, 0, true}, {0, 0, false}} {
		if got := ShouldRollback(tc.failed, tc.threshold); got != tc.want {
			t.Errorf("ShouldRollback(%d, %d) = %v", tc.failed, tc.threshold, got)
		}
	}
}

// TestWholeDelivery walks every strategy from Initialized to Succeeded.
func TestWholeDelivery(t *testing.T) {
	for _, st := range []meshv1alpha1.CanaryStrategy{meshv1alpha1.StrategyCanary, meshv1alpha1.StrategyBlueGreen, meshv1alpha1.StrategyABTesting, meshv1alpha1.StrategyMirroring} {
		spec := &meshv1alpha1.CanarySpec{Strategy: st, Analysis: meshv1alpha1.CanaryAnalysis{StepWeight: ptr[int32](25), Iterations: ptr[int32](2)}}
		plan := PlanFor(spec)
		o := obs()
		o.Plan = plan
		s := State{Phase: meshv1alpha1.CanaryPhaseInitialized, LastAppliedSpec: "h0"}
		p := &fakeProbe{}
		var routes []Route
		for i := 0; i < 40 && s.Phase != meshv1alpha1.CanaryPhaseSucceeded; i++ {
			o.Now = o.Now.Add(o.Interval)
			if s.Phase == meshv1alpha1.CanaryPhasePromoting {
				o.PrimaryHash = "h1"
			}
			o.CanaryScaledDown = s.Phase == meshv1alpha1.CanaryPhaseFinalising
			d := Step(s, o, p)
			if len(routes) == 0 || routes[len(routes)-1] != d.Route {
				routes = append(routes, d.Route)
			}
			s = d.State
		}
		if s.Phase != meshv1alpha1.CanaryPhaseSucceeded {
			t.Fatalf("%s: ended in %s", st, s.Phase)
		}
		t.Logf("%s routes: %+v", st, routes)
		if routes[0] != Primary || routes[len(routes)-1] != Primary || routes[len(routes)-2] != (Route{Weight: 100}) {
			t.Errorf("%s: routes %+v", st, routes)
		}
		if p.analyses != len(plan)+1 {
			t.Errorf("%s: %d analyses for %d steps", st, p.analyses, len(plan))
		}
	}
}

func ptr[T any](v T) *T { return &v }
