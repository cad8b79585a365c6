// Package apply writes a Meshplane object's outputs: server-side apply with
// field manager "meshplane" (internal/ownership), the ownership labels, an
// owner reference where scopes allow, an inventory of what was written,
// and a prune of the outputs no longer desired. The MeshInstall,
// MeshFederation and BreakGlass controllers reuse it, so its API knows
// nothing about TrafficSplits or meshes.
//
// Trade-offs:
//
//   - controller-runtime's client.Apply, not fluxcd/pkg/ssa. Flux's
//     ResourceManager detects drift with a server-side dry-run apply of
//     every object on every reconcile: one request per output even when
//     nothing changed. Meshplane's bar is zero requests on a no-op
//     reconcile, so the Applier compares the desired object with the cached
//     one instead: the desired fields must be present, with the same
//     values, in the cached object (fields other managers added are
//     ignored), and a hash of the desired object recorded in an annotation
//     must match (so a field removed from the desired state is noticed).
//     Only a difference sends an apply.
//   - Reads go through the manager's cache, as typed objects (the scheme
//     knows every output kind), so they cost no request; the controllers
//     watch every output kind, which keeps the cache authoritative. The
//     cache must not be filtered by label, or a foreign object with an
//     output's name would be invisible.
//   - A foreign object with an output's name (no meshplane.io/owner label,
//     or another owner's) is never modified or deleted: the Applier returns
//     a *ConflictError (terminal, reason Conflict) before writing anything.
//   - Owner references (controller=true) let the garbage collector delete
//     outputs with their owner, so namespaced owners need no finalizer.
//     Cross-scope outputs (a namespaced owner's cluster-scoped output) get
//     none and must be pruned by the caller on deletion.
//   - Shared objects: a Namespace in the desired set is never created,
//     labelled or owned; only the fields given (for example one
//     annotation) are applied, and pruning it applies an empty
//     configuration, which releases exactly those fields.
//   - Prune deletes only objects in the previous inventory that still
//     carry this owner's label.
//   - Every write returns a ChangeSet (in the manner of fluxcd/pkg/ssa's):
//     per object, created, configured, unchanged (nothing sent), pruned or
//     released. Controllers build their one Event from it and tests assert
//     on it; Wrote() is false exactly when no request was sent.
//   - Detached owners (Detached, ApplyDetached): the ownership labels but
//     no owner reference, for outputs in another cluster (MeshFederation's
//     members) or that must outlive their owner (generated mesh identity,
//     revision-tag webhooks an Orphan deletion keeps). ApplyDetached can
//     adopt an existing object (MeshInstall's spec.adopt) instead of
//     refusing it; it never prunes.
//
// This package is the one writer of outputs: TrafficSplit, ZeroTrustPolicy
// and Canary routes and policies, MeshFederation's CAs and bundles in every
// member, MeshInstall's and MeshRevision's revision-tag webhooks and
// identity Secrets. What is deliberately written elsewhere: the Helm
// releases (internal/helm, the Helm SDK's own server-side apply), the
// BreakGlass record Secret (created once and immutable: AlreadyExists is
// the guarantee) and its recorded merge patches to objects it does not own
// (internal/incident), and the label and restart patches that move
// existing namespaces and workloads between revisions.
package apply
