package meshrevision

import (
	"errors"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/incident"
	"github.com/meshplane/meshplane/internal/outcome"
	"github.com/meshplane/meshplane/internal/status"
)

// waitError says the revision waits for something outside Meshplane; it
// stays Reconciling and is requeued after after (0: on watch events only).
type waitError struct {
	reason, msg string
	after       time.Duration
}

func (e *waitError) Error() string { return e.msg }

// computeStatus turns a reconcile's outcome into conditions and a result.
func computeStatus(rv *meshv1alpha1.MeshRevision, res ctrl.Result, err error) (ctrl.Result, error) {
	st, gen := &rv.Status.CommonStatus, rv.Generation
	var w *waitError
	var held *heldError
	if !errors.As(err, &held) {
		incident.ClearHeld(st)
	}
	switch {
	case held != nil:
		incident.MarkHeld(st, gen, held.bg, "istiod and tag webhook updates are held")
		return ctrl.Result{}, nil
	case err == nil:
		status.MarkReady(st, gen, fmt.Sprintf("istiod %s (revision %s) is Available; phase %s", rv.Spec.Version, rv.Name, rv.Status.Phase))
		return res, nil
	case errors.As(err, &w):
		status.MarkReconciling(st, gen, w.reason, w.msg)
		return ctrl.Result{RequeueAfter: w.after}, nil
	case outcome.IsTerminal(err):
		rv.Status.Phase = "Failed"
		status.MarkError(st, gen, err, meshv1alpha1.ProgressingReason)
		return ctrl.Result{}, nil
	default:
		status.MarkError(st, gen, err, meshv1alpha1.ProgressingReason)
		return ctrl.Result{}, err
	}
}

// heldError says a BreakGlass holds the revision's MeshInstall.
type heldError struct{ bg *meshv1alpha1.BreakGlass }

func (e *heldError) Error() string { return incident.Message(e.bg) }
