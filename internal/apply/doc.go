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
//   - All or nothing (Prepare, then Commit; Apply does both): after the
//     clash check, every output that differs from the cached object —
//     fields of shared objects included — is server-side applied with
//     dryRun=All (same field manager, forced, as the real write), and every
//     delete a prune needs and every release of shared fields is dry-run
//     too, before the first real write. A refusal (Invalid, BadRequest,
//     Forbidden — an admission webhook such as the mesh's, or RBAC —, too
//     large) writes nothing, keeps the previous generation in force and is
//     terminal: outcome.Stalled with reason OutputRejected naming the
//     output, the fields and the API server's message (Refusal). Timeouts,
//     5xx (an unreachable webhook) and conflicts stay transient
//     (ApplyFailed). A no-op sends no dry run either: nothing differs.
//     Costs: one dry-run request per changed output, on changes only,
//     less one where the caller does nothing between Prepare and Commit
//     (Apply, ApplyDetached, PrepareToCommit): the first write, an owned
//     output, is its own check — Commit sends it before anything else, so
//     its refusal leaves nothing written and is returned as a dry run's
//     would be. A change of one output sends no dry run; a Canary, which
//     scales a workload between the two, dry-runs every output.
//   - Write order: owned outputs in the order the translator lists them,
//     then fields of shared objects (a namespace-wide default such as
//     Linkerd's default-inbound-policy, which tightens a whole namespace),
//     then the prune of outputs no longer desired (the old ones stay until
//     the new ones are in place), then the release of shared fields. A
//     translator lists what allows before what denies. A real write that
//     fails after its dry run passed (the API server changed in between)
//     returns an inventory of the previous outputs and every one a write
//     was sent for, so the caller records them and a later deletion
//     releases them.
//   - Foreign fields: the fields a shared output sets are returned with the
//     value each held before Meshplane first set it (SharedFields); the
//     owner persists that record before Commit writes them, and releasing
//     them applies the previous values with field manager
//     meshplane-restore before field manager meshplane lets go, so the
//     previous value is back without a gap and a field that was absent is
//     removed. Two owners restoring different fields of one object share
//     that manager: the later restore would release the earlier's (no
//     kind does that today: Linkerd's namespace policy is exclusive).
//   - Drift fights: an output that differs from the cached object although
//     its desired state (the hash annotation) did not change was rewritten
//     by another writer. Repairs are counted per output in memory
//     (DriftWindow); from DriftFightRepairs on, the next repair waits an
//     exponential back-off (outcome.Wait, reason DriftFight, nothing
//     written) and Result.Drift names the output, the other field managers
//     and the fields, read from managedFields with one uncached read per
//     drifted output (the cache strips managedFields). The counts are lost
//     on restart: a fight is detected again after DriftFightRepairs
//     repairs.
//   - A prune deletes on the preconditions UID and resourceVersion of the
//     object it checked: an output relabelled for another owner after the
//     cache was read is not deleted (Conflict, re-read on the next
//     reconcile).
//   - A foreign object with an output's name (no meshplane.io/owner label,
//     or another owner's) is never modified or deleted: the Applier returns
//     a *ConflictError (terminal, reason Conflict) before writing anything.
//   - Owner references (controller=true) let the garbage collector delete
//     outputs with their owner, so namespaced owners need no finalizer.
//     Cross-scope outputs (a namespaced owner's cluster-scoped output) get
//     none and must be pruned by the caller on deletion.
//   - Shared objects: a Namespace in the desired set (and an object of a
//     kind in Owner.SharedKinds: a ResiliencePolicy's target Service) is
//     never created, labelled or owned; only the metadata fields given
//     (for example one annotation) are applied, and pruning it applies an
//     empty configuration, which releases exactly those fields. A field
//     the owner stops setting while it still sets others of the object
//     (a BreakGlass lifting one setting) gets its recorded previous value
//     back and keeps its record; one that was absent before is removed.
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
