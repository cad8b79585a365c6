// Package controllers holds one sub-package per Meshplane kind
// (controllers/meshinstall, controllers/trafficsplit, …), each a thin
// reconciler wired into the manager built by internal/manager.
//
// Every reconciler follows the same shape, after Flux's helm-controller and
// cluster-api:
//
//   - Reconcile: get the object, start a patch helper, defer the status
//     patch, branch to deletion, ensure the finalizer, then run the phases
//     as small functions. Reconcile itself stays short.
//   - Status is computed in <kind>_status.go from what the phases found; the
//     conditions are Ready (summary), Reconciling and Stalled (kstatus,
//     abnormal-true) plus the kind's own (api/v1alpha1/conditions.go).
//     observedGeneration is set only on success or a terminal error.
//   - Errors carry their outcome (internal/outcome): a terminal error sets
//     Stalled=True with its reason and is not retried until the spec or a
//     watched object changes; any other error is requeued with backoff.
//   - The mesh comes from spec.provider or internal/discovery, and its
//     implementation from the registry in internal/mesh, which fails closed.
//   - Writes are server-side applies with field manager "meshplane" of only
//     the fields Meshplane owns, compared with the cached state first so a
//     no-op reconcile sends no write; every write emits an Event.
//   - Every kind a controller writes is watched, so drift is repaired.
package controllers
