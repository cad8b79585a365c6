package zerotrustpolicy

import (
	"fmt"
	"strings"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/mesh"
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
	requeue := setProxiesCurrent(p, out.proxies)
	msg := fmt.Sprintf("%d output(s) applied for %s", len(out.applied.Inventory), out.provider)
	if out.enforcement != "" {
		msg += ": " + out.enforcement
	}
	p.Status.AuditHeldBy = out.auditHeldBy
	if out.auditHeldBy != "" {
		msg += fmt.Sprintf("; held in Audit by MeshAdoption %s until its wave is promoted (namespace annotation %s)", out.auditHeldBy, mesh.AuditHoldAnnotation)
	}
	return status.Summary{Message: msg, RequeueAfter: requeue}
}

// staleRecheck is how often a policy with stale proxies looks again (no
// controller watches pods).
const staleRecheck = 30 * time.Second

// maxStaleNames is how many stale pods a message names.
const maxStaleNames = 10

// restartNote says what rolloutRestart did, or how to restart by hand.
func restartNote(px proxies) string {
	if px.restart != "" {
		return px.restart
	}
	return "restart their workloads (kubectl rollout restart, or set spec.rolloutRestart.enabled) to apply it"
}

// setProxiesCurrent sets ProxiesCurrent from what running pods' proxies
// started with, removes it where the mesh reads the policy live, and
// returns when to look again.
func setProxiesCurrent(p *meshv1alpha1.ZeroTrustPolicy, px proxies) time.Duration {
	st, gen := &p.Status.CommonStatus, p.Generation
	switch {
	case !px.checked:
		apimeta.RemoveStatusCondition(&st.Conditions, meshv1alpha1.ProxiesCurrentCondition)
		return 0
	case len(px.stale) == 0:
		status.Set(st, gen, meshv1alpha1.ProxiesCurrentCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason,
			fmt.Sprintf("every running meshed pod of namespace %s started with %s %s", p.Namespace, px.setting, px.want))
		return 0
	}
	names := px.stale[:min(len(px.stale), maxStaleNames)]
	more := ""
	if len(px.stale) > len(names) {
		more = fmt.Sprintf(" and %d more", len(px.stale)-len(names))
	}
	status.Set(st, gen, meshv1alpha1.ProxiesCurrentCondition, metav1.ConditionFalse, meshv1alpha1.StalePolicyReason,
		fmt.Sprintf("%d running pod(s) of namespace %s still enforce the %s they started with, not %s (the proxy reads it only when it starts): %s%s; "+
			"%s", len(px.stale), p.Namespace, px.setting, px.want, strings.Join(names, ", "), more, restartNote(px)))
	if px.requeue > 0 {
		return px.requeue
	}
	return staleRecheck
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
