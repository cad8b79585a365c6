package cilium

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Envoy type URLs of the resources and filters a policy's
// CiliumEnvoyConfig holds.
const (
	typeListener      = "type.googleapis.com/envoy.config.listener.v3.Listener"
	typeRouteConfig   = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	typeCluster       = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	typeHCM           = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	typeFault         = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
	typeLocalRL       = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
	typeRouter        = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
	typeHTTPProtocol  = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	httpProtocolKey   = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	percentDenomHundr = "HUNDRED"
)

// envoyDuration renders d as a protobuf JSON duration ("1.5s").
func envoyDuration(d time.Duration) string {
	s := fmt.Sprintf("%.9f", d.Seconds())
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "s"
}

func percent(p int32) map[string]any {
	return map[string]any{"numerator": int64(p), "denominator": percentDenomHundr}
}

// envoyConfig is the policy's CiliumEnvoyConfig, following Cilium's L7
// traffic-management examples: services redirects the target Service (the
// port, when the policy names one) to a listener whose HTTP connection
// manager runs the fault and local rate limit filters before the router,
// and routes every request to the Service's cluster ("namespace/name",
// endpoints from Cilium's EDS) with the policy's timeouts; the cluster
// carries the circuit breakers, outlier detection, pool settings and the
// algorithm. Resource names without a slash are qualified by Cilium with
// the CiliumEnvoyConfig's namespace and name.
func envoyConfig(rp *meshv1alpha1.ResiliencePolicy) *unstructured.Unstructured {
	spec := &rp.Spec
	svc := map[string]any{"name": spec.TargetRef.Name, "namespace": rp.Namespace}
	cluster := rp.Namespace + "/" + spec.TargetRef.Name
	if p := spec.TargetRef.Port; p != nil {
		svc["ports"] = []any{int64(*p)}
		cluster = fmt.Sprintf("%s:%d", cluster, *p)
	}
	u := envoyConfigKind()
	u.SetName(rp.Name)
	u.SetNamespace(rp.Namespace)
	u.SetAnnotations(map[string]string{useOriginalSourceAnnotation: "false"})
	u.Object["spec"] = map[string]any{
		"services": []any{svc},
		"resources": []any{
			envoyListener(rp),
			envoyRoutes(rp, cluster),
			envoyCluster(rp, cluster),
		},
	}
	return u
}

// envoyListener is the listener with the policy's HTTP filters.
func envoyListener(rp *meshv1alpha1.ResiliencePolicy) map[string]any {
	var filters []any
	if f := rp.Spec.FaultInjection; f != nil {
		filters = append(filters, map[string]any{"name": "envoy.filters.http.fault", "typed_config": faultFilter(f)})
	}
	if rl := rp.Spec.RateLimit; rl != nil {
		filters = append(filters, map[string]any{"name": "envoy.filters.http.local_ratelimit", "typed_config": rateLimitFilter(rp.Name, &rl.Local)})
	}
	filters = append(filters, map[string]any{"name": "envoy.filters.http.router", "typed_config": map[string]any{"@type": typeRouter}})
	return map[string]any{
		"@type": typeListener,
		"name":  "listener",
		"filter_chains": []any{map[string]any{"filters": []any{map[string]any{
			"name": "envoy.filters.network.http_connection_manager",
			"typed_config": map[string]any{
				"@type":        typeHCM,
				"stat_prefix":  rp.Name,
				"rds":          map[string]any{"route_config_name": "routes"},
				"http_filters": filters,
			},
		}}}},
	}
}

func faultFilter(f *meshv1alpha1.FaultInjection) map[string]any {
	out := map[string]any{"@type": typeFault}
	if d := f.Delay; d != nil {
		out["delay"] = map[string]any{"fixed_delay": envoyDuration(d.FixedDelay.Duration), "percentage": percent(d.Percent)}
	}
	if a := f.Abort; a != nil {
		out["abort"] = map[string]any{"http_status": int64(a.HTTPStatus), "percentage": percent(a.Percent)}
	}
	if len(f.Headers) > 0 {
		hs := make([]any, 0, len(f.Headers))
		for _, h := range f.Headers {
			var m map[string]any
			switch h.Type {
			case meshv1alpha1.HeaderMatchPrefix:
				m = map[string]any{"prefix": h.Value}
			case meshv1alpha1.HeaderMatchRegularExpression:
				m = map[string]any{"safe_regex": map[string]any{"regex": h.Value}}
			default:
				m = map[string]any{"exact": h.Value}
			}
			hs = append(hs, map[string]any{"name": strings.ToLower(h.Name), "string_match": m})
		}
		out["headers"] = hs
	}
	return out
}

// rateLimitFilter is a token bucket of burst tokens (requests when no
// burst) refilled with requests tokens every interval, enabled and
// enforced for every request.
func rateLimitFilter(name string, l *meshv1alpha1.LocalRateLimit) map[string]any {
	maxTokens := l.Requests
	if l.Burst != nil {
		maxTokens = *l.Burst
	}
	all := func(key string) map[string]any {
		return map[string]any{"runtime_key": key, "default_value": percent(100)}
	}
	return map[string]any{
		"@type":       typeLocalRL,
		"stat_prefix": name + "_local_rate_limit",
		"token_bucket": map[string]any{
			"max_tokens": int64(maxTokens), "tokens_per_fill": int64(l.Requests), "fill_interval": envoyDuration(l.Interval.Duration),
		},
		"filter_enabled":  all("local_rate_limit_enabled"),
		"filter_enforced": all("local_rate_limit_enforced"),
	}
}

// envoyRoutes routes every request to the Service's cluster.
func envoyRoutes(rp *meshv1alpha1.ResiliencePolicy, cluster string) map[string]any {
	action := map[string]any{"cluster": cluster}
	if t := rp.Spec.Timeouts; t != nil {
		if t.Request != nil {
			action["timeout"] = envoyDuration(t.Request.Duration)
		}
		if t.Idle != nil {
			action["idle_timeout"] = envoyDuration(t.Idle.Duration)
		}
	}
	return map[string]any{
		"@type": typeRouteConfig,
		"name":  "routes",
		"virtual_hosts": []any{map[string]any{
			"name": "service", "domains": []any{"*"},
			"routes": []any{map[string]any{"match": map[string]any{"prefix": "/"}, "route": action}},
		}},
	}
}

// envoyCluster is the Service's EDS cluster with the pool, outlier and
// algorithm settings.
func envoyCluster(rp *meshv1alpha1.ResiliencePolicy, name string) map[string]any {
	spec := &rp.Spec
	c := map[string]any{"@type": typeCluster, "name": name, "type": "EDS", "lb_policy": "ROUND_ROBIN", "connect_timeout": "5s"}
	if lb := spec.LoadBalancer; lb != nil {
		if v, ok := lbAlgorithms[lb.Algorithm]; ok {
			c["lb_policy"] = strings.ToUpper(v)
		}
	}
	if cp := spec.ConnectionPool; cp != nil {
		setPool(c, cp)
	}
	if od := spec.OutlierDetection; od != nil {
		c["outlier_detection"] = outlier(od)
	}
	return c
}

func setPool(c map[string]any, cp *meshv1alpha1.ConnectionPool) {
	if cp.ConnectTimeout != nil {
		c["connect_timeout"] = envoyDuration(cp.ConnectTimeout.Duration)
	}
	th := map[string]any{"priority": "DEFAULT"}
	for k, v := range map[string]*int32{"max_connections": cp.MaxConnections, "max_pending_requests": cp.MaxPendingRequests, "max_requests": cp.MaxRequests} {
		if v != nil {
			th[k] = int64(*v)
		}
	}
	if len(th) > 1 {
		c["circuit_breakers"] = map[string]any{"thresholds": []any{th}}
	}
	common := map[string]any{}
	if cp.MaxRequestsPerConnection != nil {
		common["max_requests_per_connection"] = int64(*cp.MaxRequestsPerConnection)
	}
	if cp.IdleTimeout != nil {
		common["idle_timeout"] = envoyDuration(cp.IdleTimeout.Duration)
	}
	if len(common) > 0 {
		c["typed_extension_protocol_options"] = map[string]any{httpProtocolKey: map[string]any{
			"@type":                          typeHTTPProtocol,
			"common_http_protocol_options":   common,
			"use_downstream_protocol_config": map[string]any{},
		}}
	}
}

// outlier is Envoy's outlier_detection; gateway failures are enforced
// (Envoy's default enforcement for them is 0%).
func outlier(od *meshv1alpha1.OutlierDetection) map[string]any {
	o := map[string]any{}
	if od.Consecutive5xxErrors != nil {
		o["consecutive_5xx"] = int64(*od.Consecutive5xxErrors)
	}
	if od.ConsecutiveGatewayErrors != nil {
		o["consecutive_gateway_failure"] = int64(*od.ConsecutiveGatewayErrors)
		o["enforcing_consecutive_gateway_failure"] = int64(100)
		if od.Consecutive5xxErrors == nil {
			// Only gateway errors count, as the policy says.
			o["enforcing_consecutive_5xx"] = int64(0)
		}
	}
	if od.Interval != nil {
		o["interval"] = envoyDuration(od.Interval.Duration)
	}
	if od.BaseEjectionTime != nil {
		o["base_ejection_time"] = envoyDuration(od.BaseEjectionTime.Duration)
	}
	if od.MaxEjectionPercent != nil {
		o["max_ejection_percent"] = int64(*od.MaxEjectionPercent)
	}
	if sr := od.SuccessRate; sr != nil {
		o["enforcing_success_rate"] = int64(100)
		if sr.MinimumHosts != 0 {
			o["success_rate_minimum_hosts"] = int64(sr.MinimumHosts)
		}
		if sr.RequestVolume != 0 {
			o["success_rate_request_volume"] = int64(sr.RequestVolume)
		}
		if sr.StdevFactor != 0 {
			o["success_rate_stdev_factor"] = int64(sr.StdevFactor)
		}
	}
	return o
}
