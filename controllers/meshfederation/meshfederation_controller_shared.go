package meshfederation

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/trust"
)

// Rotation defaults of the API.
const (
	defaultRootRenewBefore = 2160 * time.Hour
	defaultMinPhaseWait    = 5 * time.Minute
)

// rotationSettings are spec.rotation with the API's defaults.
type rotationSettings struct {
	trigger       string
	abort         bool
	minWait       time.Duration
	rootRenew     time.Duration
	waitWorkloads bool
}

func rotationSpec(fed *meshv1alpha1.MeshFederation) rotationSettings {
	s := rotationSettings{minWait: defaultMinPhaseWait, rootRenew: defaultRootRenewBefore, waitWorkloads: true}
	if rs := fed.Spec.Rotation; rs != nil {
		s.trigger, s.abort = rs.Trigger, rs.Abort
		if rs.MinPhaseWait != nil {
			s.minWait = rs.MinPhaseWait.Duration
		}
		if rs.RootRenewBefore != nil {
			s.rootRenew = rs.RootRenewBefore.Duration
		}
		if rs.WaitForWorkloads != nil {
			s.waitWorkloads = *rs.WaitForWorkloads
		}
	}
	return s
}

// shared is one SharedRoot reconcile: its steps (reconcileShared) read and
// advance it in order.
type shared struct {
	fed      *meshv1alpha1.MeshFederation
	members  []*member
	settings rotationSettings
	// now is the reconcile's time at second precision, as status times.
	now time.Time
	out *result
	rt  *roots
	// status is the rotation's state as it will be recorded; a copy of
	// fed.Status.Rotation (out.rotation).
	status *meshv1alpha1.RotationStatus
	// rot is the rotation as this reconcile found, started or aborted it;
	// next is where Step moved it.
	rot, next trust.Rotation
	// trigger is the trigger of a rotation started in this reconcile.
	trigger string
	// changed is true when a phase was entered in this reconcile (a start,
	// an abort): it is recorded before it may be left.
	changed  bool
	abortMsg string
	bundle   *trust.Bundle
	obs      trust.Observation
	// why is what the rotation waits for; wait is Step's suggested wait.
	why  string
	wait time.Duration
}

// reconcileShared distributes the current phase's material to every member
// and advances the rotation by at most one phase, in named steps.
func (r *Reconciler) reconcileShared(ctx context.Context, fed *meshv1alpha1.MeshFederation, members []*member, now time.Time) (result, error) {
	s := &shared{fed: fed, members: members, settings: rotationSpec(fed), now: now.Truncate(time.Second),
		out: &result{members: members}, status: fed.Status.Rotation.DeepCopy()}
	steps := []func(context.Context, *shared) error{
		r.loadRootsStep, resumeRotation, r.startRotation, r.abortRotation,
		r.distributeAll, r.observe, r.advance, r.record, r.schedule,
	}
	var err error
	for _, step := range steps {
		if err = step(ctx, s); err != nil {
			break
		}
	}
	s.out.rotation, s.out.rotationKnown = s.status, true
	return *s.out, err
}

func (r *Reconciler) loadRootsStep(ctx context.Context, s *shared) error {
	rt, err := r.loadRoots(ctx, s.fed, s.now)
	if err != nil {
		return err
	}
	s.rt, s.out.root = rt, rt.current
	return nil
}

func resumeRotation(_ context.Context, s *shared) error {
	var err error
	s.rot, err = rotationFromStatus(s.fed.Name, s.status, s.rt, s.now)
	return err
}

// rotationFromStatus rebuilds the rotation state from status st and the
// root state Secret. A next root without a recorded rotation (the status
// patch was lost) resumes at AddingRoot, which is safe from any later
// phase; a rotation whose end was stored in the Secret but not in status is
// over (st moves on).
func rotationFromStatus(fed string, st *meshv1alpha1.RotationStatus, rt *roots, now time.Time) (trust.Rotation, error) {
	cur := rt.current.Fingerprint()
	idle := trust.Rotation{Phase: meshv1alpha1.RotationIdle, Old: cur}
	if st == nil || st.Phase == "" || st.Phase == meshv1alpha1.RotationIdle || st.Phase == meshv1alpha1.RotationCompleted {
		if rt.next != nil {
			return trust.Rotation{Phase: meshv1alpha1.RotationAddingRoot, Old: cur, New: rt.next.Fingerprint(), PhaseStart: now}, nil
		}
		return idle, nil
	}
	rot := trust.Rotation{Phase: st.Phase, Old: st.OldRootFingerprint, New: st.NewRootFingerprint}
	if st.PhaseStartTime != nil {
		rot.PhaseStart = st.PhaseStartTime.Time
	}
	// The state Secret is written before status when a rotation ends; if
	// the status patch was lost, finish the transition.
	if rt.next == nil && rot.Phase == meshv1alpha1.RotationRemovingOldRoot && rot.New == cur {
		st.Phase = meshv1alpha1.RotationCompleted
		return idle, nil
	}
	if rt.next == nil && rot.Phase == meshv1alpha1.RotationAborting && rot.Old == cur {
		st.Phase = meshv1alpha1.RotationIdle
		return idle, nil
	}
	if rt.next == nil || rot.Old != cur || rot.New != rt.next.Fingerprint() {
		return rot, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"rotation %s expects roots %s → %s but Secret %s holds others; it was changed outside Meshplane, restore it",
			rot.Phase, short(rot.Old), short(rot.New), CASecretName(fed))
	}
	return rot, nil
}

func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

// dueRotation says why a rotation is due — a new spec trigger, a root close
// to expiry (generated roots), or a new root in the supplied Secret — and
// returns the supplied next root; "" when none is due. done is true when
// the first root of this reconcile already answers the trigger.
func dueRotation(s *shared) (why string, next *trust.CA, done bool) {
	last := ""
	if s.status != nil {
		last = s.status.Trigger
	}
	rt, trigger := s.rt, s.settings.trigger
	switch {
	case rt.supplied != nil && rt.supplied.Fingerprint() != rt.current.Fingerprint():
		if t := "secret-" + short(rt.supplied.Fingerprint()); t != last {
			return t, rt.supplied, false
		}
	case rt.supplied == nil && trigger != "" && trigger != last:
		return trigger, nil, rt.created
	case rt.supplied == nil && trust.NeedsRenewal(rt.current.Cert, s.settings.rootRenew, s.now):
		if t := "root-expiry-" + short(rt.current.Fingerprint()); t != last {
			return t, nil, false
		}
	}
	return "", nil, false
}

// startRotation begins a rotation when one is due and every member can
// trust two roots at once: the next root is stored before anything else.
func (r *Reconciler) startRotation(ctx context.Context, s *shared) error {
	if s.rot.Active() || s.settings.abort {
		return nil
	}
	why, next, done := dueRotation(s)
	if done {
		s.trigger = why // the first root answers this trigger
	}
	if why == "" || done {
		return r.recordTrigger(s)
	}
	for _, m := range s.members {
		if !m.trust.Capabilities().Has(mesh.CapTrustBundle) {
			return outcome.Stalled(meshv1alpha1.UnsupportedFeatureReason,
				"root rotation needs every member to trust two roots at once; %s (cluster %s) cannot hold a bundle, so rotate its CA (Secret %s/%s) with %s's own tooling or remove it from the federation (nothing was changed)",
				m.spec.Provider, m.spec.Name, m.target.Namespace, m.target.IssuerSecret, m.spec.Provider)
		}
	}
	if next == nil {
		var err error
		if next, err = trust.GenerateRoot(trust.RootOptionsFrom(s.fed.Spec.Root.Generate), s.now); err != nil {
			return err
		}
	}
	s.rt.next = next
	if err := r.writeRoots(ctx, s.fed, s.rt); err != nil {
		return err
	}
	n, err := s.rot.Start(next.Fingerprint(), s.now)
	if err != nil {
		return err
	}
	r.event(s.fed, corev1.EventTypeNormal, "RotationStarted", "Rotate", "rotation %q started: root %s → %s", why, short(n.Old), short(n.New))
	s.rot, s.trigger = n, why
	return r.recordTrigger(s)
}

// recordTrigger starts the status of a rotation triggered in this
// reconcile; a rotation that started is a phase entered.
func (r *Reconciler) recordTrigger(s *shared) error {
	if s.trigger != "" {
		s.status = &meshv1alpha1.RotationStatus{Trigger: s.trigger, Phase: meshv1alpha1.RotationIdle}
		s.changed = s.rot.Active()
	}
	return nil
}

// abortRotation moves an active rotation to Aborting when the spec asks; a
// refusal (the old root is being removed) is reported while it waits.
func (r *Reconciler) abortRotation(_ context.Context, s *shared) error {
	if !s.settings.abort || !s.rot.Active() {
		return nil
	}
	n, err := s.rot.Abort(s.now)
	if err != nil {
		s.abortMsg = err.Error()
		return nil
	}
	if n.Phase != s.rot.Phase {
		r.event(s.fed, corev1.EventTypeWarning, "RotationAborted", "Rotate", "rotation aborted in phase %s: returning to root %s", s.rot.Phase, short(s.rot.Old))
		s.rot, s.changed = n, true
	}
	return nil
}

// distributeAll writes the phase's material to every reachable member.
func (r *Reconciler) distributeAll(ctx context.Context, s *shared) error {
	d := s.rot.Desired()
	s.bundle = &trust.Bundle{}
	for _, fp := range d.Bundle {
		s.bundle.Add(s.rt.byFingerprint(fp).Cert)
	}
	issuerRoot := s.rt.byFingerprint(d.Issuer)
	for _, m := range s.members {
		if m.err != nil {
			continue
		}
		if err := r.distribute(ctx, s.fed, m, issuerRoot, s.bundle, intermediateOptions(s.fed, m), s.now); err != nil {
			m.fail(err)
		}
	}
	s.out.bundle, s.out.bundleKnown = s.bundle.Fingerprints(), true
	return nil
}

// observe says whether every member holds the material and, in a waiting
// phase, whether every workload certificate rolled since the phase began.
func (r *Reconciler) observe(ctx context.Context, s *shared) error {
	s.obs = trust.Observation{Now: s.now, MinWait: s.settings.minWait, Synced: true, WorkloadsRolled: true}
	var notSynced []string
	for _, m := range s.members {
		if m.err != nil {
			s.obs.Synced = false
			notSynced = append(notSynced, m.spec.Name)
		}
	}
	s.obs.NotSynced = strings.Join(notSynced, ", ")
	if s.rot.Active() && s.obs.Synced {
		s.obs.LinksUnhealthy = r.linkHealth(ctx, s)
	}
	p := s.rot.Phase
	waiting := p == meshv1alpha1.RotationWaitingForReload || p == meshv1alpha1.RotationWaitingForWorkloads || p == meshv1alpha1.RotationAborting
	if !waiting || !s.settings.waitWorkloads || !s.obs.Synced {
		return nil
	}
	var old []string
	for _, m := range s.members {
		pods, err := notRolled(ctx, m, s.rot.PhaseStart)
		if err != nil {
			m.fail(err)
			s.obs.Synced, s.obs.NotSynced = false, m.spec.Name
			break
		}
		old = append(old, pods...)
	}
	s.obs.WorkloadsRolled, s.obs.NotRolled = len(old) == 0, summarize(old, 5)
	return nil
}

// advance moves the rotation by at most one phase. A phase entered in this
// reconcile (a start, an abort) is recorded before it may be left, so
// every phase shows in status. Leaving the rotation stores the roots that
// stay.
func (r *Reconciler) advance(ctx context.Context, s *shared) error {
	s.next = s.rot
	if s.changed {
		s.out.after = time.Millisecond
	} else {
		s.next, s.why, s.wait = s.rot.Step(s.obs)
	}
	if s.next.Phase == s.rot.Phase {
		if s.rot.Active() && !s.changed {
			s.out.after = r.poll()
			if s.wait > 0 && s.wait < s.out.after {
				s.out.after = s.wait
			}
		}
		return nil
	}
	switch s.next.Phase {
	case meshv1alpha1.RotationCompleted:
		s.rt.current, s.rt.next = s.rt.next, nil
		if err := r.writeRoots(ctx, s.fed, s.rt); err != nil {
			return err
		}
		s.out.root = s.rt.current
	case meshv1alpha1.RotationIdle:
		s.rt.next = nil
		if err := r.writeRoots(ctx, s.fed, s.rt); err != nil {
			return err
		}
	}
	r.event(s.fed, corev1.EventTypeNormal, "RotationPhase", "Rotate", "rotation phase %s → %s", s.rot.Phase, s.next.Phase)
	s.out.after = time.Millisecond // write the next phase's material at once
	return nil
}

// record sets what status says of the rotation. The reconcile that ends a
// rotation is not yet Ready: the next one writes the final material (after
// an abort, the bundle without the new root).
func (r *Reconciler) record(_ context.Context, s *shared) error {
	s.out.rotating, s.out.waitingFor = s.next.Active() || s.next.Phase != s.rot.Phase, s.why
	if s.abortMsg != "" {
		s.out.waitingFor = strings.TrimSpace(s.abortMsg + "; " + s.why)
	}
	if s.changed {
		s.status = recordRotation(s.status, trust.Rotation{Phase: meshv1alpha1.RotationAddingRoot}, s.next, "")
	} else {
		s.status = recordRotation(s.status, s.rot, s.next, s.out.waitingFor)
	}
	return nil
}

// schedule asks for the next look outside a rotation: the resync, or the
// renewal of the first intermediate due before it.
func (r *Reconciler) schedule(_ context.Context, s *shared) error {
	if s.next.Active() || s.out.after != 0 {
		return nil
	}
	s.out.after = r.resync()
	for _, m := range s.members {
		if m.intermediate != nil {
			if at := trust.RenewAt(m.intermediate, renewBefore(s.fed)).Sub(s.now); at > 0 && at < s.out.after {
				s.out.after = at
			}
		}
	}
	return nil
}

// recordRotation returns st with the rotation's progress. Nothing changes
// while idle, so a no-op reconcile patches nothing.
func recordRotation(st *meshv1alpha1.RotationStatus, before, after trust.Rotation, msg string) *meshv1alpha1.RotationStatus {
	if !before.Active() && !after.Active() {
		return st
	}
	if st == nil {
		st = &meshv1alpha1.RotationStatus{}
	}
	st.Phase, st.OldRootFingerprint, st.NewRootFingerprint = after.Phase, after.Old, after.New
	if after.Phase == meshv1alpha1.RotationIdle {
		st.NewRootFingerprint = before.New
		msg = fmt.Sprintf("rotation aborted; root %s is in use again", short(after.Old))
	}
	if after.Phase == meshv1alpha1.RotationCompleted {
		msg = fmt.Sprintf("root %s replaced root %s", short(after.New), short(after.Old))
	}
	if !after.PhaseStart.IsZero() {
		t := metav1.NewTime(after.PhaseStart)
		st.PhaseStartTime = &t
	}
	if len(msg) > 1024 {
		msg = msg[:1021] + "..."
	}
	st.Message = msg
	return st
}
