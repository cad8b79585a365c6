// Package analysis runs a Canary's metric checks against a
// Prometheus-compatible HTTP API (client_golang's API client, instant
// queries at the analysis time).
//
// # Built-in queries
//
// request-success-rate is the percentage of the canary workload's inbound
// requests not answered with a 5xx; request-duration is their 99th
// percentile duration in milliseconds. Both are computed over the metric's
// interval (else the analysis interval) from the metrics each mesh
// exports, and assume these labels:
//
//   - Istio: istio_requests_total and
//     istio_request_duration_milliseconds_bucket with reporter
//     "destination" (sidecars) or "waypoint" (ambient; the workload needs
//     a waypoint, ztunnel alone exports only TCP metrics),
//     destination_workload_namespace, destination_workload (the
//     Deployment's name) and response_code. These are Istio's standard
//     metrics as its Prometheus scrape of the proxies exports them.
//   - Linkerd: response_total and response_latency_ms_bucket with
//     direction="inbound", classification ("success"/"failure"),
//     namespace and deployment. namespace and deployment are not exported
//     by the proxy itself: they are the pod-metadata labels linkerd-viz's
//     Prometheus scrape configuration adds; another Prometheus must relabel
//     the same way.
//   - Cilium: Hubble's L7 metrics hubble_http_requests_total and
//     hubble_http_request_duration_seconds_bucket (seconds, multiplied by
//     1000) with status, destination_namespace and destination_workload.
//     Those two labels exist only with the httpV2 metric and
//     labelsContext including destination_namespace and
//     destination_workload, e.g.
//     httpV2:labelsContext=source_namespace,source_workload,destination_namespace,destination_workload;
//     and the workload's HTTP traffic must go through Cilium's L7 proxy
//     (an L7 policy or visibility) for Hubble to see requests at all.
//     No reporter filter is applied, so a request seen by both the client
//     and the server side counts twice in both sums, which leaves the rate
//     and percentile unchanged.
//
// The workload is matched exactly (=, not a regular expression): it is the
// canary Deployment, whose pods alone carry that workload name (the primary
// is <name>-primary).
//
// # Failing closed
//
// A check passes only with exactly one finite value within its
// thresholdRange. An unreachable server, a timeout, an HTTP or PromQL
// error, an empty result, NaN or ±Inf (0/0 when there was no traffic), a
// range vector or more than one series all fail the check, with a message
// naming the address or the query. A canary with no traffic therefore fails
// its checks: a load-test webhook (type rollout) is how traffic is made.
package analysis
