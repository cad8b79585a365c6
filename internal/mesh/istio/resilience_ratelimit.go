package istio

import (
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/outcome"
)

// The rate limits follow the EnvoyFilter patterns of Istio's "Enabling
// Rate Limits using Envoy" task, on the target's sidecars (inbound):
//   - local: an envoy.filters.http.local_ratelimit HTTP filter with the
//     token bucket;
//   - local with a path prefix (per route): the filter without a bucket,
//     and an HTTP_ROUTE patch setting the bucket as the route's
//     typed_per_filter_config, with a descriptor the route's rate_limits
//     produce for paths with the prefix (stage 1); other paths meet an
//     unlimited default bucket;
//   - global: an envoy.filters.http.ratelimit HTTP filter before the
//     router, calling the rate-limit service through its outbound cluster,
//     and the descriptor's actions in the route's rate_limits (stage 0).
const (
	localRateLimitFilter = "envoy.filters.http.local_ratelimit"
	localRateLimitType   = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
	typedStructType      = "type.googleapis.com/udpa.type.v1.TypedStruct"
	// pathDescriptorKey is the descriptor key of a per-route local limit.
	pathDescriptorKey = "meshplane-path-prefix"
	// pathStage keeps the per-route descriptor away from the global
	// filter (stage 0).
	pathStage = 1
	// unlimited is the default bucket of a per-route local limit: paths
	// without the prefix are not limited.
	unlimited = int64(4294967295)
	// globalTimeout is the default timeout of a call to the service.
	globalTimeout = 20 * time.Millisecond
)

// rateLimitFilter returns the policy's rate limit EnvoyFilter.
func rateLimitFilter(rp *meshv1alpha1.ResiliencePolicy, svc *corev1.Service) (client.Object, error) {
	if svc == nil || len(svc.Spec.Selector) == 0 {
		return nil, outcome.Stalled(meshv1alpha1.InvalidSpecReason,
			"spec.rateLimit: Service %s has no selector, so no pods would carry the rate limit; give the Service a selector or remove spec.rateLimit", rp.Spec.TargetRef.Name)
	}
	rl := rp.Spec.RateLimit
	listener := map[string]any{"filterChain": map[string]any{"filter": map[string]any{"name": "envoy.filters.network.http_connection_manager"}}}
	vhost := map[string]any{"route": map[string]any{"action": "ANY"}}
	if port := rp.Spec.TargetRef.Port; port != nil {
		tp, err := targetPort(svc, *port)
		if err != nil {
			return nil, err
		}
		listener["portNumber"] = int64(tp)
		vhost["name"] = fmt.Sprintf("inbound|http|%d", tp)
	}
	local := map[string]any{"stat_prefix": "http_local_rate_limiter"}
	if rl.Local.PathPrefix == "" {
		local = localBucket(&rl.Local)
	}
	patches := []any{httpFilter(listener, "INSERT_BEFORE", localRateLimitFilter, map[string]any{
		"@type": typedStructType, "type_url": localRateLimitType, "value": local,
	})}
	if g := rl.Global; g != nil {
		router := deepCopyMap(listener)
		router["filterChain"].(map[string]any)["filter"].(map[string]any)["subFilter"] = map[string]any{"name": "envoy.filters.http.router"}
		patches = append(patches, httpFilter(router, "INSERT_BEFORE", "envoy.filters.http.ratelimit", globalFilter(g, rp.Namespace)))
	}
	if route := routePatch(rl); route != nil {
		patches = append(patches, map[string]any{
			"applyTo": "HTTP_ROUTE",
			"match":   map[string]any{"context": "SIDECAR_INBOUND", "routeConfiguration": map[string]any{"vhost": vhost}},
			"patch":   map[string]any{"operation": "MERGE", "value": route},
		})
	}
	labels := map[string]any{}
	for k, v := range svc.Spec.Selector {
		labels[k] = v
	}
	u := envoyFilterKind()
	u.SetName(rp.Name + "-ratelimit")
	u.SetNamespace(rp.Namespace)
	u.Object["spec"] = map[string]any{"workloadSelector": map[string]any{"labels": labels}, "configPatches": patches}
	return u, nil
}

func httpFilter(listener map[string]any, op, name string, typed map[string]any) map[string]any {
	return map[string]any{
		"applyTo": "HTTP_FILTER",
		"match":   map[string]any{"context": "SIDECAR_INBOUND", "listener": listener},
		"patch":   map[string]any{"operation": op, "value": map[string]any{"name": name, "typed_config": typed}},
	}
}

// localBucket is the local_ratelimit configuration of the policy's bucket.
func localBucket(rl *meshv1alpha1.LocalRateLimit) map[string]any {
	burst := rl.Requests
	if rl.Burst != nil {
		burst = *rl.Burst
	}
	return map[string]any{
		"stat_prefix":     "http_local_rate_limiter",
		"token_bucket":    bucket(int64(burst), int64(rl.Requests), rl.Interval.Duration),
		"filter_enabled":  percent("local_rate_limit_enabled"),
		"filter_enforced": percent("local_rate_limit_enforced"),
	}
}

func bucket(maxTokens, perFill int64, every time.Duration) map[string]any {
	return map[string]any{"max_tokens": maxTokens, "tokens_per_fill": perFill, "fill_interval": seconds(every)}
}

func percent(key string) map[string]any {
	return map[string]any{"runtime_key": key, "default_value": map[string]any{"numerator": int64(100), "denominator": "HUNDRED"}}
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// globalFilter is the envoy.filters.http.ratelimit configuration: the
// domain and the service's outbound cluster (Istio's cluster name for the
// Service and port).
func globalFilter(g *meshv1alpha1.GlobalRateLimit, ns string) map[string]any {
	if g.Service.Namespace != "" {
		ns = g.Service.Namespace
	}
	timeout := globalTimeout
	if g.Timeout != nil {
		timeout = g.Timeout.Duration
	}
	return map[string]any{
		"@type":             "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
		"domain":            g.Domain,
		"failure_mode_deny": g.FailClosed,
		"timeout":           seconds(timeout),
		"rate_limit_service": map[string]any{
			"grpc_service": map[string]any{"envoy_grpc": map[string]any{
				"cluster_name": fmt.Sprintf("outbound|%d||%s.%s.svc.cluster.local", g.Service.Port, g.Service.Name, ns)}},
			"transport_api_version": "V3",
		},
	}
}

// routePatch is the HTTP_ROUTE MERGE value: the route's rate_limits (the
// global descriptor at stage 0, the path descriptor at stage 1) and the
// per-route local bucket; nil when neither is needed.
func routePatch(rl *meshv1alpha1.RateLimit) map[string]any {
	var limits []any
	if g := rl.Global; g != nil {
		var actions []any
		for _, d := range g.Descriptors {
			switch {
			case d.Header != "":
				actions = append(actions, map[string]any{"request_headers": map[string]any{"header_name": d.Header, "descriptor_key": d.Key}})
			case d.Path:
				actions = append(actions, map[string]any{"request_headers": map[string]any{"header_name": ":path", "descriptor_key": d.Key}})
			default:
				actions = append(actions, map[string]any{"generic_key": map[string]any{"descriptor_key": d.Key, "descriptor_value": d.Value}})
			}
		}
		limits = append(limits, map[string]any{"actions": actions})
	}
	value := map[string]any{}
	if p := rl.Local.PathPrefix; p != "" {
		limits = append(limits, map[string]any{"stage": int64(pathStage), "actions": []any{map[string]any{"header_value_match": map[string]any{
			"descriptor_key": pathDescriptorKey, "descriptor_value": p,
			"headers": []any{map[string]any{"name": ":path", "string_match": map[string]any{"prefix": p}}},
		}}}})
		per := localBucket(&rl.Local)
		per["token_bucket"] = bucket(unlimited, unlimited, time.Second)
		per["stage"] = int64(pathStage)
		burst := rl.Local.Requests
		if rl.Local.Burst != nil {
			burst = *rl.Local.Burst
		}
		per["descriptors"] = []any{map[string]any{
			"entries":      []any{map[string]any{"key": pathDescriptorKey, "value": p}},
			"token_bucket": bucket(int64(burst), int64(rl.Local.Requests), rl.Local.Interval.Duration),
		}}
		value["typed_per_filter_config"] = map[string]any{localRateLimitFilter: map[string]any{
			"@type": typedStructType, "type_url": localRateLimitType, "value": per,
		}}
	}
	if len(limits) == 0 {
		return nil
	}
	value["route"] = map[string]any{"rate_limits": limits}
	return value
}

func deepCopyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if mv, ok := v.(map[string]any); ok {
			v = deepCopyMap(mv)
		}
		out[k] = v
	}
	return out
}
