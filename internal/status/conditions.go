package status

import (
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

// Set sets one condition with the object's generation; LastTransitionTime
// moves only when the condition's status changes.
func Set(st *meshv1alpha1.CommonStatus, gen int64, typ string, s metav1.ConditionStatus, reason, msg string) {
	apimeta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: typ, Status: s, Reason: reason, Message: truncate(msg), ObservedGeneration: gen,
	})
}

// Remove deletes a condition.
func Remove(st *meshv1alpha1.CommonStatus, typ string) {
	apimeta.RemoveStatusCondition(&st.Conditions, typ)
}

// Get returns a condition or nil.
func Get(st *meshv1alpha1.CommonStatus, typ string) *metav1.Condition {
	return apimeta.FindStatusCondition(st.Conditions, typ)
}

// IsTrue reports whether a condition is present and True.
func IsTrue(st *meshv1alpha1.CommonStatus, typ string) bool {
	return apimeta.IsStatusConditionTrue(st.Conditions, typ)
}

// MarkReady records success: Ready=True, no Reconciling or Stalled, and
// observedGeneration = gen.
func MarkReady(st *meshv1alpha1.CommonStatus, gen int64, msg string) {
	Set(st, gen, meshv1alpha1.ReadyCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason, msg)
	Remove(st, meshv1alpha1.ReconcilingCondition)
	Remove(st, meshv1alpha1.StalledCondition)
	st.ObservedGeneration = gen
}

// MarkReconciling records work in progress: Reconciling=True, Ready=False
// with the same reason, no Stalled. observedGeneration is left alone.
func MarkReconciling(st *meshv1alpha1.CommonStatus, gen int64, reason, msg string) {
	Set(st, gen, meshv1alpha1.ReconcilingCondition, metav1.ConditionTrue, reason, msg)
	Set(st, gen, meshv1alpha1.ReadyCondition, metav1.ConditionFalse, reason, msg)
	Remove(st, meshv1alpha1.StalledCondition)
}

// MarkStalled records a terminal error: Stalled=True, Ready=False with the
// same reason, no Reconciling, and observedGeneration = gen.
func MarkStalled(st *meshv1alpha1.CommonStatus, gen int64, reason, msg string) {
	Set(st, gen, meshv1alpha1.StalledCondition, metav1.ConditionTrue, reason, msg)
	Set(st, gen, meshv1alpha1.ReadyCondition, metav1.ConditionFalse, reason, msg)
	Remove(st, meshv1alpha1.ReconcilingCondition)
	st.ObservedGeneration = gen
}

// MarkError records err: a terminal error (internal/outcome) stalls the
// object; anything else is transient and keeps it Reconciling with
// transientReason. It returns whether the error was terminal.
func MarkError(st *meshv1alpha1.CommonStatus, gen int64, err error, transientReason string) bool {
	if t, ok := outcome.AsTerminal(err); ok {
		MarkStalled(st, gen, t.StalledReason(), err.Error())
		return true
	}
	reason := transientReason
	if r, ok := outcome.TransientReason(err); ok {
		reason = r
	}
	MarkReconciling(st, gen, reason, err.Error())
	return false
}

// maxMessage is the API's limit on a condition message.
const maxMessage = 32768

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage-3] + "..."
}

// SetResolvedRefs sets ResolvedRefs: True with okMsg once every reference
// was found; False with refErr's reason (a terminal error) and message;
// unchanged when the phases stopped before the references were checked.
func SetResolvedRefs(st *meshv1alpha1.CommonStatus, gen int64, resolved bool, refErr error, okMsg string) {
	switch {
	case resolved:
		Set(st, gen, meshv1alpha1.ResolvedRefsCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason, okMsg)
	case refErr != nil:
		reason := meshv1alpha1.ReferenceNotFoundReason
		if t, ok := outcome.AsTerminal(refErr); ok {
			reason = t.StalledReason()
		}
		Set(st, gen, meshv1alpha1.ResolvedRefsCondition, metav1.ConditionFalse, reason, refErr.Error())
	}
}
