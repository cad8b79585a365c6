// Package status is the one reconcile skeleton of Meshplane's controllers
// and what they do with their object's status: the kstatus conditions
// (Ready, Reconciling, Stalled) derived from a reconcile's outcome, and a
// Patcher that writes only what changed.
//
// Every Reconcile has the same shape:
//
//	obj := &meshv1alpha1.TrafficSplit{}
//	patcher, err := status.Begin(ctx, r.Client, r.Client, req.NamespacedName, obj)
//	if patcher == nil {
//		return ctrl.Result{}, err
//	}
//	out, err := r.reconcile(ctx, obj)   // the kind's named phases
//	sum := setStatus(obj, out, err)     // the kind's own conditions; pure
//	return status.Finish(ctx, patcher, obj, sum, err, meshv1alpha1.ApplyFailedReason)
//
// Trade-offs:
//
//   - Finish, not a deferred patch. Sail Operator's StandardReconciler and
//     Flux's ResultFinalizer end a Reconcile the same way: one function turns
//     the result and the error into conditions, one status patch and the
//     controller-runtime result, so no controller copies the switch over
//     error kinds (internal/outcome decides: terminal, wait, conflict,
//     transient). A deferred patch hides the order of these steps.
//   - setStatus is a pure function of the object, the phases' result and the
//     error, returning a Summary; conditions are table-tested without an API
//     server. A kind with its own summary (a BreakGlass hold) sets it and
//     returns State Custom.
//   - The Patcher sends metadata (labels, annotations, finalizers) in one
//     merge patch and the whole status in one merge patch of the status
//     subresource. Fluxcd's patch helper writes conditions and the other
//     status fields in separate requests, so a reader could briefly see
//     Ready=True next to stale fields; one patch per subresource avoids
//     that. Nothing is sent when the object did not change, which is what
//     makes a no-op reconcile write-free.
//   - Both patches carry the resourceVersion the reconcile read (an
//     optimistic lock). A reconcile that read a cache lagging its own last
//     write, or raced another writer, fails with Conflict and runs again a
//     second later on fresh data instead of overwriting newer status; the
//     cost is that retry. A reconcile about to act on what it records (an
//     upgrade batch) calls Patcher.Commit first: record first, act second.
package status
