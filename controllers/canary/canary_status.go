package canary

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/delivery"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/metrics"
	"github.com/meshplane/meshplane/internal/status"
)

// maxMessage is the API's limit on status.message.
const maxMessage = 1024

// setStatus records the outcome of a reconcile on cn — provider,
// ResolvedRefs, BreakGlassActive, the engine's state, the weight, the
// inventory and Promoted — and returns the summary status.Finish
// completes.
func setStatus(cn *meshv1alpha1.Canary, out result, err error) status.Summary {
	st, gen := &cn.Status.CommonStatus, cn.Generation
	if out.provider != "" {
		cn.Status.Provider = out.provider
	}
	setResolvedRefs(cn, out)
	if out.breakGlass != nil {
		status.Set(st, gen, meshv1alpha1.BreakGlassActiveCondition, metav1.ConditionTrue, meshv1alpha1.BreakGlassActiveReason,
			incident.Message(out.breakGlass)+"; all traffic is pinned to the primary and the delivery is paused")
	} else {
		status.Remove(st, meshv1alpha1.BreakGlassActiveCondition)
	}
	if d := out.decision; d != nil {
		setState(cn, d.State)
	}
	if out.hasWeight {
		cn.Status.CanaryWeight = out.weight
	}
	if err != nil {
		// What a failed apply wrote is recorded, so deletion removes it.
		if out.applied.Inventory != nil {
			cn.Status.Inventory = out.applied.Inventory
		}
		return status.Summary{}
	}
	cn.Status.Inventory = out.applied.Inventory
	sum := phaseSummary(cn, out)
	sum.RequeueAfter = out.requeue
	return sum
}

// setResolvedRefs sets ResolvedRefs: True once the target and the Secret
// were found, False with the reference error, unchanged when the phases
// stopped before the references were checked.
func setResolvedRefs(cn *meshv1alpha1.Canary, out result) {
	status.SetResolvedRefs(&cn.Status.CommonStatus, cn.Generation, out.refsResolved, out.refErr,
		"the target Deployment exists and its selector can be copied to the primary")
}

func setState(cn *meshv1alpha1.Canary, s delivery.State) {
	st := &cn.Status
	if st.Phase != s.Phase || st.LastTransitionTime == nil {
		t := metav1.NewTime(s.PhaseSince)
		st.LastTransitionTime = &t
	}
	st.Phase, st.FailedChecks, st.Iterations = s.Phase, s.FailedChecks, s.Iterations
	st.LastAppliedSpec, st.LastPromotedSpec = s.LastAppliedSpec, s.LastPromotedSpec
	st.Message = truncate(s.Message)
	// Counts a transition into a new phase (meshplane_canary_phase_transitions_total).
	metrics.SetCanary(cn.Namespace, cn.Name, st.CanaryWeight, st.Phase)
	if s.LastAnalysis.IsZero() {
		st.LastAnalysisTime = nil
	} else if st.LastAnalysisTime == nil || !st.LastAnalysisTime.Time.Equal(s.LastAnalysis) {
		t := metav1.NewMicroTime(s.LastAnalysis)
		st.LastAnalysisTime = &t
	}
}

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage-3] + "..."
}

// phaseSummary sets Promoted and derives the summary (Ready, Reconciling
// or Stalled) from the phase of a reconcile that succeeded.
func phaseSummary(cn *meshv1alpha1.Canary, out result) status.Summary {
	st, gen, s := &cn.Status.CommonStatus, cn.Generation, &cn.Status
	msg := s.Message
	if msg == "" {
		msg = string(s.Phase)
	}
	if out.breakGlass != nil {
		msg = "paused by BreakGlass " + out.breakGlass.Name + ": " + msg
	}
	switch s.Phase {
	case meshv1alpha1.CanaryPhaseInitialized, meshv1alpha1.CanaryPhaseSucceeded:
		status.Set(st, gen, meshv1alpha1.PromotedCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason,
			fmt.Sprintf("the primary runs revision %s", s.LastPromotedSpec))
		return status.Summary{State: status.Ready, Message: msg}
	case meshv1alpha1.CanaryPhaseFailed:
		status.Set(st, gen, meshv1alpha1.PromotedCondition, metav1.ConditionFalse, meshv1alpha1.AnalysisFailedReason, truncate(msg))
		return status.Summary{State: status.Stalled, Reason: meshv1alpha1.AnalysisFailedReason,
			Message: msg + "; the primary serves all traffic, a new revision of the target starts a new analysis"}
	}
	reason := meshv1alpha1.ProgressingReason
	if s.Phase == meshv1alpha1.CanaryPhaseWaiting || s.Phase == meshv1alpha1.CanaryPhaseWaitingPromotion || cn.Spec.Suspend || out.breakGlass != nil {
		reason = meshv1alpha1.WaitingReason
	}
	if s.Phase != meshv1alpha1.CanaryPhaseInitializing {
		status.Set(st, gen, meshv1alpha1.PromotedCondition, metav1.ConditionFalse, meshv1alpha1.ProgressingReason,
			fmt.Sprintf("revision %s is being delivered (%s)", s.LastAppliedSpec, s.Phase))
	}
	// The delivery is what the spec asks for: the status is current.
	return status.Summary{State: status.Progressing, Reason: reason, Message: fmt.Sprintf("%s: %s", s.Phase, msg), Current: true}
}

// record emits the Event of the reconcile (what happened and what was
// written) and the notification and event webhooks of a phase change.
func (r *Reconciler) record(cn *meshv1alpha1.Canary, before *meshv1alpha1.CanaryStatus, out result) {
	var notes []string
	reason, typ := "", corev1.EventTypeNormal
	if d := out.decision; d != nil && d.Reason != "" {
		reason = d.Reason
		notes = append(notes, d.Note)
		if d.Reason == "RolledBack" || d.Reason == "CheckFailed" {
			typ = corev1.EventTypeWarning
		}
	}
	var wrote []string
	for _, c := range out.applied.Changes.Written() {
		wrote = append(wrote, c.String())
	}
	wrote = append(wrote, out.scaled...)
	if len(wrote) > 0 {
		if reason == "" {
			reason = "Applied"
		}
		notes = append(notes, "wrote "+strings.Join(wrote, ", "))
	}
	if reason != "" {
		r.Events.Eventf(cn, nil, typ, reason, "Reconcile", "%s", truncate(strings.Join(notes, "; ")))
	}
	if d := out.decision; d != nil && before.Phase != cn.Status.Phase {
		r.notify(cn, append([]meshv1alpha1.WebhookType{meshv1alpha1.WebhookEvent}, d.Notify...))
	}
}
