// Package oracle is a semantic oracle for Meshplane's translations: per
// mesh, a small pure-Go model of what the mesh's data plane enforces,
// evaluated on the objects Meshplane generates, so that tests compare what
// the mesh would do with what the user asked (the intent) instead of
// trusting that a schema-valid output is a correct one.
//
// Each model cites the documentation it follows:
//
//   - Istio (sidecar and ztunnel): PeerAuthentication and
//     AuthorizationPolicy evaluation — CUSTOM, then DENY, then ALLOW; with
//     no ALLOW policy selecting the workload a request is allowed, with one
//     it must match a rule; an ALLOW policy without rules matches nothing
//     (https://istio.io/latest/docs/concepts/security/#authorization-policy,
//     https://istio.io/latest/docs/reference/config/security/authorization-policy/).
//     ztunnel enforces L4 attributes only; an ALLOW rule with L7 attributes
//     cannot match at ztunnel, so it allows nothing
//     (https://istio.io/latest/docs/ambient/usage/l4-policy/).
//     VirtualService: the first http route whose any match matches wins,
//     weights split among its destinations
//     (https://istio.io/latest/docs/reference/config/networking/virtual-service/).
//   - Gateway API HTTPRoute (Linkerd, Cilium, Istio GatewayAPI output):
//     among matching rules, precedence is exact path, then longest prefix,
//     then method, then most header matches, then list order
//     (https://gateway-api.sigs.k8s.io/reference/spec/#httprouterule).
//   - Linkerd: the namespace's config.linkerd.io/default-inbound-policy
//     decides for ports no Server selects (deny, all-authenticated: meshed
//     clients, all-unauthenticated: everyone); a Server's requests are
//     allowed when an AuthorizationPolicy targeting it — or, when the
//     Server has policy HTTPRoutes, the route the request matches by
//     Gateway API precedence; a request matching no route is refused — has
//     every required authentication satisfied (MeshTLSAuthentication:
//     meshed client whose identity is listed, "*" any; NetworkAuthentication:
//     client address in a network)
//     (https://linkerd.io/2/reference/authorization-policy/,
//     https://linkerd.io/2/tasks/configuring-per-route-policy/).
//   - Cilium: an endpoint selected by a policy accepts only what an ingress
//     rule allows (an empty rule allows nothing); fromEndpoints match the
//     peer's labels (namespace, service account), fromEntities all any peer;
//     toPorts narrow to ports and, with rules.http, to method and path
//     regular expressions enforced by Envoy; authentication.mode required
//     admits only peers that completed mutual authentication, which needs
//     mutual authentication enabled in the agent
//     (https://docs.cilium.io/en/stable/security/policy/language/,
//     https://docs.cilium.io/en/stable/network/servicemesh/mutual-authentication/mutual-authentication/).
//
// # Trade-offs
//
// The models cover the fields Meshplane generates, not the whole of each
// API: a field the translator starts to use must be added to the model, or
// the property test's verdicts will say the mesh ignores it. Callers are
// either meshed (an identity: namespace and service account) or not (no
// identity, an address outside the mesh).
package oracle
