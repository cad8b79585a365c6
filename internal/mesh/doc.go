// Package mesh defines what Meshplane needs from a service mesh, as small
// interfaces a provider package (istio, linkerd, cilium) implements, and an
// explicit Registry that resolves a provider name to its implementation.
//
// Trade-offs:
//
//   - The registry fails closed. An unknown provider, or a provider that does
//     not implement the interface a kind needs, is a terminal error
//     (condition Stalled) naming the provider and what is missing. There is
//     no fallback to Istio or to any default mesh: translating a policy for
//     the wrong mesh is worse than not translating it.
//   - Capabilities are data, not behaviour. Each provider declares which
//     features it can express; controllers check a spec's required features
//     against them before translating anything, so an unsupported feature
//     is reported (reason UnsupportedFeature) and nothing is half-applied.
//     The same table generates the capability matrix in docs/.
//   - Per-provider knobs live in per-provider sub-structs of the API
//     (spec.istio, spec.linkerd, spec.cilium) and are read only by that
//     provider's package, so the interfaces stay mesh-agnostic.
//   - Translation is pure: a translator takes API objects and returns the
//     mesh's objects without touching the API server, so it is table- and
//     golden-tested; controllers own all I/O.
//   - The contract is the only way in: controllers name no mesh and import
//     no mesh package (make check-contract). What a controller needs to know
//     about a mesh is a small optional interface beside the core ones, each
//     in the file of its area, found through the Registry: output kinds to
//     watch and route reading (routes.go), federation trust layout
//     (trust.go), control-plane labels, revisions, tags and identity
//     (install.go). RBAC markers for a mesh's kinds live in its package.
package mesh
