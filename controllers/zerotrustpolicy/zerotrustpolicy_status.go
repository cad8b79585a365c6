package zerotrustpolicy

import (
	"errors"
	"fmt"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/apply"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

// setStatus records the outcome of a reconcile on p.
func setStatus(p *meshv1alpha1.ZeroTrustPolicy, out result, err error) {
	st, gen := &p.Status.CommonStatus, p.Generation
	incident.ClearHeld(st)
	if out.provider != "" {
		p.Status.Provider = out.provider
	}
	if err != nil {
		status.MarkError(st, gen, err, meshv1alpha1.ApplyFailedReason)
		return
	}
	p.Status.Inventory = out.applied.Inventory
	p.Status.Mode = Mode(&p.Spec)
	status.MarkReady(st, gen, fmt.Sprintf("%d output(s) applied for %s", len(out.applied.Inventory), out.provider))
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

func isConflict(err error) bool {
	var c *apply.ConflictError
	if errors.As(err, &c) {
		return true
	}
	t, ok := outcome.AsTerminal(err)
	return ok && t.StalledReason() == meshv1alpha1.ConflictReason
}
