package meshadoption

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/adoption"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/ownership"
	"github.com/meshplane/meshplane/internal/status"
	"github.com/meshplane/meshplane/internal/upgrade"
)

// Defaults of the wave plan.
const (
	defaultHealthTimeout = 5 * time.Minute
	pollInterval         = time.Second
	// maxWaves is how many waves status keeps.
	maxWaves = 64
)

// advance takes at most one step: judge the wave in flight, or start the
// next one.
func (r *Reconciler) advance(ctx context.Context, s *scope, nss []adoption.Namespace) (result, error) {
	ma := s.ma
	st := &ma.Status
	st.TotalNamespaces = int32(len(nss))
	st.EnrolledNamespaces = int32(len(nss) - len(adoption.Pending(s.enrol, nss)))
	if w := current(ma); w != nil {
		done, err := r.judge(ctx, s, w, nss)
		if !done || err != nil {
			return result{}, err
		}
	}
	if held := heldBy(ma, meshv1alpha1.HealthGateFailedReason); held != nil {
		return result{}, held
	}
	next := adoption.NextWave(s.enrol, nss, size(ma), nil)
	if len(next) == 0 {
		st.Phase = meshv1alpha1.AdoptionCompleted
		return result{message: fmt.Sprintf("%d of %d namespaces in %s's data plane (%s)", st.EnrolledNamespaces, st.TotalNamespaces, s.mi.Name, s.enrol.Describe)}, nil
	}
	if ma.Spec.Paused {
		st.Phase = meshv1alpha1.AdoptionPaused
		return result{}, &outcome.WaitError{Reason: meshv1alpha1.WaitingReason, Current: true,
			Message: fmt.Sprintf("paused by spec.paused after %d of %d namespaces; set it to false to resume", st.EnrolledNamespaces, st.TotalNamespaces)}
	}
	// The target must express every object of the wave's namespaces
	// (refused whatever the install's state); those that need L7 in
	// ambient get a waypoint first.
	waypoints, err := r.plan(ctx, s, pick(nss, next))
	if err != nil {
		return result{}, err
	}
	if !status.IsTrue(&s.mi.Status.CommonStatus, meshv1alpha1.ReadyCondition) {
		// An install or upgrade in progress: no wave starts on a control
		// plane that is changing.
		st.Phase = meshv1alpha1.AdoptionPaused
		return result{}, outcome.Wait(meshv1alpha1.WaitingReason, 10*time.Second,
			"waiting for MeshInstall %s to be Ready (installing or upgrading) before the next wave", s.mi.Name)
	}
	if last := lastWave(ma); last != nil && last.CompletionTime != nil {
		if wait := pauseOf(ma) - r.Clock.Since(last.CompletionTime.Time); wait > 0 {
			return result{}, outcome.Wait(meshv1alpha1.WaitingReason, wait, "pausing %s between waves (%d of %d namespaces enrolled)",
				pauseOf(ma), st.EnrolledNamespaces, st.TotalNamespaces)
		}
	}
	return result{}, r.start(ctx, s, next, waypoints, nss)
}

// start records the next wave in status (under the optimistic lock), then
// labels and restarts it.
func (r *Reconciler) start(ctx context.Context, s *scope, next, waypoints []string, nss []adoption.Namespace) error {
	ma := s.ma
	now := metav1.NewTime(r.Clock.Now())
	idx := int32(1)
	if last := lastWave(ma); last != nil {
		idx = last.Index + 1
	}
	ma.Status.Waves = append(ma.Status.Waves, meshv1alpha1.AdoptionWaveStatus{
		Index: idx, Namespaces: next, Phase: meshv1alpha1.WaveEnrolling, StartTime: &now, Waypoints: waypoints,
		Message: "labelled with " + s.enrol.Describe,
	})
	if len(ma.Status.Waves) > maxWaves {
		ma.Status.Waves = ma.Status.Waves[len(ma.Status.Waves)-maxWaves:]
	}
	ma.Status.Phase = meshv1alpha1.AdoptionEnrolling
	if err := s.commit(ctx); err != nil {
		return err
	}
	if _, err := r.enrolWave(ctx, s, current(ma), pick(nss, next)); err != nil {
		return err
	}
	r.event(ma, "WaveStarted", "Enrol", "wave %d: enrolling namespaces %v (%s)", idx, next, s.enrol.Describe)
	return outcome.Wait(meshv1alpha1.ProgressingReason, pollInterval, "wave %d %v started: %d of %d namespaces enrolled",
		idx, next, ma.Status.EnrolledNamespaces, ma.Status.TotalNamespaces)
}

// judge checks the wave in flight against its gate. It reports done when
// the wave is finished (passed, or moved back with a terminal error).
func (r *Reconciler) judge(ctx context.Context, s *scope, w *meshv1alpha1.AdoptionWaveStatus, nss []adoption.Namespace) (bool, error) {
	ma := s.ma
	if w.Phase == meshv1alpha1.WaveAuditing {
		return r.judgeAudit(ctx, s, w)
	}
	wave := pick(nss, w.Namespaces)
	stamp := adoption.Stamp(ma.Name, false, w.StartTime.Unix())
	gate := adoption.Check(s.enrol, wave, stamp, restartOn(ma))
	now := metav1.NewTime(r.Clock.Now())
	switch {
	case gate.Passed:
		// A move between meshes ends: the old mesh's outputs are pruned.
		if err := r.finishMove(ctx, s, wave); err != nil {
			return false, err
		}
		if s.audit != nil {
			return false, r.startAudit(s, w)
		}
		w.Phase, w.CompletionTime = meshv1alpha1.WaveEnrolled, &now
		w.Message = fmt.Sprintf("enrolled and healthy after %s", now.Sub(w.StartTime.Time).Round(time.Millisecond))
		r.event(ma, "WaveEnrolled", "Enrol", "wave %d: namespaces %v are in the data plane and healthy", w.Index, w.Namespaces)
		return true, nil
	case now.Sub(w.StartTime.Time) > healthTimeout(ma):
		return true, r.moveBack(ctx, s, w, wave, gate)
	}
	// Re-apply: idempotent for this attempt, and it completes a wave an
	// operator restart interrupted.
	holding, err := r.enrolWave(ctx, s, w, wave)
	if err != nil {
		return false, err
	}
	w.Message = "waiting for: " + joinMax(append(holding, gate.Waiting...), 3)
	return false, outcome.Wait(meshv1alpha1.ProgressingReason, pollInterval, "wave %d %v: %s (%d of %d namespaces enrolled)",
		w.Index, w.Namespaces, w.Message, ma.Status.EnrolledNamespaces, ma.Status.TotalNamespaces)
}

// moveBack restores the wave's namespaces from their records, restarts
// their workloads out of the mesh, and holds the adoption.
func (r *Reconciler) moveBack(ctx context.Context, s *scope, w *meshv1alpha1.AdoptionWaveStatus, wave []adoption.Namespace, gate upgrade.Gate) error {
	ma := s.ma
	now := metav1.NewTime(r.Clock.Now())
	failed := fmt.Sprintf("wave %d %v failed its health gate after %s: %s", w.Index, w.Namespaces, healthTimeout(ma), joinMax(gate.Waiting, 3))
	w.Phase, w.CompletionTime = meshv1alpha1.WaveMovedBack, &now
	w.Message = failed + "; labels restored from the record, workloads restarted out of the mesh"
	ma.Status.Phase = meshv1alpha1.AdoptionHeld
	if err := s.commit(ctx); err != nil {
		return err
	}
	back := adoption.Stamp(ma.Name, true, w.StartTime.Unix())
	for _, ns := range wave {
		restart := restartOn(ma) && adoption.Restarts(s.enrol, ns)
		e, _, err := r.enrolOf(s, ns, slices.Contains(w.Waypoints, ns.Name))
		if err != nil {
			return err
		}
		if err := r.relabel(ctx, ns, func() (map[string]string, map[string]string, error) { return adoption.Restore(e, ns) }); err != nil {
			return err
		}
		if slices.Contains(w.Waypoints, ns.Name) {
			if err := r.dropWaypoint(ctx, s, ns.Name); err != nil {
				return err
			}
		}
		// A namespace the wave held in Audit but never labelled.
		if err := r.releaseAudit(ctx, ma.Name, ns.Name); err != nil {
			return err
		}
		if restart {
			if err := r.restartAll(ctx, ns, back); err != nil {
				return err
			}
		}
	}
	ma.Status.EnrolledNamespaces -= int32(len(wave) - len(adoption.Pending(s.enrol, wave)))
	r.Events.Eventf(ma, nil, corev1.EventTypeWarning, meshv1alpha1.HealthGateFailedReason, "MoveBack", "%s; moved back", failed)
	return outcome.Stalled(meshv1alpha1.HealthGateFailedReason,
		"%s; the wave was moved back (labels restored, workloads restarted out of the mesh). To continue: fix the workloads, then change the spec (for example set spec.paused to true and back to false) to retry the wave",
		failed)
}

// enrolWave labels the wave's namespaces (recording prior values) and
// restarts their workloads onto the wave's stamp; done steps are skipped.
// With spec.waves.audit, a namespace is labelled only once its
// ZeroTrustPolicies run held in Audit; what that still waits for is
// returned.
func (r *Reconciler) enrolWave(ctx context.Context, s *scope, w *meshv1alpha1.AdoptionWaveStatus, wave []adoption.Namespace) ([]string, error) {
	stamp := adoption.Stamp(s.ma.Name, false, w.StartTime.Unix())
	var holding []string
	for _, ns := range wave {
		if !adoption.Enrolled(s.enrol, ns) {
			if s.audit != nil {
				waiting, err := r.holdAudit(ctx, s, ns)
				if err != nil {
					return nil, err
				}
				if waiting != "" {
					holding = append(holding, waiting)
					continue
				}
			}
			if slices.Contains(w.Waypoints, ns.Name) {
				ok, why, err := r.ensureWaypoint(ctx, s, ns.Name)
				if err != nil {
					return nil, err
				}
				if !ok {
					holding = append(holding, fmt.Sprintf("%s: waypoint %s not programmed yet (%s)", ns.Name, waypointName, why))
					continue
				}
			}
			e, from, err := r.enrolOf(s, ns, slices.Contains(w.Waypoints, ns.Name))
			if err != nil {
				return nil, err
			}
			if from != "" {
				// A move between meshes: the new mesh's outputs exist
				// before the switch.
				missing, err := r.dualOutputs(ctx, s, ns, from)
				if err != nil {
					return nil, err
				}
				if len(missing) > 0 {
					holding = append(holding, missing...)
					continue
				}
			}
			if err := r.relabel(ctx, ns, func() (map[string]string, map[string]string, error) {
				return adoption.Enrol(e, ns, s.ma.Name)
			}); err != nil {
				return nil, err
			}
			if _, modeMove := e.Annotations[mesh.DataPlaneFromAnnotation]; modeMove && from == "" {
				// The next pass reads the namespace as relabelled.
				holding = append(holding, fmt.Sprintf("%s: ambient outputs being written beside the sidecar form", ns.Name))
				continue
			}
		}
		if waiting, err := r.ambientWritten(ctx, s, ns); err != nil || len(waiting) > 0 {
			if err != nil {
				return nil, err
			}
			holding = append(holding, waiting...)
			continue
		}
		if restartOn(s.ma) && adoption.Restarts(s.enrol, ns) {
			if err := r.restartAll(ctx, ns, stamp); err != nil {
				return nil, err
			}
		}
	}
	return holding, nil
}

// ambientWritten returns, for a namespace this adoption moves from
// sidecar to ambient (mesh.DataPlaneFromAnnotation), each output of the
// ambient form its objects' controllers have not written yet: its
// workloads restart only once the ambient outputs are in force beside the
// sidecar form, so no restarted pod meets ztunnel before them.
func (r *Reconciler) ambientWritten(ctx context.Context, s *scope, ns adoption.Namespace) ([]string, error) {
	if _, ok := ns.Annotations[mesh.DataPlaneFromAnnotation]; !ok || ns.Annotations[adoption.OwnerAnnotation] != s.ma.Name {
		return nil, nil
	}
	return r.missingOutputs(ctx, s, ns)
}

// relabel patches a namespace's labels and annotations to what f returns,
// under the optimistic lock of the namespace as read.
func (r *Reconciler) relabel(ctx context.Context, ns adoption.Namespace, f func() (map[string]string, map[string]string, error)) error {
	l, a, err := f()
	if err != nil {
		return outcome.Stalled(meshv1alpha1.RecordLostReason, "%v", err)
	}
	var cur corev1.Namespace
	if err := r.Get(ctx, client.ObjectKey{Name: ns.Name}, &cur); err != nil {
		return err
	}
	patch := client.MergeFromWithOptions(cur.DeepCopy(), client.MergeFromWithOptimisticLock{})
	cur.Labels, cur.Annotations = l, a
	if err := r.Patch(ctx, &cur, patch, client.FieldOwner(ownership.FieldManager)); err != nil {
		return fmt.Errorf("relabelling namespace %s: %w", ns.Name, err)
	}
	return nil
}

// restartAll restarts the workloads of ns not yet on stamp.
func (r *Reconciler) restartAll(ctx context.Context, ns adoption.Namespace, stamp string) error {
	for _, w := range adoption.ToRestart(ns, stamp) {
		if err := upgrade.Restart(ctx, r.Client, ns.Name, w.Kind, w.Name, upgrade.DataPlaneAnnotation, stamp); err != nil {
			return err
		}
	}
	return nil
}

// collect reads the namespaces the spec selects, in wave order, with their
// workloads. A listed namespace that does not exist waits.
func (r *Reconciler) collect(ctx context.Context, s *scope) ([]adoption.Namespace, error) {
	ma := s.ma
	var list corev1.NamespaceList
	if err := r.List(ctx, &list); err != nil {
		return nil, err
	}
	byName := map[string]*corev1.Namespace{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	names := ma.Spec.Namespaces
	if ma.Spec.NamespaceSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(ma.Spec.NamespaceSelector)
		if err != nil {
			return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason, "spec.namespaceSelector: %v", err)
		}
		names = nil
		for _, ns := range list.Items {
			// A namespace this adoption enrolled stays selected when
			// enrolment changed the labels the selector reads.
			if sel.Matches(labels.Set(ns.Labels)) || ns.Annotations[adoption.OwnerAnnotation] == ma.Name {
				names = append(names, ns.Name)
			}
		}
		slices.Sort(names)
	}
	var out []adoption.Namespace
	var missing []string
	for _, n := range names {
		ns, ok := byName[n]
		if !ok || !ns.DeletionTimestamp.IsZero() {
			missing = append(missing, n)
			continue
		}
		wls, err := upgrade.Workloads(ctx, r.Client, n)
		if err != nil {
			return nil, err
		}
		out = append(out, adoption.Namespace{Name: n, Labels: ns.Labels, Annotations: ns.Annotations, Workloads: wls})
	}
	if len(missing) > 0 {
		return nil, outcome.Wait(meshv1alpha1.WaitingReason, 30*time.Second,
			"spec.namespaces lists %s, which does not exist; create it or remove it from the list", strings.Join(missing, ", "))
	}
	return out, nil
}

func pick(nss []adoption.Namespace, want []string) []adoption.Namespace {
	var out []adoption.Namespace
	for _, ns := range nss {
		if slices.Contains(want, ns.Name) {
			out = append(out, ns)
		}
	}
	return out
}

// current returns the wave in flight (enrolling or auditing), or nil.
func current(ma *meshv1alpha1.MeshAdoption) *meshv1alpha1.AdoptionWaveStatus {
	if w := lastWave(ma); w != nil && (w.Phase == meshv1alpha1.WaveEnrolling || w.Phase == meshv1alpha1.WaveAuditing) {
		return w
	}
	return nil
}

func lastWave(ma *meshv1alpha1.MeshAdoption) *meshv1alpha1.AdoptionWaveStatus {
	if n := len(ma.Status.Waves); n > 0 {
		return &ma.Status.Waves[n-1]
	}
	return nil
}

func size(ma *meshv1alpha1.MeshAdoption) int {
	if ma.Spec.Waves.Size > 0 {
		return int(ma.Spec.Waves.Size)
	}
	return 1
}

func pauseOf(ma *meshv1alpha1.MeshAdoption) time.Duration {
	if p := ma.Spec.Waves.Pause; p != nil {
		return p.Duration
	}
	return 0
}

func healthTimeout(ma *meshv1alpha1.MeshAdoption) time.Duration {
	if h := ma.Spec.Waves.HealthTimeout; h != nil && h.Duration > 0 {
		return h.Duration
	}
	return defaultHealthTimeout
}

func restartOn(ma *meshv1alpha1.MeshAdoption) bool {
	return ma.Spec.Waves.RestartWorkloads == nil || *ma.Spec.Waves.RestartWorkloads
}

func joinMax(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(items[:n], "; "), len(items)-n)
}
