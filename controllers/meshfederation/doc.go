// Package meshfederation reconciles MeshFederations: a root of trust shared
// by several clusters, per-cluster intermediates written where each mesh
// reads them, merged trust bundles, and phased root rotation. The
// certificate work and the rotation plan are pure (internal/trust);
// everything mesh-specific (where a mesh reads its CA, how its issuer must
// be named, its self-signed CA, the pods that carry its certificates) comes
// from the provider's mesh.FederationTrust; this package does the I/O on
// the local and the member clusters (internal/remote), writing through
// internal/apply (one Applier per member cluster, detached owner).
//
// A SharedRoot reconcile is a list of named steps over one state
// (meshfederation_controller_shared.go): load the roots, resume, start or
// abort a rotation, distribute, observe, advance at most one phase, record,
// schedule. meshfederation_status.go turns its result into conditions.
//
// Service federation (spec.services, meshfederation_controller_services.go)
// runs after trust: per member, one apply of the mesh's reader identity,
// its own outputs (east-west gateway), the control-plane namespace's labels
// (shared fields, restored on release) and its credentials for every peer
// whose mesh federates services with it (mesh.ServiceFederation); each
// member's inventory lives in its status, so removal is exact.
//
// Trade-offs:
//
//   - Service federation has a finalizer, trust does not: links are
//     removed with the federation, the CA stays. A member that holds links
//     and does not answer holds the deletion (remove it from spec first).
//
//   - A pair links in two reconciles: a peer's reader ServiceAccount must
//     exist before a token of it can be requested. Tokens last 30 days and
//     are renewed 10 days before expiry; a credential still valid for the
//     peer's endpoint is kept, so a no-op reconcile requests no token.
//
//   - Objects written for service federation are not watched (neither in
//     the local cluster nor in members): drift is repaired at the next
//     reconcile, at least every Resync.
//
//   - A member's install mode is read from its MeshInstalls when it can be
//     listed; a member without one is taken as the provider's default
//     install (Istio sidecar).
//
//   - No finalizer: deleting a federation removes nothing it distributed,
//     since pulling a CA out from under a running mesh is an outage. The
//     root state Secret stays too.
//
//   - Member objects are read with uncached clients. The local cluster's
//     Secrets and ConfigMaps are watched (metadata only) so drift is
//     repaired at once; remote members are not watched and are compared on
//     every reconcile, at least every Resync (10 minutes by default).
//
//   - The rotation state lives in status (phase, fingerprints, phase start)
//     and the roots in the state Secret. If status is lost while a next
//     root exists, the rotation resumes at AddingRoot, which is safe from
//     any later phase.
//
//   - Members are processed one after another; an unreachable one costs at
//     most one request timeout per reconcile and never stops the others
//     from being written, but it holds a rotation.
//
//   - A phase entered in a reconcile (a start, an abort) is stored before it
//     can be left, so every phase shows in status and Events.
//
//   - Written objects carry the ownership labels and the Applier's hash
//     annotation but no owner reference (apply.Detached): they may live in
//     another cluster, and they outlive the federation. A member's issuer
//     Secret is read twice per reconcile (to keep its intermediate, then by
//     the Applier's compare): one more uncached GET for one write path.
package meshfederation
