// Package install holds the pure parts of installing a mesh that the
// MeshInstall and MeshRevision controllers share: composing Helm values
// from Meshplane's defaults and the user's overrides, deriving Istio
// revision-tag webhooks from a revision's injector, and judging the health
// of control-plane workloads.
//
// Values are layered, later layers winning: the provider's and profile's
// defaults, spec.values, spec.components[chart].values, a MeshRevision's
// values (istiod only), then what Meshplane enforces (Istio's revision,
// Linkerd's identity). A null in a user layer deletes the key, as in Helm.
package install
