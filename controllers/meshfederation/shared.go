package meshfederation

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/trust"
)

// Rotation defaults of the API.
const (
	defaultRootRenewBefore = 2160 * time.Hour
	defaultMinPhaseWait    = 5 * time.Minute
)

func rotationSpec(fed *meshv1alpha1.MeshFederation) (trigger string, abort bool, minWait, rootRenew time.Duration, waitWorkloads bool) {
	minWait, rootRenew, waitWorkloads = defaultMinPhaseWait, defaultRootRenewBefore, true
	if rs := fed.Spec.Rotation; rs != nil {
		trigger, abort = rs.Trigger, rs.Abort
		if rs.MinPhaseWait != nil {
			minWait = rs.MinPhaseWait.Duration
		}
		if rs.RootRenewBefore != nil {
			rootRenew = rs.RootRenewBefore.Duration
		}
		if rs.WaitForWorkloads != nil {
			waitWorkloads = *rs.WaitForWorkloads
		}
	}
	return
}

// rotationFromStatus rebuilds the rotation state from status and the root
// state Secret. A next root without a recorded rotation (the status patch
// was lost) resumes at AddingRoot, which is safe from any later phase; a
// rotation whose end was stored in the Secret but not in status is over.
func rotationFromStatus(fed *meshv1alpha1.MeshFederation, rt *roots, now time.Time) (trust.Rotation, error) {
	cur := rt.current.Fingerprint()
	st := fed.Status.Rotation
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
			rot.Phase, short(rot.Old), short(rot.New), CASecretName(fed.Name))
	}
	return rot, nil
}

func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

// startRotation begins a rotation when one is due: a new spec trigger, a
// root close to expiry (generated roots), or a new root in the supplied
// Secret. It returns the trigger recorded, or "" when none is due.
func (r *Reconciler) startRotation(ctx context.Context, fed *meshv1alpha1.MeshFederation, rt *roots, members []*member,
	rot trust.Rotation, now time.Time) (trust.Rotation, string, error) {
	trigger, abort, _, rootRenew, _ := rotationSpec(fed)
	last := ""
	if fed.Status.Rotation != nil {
		last = fed.Status.Rotation.Trigger
	}
	if rot.Active() || abort {
		return rot, "", nil
	}
	var next *trust.CA
	var why string
	switch {
	case rt.supplied != nil && rt.supplied.Fingerprint() != rt.current.Fingerprint():
		if t := "secret-" + short(rt.supplied.Fingerprint()); t != last {
			next, why = rt.supplied, t
		}
	case rt.supplied == nil && trigger != "" && trigger != last:
		if rt.created {
			return rot, trigger, nil // the first root answers this trigger
		}
		why = trigger
	case rt.supplied == nil && trust.NeedsRenewal(rt.current.Cert, rootRenew, now):
		if t := "root-expiry-" + short(rt.current.Fingerprint()); t != last {
			why = t
		}
	}
	if why == "" {
		return rot, "", nil
	}
	for _, m := range members {
		if m.spec.Provider == meshv1alpha1.ProviderCilium {
			return rot, "", outcome.Stalled(meshv1alpha1.UnsupportedFeatureReason,
				"root rotation needs every member to trust two roots at once; Cilium (cluster %s) cannot hold a bundle, so rotate its ClusterMesh CA with Cilium's own tooling or remove it from the federation (nothing was changed)", m.spec.Name)
		}
	}
	if next == nil {
		var err error
		if next, err = trust.GenerateRoot(trust.RootOptionsFrom(fed.Spec.Root.Generate), now); err != nil {
			return rot, "", err
		}
	}
	rt.next = next
	if err := r.writeRoots(ctx, fed, rt); err != nil {
		return rot, "", err
	}
	n, err := rot.Start(next.Fingerprint(), now)
	if err != nil {
		return rot, "", err
	}
	r.event(fed, corev1.EventTypeNormal, "RotationStarted", "Rotate", "rotation %q started: root %s → %s", why, short(n.Old), short(n.New))
	return n, why, nil
}

func (r *Reconciler) reconcileShared(ctx context.Context, fed *meshv1alpha1.MeshFederation, members []*member) (*result, error) {
	// Status times have second precision; so does the rotation's clock.
	now := r.now().Truncate(time.Second)
	res := &result{members: members}
	rt, err := r.loadRoots(ctx, fed, now)
	if err != nil {
		return res, err
	}
	setRootStatus(fed, rt.current)
	rot, err := rotationFromStatus(fed, rt, now)
	if err != nil {
		return res, err
	}
	rot, trigger, err := r.startRotation(ctx, fed, rt, members, rot, now)
	if err != nil {
		return res, err
	}
	if trigger != "" {
		fed.Status.Rotation = &meshv1alpha1.RotationStatus{Trigger: trigger, Phase: meshv1alpha1.RotationIdle}
	}
	_, abort, minWait, _, waitWorkloads := rotationSpec(fed)
	abortMsg, changed := "", trigger != "" && rot.Active()
	if abort && rot.Active() {
		n, err := rot.Abort(now)
		if err != nil {
			abortMsg = err.Error()
		} else if n.Phase != rot.Phase {
			r.event(fed, corev1.EventTypeWarning, "RotationAborted", "Rotate", "rotation aborted in phase %s: returning to root %s", rot.Phase, short(rot.Old))
			rot, changed = n, true
		}
	}

	// Distribute the phase's material to every reachable member.
	d := rot.Desired()
	bundle := &trust.Bundle{}
	for _, fp := range d.Bundle {
		bundle.Add(rt.byFingerprint(fp).Cert)
	}
	issuerRoot := rt.byFingerprint(d.Issuer)
	for _, m := range members {
		if m.err != nil {
			continue
		}
		if err := r.distribute(ctx, fed, m, issuerRoot, bundle, intermediateOptions(fed, m), now); err != nil {
			m.fail(err)
		}
	}
	fed.Status.BundleFingerprints = bundle.Fingerprints()

	// Observe, then advance at most one phase.
	obs := trust.Observation{Now: now, MinWait: minWait, Synced: true, WorkloadsRolled: true}
	var notSynced, old []string
	for _, m := range members {
		if m.err != nil {
			obs.Synced = false
			notSynced = append(notSynced, m.spec.Name)
		}
	}
	obs.NotSynced = strings.Join(notSynced, ", ")
	waiting := rot.Phase == meshv1alpha1.RotationWaitingForReload || rot.Phase == meshv1alpha1.RotationWaitingForWorkloads ||
		rot.Phase == meshv1alpha1.RotationAborting
	if waiting && waitWorkloads && obs.Synced {
		for _, m := range members {
			pods, err := notRolled(ctx, m, rot.PhaseStart)
			if err != nil {
				m.fail(err)
				obs.Synced, obs.NotSynced = false, m.spec.Name
				break
			}
			old = append(old, pods...)
		}
		obs.WorkloadsRolled, obs.NotRolled = len(old) == 0, summarize(old, 5)
	}
	// A phase entered in this reconcile (start, abort) is recorded before
	// it may be left, so every phase shows in status.
	next, why, after := rot, "", time.Duration(0)
	if changed {
		res.after = time.Millisecond
	} else {
		next, why, after = rot.Step(obs)
	}
	if next.Phase != rot.Phase {
		switch next.Phase {
		case meshv1alpha1.RotationCompleted:
			rt.current, rt.next = rt.next, nil
			if err := r.writeRoots(ctx, fed, rt); err != nil {
				return res, err
			}
			setRootStatus(fed, rt.current)
		case meshv1alpha1.RotationIdle:
			rt.next = nil
			if err := r.writeRoots(ctx, fed, rt); err != nil {
				return res, err
			}
		}
		r.event(fed, corev1.EventTypeNormal, "RotationPhase", "Rotate", "rotation phase %s → %s", rot.Phase, next.Phase)
		res.after = time.Millisecond // write the next phase's material at once
	} else if rot.Active() && !changed {
		res.after = r.poll()
		if after > 0 && after < res.after {
			res.after = after
		}
	}
	// The reconcile that ends a rotation is not yet Ready: the next one
	// writes the final material (after an abort, the bundle without the
	// new root).
	res.rotating, res.waitingFor = next.Active() || next.Phase != rot.Phase, why
	if abortMsg != "" {
		res.waitingFor = strings.TrimSpace(abortMsg + "; " + why)
	}
	if changed {
		recordRotation(fed, trust.Rotation{Phase: meshv1alpha1.RotationAddingRoot}, next, now, "")
	} else {
		recordRotation(fed, rot, next, now, res.waitingFor)
	}
	if !next.Active() && res.after == 0 {
		res.after = r.resync()
		for _, m := range members {
			if m.intermediate != nil {
				if at := time.Until(trust.RenewAt(m.intermediate, renewBefore(fed))); at > 0 && at < res.after {
					res.after = at
				}
			}
		}
	}
	return res, nil
}

// recordRotation writes the rotation's progress into status. Nothing
// changes while idle, so a no-op reconcile patches nothing.
func recordRotation(fed *meshv1alpha1.MeshFederation, before, after trust.Rotation, now time.Time, msg string) {
	if !before.Active() && !after.Active() {
		return
	}
	st := fed.Status.Rotation
	if st == nil {
		st = &meshv1alpha1.RotationStatus{}
		fed.Status.Rotation = st
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
	_ = now
}
