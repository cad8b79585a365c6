// Package remote builds Kubernetes clients for MeshFederation's member
// clusters from kubeconfig Secrets.
//
// Trade-offs:
//
//   - Clients are cached per Secret and rebuilt only when the kubeconfig's
//     bytes change (compared by SHA-256), so a reconcile reuses the HTTP
//     connections of the previous one and a rotated token takes effect at
//     the next reconcile.
//   - Kubeconfigs that run a program (exec credential plugins), use an
//     auth-provider plugin, or reference files (certificate, key, token or
//     CA files) are refused: the operator would otherwise run commands or
//     read files chosen by whoever can write the Secret. Inline data
//     (certificate-authority-data, client-certificate-data, token) is
//     required.
//   - Clients are uncached (direct API calls, no informers): a federation
//     touches a handful of objects per member, and a watch per remote
//     cluster would hold connections to every member for ever. Drift on
//     remote members is repaired by periodic resync instead.
//   - Every request carries a timeout, so an unreachable member fails
//     fast and the others proceed.
package remote
