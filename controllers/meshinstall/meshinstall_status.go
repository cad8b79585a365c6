package meshinstall

import (
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

// computeStatus turns a reconcile's outcome into conditions and the
// controller-runtime result: success is Ready; a wait keeps Reconciling and
// requeues; a terminal error stalls without retry; anything else is
// requeued with backoff.
func computeStatus(mi *meshv1alpha1.MeshInstall, res ctrl.Result, err error) (ctrl.Result, error) {
	st, gen := &mi.Status.CommonStatus, mi.Generation
	incident.ClearHeld(st)
	upgrading := mi.Status.Upgrade != nil && mi.Status.Upgrade.Phase != "" &&
		mi.Status.Upgrade.Phase != meshv1alpha1.UpgradeCompleted && mi.Status.Upgrade.Phase != meshv1alpha1.UpgradeFailed
	if upgrading {
		u := mi.Status.Upgrade
		status.Set(st, gen, meshv1alpha1.UpgradingCondition, metav1.ConditionTrue, meshv1alpha1.ProgressingReason,
			fmt.Sprintf("upgrade %s → %s: %s, %d of %d namespaces migrated", u.FromVersion, u.ToVersion, u.Phase, u.MigratedNamespaces, u.TotalNamespaces))
	} else if status.Get(st, meshv1alpha1.UpgradingCondition) != nil {
		status.Set(st, gen, meshv1alpha1.UpgradingCondition, metav1.ConditionFalse, meshv1alpha1.SucceededReason, "no upgrade in progress")
	}
	var w *waitError
	switch {
	case err == nil:
		msg := fmt.Sprintf("%s %s is installed and healthy", mi.Spec.Provider, mi.Status.InstalledVersion)
		if mi.Status.ActiveRevision != "" {
			msg += fmt.Sprintf(" (active revision %s)", mi.Status.ActiveRevision)
		}
		status.MarkReady(st, gen, msg)
		return res, nil
	case errors.As(err, &w):
		status.MarkReconciling(st, gen, w.reason, w.msg)
		if w.reason == meshv1alpha1.WaitingReason && mi.Spec.Upgrade != nil && mi.Spec.Upgrade.Paused {
			// A pause is the state the spec asks for.
			st.ObservedGeneration = gen
		}
		return ctrl.Result{RequeueAfter: w.after}, nil
	case outcome.IsTerminal(err):
		status.MarkError(st, gen, err, meshv1alpha1.ProgressingReason)
		return ctrl.Result{}, nil
	default:
		status.MarkError(st, gen, err, meshv1alpha1.ProgressingReason)
		return ctrl.Result{}, err
	}
}
