package meshrevision

import (
	"fmt"
	"time"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

// result is what a reconcile found besides its error.
type result struct {
	// heldBy is the BreakGlass holding the revision's MeshInstall.
	heldBy *meshv1alpha1.BreakGlass
	// deleting says the deletion branch ran; message explains a deletion
	// that goes on (empty once the finalizer is removed).
	deleting bool
	message  string
	// requeueAfter asks for another look (usage, draining).
	requeueAfter time.Duration
}

// setStatus records the outcome of a reconcile on rv and returns the
// summary status.Finish completes: Ready once istiod is Available, the
// BreakGlass hold as set by incident.MarkHeld, Reconciling while deleting,
// and phase Failed on a terminal error. Other errors (waits included) are
// left to Finish.
func setStatus(rv *meshv1alpha1.MeshRevision, out result, err error) status.Summary {
	st, gen := &rv.Status.CommonStatus, rv.Generation
	if out.heldBy != nil {
		incident.MarkHeld(st, gen, out.heldBy, "istiod and tag webhook updates are held")
		return status.Summary{State: status.Custom}
	}
	if out.deleting {
		if out.message == "" {
			return status.Summary{State: status.Custom}
		}
		return status.Summary{State: status.Progressing, Reason: meshv1alpha1.DeletingReason, Message: out.message, RequeueAfter: out.requeueAfter}
	}
	incident.ClearHeld(st)
	if err != nil {
		if outcome.IsTerminal(err) {
			rv.Status.Phase = "Failed"
		}
		return status.Summary{}
	}
	return status.Summary{
		Message:      fmt.Sprintf("istiod %s (revision %s) is Available; phase %s", rv.Spec.Version, rv.Name, rv.Status.Phase),
		RequeueAfter: out.requeueAfter,
	}
}
