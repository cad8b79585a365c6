// Package proxypolicy reconciles ProxyPolicies: the sidecar proxies' CPU
// and memory requests and limits, and their outbound scope, for a
// namespace or the workloads a selector picks.
//
// The resources are the mesh's injector annotations (Istio's
// sidecar.istio.io/proxyCPU…, Linkerd's config.linkerd.io/proxy-…),
// written on the pod template of every selected Deployment, StatefulSet
// and DaemonSet of the namespace (by their pod-template labels). Those
// workloads belong to other teams: the annotations are shared fields
// (internal/apply Owner.SharedKinds), server-side applied with field
// manager meshplane, with no label, owner reference or hash on the
// workload. Before the first write the policy records, in
// status.sharedFields, the value each annotation held before (or that it
// was absent) behind a finalizer; deleting the policy, a workload leaving
// the selector, or an annotation leaving the spec restores exactly that
// value (field manager meshplane-restore) or removes the annotation. An
// annotation another field manager applies (server-side apply: a GitOps
// tool, a Helm 4 release) with a different value is a Conflict, never
// taken over; one set by an imperative edit (kubectl annotate or edit,
// client-side apply) is taken over, recorded and restored.
//
// The egress scope is an Istio Sidecar the policy owns (<name>-proxy),
// deleted with it by the garbage collector.
//
// Rollout. A pod-template change is a rollout: each workload restarts its
// pods by its own update strategy. A platform engineer expects a change to
// the proxies of a whole namespace not to restart every workload at once,
// and to be able to stage it; so:
//
//   - spec.rollout unset: every selected workload is written at once (as
//     kubectl annotate would), each rolling by its own strategy. Ready once
//     every pod template carries the annotations; status.workloads says
//     which have finished rolling out.
//   - spec.rollout.batchSize N: N workloads (by kind, then name) at a time;
//     the next batch is written only once every configured workload has
//     rolled out and is available (kstatus, internal/upgrade.WorkloadReady,
//     the upgrade's health gate). Meanwhile Reconciling=True (Progressing)
//     and the message names the workload the gate waits for.
//   - spec.rollout.paused: nothing more is written; workloads not yet
//     configured are listed Pending, configured ones keep their values
//     (their recorded annotations are held, not released). Reconciling=True,
//     reason RolloutPaused, at the current generation.
//
// Trade-offs:
//
//   - Releases are not batched: a deletion, or workloads leaving the
//     selector, restores their annotations at once (a finalizer cannot wait
//     for rollouts, and a release puts back what the team had).
//   - The health gate waits for every configured workload, not only the
//     last batch: a configured workload that stays unavailable for another
//     reason holds the rollout, which the message names.
//   - A BreakGlass that relaxes the namespace's policies holds the policy:
//     nothing is written, so no rollout starts during an incident, and the
//     Sidecar scope the BreakGlass widened to "*/*" (a proxy that does not
//     know a STRICT-mTLS service sends to it in plain text and is refused)
//     stays widened until the BreakGlass is deleted and restores it.
//     Resources never block traffic: they are not relaxed.
//   - Workloads Meshplane owns (a Canary's primary carries the target's
//     template) are never selected.
//   - An annotation another writer changes by an imperative edit is
//     repaired on the next reconcile (Deployments are watched); there is no
//     drift-fight back-off for shared fields.
//   - Two ProxyPolicies that may select one workload, and an egressScope
//     beside an EgressPolicy for the same workloads (Istio keeps one Sidecar
//     per workload), are Conflicts (internal/overlap.Proxy).
package proxypolicy
