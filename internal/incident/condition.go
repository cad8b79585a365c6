package incident

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
)

// MarkHeld records on another kind's status that bg holds it: condition
// BreakGlassActive=True, and Ready=False with reason BreakGlassActive,
// because what the object asks for (strict mTLS, a traffic split, a
// control-plane upgrade) is deliberately not in place. The status is
// current for gen: nothing else is pending.
func MarkHeld(st *meshv1alpha1.CommonStatus, gen int64, bg *meshv1alpha1.BreakGlass, what string) {
	msg := Message(bg)
	if what != "" {
		msg = what + ": " + msg
	}
	status.Set(st, gen, meshv1alpha1.BreakGlassActiveCondition, metav1.ConditionTrue, meshv1alpha1.BreakGlassActiveReason, msg)
	status.Set(st, gen, meshv1alpha1.ReadyCondition, metav1.ConditionFalse, meshv1alpha1.BreakGlassActiveReason, msg)
	status.Remove(st, meshv1alpha1.ReconcilingCondition)
	status.Remove(st, meshv1alpha1.StalledCondition)
	st.ObservedGeneration = gen
}

// ClearHeld removes the BreakGlassActive condition once no BreakGlass
// holds the object; the caller then computes Ready as usual.
func ClearHeld(st *meshv1alpha1.CommonStatus) {
	status.Remove(st, meshv1alpha1.BreakGlassActiveCondition)
}

// Covers reports whether bg, found through a namespace's annotation,
// applies to an object translated for provider: a BreakGlass disables one
// mesh, and an object of another mesh in the same namespace keeps its
// outputs. An unknown provider on either side counts as covered, because
// detaching injection removes the labels mesh discovery reads.
func Covers(bg *meshv1alpha1.BreakGlass, provider meshv1alpha1.Provider) bool {
	if !Active(bg) {
		return false
	}
	target := bg.Status.Provider
	if target == "" {
		target = bg.Spec.Target.Provider
	}
	return target == "" || provider == "" || target == provider
}
