package meshinstall

import (
	"context"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/internal/upgrade"
)

// Defaults of the rollout plan.
const (
	defaultHealthTimeout = 5 * time.Minute
	pollInterval         = time.Second
)

// migrate moves namespaces to t in batches and reports whether every
// namespace is there. Each call advances by at most one step: check the
// batch in flight against its health gate, or start the next batch. A
// batch that misses its gate is moved back and the upgrade holds, Stalled
// with reason HealthGateFailed, until the spec changes.
func (r *Reconciler) migrate(ctx context.Context, s *scope, t upgrade.Target, nss []upgrade.Namespace) (bool, error) {
	mi := s.mi
	u := mi.Status.Upgrade
	plan := rolloutOf(mi)
	if held := heldByHealthGate(mi); held != nil {
		return false, held
	}
	u.TotalNamespaces = int32(len(nss))
	u.MigratedNamespaces = int32(len(nss) - len(upgrade.Pending(t, nss)))
	now := r.Clock.Now()
	if len(u.CurrentBatch) > 0 {
		t = stamped(t, u.BatchStartTime)
		batch := pick(nss, u.CurrentBatch)
		gate := upgrade.CheckBatch(t, batch)
		switch {
		case gate.Passed:
			r.event(mi, "BatchMigrated", "Migrate", "namespaces %v run %s and are healthy", u.CurrentBatch, t.DataPlane)
			end := metav1.NewTime(now)
			u.CurrentBatch, u.BatchStartTime = nil, &end
		case u.BatchStartTime != nil && now.Sub(u.BatchStartTime.Time) > plan.healthTimeout:
			return false, r.failBatch(ctx, s, t, batch, gate)
		default:
			// Re-apply the batch: idempotent (the same attempt's stamp),
			// and it completes a batch an operator restart interrupted;
			// only while the record is current.
			if err := r.recordAndApply(ctx, s, t, batch); err != nil {
				return false, err
			}
			u.Message = fmt.Sprintf("batch %v waiting for: %s", u.CurrentBatch, joinMax(gate.Waiting, 3))
			return false, outcome.Wait(meshv1alpha1.ProgressingReason, pollInterval, "migrating to %s: %d of %d namespaces done; %s",
				t.DataPlane, u.MigratedNamespaces, u.TotalNamespaces, u.Message)
		}
	}
	next := upgrade.NextBatch(t, nss, int(plan.batchSize))
	if len(upgrade.Pending(t, nss)) == 0 {
		u.MigratedNamespaces = u.TotalNamespaces
		return true, nil
	}
	if mi.Spec.Upgrade != nil && mi.Spec.Upgrade.Paused {
		u.Phase = meshv1alpha1.UpgradePaused
		u.Message = fmt.Sprintf("paused by spec.upgrade.paused after %d of %d namespaces", u.MigratedNamespaces, u.TotalNamespaces)
		// A pause is the state the spec asks for: observedGeneration is
		// current.
		return false, &outcome.WaitError{Reason: meshv1alpha1.WaitingReason, Message: u.Message + "; set it to false to resume", Current: true}
	}
	if u.BatchStartTime != nil && plan.pause > 0 {
		if wait := plan.pause - now.Sub(u.BatchStartTime.Time); wait > 0 {
			return false, outcome.Wait(meshv1alpha1.WaitingReason, wait, "pausing %s between batches (%d of %d namespaces done)",
				plan.pause, u.MigratedNamespaces, u.TotalNamespaces)
		}
	}
	// Record first, act second: the batch's membership and attempt (its
	// start time, stamped on every workload it restarts) are stored under
	// the optimistic lock before the first restart, so a stale or repeated
	// reconcile cannot start another batch or restart these again.
	start := metav1.NewTime(now)
	u.Phase, u.CurrentBatch, u.BatchStartTime = meshv1alpha1.UpgradeMigrating, next, &start
	u.Message = fmt.Sprintf("migrating batch %v", next)
	t = stamped(t, &start)
	if err := s.commit(ctx); err != nil {
		return false, err
	}
	if err := r.applyBatch(ctx, s, t, pick(nss, next)); err != nil {
		return false, err
	}
	r.event(mi, "BatchStarted", "Migrate", "moving namespaces %v to %s", next, t.DataPlane)
	return false, outcome.Wait(meshv1alpha1.ProgressingReason, pollInterval, "migrating to %s: %d of %d namespaces done; batch %v started",
		t.DataPlane, u.MigratedNamespaces, u.TotalNamespaces, next)
}

// heldByHealthGate returns the terminal error of a failed batch while the
// spec has not changed since.
func heldByHealthGate(mi *meshv1alpha1.MeshInstall) error {
	c := status.Get(&mi.Status.CommonStatus, meshv1alpha1.StalledCondition)
	if mi.Status.Upgrade.Phase == meshv1alpha1.UpgradeFailed && c != nil &&
		c.Reason == meshv1alpha1.HealthGateFailedReason && c.ObservedGeneration == mi.Generation {
		return outcome.Stalled(meshv1alpha1.HealthGateFailedReason, "%s", c.Message)
	}
	return nil
}

// failBatch moves a batch back (revision-based upgrades: relabel to the old
// revision and restart onto it) and stalls the upgrade.
func (r *Reconciler) failBatch(ctx context.Context, s *scope, t upgrade.Target, batch []upgrade.Namespace, gate upgrade.Gate) error {
	mi := s.mi
	u := mi.Status.Upgrade
	how := "the previous control plane is gone (in-place upgrade), so the batch stays on the new version"
	if t.FromRevision != "" {
		// Namespaces that select the new revision explicitly move back;
		// namespaces following the default tag cannot while the tag points
		// at the new revision (abort moves the tag).
		back := stamped(upgrade.Target{FromRevision: t.ToRevision, ToRevision: t.FromRevision, PodRevision: t.FromRevision, Restart: t.Restart}, u.BatchStartTime)
		var explicit []upgrade.Namespace
		for _, ns := range batch {
			if ns.Labels[s.rev.RevisionLabel()] == t.ToRevision || t.Relabel(ns) {
				ns.Labels = map[string]string{s.rev.RevisionLabel(): t.ToRevision}
				explicit = append(explicit, ns)
			}
		}
		if err := r.recordAndApply(ctx, s, back, explicit); err != nil {
			return err
		}
		how = fmt.Sprintf("namespaces %v were moved back to revision %s", names(explicit), t.FromRevision)
	}
	u.Phase, u.CurrentBatch = meshv1alpha1.UpgradeFailed, nil
	u.Message = fmt.Sprintf("batch %v failed its health gate after %s: %s", names(batch), rolloutOf(mi).healthTimeout, joinMax(gate.Waiting, 3))
	r.Events.Eventf(mi, nil, corev1.EventTypeWarning, meshv1alpha1.HealthGateFailedReason, "Migrate", "%s; %s", u.Message, how)
	fix := "fix the workloads, then change the spec (for example set spec.upgrade.paused to true and back to false) to resume"
	if t.FromRevision != "" {
		fix += ", or set spec.upgrade.abort to true to move every namespace back"
	}
	return outcome.Stalled(meshv1alpha1.HealthGateFailedReason, "%s; %s. To continue: %s", u.Message, how, fix)
}

// recordAndApply applies a recorded batch attempt when anything of it is
// left to do, after checking (Commit) that the record it acts on is the
// stored one: a reconcile that read a stale MeshInstall acts on nothing.
func (r *Reconciler) recordAndApply(ctx context.Context, s *scope, t upgrade.Target, batch []upgrade.Namespace) error {
	if !pendingWrites(t, batch) {
		return nil
	}
	if err := s.commit(ctx); err != nil {
		return err
	}
	return r.applyBatch(ctx, s, t, batch)
}

// pendingWrites reports whether applyBatch would write anything.
func pendingWrites(t upgrade.Target, batch []upgrade.Namespace) bool {
	for _, ns := range batch {
		if t.Relabel(ns) {
			return true
		}
		for _, w := range ns.Workloads {
			if t.Restart && w.DataPlane != t.DataPlane {
				return true
			}
		}
	}
	return false
}

// applyBatch relabels the namespaces that select the old revision
// explicitly and restarts their workloads onto the target by setting the
// pod-template annotation. Both writes are skipped when already done.
func (r *Reconciler) applyBatch(ctx context.Context, s *scope, t upgrade.Target, batch []upgrade.Namespace) error {
	for _, ns := range batch {
		if t.Relabel(ns) {
			patch := []byte(fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, s.rev.RevisionLabel(), t.ToRevision))
			obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name}}
			if err := r.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(ownership.FieldManager)); err != nil {
				return fmt.Errorf("relabelling namespace %s: %w", ns.Name, err)
			}
		}
		if !t.Restart {
			continue
		}
		for _, w := range ns.Workloads {
			if w.DataPlane == t.DataPlane {
				continue
			}
			if err := r.restart(ctx, ns.Name, w, t.DataPlane); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Reconciler) restart(ctx context.Context, ns string, w upgrade.Workload, dataPlane string) error {
	return upgrade.Restart(ctx, r.Client, ns, w.Kind, w.Name, upgrade.DataPlaneAnnotation, dataPlane)
}

// collectNamespaces lists the namespaces keep accepts, minus the control
// plane's, filtered by the rollout's namespaceSelector, with their
// workloads.
func (r *Reconciler) collectNamespaces(ctx context.Context, s *scope, keep func(*corev1.Namespace) bool) ([]upgrade.Namespace, error) {
	mi, controlPlane := s.mi, s.ns
	var list corev1.NamespaceList
	if err := r.List(ctx, &list); err != nil {
		return nil, err
	}
	sel := labels.Everything()
	if ro := rolloutOf(mi); ro.selector != nil {
		s, err := metav1.LabelSelectorAsSelector(ro.selector)
		if err != nil {
			return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "spec.upgrade.rollout.namespaceSelector: %v", err)
		}
		sel = s
	}
	var out []upgrade.Namespace
	for i := range list.Items {
		ns := &list.Items[i]
		if ns.Name == controlPlane || !ns.DeletionTimestamp.IsZero() || !sel.Matches(labels.Set(ns.Labels)) || !keep(ns) {
			continue
		}
		wls, err := r.workloads(ctx, ns.Name)
		if err != nil {
			return nil, err
		}
		n := upgrade.Namespace{Name: ns.Name, Labels: ns.Labels, Workloads: wls}
		if s.rev != nil {
			if n.PodRevisions, err = r.podRevisions(ctx, ns.Name, s.rev.RevisionLabel()); err != nil {
				return nil, err
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// podRevisions counts the running, controller-owned pods of a namespace per
// revision label, from pod metadata.
func (r *Reconciler) podRevisions(ctx context.Context, ns, label string) (map[string]int, error) {
	var pods metav1.PartialObjectMetadataList
	pods.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	if err := r.List(ctx, &pods, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp.IsZero() && metav1.GetControllerOf(&p) != nil {
			out[p.Labels[label]]++
		}
	}
	return out, nil
}

// workloads lists the restartable workloads of a namespace.
func (r *Reconciler) workloads(ctx context.Context, ns string) ([]upgrade.Workload, error) {
	var out []upgrade.Workload
	add := func(kind string, o client.Object, tmpl *corev1.PodTemplateSpec) {
		ready, msg := upgrade.WorkloadReady(o)
		out = append(out, upgrade.Workload{Kind: kind, Name: o.GetName(), DataPlane: tmpl.Annotations[upgrade.DataPlaneAnnotation], Ready: ready, Message: msg})
	}
	var deps appsv1.DeploymentList
	if err := r.List(ctx, &deps, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	for i := range deps.Items {
		add("Deployment", &deps.Items[i], &deps.Items[i].Spec.Template)
	}
	var sts appsv1.StatefulSetList
	if err := r.List(ctx, &sts, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	for i := range sts.Items {
		add("StatefulSet", &sts.Items[i], &sts.Items[i].Spec.Template)
	}
	var dss appsv1.DaemonSetList
	if err := r.List(ctx, &dss, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	for i := range dss.Items {
		add("DaemonSet", &dss.Items[i], &dss.Items[i].Spec.Template)
	}
	return out, nil
}

// stamped names the batch attempt in a revision-based target's DataPlane
// value, so that each attempt (and a move back) restarts workloads again
// while re-applying the same attempt stays a no-op.
func stamped(t upgrade.Target, at *metav1.Time) upgrade.Target {
	if t.PodRevision != "" && at != nil {
		t.DataPlane = fmt.Sprintf("%s@%d", t.PodRevision, at.Unix())
	}
	return t
}

func pick(nss []upgrade.Namespace, want []string) []upgrade.Namespace {
	var out []upgrade.Namespace
	for _, ns := range nss {
		if slices.Contains(want, ns.Name) {
			out = append(out, ns)
		}
	}
	return out
}

func names(nss []upgrade.Namespace) []string {
	out := make([]string, len(nss))
	for i, ns := range nss {
		out[i] = ns.Name
	}
	return out
}

// rollout is a WorkloadRolloutPlan with defaults applied.
type rollout struct {
	batchSize     int32
	pause         time.Duration
	healthTimeout time.Duration
	selector      *metav1.LabelSelector
}

func rolloutOf(mi *meshv1alpha1.MeshInstall) rollout {
	ro := rollout{batchSize: 1, healthTimeout: defaultHealthTimeout}
	if mi.Spec.Upgrade == nil || mi.Spec.Upgrade.Rollout == nil {
		return ro
	}
	p := mi.Spec.Upgrade.Rollout
	if p.BatchSize > 0 {
		ro.batchSize = p.BatchSize
	}
	if p.PauseBetweenBatches != nil {
		ro.pause = p.PauseBetweenBatches.Duration
	}
	if p.HealthTimeout != nil && p.HealthTimeout.Duration > 0 {
		ro.healthTimeout = p.HealthTimeout.Duration
	}
	ro.selector = p.NamespaceSelector
	return ro
}
