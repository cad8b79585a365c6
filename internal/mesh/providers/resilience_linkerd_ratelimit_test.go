package providers

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/mesh"
	"github.com/meshplane/meshplane/internal/mesh/linkerd"
	"github.com/meshplane/meshplane/internal/outcome"
)

// l5dServer is a policy.linkerd.io/v1beta3 Server as the API server
// returns it (ports decoded as int64 or string).
func l5dServer(name string, labels map[string]any, port any, exprs bool) unstructured.Unstructured {
	sel := map[string]any{"matchLabels": labels}
	if exprs {
		sel["matchExpressions"] = []any{map[string]any{"key": "tier", "operator": "Exists"}}
	}
	return unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server",
		"metadata": map[string]any{"name": name, "namespace": "shop"},
		"spec":     map[string]any{"podSelector": sel, "port": port, "proxyProtocol": "HTTP/1"},
	}}
}

// rateLimitSpec is a Linkerd local rate limit of requests per interval
// (burst when > 0).
func rateLimitSpec(requests int32, interval string, burst int32) meshv1alpha1.ResiliencePolicySpec {
	return rpSpec(func(s *meshv1alpha1.ResiliencePolicySpec) {
		s.RateLimit = &meshv1alpha1.RateLimit{Local: meshv1alpha1.LocalRateLimit{Requests: requests, Interval: *dur(interval)}}
		if burst > 0 {
			s.RateLimit.Local.Burst = ptr(burst)
		}
	})
}

func translateLinkerdRateLimit(spec meshv1alpha1.ResiliencePolicySpec, servers []unstructured.Unstructured) translation {
	tr, _ := Registry().ResilienceTranslator(meshv1alpha1.ProviderLinkerd)
	scope := mesh.DefaultScope(meshv1alpha1.ProviderLinkerd)
	scope.Namespace.Name = "shop"
	objs, err := tr.TranslateResiliencePolicy(mesh.ResilienceInput{Policy: resiliencePolicy(spec), Service: webService(), Scope: scope, InboundTargets: servers})
	return translation{objs: objs, err: err}
}

// linkerdRateLimitAll are the rate-limit goldens with Servers present:
// one written, one refused for its burst.
func linkerdRateLimitAll() []translation {
	servers := []unstructured.Unstructured{
		l5dServer("web-admin", map[string]any{"app": "web"}, int64(9090), false),
		l5dServer("web-http", map[string]any{"app": "web"}, int64(9080), false),
	}
	ok := translateLinkerdRateLimit(rateLimitSpec(100, "1s", 0), servers)
	ok.golden = "rp-l5d-rate-limit-server.linkerd"
	burst := translateLinkerdRateLimit(rateLimitSpec(100, "1s", 200), servers)
	burst.golden = "rp-l5d-rate-limit-burst.linkerd"
	return []translation{ok, burst}
}

// TestLinkerdMatchServer: a Server covers the Service only when its
// podSelector is exactly the Service's selector and its port the target
// port, by number or by name.
func TestLinkerdMatchServer(t *testing.T) {
	web := map[string]any{"app": "web"}
	sel := map[string]string{"app": "web"}
	num, name := intstr.FromInt32(9080), intstr.FromString("http")
	cases := []struct {
		name    string
		servers []unstructured.Unstructured
		target  intstr.IntOrString
		want    string
	}{
		{"number", []unstructured.Unstructured{l5dServer("s", web, int64(9080), false)}, num, "s"},
		{"number decoded as float", []unstructured.Unstructured{l5dServer("s", web, float64(9080), false)}, num, "s"},
		{"name", []unstructured.Unstructured{l5dServer("s", web, "http", false)}, name, "s"},
		{"name against number", []unstructured.Unstructured{l5dServer("s", web, "http", false)}, num, ""},
		{"number against name", []unstructured.Unstructured{l5dServer("s", web, int64(9080), false)}, name, ""},
		{"other port", []unstructured.Unstructured{l5dServer("s", web, int64(9090), false)}, num, ""},
		{"wider selector", []unstructured.Unstructured{l5dServer("s", map[string]any{}, int64(9080), false)}, num, ""},
		{"narrower selector", []unstructured.Unstructured{l5dServer("s", map[string]any{"app": "web", "v": "1"}, int64(9080), false)}, num, ""},
		{"other pods", []unstructured.Unstructured{l5dServer("s", map[string]any{"app": "api"}, int64(9080), false)}, num, ""},
		{"with expressions", []unstructured.Unstructured{l5dServer("s", web, int64(9080), true)}, num, ""},
		{"first by name", []unstructured.Unstructured{l5dServer("b", web, int64(9080), false), l5dServer("a", web, int64(9080), false)}, num, "a"},
		{"none", nil, num, ""},
	}
	for _, tc := range cases {
		if got := linkerd.MatchServer(tc.servers, sel, tc.target); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := linkerd.MatchServer([]unstructured.Unstructured{l5dServer("s", map[string]any{}, int64(9080), false)}, nil, num); got != "" {
		t.Errorf("a Service without a selector matched Server %q", got)
	}
}

// TestLinkerdRateLimitExactness: only a whole number of requests per
// second without a larger burst becomes total.requestsPerSecond; anything
// else is refused naming the field, the value and the fix.
func TestLinkerdRateLimitExactness(t *testing.T) {
	servers := []unstructured.Unstructured{l5dServer("web-http", map[string]any{"app": "web"}, int64(9080), false)}
	cases := []struct {
		requests int32
		interval string
		burst    int32
		rps      int64
		refusal  string
	}{
		{100, "1s", 0, 100, ""},
		{100, "1s", 100, 100, ""},
		{600, "1m", 0, 10, ""},
		{5, "50ms", 0, 100, ""},
		{3, "2s", 0, 0, "spec.rateLimit.local: 3 requests per 2s is not a whole number of requests per second"},
		{100, "1m", 0, 0, "spec.rateLimit.local: 100 requests per 1m0s is not a whole number of requests per second, and Linkerd's HTTPLocalRateLimitPolicy limits by requestsPerSecond; set interval to 1s"},
		{100, "1s", 150, 0, "spec.rateLimit.local.burst 150: Linkerd's HTTPLocalRateLimitPolicy has no burst (it admits requestsPerSecond); remove burst or set it to requests (100)"},
	}
	for _, tc := range cases {
		tr := translateLinkerdRateLimit(rateLimitSpec(tc.requests, tc.interval, tc.burst), servers)
		label := tc.interval
		if tc.refusal != "" {
			term, ok := outcome.AsTerminal(tr.err)
			if tr.objs != nil || !ok || term.StalledReason() != meshv1alpha1.UnsupportedFeatureReason || !strings.Contains(tr.err.Error(), tc.refusal) {
				t.Errorf("%d per %s burst %d: got %v, %v; want a refusal containing %q", tc.requests, label, tc.burst, tr.objs, tr.err, tc.refusal)
			}
			continue
		}
		if tr.err != nil || len(tr.objs) != 1 {
			t.Fatalf("%d per %s: %v %v", tc.requests, label, tr.objs, tr.err)
		}
		u := tr.objs[0].(*unstructured.Unstructured)
		rps, _, _ := unstructured.NestedInt64(u.Object, "spec", "total", "requestsPerSecond")
		name, _, _ := unstructured.NestedString(u.Object, "spec", "targetRef", "name")
		if u.GetKind() != "HTTPLocalRateLimitPolicy" || rps != tc.rps || name != "web-http" || u.GetName() != "web-web-http" {
			t.Errorf("%d per %s: %s %s rps %d target %s; want %d on web-http", tc.requests, label, u.GetKind(), u.GetName(), rps, name, tc.rps)
		}
	}
}
