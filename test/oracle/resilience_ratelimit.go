package oracle

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

// Bucket is a token bucket: Tokens at most, PerFill added every Interval
// (Envoy's fill_interval, e.g. "1s").
type Bucket struct {
	Tokens, PerFill int64
	Interval        string
}

// GlobalCall is the call to a rate-limit service one request causes: the
// service's cluster, the domain and the descriptors sent (each a list of
// key=value entries); no descriptor means no call.
type GlobalCall struct {
	Cluster, Domain string
	FailClosed      bool
	Timeout         string
	Descriptors     []string
}

// RateLimitDecision is what the rate limits do with one inbound request:
// the local bucket that limits it (nil: none) and the global call.
type RateLimitDecision struct {
	Local  *Bucket
	Global *GlobalCall
}

// unlimitedTokens is a bucket that cannot run dry in practice (Envoy's
// uint32 maximum per fill): the oracle counts it as no limit.
const unlimitedTokens = 4294967295

// IstioRateLimitFor is what the EnvoyFilters in objs do with request r
// arriving at the selected workload on container port port, following
// Envoy's local_ratelimit and ratelimit filters as Istio's rate-limit task
// configures them: an HTTP_FILTER in SIDECAR_INBOUND on the port (or every
// port) adds the filter with its filter-level bucket; an HTTP_ROUTE patch
// on the port's inbound routes (vhost inbound|http|<port>, or every vhost)
// sets typed_per_filter_config, which replaces the filter-level one, and
// rate_limits, whose actions make descriptors per stage; a descriptor the
// local config lists takes its bucket, other requests the default bucket.
func IstioRateLimitFor(objs []client.Object, port int64, r Request) RateLimitDecision {
	var d RateLimitDecision
	var local, perRoute map[string]any
	var global map[string]any
	var limits []any
	for _, o := range objs {
		u, isU := o.(*unstructured.Unstructured)
		if !isU || u.GetKind() != "EnvoyFilter" {
			continue
		}
		patches, _, _ := unstructured.NestedSlice(u.Object, "spec", "configPatches")
		for _, p := range patches {
			pm, _ := p.(map[string]any)
			if ctx, _, _ := unstructured.NestedString(pm, "match", "context"); ctx != "SIDECAR_INBOUND" {
				continue
			}
			switch pm["applyTo"] {
			case "HTTP_FILTER":
				if lp, _, _ := unstructured.NestedInt64(pm, "match", "listener", "portNumber"); lp != 0 && lp != port {
					continue
				}
				name, _, _ := unstructured.NestedString(pm, "patch", "value", "name")
				switch name {
				case "envoy.filters.http.local_ratelimit":
					local, _, _ = unstructured.NestedMap(pm, "patch", "value", "typed_config", "value")
				case "envoy.filters.http.ratelimit":
					global, _, _ = unstructured.NestedMap(pm, "patch", "value", "typed_config")
				}
			case "HTTP_ROUTE":
				vh, _, _ := unstructured.NestedString(pm, "match", "routeConfiguration", "vhost", "name")
				if vh != "" && vh != fmt.Sprintf("inbound|http|%d", port) {
					continue
				}
				limits, _, _ = unstructured.NestedSlice(pm, "patch", "value", "route", "rate_limits")
				perRoute, _, _ = unstructured.NestedMap(pm, "patch", "value", "typed_per_filter_config", "envoy.filters.http.local_ratelimit", "value")
			}
		}
	}
	if local != nil {
		cfg := local
		if perRoute != nil {
			cfg = perRoute
		}
		d.Local = localBucketFor(cfg, limits, r)
	}
	if global != nil {
		d.Global = globalCallFor(global, limits, r)
	}
	return d
}

// localBucketFor is the bucket a local_ratelimit config applies to r.
func localBucketFor(cfg map[string]any, limits []any, r Request) *Bucket {
	stage, _, _ := unstructured.NestedInt64(cfg, "stage")
	descs, _, _ := unstructured.NestedSlice(cfg, "descriptors")
	for _, desc := range descriptorsFor(limits, stage, r) {
		for _, dd := range descs {
			dm, _ := dd.(map[string]any)
			entries, _, _ := unstructured.NestedSlice(dm, "entries")
			if renderEntries(entries) == desc {
				tb, _, _ := unstructured.NestedMap(dm, "token_bucket")
				return bucketOf(tb)
			}
		}
	}
	tb, found, _ := unstructured.NestedMap(cfg, "token_bucket")
	if !found {
		return nil
	}
	return bucketOf(tb)
}

func bucketOf(tb map[string]any) *Bucket {
	b := &Bucket{}
	b.Tokens, _, _ = unstructured.NestedInt64(tb, "max_tokens")
	b.PerFill, _, _ = unstructured.NestedInt64(tb, "tokens_per_fill")
	b.Interval, _, _ = unstructured.NestedString(tb, "fill_interval")
	if b.Tokens >= unlimitedTokens && b.PerFill >= unlimitedTokens {
		return nil
	}
	return b
}

// globalCallFor is the ratelimit filter's call for r (stage 0).
func globalCallFor(cfg map[string]any, limits []any, r Request) *GlobalCall {
	c := &GlobalCall{}
	c.Cluster, _, _ = unstructured.NestedString(cfg, "rate_limit_service", "grpc_service", "envoy_grpc", "cluster_name")
	c.Domain, _, _ = unstructured.NestedString(cfg, "domain")
	c.FailClosed, _, _ = unstructured.NestedBool(cfg, "failure_mode_deny")
	c.Timeout, _, _ = unstructured.NestedString(cfg, "timeout")
	c.Descriptors = descriptorsFor(limits, 0, r)
	return c
}

// descriptorsFor renders the descriptors the rate_limits of stage make
// for r: an entry whose any action produces nothing makes none.
func descriptorsFor(limits []any, stage int64, r Request) []string {
	var out []string
	for _, l := range limits {
		lm, _ := l.(map[string]any)
		if s, _, _ := unstructured.NestedInt64(lm, "stage"); s != stage {
			continue
		}
		actions, _, _ := unstructured.NestedSlice(lm, "actions")
		var entries []string
		for _, a := range actions {
			e, ok := actionEntry(a, r)
			if !ok {
				entries = nil
				break
			}
			entries = append(entries, e)
		}
		if len(entries) > 0 {
			out = append(out, strings.Join(entries, ","))
		}
	}
	return out
}

func actionEntry(a any, r Request) (string, bool) {
	am, _ := a.(map[string]any)
	if gk, ok := am["generic_key"].(map[string]any); ok {
		return fmt.Sprint(gk["descriptor_key"]) + "=" + fmt.Sprint(gk["descriptor_value"]), true
	}
	if rh, ok := am["request_headers"].(map[string]any); ok {
		v, present := header(r, fmt.Sprint(rh["header_name"]))
		return fmt.Sprint(rh["descriptor_key"]) + "=" + v, present
	}
	if hv, ok := am["header_value_match"].(map[string]any); ok {
		hs, _, _ := unstructured.NestedSlice(hv, "headers")
		for _, h := range hs {
			hm, _ := h.(map[string]any)
			v, present := header(r, fmt.Sprint(hm["name"]))
			prefix, _, _ := unstructured.NestedString(hm, "string_match", "prefix")
			if !present || !strings.HasPrefix(v, prefix) {
				return "", false
			}
		}
		key := "header_match"
		if k, ok := hv["descriptor_key"].(string); ok {
			key = k
		}
		return key + "=" + fmt.Sprint(hv["descriptor_value"]), true
	}
	return "", false
}

// header returns r's header name (":path" is the path); names are
// compared case-insensitively, as HTTP does.
func header(r Request, name string) (string, bool) {
	if name == ":path" {
		return r.Path, true
	}
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

func renderEntries(entries []any) string {
	var out []string
	for _, e := range entries {
		em, _ := e.(map[string]any)
		out = append(out, fmt.Sprint(em["key"])+"="+fmt.Sprint(em["value"]))
	}
	return strings.Join(out, ",")
}

// RateLimitIntent is what a ResiliencePolicy's rate limits ask for r,
// which arrives on Service port svcPort of namespace ns: the local bucket
// on the target port (every port when unset) for paths under
// pathPrefix (every path when unset), and the global call with one
// descriptor of the entries in order (none when a header is missing).
func RateLimitIntent(spec *meshv1alpha1.ResiliencePolicySpec, ns string, r Request) RateLimitDecision {
	var d RateLimitDecision
	rl := spec.RateLimit
	if rl == nil || (spec.TargetRef.Port != nil && *spec.TargetRef.Port != r.Port) {
		return d
	}
	if strings.HasPrefix(r.Path, rl.Local.PathPrefix) {
		burst := rl.Local.Requests
		if rl.Local.Burst != nil {
			burst = *rl.Local.Burst
		}
		d.Local = &Bucket{Tokens: int64(burst), PerFill: int64(rl.Local.Requests), Interval: strconv.FormatFloat(rl.Local.Interval.Seconds(), 'f', -1, 64) + "s"}
	}
	g := rl.Global
	if g == nil {
		return d
	}
	svcNS := ns
	if g.Service.Namespace != "" {
		svcNS = g.Service.Namespace
	}
	timeout := "0.02s"
	if g.Timeout != nil {
		timeout = strconv.FormatFloat(g.Timeout.Seconds(), 'f', -1, 64) + "s"
	}
	d.Global = &GlobalCall{Cluster: fmt.Sprintf("outbound|%d||%s.%s.svc.cluster.local", g.Service.Port, g.Service.Name, svcNS),
		Domain: g.Domain, FailClosed: g.FailClosed, Timeout: timeout}
	var entries []string
	for _, e := range g.Descriptors {
		switch {
		case e.Path:
			entries = append(entries, e.Key+"="+r.Path)
		case e.Header != "":
			v, ok := header(r, e.Header)
			if !ok {
				return d
			}
			entries = append(entries, e.Key+"="+v)
		default:
			entries = append(entries, e.Key+"="+e.Value)
		}
	}
	d.Global.Descriptors = []string{strings.Join(entries, ",")}
	return d
}
