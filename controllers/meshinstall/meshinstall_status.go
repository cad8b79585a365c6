package meshinstall

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/status"
)

// phase says which branch of Reconcile ran.
type phase string

const (
	phaseInstall   phase = ""
	phaseDelete    phase = "Delete"
	phaseSuspended phase = "Suspended"
	phaseHeld      phase = "Held"
)

// result is what a reconcile found besides its error.
type result struct {
	phase phase
	// heldBy is the BreakGlass holding the MeshInstall (phaseHeld).
	heldBy *meshv1alpha1.BreakGlass
	// deleting explains a deletion that goes on (phaseDelete); empty once
	// the finalizer is removed.
	deleting string
	// requeueAfter asks for another look (revision retention, deletion).
	requeueAfter time.Duration
}

// setStatus records the outcome of a reconcile on mi and returns the
// summary status.Finish completes: Ready once installed and healthy,
// Reconciling while deleting, the BreakGlass hold as set by
// incident.MarkHeld, and the Upgrading condition of an upgrade in flight.
// Errors (waits included) are left to Finish.
func setStatus(mi *meshv1alpha1.MeshInstall, out result, err error) status.Summary {
	st, gen := &mi.Status.CommonStatus, mi.Generation
	switch out.phase {
	case phaseSuspended:
		return status.Summary{State: status.Custom}
	case phaseHeld:
		incident.MarkHeld(st, gen, out.heldBy, "installs, upgrades, migration and webhook repair are held")
		return status.Summary{State: status.Custom}
	case phaseDelete:
		if out.deleting == "" {
			return status.Summary{State: status.Custom}
		}
		return status.Summary{State: status.Progressing, Reason: meshv1alpha1.DeletingReason, Message: out.deleting, RequeueAfter: out.requeueAfter}
	}
	incident.ClearHeld(st)
	if setUpgrading(mi) && err == nil {
		// Ready and Upgrading never contradict each other.
		c := status.Get(st, meshv1alpha1.UpgradingCondition)
		return status.Summary{State: status.Progressing, Reason: meshv1alpha1.ProgressingReason, Message: c.Message, RequeueAfter: out.requeueAfter}
	}
	if err != nil {
		return status.Summary{}
	}
	msg := fmt.Sprintf("%s %s is installed and healthy", mi.Spec.Provider, mi.Status.InstalledVersion)
	if mi.Status.ActiveRevision != "" {
		msg += fmt.Sprintf(" (active revision %s)", mi.Status.ActiveRevision)
	}
	if n := len(mi.Status.Waypoints); n > 0 {
		programmed := 0
		for _, w := range mi.Status.Waypoints {
			if w.Programmed {
				programmed++
			}
		}
		msg += fmt.Sprintf("; %d of %d waypoints programmed", programmed, n)
	}
	return status.Summary{Message: msg, RequeueAfter: out.requeueAfter}
}

// setUpgrading sets Upgrading while an upgrade is in flight, and False once
// none is (only when it was set before). It reports whether one is.
func setUpgrading(mi *meshv1alpha1.MeshInstall) bool {
	st, gen := &mi.Status.CommonStatus, mi.Generation
	u := mi.Status.Upgrade
	upgrading := u != nil && u.Phase != "" && u.Phase != meshv1alpha1.UpgradeCompleted && u.Phase != meshv1alpha1.UpgradeFailed
	switch {
	case upgrading:
		status.Set(st, gen, meshv1alpha1.UpgradingCondition, metav1.ConditionTrue, meshv1alpha1.ProgressingReason,
			fmt.Sprintf("upgrade %s → %s: %s, %d of %d namespaces migrated", u.FromVersion, u.ToVersion, u.Phase, u.MigratedNamespaces, u.TotalNamespaces))
	case status.Get(st, meshv1alpha1.UpgradingCondition) != nil:
		status.Set(st, gen, meshv1alpha1.UpgradingCondition, metav1.ConditionFalse, meshv1alpha1.SucceededReason, "no upgrade in progress")
	}
	return upgrading
}
