package meshadoption

import (
	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

// result is what a reconcile found besides its error.
type result struct {
	// heldBy is the BreakGlass that pauses the adoption.
	heldBy *meshv1alpha1.BreakGlass
	// deleting says the deletion branch ran.
	deleting bool
	// message of a Ready adoption.
	message string
}

// setStatus records the outcome of a reconcile on ma and returns the
// summary status.Finish completes: the BreakGlass hold as set by
// incident.MarkHeld (phase Paused), phase Held on a failed health gate,
// Ready with the enrolled count once every namespace is in. Other errors
// (waits included) are left to Finish.
func setStatus(ma *meshv1alpha1.MeshAdoption, out result, err error) status.Summary {
	st, gen := &ma.Status.CommonStatus, ma.Generation
	if out.deleting {
		return status.Summary{State: status.Custom}
	}
	if out.heldBy != nil {
		ma.Status.Phase = meshv1alpha1.AdoptionPaused
		incident.MarkHeld(st, gen, out.heldBy, "no wave starts or is judged")
		return status.Summary{State: status.Custom}
	}
	incident.ClearHeld(st)
	if ma.Status.Phase == "" {
		ma.Status.Phase = meshv1alpha1.AdoptionPending
	}
	if err != nil {
		if r := outcome.Reason(err, ""); r == meshv1alpha1.HealthGateFailedReason || r == meshv1alpha1.WouldBeDeniedReason {
			ma.Status.Phase = meshv1alpha1.AdoptionHeld
		}
		return status.Summary{}
	}
	return status.Summary{Message: out.message}
}
