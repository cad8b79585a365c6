// Package helm installs, upgrades, rolls back and uninstalls mesh charts with
// the Helm v4 SDK, for the MeshInstall and MeshRevision controllers, which
// use it through the Releaser interface. It also composes what they pass
// to it: a chart's Source (SourceFor), its version (ChartVersion) and its
// values (Compose), and the Digest that tells them no Helm call is needed.
//
// # Values
//
// Values are layered, later layers winning: the provider's and profile's
// defaults (mesh.Installer Values), spec.values,
// spec.components[chart].values, a MeshRevision's values (the revision
// chart only), then what Meshplane enforces (mesh.Installer Enforced:
// Istio's revision, Linkerd's identity). A null in a user layer deletes the
// key, as in Helm. Values that are not a JSON object, and components naming
// a chart the mesh does not install, are terminal (InvalidSpec).
//
// # Chart sources
//
// A Source is an HTTP(S) chart repository (index.yaml), an OCI registry, or a
// local path (a chart directory, a packaged .tgz, or a directory holding
// several of either) for air-gapped sites. Repository indexes are cached for
// IndexTTL and re-read at once when a requested version is missing, so a
// version published later is found without waiting for the TTL. Archives are
// cached on disk under Options.CacheDir and checked against the digest the
// index publishes, on download and on every read: a tampered archive is
// refused. Loaded charts are not shared between operations: Helm mutates a
// chart while processing its dependencies, so each operation loads its own
// copy from the cached archive bytes (a few milliseconds even for Cilium).
//
// # Errors
//
// Errors carry their outcome (internal/outcome): a chart or version that does
// not exist is terminal (ChartUnavailable, naming the versions available), a
// template or values.schema.json failure is terminal (RenderFailed), a failed
// upgrade that was rolled back is terminal (InstallFailed). An unreachable
// repository or API server is a plain, transient error.
//
// # Validating a change
//
// Helm v4's server dry run only renders: it never sends the objects to the
// API server. Validate does: it renders every release of a change and
// server-side applies every rendered object with dryRun=All and field
// validation Strict, so a value the API server refuses (a quantity that is
// not one, a string where a number belongs) is terminal (OutputRejected)
// before any release moves, instead of failing the real upgrade, which
// would roll back and add two revisions to the history. The MeshInstall
// controller validates every changed chart this way before the first
// upgrade, and rolls back (Rollback) releases of the change that moved
// before a later one failed.
//
// # No-op detection
//
// Ensure stores a digest of chart, values and release labels in a release
// label (DigestLabel). When the digest of the wanted release equals the
// deployed one, Ensure returns Action None after reading the release Secrets
// only: no render and no write. When it differs, Ensure renders the release
// first (render errors stop it before any write) and compares the manifest
// with the deployed one; identical manifests of the same chart version are
// not upgraded, and the engine remembers the equivalence in memory so later
// calls skip the render too. The trade-off: after a restart of the operator
// that render happens once more, instead of writing the new digest into the
// release record without an upgrade.
//
// # Failures and recovery
//
// A failed upgrade is rolled back to the last deployed revision and a failed
// first install is uninstalled, by this package rather than Helm's
// RollbackOnFailure, so that the same happens with and without waiting. A
// release left in pending-install, pending-upgrade or pending-rollback (the
// operator died mid-operation) is marked failed and then upgraded again,
// which is what `helm upgrade` after a manual `helm rollback` would do but
// without human help. Operations on one release are serialised within the
// process.
//
// # Rendering, conflicts and adoption
//
// Render, and Ensure before any write, render with a server-side dry run:
// the API server's capabilities and lookups are real and nothing is written.
// For a release that does not exist yet the dry run also checks that no
// object it would create exists outside a Helm release of that name: such a
// clash is terminal (Conflict), never a takeover. Adopt is the explicit
// takeover: of an existing release (unchanged when the wanted values render
// the same), or, without a release, of objects a mesh's own CLI created
// (Helm's take-ownership). Ensure always deploys exactly Release.Values (Helm's
// reset-values): after an adoption, pass the values to keep.
//
// # CRDs
//
// Every CustomResourceDefinition rendered from a chart's templates gets the
// annotation helm.sh/resource-policy: keep through a post-renderer, so
// uninstalling a release never deletes a CRD (and the custom resources users
// stored in it). CRDs in a chart's crds/ directory are never deleted by Helm.
package helm
