package delivery

import (
	"fmt"
	"time"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Manual actions (values of meshv1alpha1.CanaryActionAnnotation).
const (
	ActionAbort   = "abort"
	ActionPromote = "promote"
)

// State is what the engine remembers between reconciles; the controller
// keeps it in CanaryStatus.
type State struct {
	// Phase of the delivery; empty for a new Canary.
	Phase meshv1alpha1.CanaryPhase
	// FailedChecks is the number of failed analysis intervals of the
	// current analysis.
	FailedChecks int32
	// Iterations is the number of passed analysis intervals of the current
	// analysis: the index of the current step in the Plan.
	Iterations int32
	// LastAppliedSpec is the hash of the target's pod template under (or
	// last under) analysis.
	LastAppliedSpec string
	// LastPromotedSpec is the hash of the pod template the primary runs.
	LastPromotedSpec string
	// PhaseSince is when the phase was entered.
	PhaseSince time.Time
	// LastAnalysis is when the last analysis ran; zero when none ran in
	// this phase.
	LastAnalysis time.Time
	// Message explains the phase.
	Message string
}

// Observation is what the controller saw in this reconcile.
type Observation struct {
	// Now is the reconcile's clock.
	Now time.Time
	// TargetHash is the hash of the target Deployment's pod template.
	TargetHash string
	// CanaryAvailable: the target Deployment has rolled out its current
	// template and all its (non-zero) replicas are Available.
	CanaryAvailable bool
	// PrimaryAvailable: the primary Deployment has rolled out its current
	// template and all its replicas are Available.
	PrimaryAvailable bool
	// PrimaryHash is the hash of the canary template the primary runs
	// (recorded on the primary when it is written).
	PrimaryHash string
	// CanaryScaledDown: the target Deployment is at zero replicas.
	CanaryScaledDown bool
	// Action is the canary-action annotation's value, empty when unset.
	Action string
	// Suspend and SkipAnalysis mirror the spec.
	Suspend, SkipAnalysis bool
	// Interval between analyses, ProgressDeadline for a Deployment to
	// become Available, Threshold failed checks before rollback.
	Interval, ProgressDeadline time.Duration
	Threshold                  int32
	// Plan is the strategy's steps.
	Plan Plan
}

// CheckResult is the outcome of one analysis interval.
type CheckResult struct {
	// Failed is true when any metric or check webhook failed.
	Failed bool
	// Message summarises the checks (the failing ones first).
	Message string
}

// Probe runs the I/O the engine asks for: gate webhooks and analysis. The
// engine calls it only when the state machine needs the answer, so a gate
// is asked once per interval and an analysis runs once per interval.
type Probe interface {
	// Gate calls the webhooks of a confirm-* type; open is true when every
	// one returned 2xx (or there are none).
	Gate(typ meshv1alpha1.WebhookType) (open bool, msg string)
	// RollbackRequested polls the rollback webhooks; true (with the
	// hook's name) when one answered 2xx, asking for a rollback now.
	RollbackRequested() (bool, string)
	// PreRollout calls the pre-rollout webhooks (before the first step).
	PreRollout() CheckResult
	// Analyse runs the metric checks and the rollout webhooks.
	Analyse() CheckResult
}

// Scale is what to do with the canary (target) Deployment's replicas.
type Scale int

const (
	// ScaleKeep leaves the replicas as they are (Initializing: the target
	// serves until the primary is Available).
	ScaleKeep Scale = iota
	// ScaleUp scales the canary to the primary's replicas.
	ScaleUp
	// ScaleDown scales the canary to zero. The controller does it only
	// once the route read back sends the canary nothing.
	ScaleDown
)

// Decision is the engine's answer: the next state and what the cluster
// must look like for it. Route, Scale and PromotePrimary follow from the
// state alone (RouteFor, ScaleFor), so a reconcile that failed half-way
// converges to the same result when retried.
type Decision struct {
	// State is the next state.
	State State
	// Route is the routing to apply and read back.
	Route Route
	// Scale is what to do with the canary's replicas.
	Scale Scale
	// PromotePrimary gives the primary the canary's pod template.
	PromotePrimary bool
	// Rollback is true when this decision rolled back.
	Rollback bool
	// Notify lists webhooks to call once, without waiting on their answer
	// (post-rollout, after a promotion or a rollback).
	Notify []meshv1alpha1.WebhookType
	// ClearAction removes the canary-action annotation.
	ClearAction bool
	// Reason and Note describe what happened for the Event; Reason is
	// empty when nothing happened.
	Reason, Note string
	// Requeue is when to look again; zero when a watch will trigger it.
	Requeue time.Duration
}

// pollInterval is how often a phase waiting on a Deployment looks again
// when no watch event arrives.
const pollInterval = 2 * time.Second

// ShouldRollback is the threshold rule: failed checks at or above the
// threshold roll the canary back. A threshold below 1 counts as 1.
func ShouldRollback(failedChecks, threshold int32) bool {
	if threshold < 1 {
		threshold = 1
	}
	return failedChecks >= threshold
}

// Analysing reports whether a phase runs an analysis (new revisions
// restart it; abort applies).
func Analysing(p meshv1alpha1.CanaryPhase) bool {
	switch p {
	case meshv1alpha1.CanaryPhaseProgressing, meshv1alpha1.CanaryPhaseWaiting, meshv1alpha1.CanaryPhaseWaitingPromotion:
		return true
	}
	return false
}

// Idle reports whether a phase waits for a new revision with the primary
// serving everything.
func Idle(p meshv1alpha1.CanaryPhase) bool {
	switch p {
	case meshv1alpha1.CanaryPhaseInitialized, meshv1alpha1.CanaryPhaseSucceeded, meshv1alpha1.CanaryPhaseFailed:
		return true
	}
	return false
}

// RouteFor is the routing a state implies: the current step while
// analysing (the primary before the first step), everything on the canary
// while the primary is promoted, and everything on the primary otherwise.
func RouteFor(s State, plan Plan) Route {
	switch s.Phase {
	case meshv1alpha1.CanaryPhaseProgressing, meshv1alpha1.CanaryPhaseWaitingPromotion:
		if s.Iterations == 0 {
			return Primary
		}
		return plan.At(s.Iterations - 1)
	case meshv1alpha1.CanaryPhasePromoting:
		return Route{Weight: 100}
	}
	return Primary
}

// ScaleFor is what a phase needs of the canary's replicas.
func ScaleFor(p meshv1alpha1.CanaryPhase) Scale {
	switch {
	case p == "" || p == meshv1alpha1.CanaryPhaseInitializing:
		return ScaleKeep
	case Analysing(p) || p == meshv1alpha1.CanaryPhasePromoting:
		return ScaleUp
	}
	return ScaleDown
}

// Step is the state machine: from the current state and what the
// controller observed, the next state and the actions. It calls probe only
// when the answer decides the transition.
func Step(s State, o Observation, probe Probe) Decision {
	d := Decision{State: s}
	switch {
	case s.Phase == "" || s.Phase == meshv1alpha1.CanaryPhaseInitializing:
		d = initializing(d, o)
	case Idle(s.Phase):
		d = idle(d, o, probe)
	case Analysing(s.Phase):
		d = analysing(d, o, probe)
	case s.Phase == meshv1alpha1.CanaryPhasePromoting:
		d = promoting(d, o, probe)
	case s.Phase == meshv1alpha1.CanaryPhaseFinalising:
		d = finalising(d, o)
	}
	d.Route = RouteFor(d.State, o.Plan)
	if Analysing(d.State.Phase) && !o.CanaryAvailable {
		// A canary that is not Available (rolling out a new revision, or
		// its pods failing) gets no traffic until it is again.
		d.Route = Primary
	}
	d.Scale = ScaleFor(d.State.Phase)
	// The primary gets the target's template only while it is the
	// analysed one: a revision that appeared during the promotion is not
	// copied, it is analysed next.
	d.PromotePrimary = d.State.Phase == meshv1alpha1.CanaryPhasePromoting && o.TargetHash == d.State.LastAppliedSpec
	return d
}

// enter moves d to phase with a message.
func (d *Decision) enter(p meshv1alpha1.CanaryPhase, now time.Time, reason, msg string) {
	if d.State.Phase != p {
		d.State.PhaseSince = now
		d.State.LastAnalysis = time.Time{}
	}
	d.State.Phase = p
	d.State.Message = msg
	d.Reason, d.Note = reason, msg
}

func initializing(d Decision, o Observation) Decision {
	if d.State.Phase == "" {
		d.enter(meshv1alpha1.CanaryPhaseInitializing, o.Now, "Initializing", "creating the primary Deployment and the Services")
	}
	if !o.PrimaryAvailable {
		d.State.Message = "waiting for the primary Deployment to become Available"
		d.Requeue = pollInterval
		return d
	}
	d.State.LastAppliedSpec, d.State.LastPromotedSpec = o.TargetHash, o.TargetHash
	d.State.FailedChecks, d.State.Iterations = 0, 0
	d.enter(meshv1alpha1.CanaryPhaseInitialized, o.Now, "Initialized", "the primary serves all traffic; waiting for a new revision of the target")
	return d
}

func idle(d Decision, o Observation, probe Probe) Decision {
	if o.Action != "" {
		d.ClearAction = true
		d.Reason, d.Note = "ActionIgnored", fmt.Sprintf("canary-action %q ignored: no analysis is running", o.Action)
	}
	if o.TargetHash == d.State.LastAppliedSpec || o.Suspend {
		// A Failed revision stays scaled down until a new one appears.
		return d
	}
	// A new revision: start an analysis.
	d.State.LastAppliedSpec = o.TargetHash
	d.State.FailedChecks, d.State.Iterations = 0, 0
	return startAnalysis(d, o, probe, "NewRevision", "new revision "+o.TargetHash+" of the target")
}

// startAnalysis enters Progressing, or Waiting when confirm-rollout holds.
func startAnalysis(d Decision, o Observation, probe Probe, reason, why string) Decision {
	if open, msg := probe.Gate(meshv1alpha1.WebhookConfirmRollout); !open {
		d.enter(meshv1alpha1.CanaryPhaseWaiting, o.Now, "WaitingConfirmRollout", why+"; confirm-rollout holds: "+msg)
		d.State.LastAnalysis = o.Now
		d.Requeue = o.Interval
		return d
	}
	d.enter(meshv1alpha1.CanaryPhaseProgressing, o.Now, reason, why+"; analysis started")
	d.Requeue = pollInterval
	return d
}

// analysing is one reconcile of a delivery under analysis (Progressing,
// Waiting, WaitingPromotion), as named steps: a new revision restarts it,
// the canary-action annotation and the canary's availability come first,
// then at most one analysis (or gate call) per interval.
func analysing(d Decision, o Observation, probe Probe) Decision {
	if o.TargetHash != d.State.LastAppliedSpec {
		return restartAnalysis(d, o, probe)
	}
	if next, done := actOnAnnotation(d, o); done {
		return next
	}
	if next, done := awaitCanary(d, o); done {
		return next
	}
	// One analysis (or gate call) per interval.
	if last := d.State.LastAnalysis; !last.IsZero() {
		if wait := last.Add(o.Interval).Sub(o.Now); wait > 0 {
			d.Requeue = wait
			return d
		}
	}
	d.State.LastAnalysis = o.Now
	d.Requeue = o.Interval
	if yes, who := probe.RollbackRequested(); yes {
		return rollback(d, o, "rollback webhook "+who+" asked for it")
	}
	switch d.State.Phase {
	case meshv1alpha1.CanaryPhaseWaiting:
		return confirmRollout(d, o, probe)
	case meshv1alpha1.CanaryPhaseWaitingPromotion:
		return awaitPromotion(d, o, probe)
	}
	return analyseStep(d, o, probe)
}

// restartAnalysis handles a new revision mid-analysis: back to the
// primary (the canary's pods are being replaced) and start over.
func restartAnalysis(d Decision, o Observation, probe Probe) Decision {
	d.State.LastAppliedSpec = o.TargetHash
	d.State.FailedChecks, d.State.Iterations = 0, 0
	d.State.Phase = "" // re-enter with a fresh clock
	return startAnalysis(d, o, probe, "AnalysisRestarted", "new revision "+o.TargetHash+" of the target during the analysis")
}

// actOnAnnotation acts on the canary-action annotation (abort, promote);
// done is false when there is none to act on.
func actOnAnnotation(d Decision, o Observation) (next Decision, done bool) {
	switch o.Action {
	case ActionAbort:
		d.ClearAction = true
		return rollback(d, o, "aborted by the canary-action annotation"), true
	case ActionPromote:
		if !o.CanaryAvailable {
			d.Reason, d.Note = "PromoteDeferred", "canary-action promote: waiting for the canary Deployment to become Available"
			d.Requeue = pollInterval
			return d, true
		}
		d.ClearAction = true
		return promote(d, o, "promoted by the canary-action annotation"), true
	}
	return d, false
}

// awaitCanary holds the analysis while the delivery is suspended or the
// canary is not Available (rolling back past the progress deadline), and
// promotes at once with skipAnalysis; done is false when the analysis
// goes on.
func awaitCanary(d Decision, o Observation) (next Decision, done bool) {
	if o.Suspend {
		d.State.Message = "suspended: traffic stays as it is"
		return d, true
	}
	if !o.CanaryAvailable {
		if o.ProgressDeadline > 0 && o.Now.Sub(d.State.PhaseSince) > o.ProgressDeadline {
			return rollback(d, o, fmt.Sprintf("the canary Deployment did not become Available within the progress deadline (%s)", o.ProgressDeadline)), true
		}
		d.State.Message = "waiting for the canary Deployment to become Available"
		d.Requeue = pollInterval
		return d, true
	}
	if o.SkipAnalysis {
		return promote(d, o, "skipAnalysis: promoted without checks"), true
	}
	return d, false
}

// checkFailed counts a failed check: rollback at the threshold, else the
// failure is reported and the canary keeps its traffic.
func checkFailed(d Decision, o Observation, res CheckResult) Decision {
	threshold := max(o.Threshold, 1)
	d.State.FailedChecks++
	if ShouldRollback(d.State.FailedChecks, threshold) {
		return rollback(d, o, fmt.Sprintf("failed checks reached the threshold (%d): %s", threshold, res.Message))
	}
	d.State.Message = fmt.Sprintf("check failed (%d of %d before rollback): %s", d.State.FailedChecks, threshold, res.Message)
	d.Reason, d.Note = "CheckFailed", d.State.Message
	return d
}

// confirmRollout asks the confirm-rollout gate of a Waiting delivery.
func confirmRollout(d Decision, o Observation, probe Probe) Decision {
	if open, msg := probe.Gate(meshv1alpha1.WebhookConfirmRollout); !open {
		d.State.Message = "confirm-rollout holds: " + msg
		return d
	}
	d.enter(meshv1alpha1.CanaryPhaseProgressing, o.Now, "RolloutConfirmed", "confirm-rollout returned 2xx; analysis started")
	d.Requeue = pollInterval
	return d
}

// awaitPromotion analyses a delivery WaitingPromotion: the canary keeps
// its last step's traffic while it waits, is still analysed, and rolled
// back if it fails; the confirm-promotion gate promotes it.
func awaitPromotion(d Decision, o Observation, probe Probe) Decision {
	if res := probe.Analyse(); res.Failed {
		return checkFailed(d, o, res)
	}
	if open, msg := probe.Gate(meshv1alpha1.WebhookConfirmPromotion); !open {
		d.State.Message = "analysis passed; confirm-promotion holds: " + msg
		return d
	}
	return promote(d, o, "confirm-promotion returned 2xx")
}

// analyseStep runs one interval of a Progressing delivery: the
// pre-rollout checks before the first step, else the analysis (promotion
// after the last step); then the next step, behind the
// confirm-traffic-increase gate when it adds traffic.
func analyseStep(d Decision, o Observation, probe Probe) Decision {
	iterations := d.State.Iterations
	if iterations == 0 {
		if res := probe.PreRollout(); res.Failed {
			return checkFailed(d, o, res)
		}
	} else {
		if res := probe.Analyse(); res.Failed {
			return checkFailed(d, o, res)
		}
		if int(iterations) >= len(o.Plan) {
			if open, msg := probe.Gate(meshv1alpha1.WebhookConfirmPromotion); !open {
				d.enter(meshv1alpha1.CanaryPhaseWaitingPromotion, o.Now, "WaitingPromotion", "analysis passed; confirm-promotion holds: "+msg)
				d.State.LastAnalysis = o.Now
				return d
			}
			return promote(d, o, fmt.Sprintf("analysis passed (%d step(s))", len(o.Plan)))
		}
	}
	if o.Plan.Increases(iterations) {
		if open, msg := probe.Gate(meshv1alpha1.WebhookConfirmTrafficIncrease); !open {
			d.State.Message = "checks passed; confirm-traffic-increase holds: " + msg
			return d
		}
	}
	d.State.Iterations = iterations + 1
	d.State.Message = fmt.Sprintf("step %d of %d: %s", d.State.Iterations, len(o.Plan), describe(o.Plan.At(iterations)))
	d.Reason, d.Note = "StepAdvanced", d.State.Message
	return d
}

func describe(r Route) string {
	switch {
	case r.Match:
		return "the match cohort is routed to the canary"
	case r.Mirror:
		return fmt.Sprintf("traffic mirrored to the canary, weight %d%%", r.Weight)
	}
	return fmt.Sprintf("canary weight %d%%", r.Weight)
}

// promote enters Promoting: everything is routed to the (Available)
// canary, then the primary gets the canary's template.
func promote(d Decision, o Observation, why string) Decision {
	d.enter(meshv1alpha1.CanaryPhasePromoting, o.Now, "Promoting", why+"; the canary serves all traffic while the primary is updated")
	d.Requeue = pollInterval
	return d
}

func promoting(d Decision, o Observation, probe Probe) Decision {
	if o.TargetHash != d.State.LastAppliedSpec && o.PrimaryHash != d.State.LastAppliedSpec {
		// A new revision before the primary got the analysed template
		// (the template to copy is gone): analyse the new one instead.
		d.State.LastAppliedSpec = o.TargetHash
		d.State.FailedChecks, d.State.Iterations = 0, 0
		d.State.Phase = ""
		return startAnalysis(d, o, probe, "AnalysisRestarted", "new revision "+o.TargetHash+" of the target before the promotion was written")
	}
	if !o.PrimaryAvailable || o.PrimaryHash != d.State.LastAppliedSpec {
		// Never route back to a primary that is not Available with the
		// new template: the canary keeps serving until it is.
		d.State.Message = "waiting for the primary Deployment to become Available with the new template; the canary serves all traffic"
		if o.ProgressDeadline > 0 && o.Now.Sub(d.State.PhaseSince) > o.ProgressDeadline {
			d.State.Message = fmt.Sprintf("the primary Deployment did not become Available within the progress deadline (%s); the canary keeps serving all traffic until it does", o.ProgressDeadline)
		}
		d.Requeue = pollInterval
		return d
	}
	d.State.LastPromotedSpec = d.State.LastAppliedSpec
	d.enter(meshv1alpha1.CanaryPhaseFinalising, o.Now, "Finalising", "the primary runs revision "+d.State.LastPromotedSpec+"; routing back to the primary and scaling the canary to zero")
	d.Requeue = pollInterval
	return d
}

func finalising(d Decision, o Observation) Decision {
	if !o.CanaryScaledDown {
		d.Requeue = pollInterval
		return d
	}
	d.enter(meshv1alpha1.CanaryPhaseSucceeded, o.Now, "Succeeded", "revision "+d.State.LastPromotedSpec+" promoted")
	d.Notify = append(d.Notify, meshv1alpha1.WebhookPostRollout)
	return d
}

// rollback sends the canary nothing, in this decision.
func rollback(d Decision, o Observation, why string) Decision {
	d.enter(meshv1alpha1.CanaryPhaseFailed, o.Now, "RolledBack", "rolled back: "+why)
	d.Rollback = true
	d.Notify = append(d.Notify, meshv1alpha1.WebhookPostRollout)
	return d
}
