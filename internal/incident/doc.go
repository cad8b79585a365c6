// Package incident is the engine of the BreakGlass kind, and the one
// place the other controllers ask whether a BreakGlass covers what they
// are about to write.
//
// Coverage is read from a namespace annotation (NamespaceAnnotation) rather
// than recomputed from the BreakGlass's scope: detaching injection removes
// the labels that a namespace selector or mesh discovery matches on, so a
// recomputed scope would shrink as the BreakGlass engages.
//
// # Record, plan, engage, restore
//
// Plan is pure: from the live objects (as unstructured JSON) it returns
// every Change a BreakGlass makes — one field of one object, with the value
// found (Prior) and the value to set (Set). The controller writes the whole
// plan into one Secret (Record, gzip-compressed JSON; about 6 KB for 600
// namespaces) before it changes anything, and never rewrites it. Engage and
// Restore then compare each recorded field with the live object:
//
//   - live == Set: applied; live == Prior: pending (not applied yet, or
//     already restored); anything else: someone else changed it (Conflict).
//   - Engage writes Set on pending fields; Restore writes Prior on applied
//     fields; neither ever writes a conflicting field, which is reported.
//
// Progress is therefore derived from the cluster, never from memory: an
// operator restarted at any point re-reads the record and the live objects
// and carries on; a second engage or restore is a no-op. Scope is computed
// once, when the record is written; namespaces enrolled later are not
// covered (create another BreakGlass).
//
// Order: the webhooks first — one patch, after which new pods start in
// every namespace in scope, the point of the exercise (0.3–0.5 s for
// 500 namespaces in test/bench/breakglass). Webhook configurations are
// cluster-scoped and mesh-wide; the MeshInstall controller, the only one
// that writes them, reads ForMeshInstall, which counts a BreakGlass as
// active from its creation. Then one patch per namespace sets the coverage
// annotation together with the removal of its markers (so nothing is
// detached in a namespace before the TrafficSplit, ZeroTrustPolicy and
// Canary controllers can see the annotation), then policies, then workload
// restarts. Restore runs the reverse, except that namespaces get their
// labels back before the webhooks select them again; a namespace's labels
// and its coverage annotation come back in one patch, as they were
// engaged (one patch per namespace each way: 2,000 namespaces cost 2,000
// restore patches, not 4,000). The coverage annotation then leaves before
// the webhooks' NotIn requirement does, which is safe: the record outlives
// both until the restore ends, and a BreakGlass that engages a released
// namespace meanwhile adds a NotIn requirement of its own.
//
// # Several BreakGlasses
//
// A namespace is held by one BreakGlass at a time. The namespaces another
// active BreakGlass holds (those of its status.record, written before it
// changes anything, and those carrying its coverage annotation) are left
// to it: a BreakGlass listing one in spec.scope.namespaces, or whose scope
// would be left empty, is Conflict ("namespace x is already held by
// BreakGlass y; this BreakGlass holds nothing and changed nothing ...")
// and writes nothing, not even a record; it engages by itself once the
// other is gone. A whole-mesh or selector scope that only partly overlaps
// engages the rest. Sharing a hold was rejected: the shared namespace's
// original labels would have to come from the other's record, and the
// restore of the last holder would depend on the record of the first.
//
// Each BreakGlass adds its own NotIn requirement to a webhook (a change
// with Element set) and its restore removes exactly that element, so the
// webhook's namespaceSelector is always the original plus one requirement
// per live BreakGlass, whatever the order of creation and deletion; the
// original comes back when the last one goes. (failurePolicy, set to
// Ignore only by a whole-mesh BreakGlass, is restored by the one that
// changed it.)
//
// # The record and its loss
//
// The record Secret carries the finalizer meshplane.io/break-glass-record
// (only the BreakGlass controller removes it, after the restore) and is
// immutable. Before anything is changed, its SHA-256, the namespaces in
// scope and, up to 64 KiB compressed, the record itself are copied into
// the BreakGlass's status.record. A record found missing while status.record
// is set or namespaces carry the BreakGlass's coverage annotation is a
// loss, never a fresh start: the BreakGlass is Failed with Stalled reason
// RecordLost, nothing is re-recorded (the cluster is already detached) and
// nothing is restored; its deletion waits. The message names the Secret
// and the namespaces and says how to recover: recreate the Secret from
// status.record.data (a Secret with another digest is refused), or set
// meshplane.io/accept-record-loss=true and delete the BreakGlass, which then
// removes only what is identifiable without the record (its NotIn
// requirement, its coverage annotations). The phase Restored is stored
// before the record is deleted, so a record missing after a finished
// restore is not a loss.
//
// # Trade-offs
//
// Webhooks: each webhook of the mesh's injector (and, when relaxing
// policies, of its policy validator) gets a NotIn requirement on
// kubernetes.io/metadata.name listing the namespaces in scope, so the API
// server does not call it at all for them — no timeout is spent on a dead
// control plane, and namespaces outside the scope keep their injection
// exactly as before. Only when the scope is the whole mesh is failurePolicy
// also set to Ignore, so a namespace enrolled during the incident is not
// blocked either; a scoped BreakGlass never makes the webhook fail open for
// namespaces it does not cover. The webhooks list is replaced whole by a
// merge patch, so those patches carry the resourceVersion (optimistic
// lock) and retry on conflict rather than lose a concurrent edit.
//
// Policies are suspended in place, never deleted: the whole spec is
// recorded and replaced by a relaxed spec the provider computes
// (mesh.BreakGlassDriver.RelaxPolicy): Istio PeerAuthentication PERMISSIVE,
// ALLOW AuthorizationPolicies allow everything (one empty rule) and DENY
// ones match nothing (no rules); Linkerd Servers all-unauthenticated and
// AuthorizationPolicies require no authentication, plus the namespace's
// default-inbound-policy annotation; Cilium policies keep their selector
// with allow-all rules. Editing in place keeps the object's identity,
// owner references and inventory entries (deleting would make the
// ZeroTrustPolicy controller or Argo CD recreate it, and a recreate loses
// the uid and creation time), and restoring the recorded spec is exact.
//
// Workload restarts set kubectl's restartedAt pod-template annotation, one
// batch per reconcile, batches DefaultRestartPace (5 s) apart, without waiting for a
// batch to become ready (during an incident it may never be). Restore puts
// the recorded annotation value back (removes it when there was none); that
// changes the pod template again, so the workloads roll once more and get
// their sidecars back now that injection is restored — which is wanted.
//
// Conflicts: a field with neither the recorded nor the set value was
// changed by someone during the incident; it is kept and listed in
// status.conflicts with a Warning Event on the object. An object deleted
// during the incident is not recreated (also reported).
package incident
