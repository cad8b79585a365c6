package meshadoption

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/adoption"
	"github.com/meshplane/meshplane/internal/delivery/analysis"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
)

// maxAuditPoll is the longest wait between two audit queries: a denial
// holds the wave at the next query, not at the end of the window.
const maxAuditPoll = 10 * time.Second

// auditMetric is the name of the audit query in messages.
const auditMetric = "would-be-denials"

// auditPlan resolves spec.waves.audit: nil without one, refused where the
// mesh cannot run policies in Audit in the adoption's mode.
func auditPlan(ma *meshv1alpha1.MeshAdoption, e mesh.Enrolment) (*meshv1alpha1.AdoptionAudit, error) {
	a := ma.Spec.Waves.Audit
	if a == nil {
		return nil, nil
	}
	if e.WouldBeDenied == "" {
		why := e.NoAudit
		if why == "" {
			why = "the mesh cannot run a ZeroTrustPolicy in Audit"
		}
		return nil, outcome.Stalled(meshv1alpha1.UnsupportedFeatureReason, "spec.waves.audit: %s", why)
	}
	return a, nil
}

// holdAudit puts ns's policies in Audit before the namespace is labelled:
// it sets the audit hold, then reports whether every ZeroTrustPolicy of ns
// says it runs held (status.auditHeldBy at its generation). What it still
// waits for is returned.
func (r *Reconciler) holdAudit(ctx context.Context, s *scope, ns adoption.Namespace) (string, error) {
	if ns.Annotations[mesh.AuditHoldAnnotation] != s.ma.Name {
		var cur corev1.Namespace
		if err := r.Get(ctx, client.ObjectKey{Name: ns.Name}, &cur); err != nil {
			return "", err
		}
		patch := client.MergeFromWithOptions(cur.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if cur.Annotations == nil {
			cur.Annotations = map[string]string{}
		}
		cur.Annotations[mesh.AuditHoldAnnotation] = s.ma.Name
		cur.Annotations[mesh.AuditHoldProviderAnnotation] = string(s.mi.Spec.Provider)
		if err := r.Patch(ctx, &cur, patch, client.FieldOwner(ownership.FieldManager)); err != nil {
			return "", fmt.Errorf("holding namespace %s's ZeroTrustPolicies in Audit: %w", ns.Name, err)
		}
		return ns.Name + ": ZeroTrustPolicies being put in Audit", nil
	}
	var list meshv1alpha1.ZeroTrustPolicyList
	if err := r.List(ctx, &list, client.InNamespace(ns.Name)); err != nil {
		return "", err
	}
	var waiting []string
	for _, p := range list.Items {
		if p.Status.AuditHeldBy != s.ma.Name || p.Status.ObservedGeneration != p.Generation {
			waiting = append(waiting, p.Name)
		}
	}
	if len(waiting) > 0 {
		return fmt.Sprintf("%s: ZeroTrustPolicy %s not yet running in Audit (status.auditHeldBy)", ns.Name, strings.Join(waiting, ", ")), nil
	}
	return "", nil
}

// releaseAudit removes the audit hold of this adoption from ns: its
// policies return to their own spec.enforcement.
func (r *Reconciler) releaseAudit(ctx context.Context, owner, name string) error {
	var cur corev1.Namespace
	if err := r.Get(ctx, client.ObjectKey{Name: name}, &cur); err != nil {
		return client.IgnoreNotFound(err)
	}
	if cur.Annotations[mesh.AuditHoldAnnotation] != owner {
		return nil
	}
	patch := client.MergeFromWithOptions(cur.DeepCopy(), client.MergeFromWithOptimisticLock{})
	delete(cur.Annotations, mesh.AuditHoldAnnotation)
	delete(cur.Annotations, mesh.AuditHoldProviderAnnotation)
	if err := r.Patch(ctx, &cur, patch, client.FieldOwner(ownership.FieldManager)); err != nil {
		return fmt.Errorf("releasing the audit hold of namespace %s: %w", name, err)
	}
	return nil
}

// startAudit moves a healthy wave into its audit window.
func (r *Reconciler) startAudit(s *scope, w *meshv1alpha1.AdoptionWaveStatus) error {
	now := metav1.NewTime(r.Clock.Now())
	w.Phase, w.AuditStartTime, w.WouldBeDenied = meshv1alpha1.WaveAuditing, &now, nil
	w.Message = fmt.Sprintf("healthy after %s; auditing for %s", now.Sub(w.StartTime.Time).Round(time.Millisecond), s.audit.Window.Duration)
	r.event(s.ma, "WaveAuditing", "Audit", "wave %d: namespaces %v are healthy; their ZeroTrustPolicies stay in Audit for %s", w.Index, w.Namespaces, s.audit.Window.Duration)
	return outcome.Wait(meshv1alpha1.ProgressingReason, pollInterval, "wave %d %v: %s", w.Index, w.Namespaces, w.Message)
}

// judgeAudit queries the would-be denials of a wave in its audit window:
// any holds the adoption with the policies still in Audit; zero at the end
// of the window promotes them. It reports done once promoted.
func (r *Reconciler) judgeAudit(ctx context.Context, s *scope, w *meshv1alpha1.AdoptionWaveStatus) (bool, error) {
	ma := s.ma
	if held := heldBy(ma, meshv1alpha1.WouldBeDeniedReason); held != nil {
		return false, held
	}
	now := metav1.NewTime(r.Clock.Now())
	if ma.Status.Phase == meshv1alpha1.AdoptionHeld {
		// The spec changed since the wave was held: audit it again, from
		// now.
		w.AuditStartTime, w.WouldBeDenied = &now, nil
		ma.Status.Phase = meshv1alpha1.AdoptionEnrolling
	}
	elapsed := now.Sub(w.AuditStartTime.Time)
	count, per, err := r.wouldBeDenied(ctx, s, w, max(elapsed, time.Second))
	if err != nil {
		w.Message = "audit query failed; the policies stay in Audit: " + err.Error()
		return false, outcome.Wait(meshv1alpha1.WaitingReason, maxAuditPoll, "wave %d %v: %s", w.Index, w.Namespaces, w.Message)
	}
	w.WouldBeDenied = &count
	window := s.audit.Window.Duration
	if count > 0 {
		w.Message = fmt.Sprintf("%d request(s) would have been denied after %s of the %s audit window (%s); the ZeroTrustPolicies stay in Audit",
			count, elapsed.Round(time.Second), window, strings.Join(per, ", "))
		ma.Status.Phase = meshv1alpha1.AdoptionHeld
		r.Events.Eventf(ma, nil, corev1.EventTypeWarning, meshv1alpha1.WouldBeDeniedReason, "Audit", "wave %d %v: %s", w.Index, w.Namespaces, w.Message)
		return false, outcome.Stalled(meshv1alpha1.WouldBeDeniedReason,
			"wave %d %v: %s. Fix the policies or their callers, then change the spec (for example set spec.paused to true and back to false) to audit the wave again for %s",
			w.Index, w.Namespaces, w.Message, window)
	}
	if left := window - elapsed; left > 0 {
		w.Message = fmt.Sprintf("auditing: 0 would-be denials after %s of %s", elapsed.Round(time.Second), window)
		return false, outcome.Wait(meshv1alpha1.ProgressingReason, min(left, maxAuditPoll), "wave %d %v: %s", w.Index, w.Namespaces, w.Message)
	}
	return true, r.promote(ctx, s, w)
}

// promote records the promotion, then releases the wave's audit holds.
func (r *Reconciler) promote(ctx context.Context, s *scope, w *meshv1alpha1.AdoptionWaveStatus) error {
	now := metav1.NewTime(r.Clock.Now())
	w.Phase, w.CompletionTime, w.PromotionTime = meshv1alpha1.WaveEnrolled, &now, &now
	w.Message = fmt.Sprintf("enrolled; 0 would-be denials in the %s audit window; ZeroTrustPolicies promoted to their spec.enforcement", s.audit.Window.Duration)
	if err := s.commit(ctx); err != nil {
		return err
	}
	for _, n := range w.Namespaces {
		if err := r.releaseAudit(ctx, s.ma.Name, n); err != nil {
			return err
		}
	}
	r.event(s.ma, "WavePromoted", "Promote", "wave %d: namespaces %v had no would-be denials in %s; their ZeroTrustPolicies enforce", w.Index, w.Namespaces, s.audit.Window.Duration)
	return nil
}

// wouldBeDenied runs the audit query for each namespace of the wave over
// the window so far and returns the total and a per-namespace account.
// Nothing counts as zero without a value: an unreachable server, an error
// or no data is an error.
func (r *Reconciler) wouldBeDenied(ctx context.Context, s *scope, w *meshv1alpha1.AdoptionWaveStatus, window time.Duration) (int64, []string, error) {
	q := s.audit.Query
	if strings.TrimSpace(q) == "" {
		q = s.enrol.WouldBeDenied
	}
	metric := meshv1alpha1.CanaryMetric{Name: auditMetric, Query: q, ThresholdRange: meshv1alpha1.ThresholdRange{Max: ptr("0")}}
	// The window is rounded up to whole seconds: a PromQL range.
	window = window.Truncate(time.Second) + time.Second
	var total int64
	var per []string
	for _, ns := range w.Namespaces {
		res := r.Metrics.Check(ctx, s.audit.MetricsServer, nil, []meshv1alpha1.CanaryMetric{metric},
			analysis.Target{Provider: s.mi.Spec.Provider, Namespace: ns, Interval: window})[0]
		if math.IsNaN(res.Value) {
			return 0, nil, fmt.Errorf("%s: %s", ns, res.Message)
		}
		n := int64(math.Ceil(res.Value))
		total += n
		per = append(per, fmt.Sprintf("%s: %d", ns, n))
	}
	return total, per, nil
}

// heldBy returns the terminal error of a hold for reason while the spec
// has not changed since.
func heldBy(ma *meshv1alpha1.MeshAdoption, reason string) error {
	c := status.Get(&ma.Status.CommonStatus, meshv1alpha1.StalledCondition)
	if ma.Status.Phase == meshv1alpha1.AdoptionHeld && c != nil &&
		c.Reason == reason && c.ObservedGeneration == ma.Generation {
		return outcome.Stalled(reason, "%s", c.Message)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
