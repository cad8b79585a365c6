package proxypolicy

import (
	"fmt"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/status"
)

// heldMessage says what a BreakGlass hold means for a ProxyPolicy.
const heldMessage = "nothing is written and no rollout starts (a widened Sidecar scope stays widened)"

// maxWorkloads bounds status.workloads (the CRD's MaxItems).
const maxWorkloads = 1024

// setStatus records the outcome of a reconcile on p and returns the
// summary status.Finish completes.
func setStatus(p *meshv1alpha1.ProxyPolicy, out result, err error) status.Summary {
	if sum, held := outputs.HoldStatus(&p.Status.CommonStatus, p.Generation, out.heldBy, heldMessage); held {
		return sum
	}
	if out.provider != "" {
		p.Status.Provider = out.provider
	}
	if err != nil {
		// What a failed apply wrote is recorded, so deletion releases it.
		if out.applied.Inventory != nil || out.applied.SharedFields != nil {
			p.Status.Inventory, p.Status.SharedFields = out.applied.Inventory, out.applied.SharedFields
		}
		return status.Summary{}
	}
	p.Status.Inventory, p.Status.SharedFields = out.applied.Inventory, out.applied.SharedFields
	ro := out.rollout
	p.Status.Workloads = ro.states
	if len(p.Status.Workloads) > maxWorkloads {
		p.Status.Workloads = p.Status.Workloads[:maxWorkloads]
	}
	applied := len(ro.states) - ro.pending
	switch {
	case ro.pending > 0 && p.Spec.Rollout != nil && p.Spec.Rollout.Paused:
		return status.Summary{State: status.Progressing, Reason: meshv1alpha1.RolloutPausedReason, Current: true,
			Message: fmt.Sprintf("%d of %d workload(s) carry the proxy settings, %d pending: spec.rollout.paused is true — set it to false to roll them out", applied, len(ro.states), ro.pending)}
	case ro.pending > 0 && ro.waitingFor != "":
		return status.Summary{State: status.Progressing, Reason: meshv1alpha1.ProgressingReason, RequeueAfter: gateRetry,
			Message: fmt.Sprintf("%d of %d workload(s) carry the proxy settings, %d pending; the next batch waits for %s", applied, len(ro.states), ro.pending, ro.waitingFor)}
	case ro.pending > 0:
		return status.Summary{State: status.Progressing, Reason: meshv1alpha1.ProgressingReason, RequeueAfter: gateRetry,
			Message: fmt.Sprintf("%d of %d workload(s) carry the proxy settings, %d pending in later batches", applied, len(ro.states), ro.pending)}
	}
	msg := fmt.Sprintf("%s: %d output(s), proxy settings on %d workload(s)", out.provider, out.owned, applied)
	if p.Spec.Resources != nil && len(ro.states) > 0 {
		msg += "; changed pod templates roll out by each workload's update strategy"
	}
	return status.Summary{Message: msg}
}

// invalidSelector is a selector the API server accepted but labels cannot
// parse (stored before a rule existed).
func invalidSelector(err error) error {
	return outcome.Stalled(meshv1alpha1.InvalidSpecReason, "spec.selector is not a valid label selector: %v; fix spec.selector", err)
}
