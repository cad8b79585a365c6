package egresspolicy

import (
	"fmt"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outputs"
	"github.com/meshplane/meshplane/internal/status"
)

// heldMessage says what a BreakGlass hold means for an EgressPolicy.
const heldMessage = "outputs are relaxed (egress allow-list lifted) and not re-applied"

// setStatus records the outcome of a reconcile on p and returns the
// summary status.Finish completes.
func setStatus(p *meshv1alpha1.EgressPolicy, out result, err error) status.Summary {
	if sum, held := outputs.HoldStatus(&p.Status.CommonStatus, p.Generation, out.heldBy, heldMessage); held {
		return sum
	}
	if out.provider != "" {
		p.Status.Provider = out.provider
	}
	// What a failed apply wrote is recorded too, so deletion releases it.
	if inv := out.applied.Inventory; err == nil || inv != nil {
		p.Status.Inventory = inv
	}
	if err != nil {
		return status.Summary{}
	}
	p.Status.Mode = string(mesh.EgressMode(&p.Spec))
	return status.Summary{Message: fmt.Sprintf("%d output(s) applied for %s: %s", len(out.applied.Inventory), out.provider, Describe(&p.Spec))}
}

// Describe summarises what the policy enforces, e.g. "AllowList of 2
// rule(s); every other external destination is blocked".
func Describe(spec *meshv1alpha1.EgressPolicySpec) string {
	if mesh.EgressMode(spec) == meshv1alpha1.EgressAudit {
		return fmt.Sprintf("Audit of %d rule(s); nothing is blocked", len(spec.Rules))
	}
	return fmt.Sprintf("AllowList of %d rule(s); every other external destination is blocked", len(spec.Rules))
}
