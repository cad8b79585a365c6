package status

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

// Object is a Meshplane object: every kind exposes its CommonStatus.
type Object interface {
	client.Object
	GetCommonStatus() *meshv1alpha1.CommonStatus
}

// State is the summary a reconcile that returned no error leaves behind.
type State int

const (
	// Ready: the object is what its spec asks for (Ready=True).
	Ready State = iota
	// Progressing: work goes on (Reconciling=True, Ready=False).
	Progressing
	// Stalled: the object cannot progress without a change
	// (Stalled=True, Ready=False), although the phases did not fail (a
	// canary rolled back, an upgrade aborted).
	Stalled
	// Custom: the kind's status function already set Ready, Reconciling
	// and Stalled (a BreakGlass holds the object); Finish leaves them.
	Custom
)

// Summary is what the phases of a reconcile that returned no error found.
type Summary struct {
	// State selects the summary conditions; Ready by default.
	State State
	// Reason of a Progressing or Stalled state.
	Reason string
	// Message of the Ready, Reconciling or Stalled condition.
	Message string
	// Current marks a Progressing state the spec asks for (a pause, a
	// canary waiting for its next step): observedGeneration moves to the
	// generation.
	Current bool
	// RequeueAfter asks for another reconcile after this interval.
	RequeueAfter time.Duration
}

// patchConflictRetry is when a reconcile whose status patch lost an
// optimistic lock runs again.
const patchConflictRetry = time.Second

// Finish ends every Reconcile: it sets Ready, Reconciling and Stalled on
// obj from the phases' summary and error, patches metadata and status once
// through p, and returns what controller-runtime needs (outcome.Result).
// The kind's own conditions are set before, by its <kind>_status.go, with
// the same summary and error. transientReason is the Reconciling reason of
// an error that is neither terminal nor a wait.
func Finish(ctx context.Context, p *Patcher, obj Object, sum Summary, err error, transientReason string) (ctrl.Result, error) {
	Summarize(obj, sum, err, transientReason)
	res, rerr := outcome.Result(ctrl.Result{RequeueAfter: sum.RequeueAfter}, err)
	if perr := p.Patch(ctx, obj); perr != nil {
		if apierrors.IsConflict(perr) {
			// Someone else wrote the object in between: run again on
			// fresh data.
			return ctrl.Result{RequeueAfter: patchConflictRetry}, nil
		}
		if rerr == nil {
			return ctrl.Result{}, perr
		}
	}
	return res, rerr
}

// Summarize sets Ready, Reconciling and Stalled on obj from a summary and
// an error; Finish without the patch.
func Summarize(obj Object, sum Summary, err error, transientReason string) {
	st, gen := obj.GetCommonStatus(), obj.GetGeneration()
	if err != nil {
		markError(st, gen, err, transientReason)
		return
	}
	switch sum.State {
	case Ready:
		MarkReady(st, gen, sum.Message)
	case Progressing:
		MarkReconciling(st, gen, sum.Reason, sum.Message)
		if sum.Current {
			st.ObservedGeneration = gen
		}
	case Stalled:
		MarkStalled(st, gen, sum.Reason, sum.Message)
	case Custom:
	}
}

func markError(st *meshv1alpha1.CommonStatus, gen int64, err error, transientReason string) {
	if w, ok := outcome.AsWait(err); ok {
		MarkReconciling(st, gen, w.Reason, w.Message)
		if w.Current {
			st.ObservedGeneration = gen
		}
		return
	}
	MarkError(st, gen, err, transientReason)
}

// Begin starts every Reconcile: it reads obj by key through r (the cache,
// or an uncached reader for kinds whose status is their memory) and
// returns the Patcher that Finish uses, snapshotting obj as read. It
// returns a nil Patcher when the object is gone (nil error), could not be
// read (the error), or was stored with fields that cannot be decoded
// (Undecodable marked it Stalled): the Reconcile then returns
// ctrl.Result{} and the error.
func Begin(ctx context.Context, c client.Client, r client.Reader, key client.ObjectKey, obj Object) (*Patcher, error) {
	if err := r.Get(ctx, key, obj); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	if stop, err := Undecodable(ctx, c, obj); stop {
		return nil, err
	}
	return NewPatcher(c, obj), nil
}
