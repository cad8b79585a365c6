package resiliencepolicy

import (
	"fmt"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/status"
)

// setStatus records the outcome of a reconcile on rp and returns the
// summary status.Finish completes.
func setStatus(rp *meshv1alpha1.ResiliencePolicy, out result, err error) status.Summary {
	st, gen := &rp.Status.CommonStatus, rp.Generation
	if out.provider != "" {
		rp.Status.Provider = out.provider
	}
	if out.support != nil {
		rp.Status.Support = out.support
	}
	if err != nil {
		// What a failed apply wrote is recorded, so it is pruned later.
		if out.applied.Inventory != nil {
			rp.Status.Inventory = out.applied.Inventory
			rp.Status.SharedFields = out.applied.SharedFields
		}
		return status.Summary{}
	}
	rp.Status.Inventory = out.applied.Inventory
	rp.Status.SharedFields = out.applied.SharedFields
	rp.Status.ComposedWith = out.composedWith
	if bg := out.relaxedBy; bg != nil {
		incident.MarkHeld(st, gen, bg, "fault injection, rate limits and outlier ejection are lifted")
		return status.Summary{State: status.Custom}
	}
	incident.ClearHeld(st)
	msg := fmt.Sprintf("%d output(s) applied for %s", len(out.applied.Inventory), out.provider)
	if out.composedWith != "" {
		msg += "; retries, timeouts and faults are carried by the route of TrafficSplit " + out.composedWith
	}
	return status.Summary{Message: msg}
}
