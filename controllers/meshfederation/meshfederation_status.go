package meshfederation

import (
	"fmt"
	"strings"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/internal/trust"
)

// maxFingerprints is the API's limit on fingerprint lists in status.
const maxFingerprints = 16

// setStatus records the outcome of a reconcile on fed — root, bundle,
// rotation, members, RootReady, Distributed and Rotating — and returns the
// summary status.Finish completes.
func setStatus(fed *meshv1alpha1.MeshFederation, out result, err error) status.Summary {
	st, gen := &fed.Status.CommonStatus, fed.Generation
	if out.root != nil {
		fed.Status.Root = certInfo(out.root)
	}
	if out.rotationKnown {
		fed.Status.Rotation = out.rotation
	}
	if out.bundleKnown {
		fed.Status.BundleFingerprints = capped(out.bundle)
	}
	if err != nil {
		if t, ok := outcome.AsTerminal(err); ok && isRootProblem(t.StalledReason()) {
			status.Set(st, gen, meshv1alpha1.RootReadyCondition, metav1.ConditionFalse, t.StalledReason(), err.Error())
		}
		return status.Summary{}
	}
	// Member status only after a pass that reached the members; a root or
	// spec problem leaves what was recorded.
	setMemberStatus(fed, out.members, out.now)
	if fed.Spec.Mode != meshv1alpha1.FederationBundleMerge {
		status.Set(st, gen, meshv1alpha1.RootReadyCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason, "the root CA is valid")
	} else {
		status.Remove(st, meshv1alpha1.RootReadyCondition)
	}
	if out.rotating {
		status.Set(st, gen, meshv1alpha1.RotatingCondition, metav1.ConditionTrue, rotatingReason(out), rotatingMessage(fed, out))
	} else {
		status.Remove(st, meshv1alpha1.RotatingCondition)
	}
	svcSum, svcPending := setServicesStatus(fed, out)
	setExportsStatus(fed, out)
	if sum, failed := setDistributed(fed, out); failed {
		return sum
	}
	if svcPending && !out.rotating {
		return svcSum
	}
	if out.rotating {
		return status.Summary{State: status.Progressing, Reason: rotatingReason(out), Message: rotatingMessage(fed, out), RequeueAfter: out.after}
	}
	return status.Summary{Message: fmt.Sprintf("trust is distributed to all %d clusters", len(out.members)), RequeueAfter: out.after}
}

// setDistributed sets ReadyClusters and Distributed. When a member does not
// hold its material, it returns the summary: Reconciling while a member is
// unreachable or failed transiently, Stalled when every failure is an
// answer only a change fixes (a conflict, a bad reference); both are
// looked at again after out.after, since remote members are not watched.
func setDistributed(fed *meshv1alpha1.MeshFederation, out result) (status.Summary, bool) {
	st, gen := &fed.Status.CommonStatus, fed.Generation
	ready, failed, reasons, transient := 0, []string{}, map[string]bool{}, false
	for _, m := range out.members {
		if m.err == nil {
			ready++
			continue
		}
		failed = append(failed, msg(m.err))
		reasons[memberReason(m)] = true
		transient = transient || m.unreachable || !outcome.IsTerminal(m.err)
	}
	fed.Status.ReadyClusters = fmt.Sprintf("%d/%d", ready, len(out.members))
	if len(failed) == 0 {
		status.Set(st, gen, meshv1alpha1.DistributedCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason,
			fmt.Sprintf("all %d clusters hold their intermediate and the current bundle", len(out.members)))
		return status.Summary{}, false
	}
	reason := meshv1alpha1.ApplyFailedReason
	for _, rs := range []string{meshv1alpha1.ClusterUnreachableReason, meshv1alpha1.ConflictReason, meshv1alpha1.ReferenceNotFoundReason, meshv1alpha1.InvalidSpecReason} {
		if reasons[rs] {
			reason = rs
			break
		}
	}
	m := fmt.Sprintf("%d of %d clusters do not hold the current material: %s", len(failed), len(out.members), strings.Join(failed, "; "))
	status.Set(st, gen, meshv1alpha1.DistributedCondition, metav1.ConditionFalse, reason, m)
	state := status.Stalled
	if transient {
		state = status.Progressing
	}
	return status.Summary{State: state, Reason: reason, Message: m, RequeueAfter: out.after}, true
}

func certInfo(c *trust.CA) *meshv1alpha1.CertificateInfo {
	if c == nil {
		return nil
	}
	nb, na := metav1.NewTime(c.Cert.NotBefore), metav1.NewTime(c.Cert.NotAfter)
	return &meshv1alpha1.CertificateInfo{Subject: c.Cert.Subject.String(), Fingerprint: c.Fingerprint(), NotBefore: &nb, NotAfter: &na}
}

func capped(fps []string) []string {
	if len(fps) > maxFingerprints {
		return fps[:maxFingerprints]
	}
	return fps
}

// memberReason is the condition reason of a member's error.
func memberReason(m *member) string {
	if m.unreachable {
		return meshv1alpha1.ClusterUnreachableReason
	}
	return outcome.Reason(m.err, meshv1alpha1.ApplyFailedReason)
}

// setMemberStatus records each member's conditions and material. Only what
// changed moves; lastSyncTime moves only when something was written.
func setMemberStatus(fed *meshv1alpha1.MeshFederation, members []*member, now time.Time) {
	prev := map[string]meshv1alpha1.MemberClusterStatus{}
	for _, c := range fed.Status.Clusters {
		prev[c.Name] = c
	}
	out := make([]meshv1alpha1.MemberClusterStatus, 0, len(members))
	for _, m := range members {
		cs := prev[m.spec.Name]
		cs.Name = m.spec.Name
		setMemberConditions(&cs, m, fed.Generation)
		if m.err == nil {
			if m.intermediate != nil {
				cs.Intermediate = certInfo(&trust.CA{Cert: m.intermediate})
			}
			cs.BundleFingerprints = capped(m.bundle)
			if m.wrote || cs.LastSyncTime == nil {
				t := metav1.NewTime(now)
				cs.LastSyncTime = &t
			}
		}
		out = append(out, cs)
	}
	fed.Status.Clusters = out
}

// setMemberConditions sets a member's ClusterReachable and Distributed.
func setMemberConditions(cs *meshv1alpha1.MemberClusterStatus, m *member, gen int64) {
	set := func(typ string, s metav1.ConditionStatus, reason, message string) {
		apimeta.SetStatusCondition(&cs.Conditions, metav1.Condition{Type: typ, Status: s, Reason: reason, Message: message, ObservedGeneration: gen})
	}
	switch {
	case m.err == nil:
		set(meshv1alpha1.ClusterReachableCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason, "the cluster answers")
		set(meshv1alpha1.DistributedCondition, metav1.ConditionTrue, meshv1alpha1.SucceededReason, "holds its intermediate and the current bundle")
	case m.unreachable:
		set(meshv1alpha1.ClusterReachableCondition, metav1.ConditionFalse, meshv1alpha1.ClusterUnreachableReason, msg(m.err))
		set(meshv1alpha1.DistributedCondition, metav1.ConditionFalse, meshv1alpha1.ClusterUnreachableReason,
			"unknown while the cluster does not answer; what it holds stays in place")
	default:
		reachable, reachMsg := metav1.ConditionTrue, "the cluster answers"
		if m.client == nil {
			reachable, reachMsg = metav1.ConditionUnknown, "no client: "+msg(m.err)
		}
		set(meshv1alpha1.ClusterReachableCondition, reachable, memberReason(m), reachMsg)
		set(meshv1alpha1.DistributedCondition, metav1.ConditionFalse, memberReason(m), msg(m.err))
	}
}

func msg(err error) string {
	s := err.Error()
	if len(s) > 1024 {
		s = s[:1021] + "..."
	}
	return s
}

func isRootProblem(reason string) bool {
	return reason == meshv1alpha1.InvalidCertificateReason || reason == meshv1alpha1.ReferenceNotFoundReason
}

func rotatingReason(out result) string {
	if out.waitingFor != "" {
		return meshv1alpha1.WaitingReason
	}
	return meshv1alpha1.ProgressingReason
}

func rotatingMessage(fed *meshv1alpha1.MeshFederation, out result) string {
	phase := ""
	if fed.Status.Rotation != nil {
		phase = string(fed.Status.Rotation.Phase)
	}
	if out.waitingFor != "" {
		return fmt.Sprintf("rotation phase %s: waiting for %s", phase, out.waitingFor)
	}
	return "rotation phase " + phase
}
