// Package trust is Meshplane's certificate core, built on crypto/x509 and
// free of I/O: it generates and validates root CAs, issues per-cluster
// intermediates, decides renewals, merges trust bundles, lays the material
// out in the keys each mesh reads, and plans root rotation as a pure state
// machine (MeshFederation). The same generation, parsing and renewal serve
// a MeshInstall's mesh identity (identity.go: Linkerd's trust anchor and
// issuer, generated or read from the user's Secrets): one PEM parser
// (ParseCerts, ParseKey, ParseKeyPair) and one renewal rule (NeedsRenewal).
//
// Trade-offs:
//
//   - Intermediates have path length 0: a mesh's CA signs workload
//     certificates only, never another CA. Their lifetime is clamped to the
//     root's, so no intermediate outlives the root that vouches for it.
//   - Bundles are de-duplicated by the SHA-256 fingerprint of the DER
//     certificate and keep first-seen order, so the same inputs always give
//     the same bytes and a no-op reconcile writes nothing.
//   - Rotation never changes a cluster's bundle and its issuer in the same
//     step unless the bundle only grows: the new root joins every bundle
//     before any intermediate is signed by it, and leaves (on abort) or the
//     old root leaves (on completion) only after every intermediate and
//     workload moved away from it. Each cluster's bundle therefore always
//     holds the root of its current intermediate; rotation_test.go checks
//     this at every step, including aborts.
//   - A generated mesh identity renews its issuer when a third of its
//     lifetime remains (RenewBefore) or when it no longer chains to the
//     anchor; the anchor itself is never renewed here: rotating it is a
//     federation operation. ParseKeyPair does not judge validity, so an
//     expired generated issuer is renewed, not reported as damaged.
//   - A phase holds until its condition is observed; Step advances at most
//     one phase per call and never skips one.
package trust
