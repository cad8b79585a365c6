package providers

import (
	"os"
	"strings"
	"testing"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
)

const resilienceDocPath = "../../../docs/resilience.md"

const resilienceDocHeader = `# ResiliencePolicy

Generated from the providers' code by ` + "`make docs`" + ` (internal/mesh/providers/resilience_doc_test.go);
do not edit.

A ResiliencePolicy says how calls to one Service (optionally one port) behave: connection pool,
outlier detection, load balancing, retries with a budget, timeouts, fault injection and a local
rate limit. Its status carries ` + "`support`" + `: for every field the spec sets and every mesh, whether
the mesh enforces it (and as what) or refuses it (and why). The selected mesh's answers decide: a
policy with a field its mesh refuses is ` + "`Ready=False`" + `, reason ` + "`UnsupportedFeature`" + `, naming each
refused field, and nothing is applied. The other meshes' answers (for a default install) say what
a move would keep.

` + "```yaml" + `
apiVersion: meshplane.io/v1alpha1
kind: ResiliencePolicy
metadata: {name: reviews, namespace: shop}
spec:
  targetRef: {name: reviews, port: 9080}
  connectionPool: {maxConnections: 100, maxPendingRequests: 50, connectTimeout: 2s}
  outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50}
  loadBalancer: {algorithm: LeastRequest, warmup: 30s}
  retries: {attempts: 3, perTryTimeout: 2s, retryOn: [5xx, ConnectFailure], budget: {percent: 20}}
  timeouts: {request: 10s}
  faultInjection:
    abort: {httpStatus: 503, percent: 5}
    headers: [{name: x-chaos, value: "on"}]
  rateLimit: {local: {requests: 100, interval: 1s, burst: 200}}
` + "```" + `

## What each field becomes

A default install of each mesh, in a namespace of its usual data plane (Istio sidecar, Linkerd
proxy, Cilium with Envoy):

`

const resilienceDocScopes = `
## Where the install or the namespace decides

- **Istio ambient.** Everything is enforced by the waypoint that serves the Service (the
  namespace's or the Service's ` + "`istio.io/use-waypoint`" + `); without one the policy is refused,
  naming the Service and the Gateway to create. Routes in ambient namespaces are Gateway API
  HTTPRoutes, which carry no retries or faults, and EnvoyFilters do not apply to waypoints:

`

const resilienceDocFooter = `
- **Istio versions.** ` + "`retries.budget`" + ` becomes DestinationRule ` + "`trafficPolicy.retryBudget`" + `, which
  Istio has from 1.27; an older installed version (MeshInstall status.installedVersion) refuses it.
- **Cilium without Envoy** (MeshInstall ` + "`spec.cilium.envoy: false`" + `) refuses every field; without
  its Gateway API support (` + "`spec.cilium.gatewayAPI: false`" + `) ` + "`timeouts.request`" + `; Cilium before 1.14
  (no cilium.io/v2 CiliumEnvoyConfig) every Envoy field, before 1.15 (no GAMMA) the request timeout.
- **Linkerd versions.** Failure accrual needs Linkerd 2.13 (edge-23.3), retries and timeouts as
  annotations 2.16 (edge-24.8), the local rate limit (HTTPLocalRateLimitPolicy) 2.17 (edge-24.11);
  an older installed version refuses the field, naming both.
- **Linkerd's local rate limit** is an HTTPLocalRateLimitPolicy (` + "`total.requestsPerSecond`" + `) owned by the
  policy and attached to the Server that already covers the target's pods (its podSelector's
  matchLabels equal to the Service's selector) and target port (same number or name), one per such
  Server. It is written only when exact: requests per interval a whole number per second, burst
  unset or equal to requests; otherwise the field is refused with the value and the fix. Without
  such a Server it is refused: Meshplane does not create a Server, as a new Server changes what
  the port admits.

## Linkerd: annotations of the target Service

Linkerd reads failure accrual, retries and timeouts from annotations of the Service (every port
of it: a policy for one port of a Service with several is refused). The Service is the user's, so
Meshplane applies only those annotations (server-side apply, field manager ` + "`meshplane`" + `) and
records each one's previous value in ` + "`status.sharedFields`" + ` before the first write, with the finalizer
` + "`meshplane.io/shared-fields`" + `. Deleting the policy, or dropping a field, puts each annotation back
exactly: the previous value where there was one, removed where there was none. Durations are
written in one unit (` + "`1500ms`" + `, not ` + "`1s500ms`" + `): Linkerd's policy controller ignores anything else.
Retries and timeouts do not apply to headless Services, and are refused there.

When a TrafficSplit routes the Service, Linkerd reads retries and timeouts from the split's
HTTPRoute before the Service, so the split's route carries the policy's retries and timeouts
(` + "`status.composedWith`" + `) and the Service keeps only the failure accrual. gRPC retry conditions
(` + "`retry.linkerd.io/grpc`" + `) are ignored on an HTTPRoute and are refused while a split routes the Service.

## Cilium: one Envoy redirect per Service

A GAMMA HTTPRoute, the ` + "`service.cilium.io/lb-l7`" + ` annotation and a CiliumEnvoyConfig each redirect a
Service's traffic to an Envoy listener of their own, and Cilium defines no conflict resolution
between two (its L7 traffic-management guide: the results are unpredictable). So Meshplane gives
a Service one of them:

- A policy with pool, outlier-detection, ` + "`timeouts.idle`" + `, fault or rate-limit fields gets one
  CiliumEnvoyConfig (` + "`cilium.io/v2`" + `, annotation ` + "`cec.cilium.io/use-original-source-address: \"false\"`" + `)
  whose ` + "`services`" + ` redirect the Service (the target port when set) to a listener with the
  fault and local rate-limit filters before the router, a route to the Service's EDS cluster with
  the request and idle timeouts, and that cluster with the circuit breakers, outlier detection, pool
  settings and the algorithm as ` + "`lb_policy`" + `.
- Otherwise ` + "`timeouts.request`" + ` is a GAMMA HTTPRoute of the policy's own (the Service and port as
  parent and backend; the port must be ` + "`spec.targetRef.port`" + ` or the Service's only TCP port), and
  the algorithm is written as the annotations ` + "`service.cilium.io/lb-l7: enabled`" + ` and
  ` + "`service.cilium.io/lb-l7-algorithm`" + ` on the user's Service: fields of a shared object, recorded in
  ` + "`status.sharedFields`" + ` with their previous values and restored exactly when the policy goes or
  drops the algorithm.
- The algorithm next to an HTTPRoute for the Service (the policy's timeout, or a TrafficSplit's
  route), and Envoy fields next to a TrafficSplit's route, are refused (` + "`UnsupportedFeature`" + `) with
  the way out.
- A TrafficSplit's HTTPRoute for the same port carries the policy's ` + "`timeouts.request`" + ` on every
  rule (` + "`status.composedWith`" + `); the same field set by both is a ` + "`Conflict`" + ` on the younger.

## Composition with TrafficSplit and Canary

Istio merges one VirtualService per host, so a Service gets one route per mesh:

- When a TrafficSplit (output Native) or a Canary routes the policy's Service, its VirtualService
  carries the policy's retries, request timeout and faults on every route (header-matched faults
  as a route before each of its routes); the policy writes only its DestinationRule and
  EnvoyFilter and reports ` + "`status.composedWith`" + ` (the split's or Canary's name).
- The composed VirtualService is owned by both: its controller owner reference (and the
  ownership labels and inventory) are the split's or Canary's, and it carries a second owner
  reference to the policy. Deleting the policy recomposes the route without its fields and its
  reference; deleting the split or Canary deletes the route (the policy deletes a composed route
  whose route owner is gone, as the garbage collector keeps an object while one owner lives) and
  gives the policy its own VirtualService again.
- A switch between the policy's own VirtualService and a composed one never shows two
  VirtualServices for the host at once: the route owner writes the composed route only once the
  policy's own is gone, and the policy writes its own only once no composed route carries it.
  For a moment the host has none (the Service's default routing).
- The same field set by both (retries; TrafficSplit ` + "`timeout`" + ` or Canary ` + "`service.timeout`" + ` and policy
  ` + "`timeouts.request`" + `) is a ` + "`Conflict`" + ` on the younger object, which writes nothing; the older keeps
  its route.
- A TrafficSplit with output GatewayAPI routing the Service cannot carry the policy's route-level
  fields: a policy with them is a ` + "`Conflict`" + ` naming the split, and its own VirtualService of an
  earlier generation is removed so the host never has two.
- Two ResiliencePolicies for one Service are a ` + "`Conflict`" + ` on the younger (one DestinationRule per
  host): merge them.

## Rate limits on Istio

- ` + "`rateLimit.local`" + ` is a token bucket in each of the target's sidecars (inbound), Istio's
  documented EnvoyFilter with ` + "`envoy.filters.http.local_ratelimit`" + `.
- ` + "`rateLimit.local.pathPrefix`" + ` limits only requests whose path starts with the prefix: the filter
  is inserted without a bucket, and an HTTP_ROUTE patch on the inbound routes sets the bucket as
  the route's ` + "`typed_per_filter_config`" + `, with a descriptor for the prefix; other paths are not
  limited.
- ` + "`rateLimit.global`" + ` asks the user's rate-limit service (Envoy's rate limit service protocol, e.g.
  envoyproxy/ratelimit) through ` + "`envoy.filters.http.ratelimit`" + ` before the router, with the
  service's Istio outbound cluster (` + "`outbound|<port>||<name>.<namespace>.svc.cluster.local`" + `), the
  ` + "`domain`" + ` and one descriptor per request whose entries come from a header, the path or a
  constant, in order. The local limit applies first. ` + "`failClosed`" + ` rejects requests while the
  service cannot be asked (default: let through); ` + "`timeout`" + ` bounds one call (default 20ms).
- Linkerd and Cilium refuse ` + "`rateLimit.global`" + ` (see the table).

## BreakGlass

While a BreakGlass that relaxes policies covers the namespace, the policy is applied without
fault injection, the rate limit and outlier detection (what can block traffic), in its own outputs
and in a composed TrafficSplit or Canary route; it reports ` + "`BreakGlassActive`" + `. When the BreakGlass lets go
the policy is applied as written again: the outputs are derived from the spec, so the restore is
exact. On Linkerd the failure-accrual annotations are given back as they were before the
policy (previous value or none) while the BreakGlass holds, and set again after.

## Not in this release

- Linkerd's local rate limit when no Server covers the target (Meshplane does not create one), or
  when another HTTPLocalRateLimitPolicy already targets the Server (Linkerd takes one per Server).
  A Server created after the policy is seen on the policy's next reconcile (no Server watch).
- Cilium retries (Gateway API's experimental channel); global rate limits on Linkerd and Cilium;
  per-path local rate limits on Linkerd and Cilium.
- Composition of a Canary's route with a policy on Linkerd and Cilium is not tested end to end.
`

// TestResilienceDoc keeps docs/resilience.md equal to what the providers
// answer.
func TestResilienceDoc(t *testing.T) {
	ambient := func(p meshv1alpha1.Provider) mesh.Scope {
		s := mesh.DefaultScope(p)
		if p == meshv1alpha1.ProviderIstio {
			s.Namespace.Mode, s.Namespace.Waypoint = mesh.Ambient, "waypoint"
			s.Namespace.Waypoints = map[string]mesh.WaypointFacts{"waypoint": {For: "service", Programmed: true}}
		}
		return s
	}
	want := resilienceDocHeader + mesh.ResilienceTable(Registry(), nil) + resilienceDocScopes +
		istioOnly(mesh.ResilienceTable(Registry(), ambient)) + resilienceDocFooter
	if *update {
		if err := os.WriteFile(resilienceDocPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(resilienceDocPath)
	if err != nil {
		t.Fatalf("%v (run make docs)", err)
	}
	if string(got) != want {
		t.Fatalf("docs/resilience.md is stale; run make docs")
	}
}

// istioOnly keeps the Field and Istio columns of a table (Istio is the
// middle provider by name: Cilium, Istio, Linkerd).
func istioOnly(table string) string {
	var out string
	for _, line := range splitLines(table) {
		cells := splitCells(line)
		out += "|" + cells[1] + "|" + cells[3] + "|\n"
	}
	return out
}

func splitLines(s string) []string {
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}

// splitCells splits a Markdown row at unescaped pipes.
func splitCells(line string) []string {
	var cells []string
	cur := ""
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		if rs[i] == '\\' && i+1 < len(rs) && rs[i+1] == '|' {
			cur += `\|`
			i++
			continue
		}
		if rs[i] == '|' {
			cells = append(cells, cur)
			cur = ""
			continue
		}
		cur += string(rs[i])
	}
	return append(cells, cur)
}
