package meshfederation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/internal/trust"
)

// maxFingerprints is the API's limit on fingerprint lists in status.
const maxFingerprints = 16

func certInfo(c *trust.CA) *meshv1alpha1.CertificateInfo {
	if c == nil {
		return nil
	}
	nb, na := metav1.NewTime(c.Cert.NotBefore), metav1.NewTime(c.Cert.NotAfter)
	return &meshv1alpha1.CertificateInfo{Subject: c.Cert.Subject.String(), Fingerprint: c.Fingerprint(), NotBefore: &nb, NotAfter: &na}
}

func setRootStatus(fed *meshv1alpha1.MeshFederation, root *trust.CA) {
	fed.Status.Root = certInfo(root)
}

// memberReason is the condition reason of a member's error.
func memberReason(m *member) string {
	var reasoned interface{ Reason() string }
	switch {
	case m.unreachable:
		return meshv1alpha1.ClusterUnreachableReason
	case errors.As(m.err, &reasoned):
		return reasoned.Reason()
	}
	if t, ok := outcome.AsTerminal(m.err); ok {
		return t.StalledReason()
	}
	return meshv1alpha1.ApplyFailedReason
}

// setMemberStatus records each member's conditions and material. Only what
// changed moves; lastSyncTime moves only when something was written.
func setMemberStatus(fed *meshv1alpha1.MeshFederation, members []*member, now time.Time) {
	prev := map[string]meshv1alpha1.MemberClusterStatus{}
	for _, c := range fed.Status.Clusters {
		prev[c.Name] = c
	}
	out := make([]meshv1alpha1.MemberClusterStatus, 0, len(members))
	gen := fed.Generation
	for _, m := range members {
		cs := prev[m.spec.Name]
		cs.Name = m.spec.Name
		switch {
		case m.err == nil:
			apimeta.SetStatusCondition(&cs.Conditions, metav1.Condition{Type: meshv1alpha1.ClusterReachableCondition,
				Status: metav1.ConditionTrue, Reason: meshv1alpha1.SucceededReason, Message: "the cluster answers", ObservedGeneration: gen})
			apimeta.SetStatusCondition(&cs.Conditions, metav1.Condition{Type: meshv1alpha1.DistributedCondition,
				Status: metav1.ConditionTrue, Reason: meshv1alpha1.SucceededReason, Message: "holds its intermediate and the current bundle", ObservedGeneration: gen})
			if m.intermediate != nil {
				cs.Intermediate = certInfo(&trust.CA{Cert: m.intermediate})
			}
			cs.BundleFingerprints = m.bundle
			if len(cs.BundleFingerprints) > maxFingerprints {
				cs.BundleFingerprints = cs.BundleFingerprints[:maxFingerprints]
			}
			if m.wrote || cs.LastSyncTime == nil {
				t := metav1.NewTime(now)
				cs.LastSyncTime = &t
			}
		case m.unreachable:
			apimeta.SetStatusCondition(&cs.Conditions, metav1.Condition{Type: meshv1alpha1.ClusterReachableCondition,
				Status: metav1.ConditionFalse, Reason: meshv1alpha1.ClusterUnreachableReason, Message: msg(m.err), ObservedGeneration: gen})
			apimeta.SetStatusCondition(&cs.Conditions, metav1.Condition{Type: meshv1alpha1.DistributedCondition,
				Status: metav1.ConditionFalse, Reason: meshv1alpha1.ClusterUnreachableReason, Message: "unknown while the cluster does not answer; what it holds stays in place", ObservedGeneration: gen})
		default:
			reachable := metav1.ConditionTrue
			reachMsg := "the cluster answers"
			if m.client == nil {
				reachable, reachMsg = metav1.ConditionUnknown, "no client: "+msg(m.err)
			}
			apimeta.SetStatusCondition(&cs.Conditions, metav1.Condition{Type: meshv1alpha1.ClusterReachableCondition,
				Status: reachable, Reason: memberReason(m), Message: reachMsg, ObservedGeneration: gen})
			apimeta.SetStatusCondition(&cs.Conditions, metav1.Condition{Type: meshv1alpha1.DistributedCondition,
				Status: metav1.ConditionFalse, Reason: memberReason(m), Message: msg(m.err), ObservedGeneration: gen})
		}
		out = append(out, cs)
	}
	fed.Status.Clusters = out
}

func msg(err error) string {
	s := err.Error()
	if len(s) > 1024 {
		s = s[:1021] + "..."
	}
	return s
}

// setStatus derives the conditions from the reconcile's result and error,
// and the requeue.
func (r *Reconciler) setStatus(_ context.Context, fed *meshv1alpha1.MeshFederation, res *result, err error) (ctrl.Result, error) {
	st, gen := &fed.Status.CommonStatus, fed.Generation
	now := r.now()
	if err != nil {
		if t, ok := outcome.AsTerminal(err); ok && isRootProblem(t.StalledReason()) {
			status.Set(st, gen, meshv1alpha1.RootReadyCondition, metav1.ConditionFalse, t.StalledReason(), err.Error())
		}
		if status.MarkError(st, gen, err, meshv1alpha1.ProgressingReason) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	// Member status only after a pass that reached the members; a root or
	// spec problem leaves what was recorded.
	setMemberStatus(fed, res.members, now)
	if fed.Spec.Mode != meshv1alpha1.FederationBundleMerge {
		status.Set(st, gen, meshv1alpha1.RootReadyCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason, "the root CA is valid")
	} else {
		status.Remove(st, meshv1alpha1.RootReadyCondition)
	}
	ready, failed, reasons := 0, []string{}, map[string]bool{}
	unreachable := false
	for _, m := range res.members {
		if m.err == nil {
			ready++
			continue
		}
		failed = append(failed, msg(m.err))
		reasons[memberReason(m)] = true
		unreachable = unreachable || m.unreachable || !outcome.IsTerminal(m.err) && !isKnown(m.err)
	}
	fed.Status.ReadyClusters = fmt.Sprintf("%d/%d", ready, len(res.members))
	if res.rotating {
		status.Set(st, gen, meshv1alpha1.RotatingCondition, metav1.ConditionTrue, rotatingReason(res), rotatingMessage(fed, res))
	} else {
		status.Remove(st, meshv1alpha1.RotatingCondition)
	}
	result := ctrl.Result{RequeueAfter: res.after}
	if len(failed) > 0 {
		reason := meshv1alpha1.ApplyFailedReason
		for _, rs := range []string{meshv1alpha1.ClusterUnreachableReason, meshv1alpha1.ConflictReason, meshv1alpha1.ReferenceNotFoundReason, meshv1alpha1.InvalidSpecReason} {
			if reasons[rs] {
				reason = rs
				break
			}
		}
		m := fmt.Sprintf("%d of %d clusters do not hold the current material: %s", len(failed), len(res.members), strings.Join(failed, "; "))
		status.Set(st, gen, meshv1alpha1.DistributedCondition, metav1.ConditionFalse, reason, m)
		if unreachable {
			status.MarkReconciling(st, gen, reason, m)
			if result.RequeueAfter == 0 || result.RequeueAfter > r.poll() {
				result.RequeueAfter = r.poll()
			}
		} else {
			// Conflicts and bad member references wait for a change of the
			// federation or of a watched object; remote ones are polled.
			status.MarkStalled(st, gen, reason, m)
			if result.RequeueAfter == 0 || result.RequeueAfter > r.poll() {
				result.RequeueAfter = r.poll()
			}
		}
		return result, nil
	}
	status.Set(st, gen, meshv1alpha1.DistributedCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason,
		fmt.Sprintf("all %d clusters hold their intermediate and the current bundle", len(res.members)))
	if res.rotating {
		status.MarkReconciling(st, gen, rotatingReason(res), rotatingMessage(fed, res))
		return result, nil
	}
	status.MarkReady(st, gen, fmt.Sprintf("trust is distributed to all %d clusters", len(res.members)))
	return result, nil
}

func isRootProblem(reason string) bool {
	return reason == meshv1alpha1.InvalidCertificateReason || reason == meshv1alpha1.ReferenceNotFoundReason
}

func rotatingReason(res *result) string {
	if res.waitingFor != "" {
		return meshv1alpha1.WaitingReason
	}
	return meshv1alpha1.ProgressingReason
}

func rotatingMessage(fed *meshv1alpha1.MeshFederation, res *result) string {
	phase := ""
	if fed.Status.Rotation != nil {
		phase = string(fed.Status.Rotation.Phase)
	}
	if res.waitingFor != "" {
		return fmt.Sprintf("rotation phase %s: waiting for %s", phase, res.waitingFor)
	}
	return "rotation phase " + phase
}
