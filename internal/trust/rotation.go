package trust

import (
	"fmt"
	"time"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Rotation is the state of a root rotation. Old is the root in use before
// the rotation (the only root while Idle); New is the root being
// introduced (the only root once Completed).
type Rotation struct {
	Phase      meshv1alpha1.RotationPhase
	Old, New   string
	PhaseStart time.Time
}

// Desired is what every member must hold in a phase: the fingerprints of
// the roots in its bundle, in order, and of the root that signs its
// intermediate.
type Desired struct {
	Bundle []string
	Issuer string
}

// Current returns the root that is in use outside a rotation: New once
// Completed, Old otherwise.
func (r Rotation) Current() string {
	if r.Phase == meshv1alpha1.RotationCompleted {
		return r.New
	}
	return r.Old
}

// Active reports whether a rotation is under way.
func (r Rotation) Active() bool {
	switch r.Phase {
	case "", meshv1alpha1.RotationIdle, meshv1alpha1.RotationCompleted:
		return false
	}
	return true
}

// Desired returns the bundle and issuer root every member holds in the
// current phase:
//
//	Idle                                        {old}      old
//	AddingRoot, WaitingForReload                {old,new}  old
//	SwitchingIntermediates, WaitingForWorkloads {old,new}  new
//	RemovingOldRoot, Completed                  {new}      new
//	Aborting                                    {old,new}  old
func (r Rotation) Desired() Desired {
	switch r.Phase {
	case meshv1alpha1.RotationAddingRoot, meshv1alpha1.RotationWaitingForReload, meshv1alpha1.RotationAborting:
		return Desired{Bundle: []string{r.Old, r.New}, Issuer: r.Old}
	case meshv1alpha1.RotationSwitchingIntermediates, meshv1alpha1.RotationWaitingForWorkloads:
		return Desired{Bundle: []string{r.Old, r.New}, Issuer: r.New}
	case meshv1alpha1.RotationRemovingOldRoot, meshv1alpha1.RotationCompleted:
		return Desired{Bundle: []string{r.New}, Issuer: r.New}
	}
	return Desired{Bundle: []string{r.Old}, Issuer: r.Old}
}

// Start begins a rotation from the current root to newRoot. It is refused
// while another rotation runs.
func (r Rotation) Start(newRoot string, now time.Time) (Rotation, error) {
	if r.Active() {
		return r, fmt.Errorf("a rotation is already in phase %s", r.Phase)
	}
	cur := r.Current()
	if newRoot == cur {
		return r, fmt.Errorf("the new root is the current root")
	}
	return Rotation{Phase: meshv1alpha1.RotationAddingRoot, Old: cur, New: newRoot, PhaseStart: now}, nil
}

// Abort returns the rotation towards the old root. It is refused once the
// old root is being removed (or gone), and when no rotation runs.
func (r Rotation) Abort(now time.Time) (Rotation, error) {
	switch r.Phase {
	case meshv1alpha1.RotationAddingRoot, meshv1alpha1.RotationWaitingForReload,
		meshv1alpha1.RotationSwitchingIntermediates, meshv1alpha1.RotationWaitingForWorkloads:
		return Rotation{Phase: meshv1alpha1.RotationAborting, Old: r.Old, New: r.New, PhaseStart: now}, nil
	case meshv1alpha1.RotationAborting:
		return r, nil
	case meshv1alpha1.RotationRemovingOldRoot, meshv1alpha1.RotationCompleted:
		return r, fmt.Errorf("abort refused: the old root is already being removed (phase %s); start a new rotation instead", r.Phase)
	}
	return r, fmt.Errorf("abort refused: no rotation is running")
}

// Observation is what the controller saw after writing a phase's Desired
// state to every member.
type Observation struct {
	Now time.Time
	// Synced is true when every member holds the phase's Desired state.
	Synced bool
	// NotSynced names the members that do not, and why.
	NotSynced string
	// WorkloadsRolled is true when every meshed pod on every member started
	// after PhaseStart (or waiting for workloads is disabled).
	WorkloadsRolled bool
	// NotRolled says which pods are still older than the phase.
	NotRolled string
	// MinWait is the least time a waiting phase lasts.
	MinWait time.Duration
	// LinksUnhealthy names the members' links to peers that report
	// themselves unhealthy (where the mesh reports it), and why; empty
	// when every link is healthy or none reports.
	LinksUnhealthy string
}

// Step advances the rotation by at most one phase when the observation
// allows it, and otherwise holds, returning what it waits for and, for a
// wait on time only, when to look again.
func (r Rotation) Step(o Observation) (next Rotation, waitingFor string, after time.Duration) {
	advance := func(p meshv1alpha1.RotationPhase) (Rotation, string, time.Duration) {
		n := r
		n.Phase, n.PhaseStart = p, o.Now
		if p == meshv1alpha1.RotationIdle {
			n.New = ""
		}
		return n, "", 0
	}
	if !r.Active() {
		return r, "", 0
	}
	if !o.Synced {
		return r, "members not yet holding the " + string(r.Phase) + " material: " + o.NotSynced, 0
	}
	// A phase is left only while the links between members work: the
	// material it wrote did not break them. An abort is not held (it
	// returns to the root the links worked with).
	if o.LinksUnhealthy != "" && r.Phase != meshv1alpha1.RotationAborting {
		return r, "links between members not healthy: " + o.LinksUnhealthy, 0
	}
	waiting := func(p meshv1alpha1.RotationPhase) (Rotation, string, time.Duration) {
		if left := r.PhaseStart.Add(o.MinWait).Sub(o.Now); left > 0 {
			return r, fmt.Sprintf("minimum phase wait: %s left", left.Round(time.Second)), left
		}
		if !o.WorkloadsRolled {
			return r, "workloads still hold certificates from before the phase: " + o.NotRolled, 0
		}
		return advance(p)
	}
	switch r.Phase {
	case meshv1alpha1.RotationAddingRoot:
		return advance(meshv1alpha1.RotationWaitingForReload)
	case meshv1alpha1.RotationWaitingForReload:
		return waiting(meshv1alpha1.RotationSwitchingIntermediates)
	case meshv1alpha1.RotationSwitchingIntermediates:
		return advance(meshv1alpha1.RotationWaitingForWorkloads)
	case meshv1alpha1.RotationWaitingForWorkloads:
		return waiting(meshv1alpha1.RotationRemovingOldRoot)
	case meshv1alpha1.RotationRemovingOldRoot:
		return advance(meshv1alpha1.RotationCompleted)
	case meshv1alpha1.RotationAborting:
		return waiting(meshv1alpha1.RotationIdle)
	}
	return r, "", 0
}
