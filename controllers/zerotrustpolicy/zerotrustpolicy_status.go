package zerotrustpolicy

import (
	"fmt"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/status"
)

// heldMessage says what a BreakGlass hold means for a policy.
const heldMessage = "outputs are relaxed (mTLS permissive, default-deny suspended) and not re-applied"

// setStatus records the outcome of a reconcile on p and returns the
// summary status.Finish completes.
func setStatus(p *meshv1alpha1.ZeroTrustPolicy, out result, err error) status.Summary {
	st, gen := &p.Status.CommonStatus, p.Generation
	if bg := out.heldBy; bg != nil {
		incident.MarkHeld(st, gen, bg, heldMessage)
		return status.Summary{State: status.Custom}
	}
	incident.ClearHeld(st)
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
	p.Status.Mode = Mode(&p.Spec)
	return status.Summary{Message: fmt.Sprintf("%d output(s) applied for %s", len(out.applied.Inventory), out.provider)}
}

// Mode renders the effective mTLS mode and default action, e.g.
// "Strict/Deny".
func Mode(spec *meshv1alpha1.ZeroTrustPolicySpec) string {
	mode, action := meshv1alpha1.MTLSStrict, meshv1alpha1.ActionDeny
	if spec.MTLS != nil && spec.MTLS.Mode != "" {
		mode = spec.MTLS.Mode
	}
	if spec.DefaultAction != "" {
		action = spec.DefaultAction
	}
	return string(mode) + "/" + string(action)
}
