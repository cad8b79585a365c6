// Package overlap decides which of two Meshplane objects that would
// configure the same traffic wins, for every mesh, before anything is
// translated: the loser is Stalled with reason Conflict naming the winner
// (outcome.Conflict), writes nothing, and is reconciled again when the
// winner is deleted or changed (the controllers watch the other objects
// through Changes and EnqueueRoutes, EnqueuePolicies or EnqueueContenders:
// only the objects the change can block or free) or after outcome.ConflictRetry.
//
// What overlaps:
//
//   - Routes: TrafficSplits and Canaries of one namespace that route the
//     same Service (a TrafficSplit's spec.service.name; a Canary's
//     spec.service.name, or spec.targetRef.name when unset). The Service,
//     not the port, is the unit: Istio's VirtualService selects traffic by
//     host, so two routes for one Service clash on Istio even on different
//     ports, and the rule is the same on every mesh. Two routes for one
//     Service would both be applied (two VirtualServices or HTTPRoutes for
//     one host), and the mesh would follow one of them or merge them.
//   - Policies: two ZeroTrustPolicies of one namespace whose selectors may
//     select a common pod, with a different mTLS mode or a different
//     default action. A missing or empty selector is the whole namespace,
//     so it overlaps every policy of the namespace. Two selectors overlap
//     unless some label key makes them disjoint: matchLabels or In sets
//     with no common value, Exists against DoesNotExist, a value required
//     by one and excluded by the other (NotIn). "May select" is decided on
//     the selectors alone, not on the pods that exist now, so the answer
//     does not change when pods come and go. Overlapping policies with the
//     same mode and default action compose (every mesh unions their allow
//     rules) and are not a conflict.
//
// Who wins: the object whose current spec is in force (status
// observedGeneration equals its generation, not Stalled, outputs in its
// inventory) over one whose spec is not, so editing an older object into
// an overlap never displaces a younger one already applied; then the
// older (creation time), then the name. Objects being deleted are out of
// the contest. Policies are decided in that order one by one: a policy
// yields only to a policy that itself won, so a policy blocked by a
// third one does not block others.
//
// Trade-offs:
//
//   - An object that was applied and then loses (two objects both in
//     force, from before this rule existed) keeps its outputs of the last
//     good generation, as every refused update does, and reports the
//     Conflict until one of the two is changed or deleted.
//   - The check reads the other objects from the cache: two objects
//     created at the same instant are decided once both are in the cache;
//     the watch re-checks the younger when the older appears.
package overlap
