package telemetrypolicy

import (
	"fmt"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/status"
)

// setStatus records the outcome of a reconcile on p and returns the
// summary status.Finish completes.
func setStatus(p *meshv1alpha1.TelemetryPolicy, out result, err error) status.Summary {
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
	msg := fmt.Sprintf("%d output(s) applied for %s", len(out.applied.Inventory), out.provider)
	if len(out.applied.Inventory) == 0 {
		msg = fmt.Sprintf("nothing to apply for %s", out.provider)
	}
	if out.effect != "" {
		msg += "; " + out.effect
	}
	return status.Summary{Message: msg}
}
