package analysis

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func target(p meshv1alpha1.Provider) Target {
	return Target{Provider: p, Namespace: "shop", Workload: "checkout", Service: "checkout-svc", Interval: 30 * time.Second}
}

// TestBuiltinQueriesGolden renders every built-in query per provider; the
// golden file is what a platform team reviews against its Prometheus.
func TestBuiltinQueriesGolden(t *testing.T) {
	for _, p := range meshv1alpha1.Providers {
		t.Run(string(p), func(t *testing.T) {
			var b strings.Builder
			for _, name := range []string{RequestSuccessRate, RequestDuration} {
				q, err := Query(meshv1alpha1.CanaryMetric{Name: name}, target(p))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for _, want := range []string{`"shop"`, `"checkout"`, `[30s]`} {
					if !strings.Contains(q, want) {
						t.Errorf("%s: query lacks %s: %s", name, want, q)
					}
				}
				if strings.Contains(q, "{{") || strings.Contains(q, "}}") {
					t.Errorf("%s: placeholder left in %s", name, q)
				}
				if err := balanced(q); err != "" {
					t.Errorf("%s: %s in %s", name, err, q)
				}
				b.WriteString("# " + name + "\n" + q + "\n")
			}
			got := b.String()
			path := filepath.Join("testdata", strings.ToLower(string(p))+".golden.promql")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/canary/analysis -update)", err)
			}
			if string(want) != got {
				t.Fatalf("%s differs from the golden file (run with -update and review the diff):\n%s", path, got)
			}
		})
	}
}

// TestBuiltinMetricNames pins the metric and label names each mesh exports,
// independently of the golden files.
func TestBuiltinMetricNames(t *testing.T) {
	cases := []struct {
		p      meshv1alpha1.Provider
		metric string
		want   []string
	}{
		{meshv1alpha1.ProviderIstio, RequestSuccessRate, []string{"istio_requests_total{", `reporter=~"destination|waypoint"`, `destination_workload_namespace="shop"`, `destination_workload="checkout"`, `response_code!~"5.."`, "* 100"}},
		{meshv1alpha1.ProviderIstio, RequestDuration, []string{"histogram_quantile(0.99,", "istio_request_duration_milliseconds_bucket{", "by (le)"}},
		{meshv1alpha1.ProviderLinkerd, RequestSuccessRate, []string{"response_total{", `namespace="shop"`, `deployment="checkout"`, `direction="inbound"`, `classification!="failure"`, "* 100"}},
		{meshv1alpha1.ProviderLinkerd, RequestDuration, []string{"histogram_quantile(0.99,", "response_latency_ms_bucket{", `direction="inbound"`}},
		{meshv1alpha1.ProviderCilium, RequestSuccessRate, []string{"hubble_http_requests_total{", `destination_namespace="shop"`, `destination_workload="checkout"`, `status!~"5.."`, "* 100"}},
		{meshv1alpha1.ProviderCilium, RequestDuration, []string{"histogram_quantile(0.99,", "hubble_http_request_duration_seconds_bucket{", "* 1000"}},
	}
	for _, tc := range cases {
		q, err := Query(meshv1alpha1.CanaryMetric{Name: tc.metric}, target(tc.p))
		if err != nil {
			t.Fatalf("%s %s: %v", tc.p, tc.metric, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(q, w) {
				t.Errorf("%s %s: want %s in %s", tc.p, tc.metric, w, q)
			}
		}
	}
}

func TestQueryCustom(t *testing.T) {
	minute := &metav1.Duration{Duration: 2 * time.Minute}
	cases := []struct {
		name    string
		m       meshv1alpha1.CanaryMetric
		t       Target
		want    string
		wantErr string
	}{
		{name: "spaced placeholders",
			m:    meshv1alpha1.CanaryMetric{Name: "errors", Query: `sum(rate(x{ns="{{ namespace }}",w="{{ target }}",s="{{ service }}"}[{{ interval }}]))`},
			t:    target(meshv1alpha1.ProviderIstio),
			want: `sum(rate(x{ns="shop",w="checkout",s="checkout-svc"}[30s]))`},
		{name: "flagger spacing variants",
			m:    meshv1alpha1.CanaryMetric{Name: "errors", Query: `x{ns="{{namespace}}",w="{{target  }}"}[{{   interval}}]`},
			t:    target(meshv1alpha1.ProviderLinkerd),
			want: `x{ns="shop",w="checkout"}[30s]`},
		{name: "metric interval overrides analysis interval",
			m:    meshv1alpha1.CanaryMetric{Name: "errors", Query: `x[{{ interval }}]`, Interval: minute},
			t:    target(meshv1alpha1.ProviderIstio),
			want: `x[2m]`},
		{name: "default interval",
			m:    meshv1alpha1.CanaryMetric{Name: "errors", Query: `x[{{ interval }}]`},
			t:    Target{Namespace: "a"},
			want: `x[1m]`},
		{name: "compound interval",
			m:    meshv1alpha1.CanaryMetric{Name: "errors", Query: `x[{{ interval }}]`},
			t:    Target{Interval: 90 * time.Second},
			want: `x[1m30s]`},
		{name: "query overrides a built-in name",
			m:    meshv1alpha1.CanaryMetric{Name: RequestSuccessRate, Query: `vector(99)`},
			t:    target(meshv1alpha1.ProviderCilium),
			want: `vector(99)`},
		{name: "no placeholders, provider irrelevant",
			m:    meshv1alpha1.CanaryMetric{Name: "up", Query: `up`},
			t:    Target{},
			want: `up`},
		{name: "unknown placeholder",
			m:       meshv1alpha1.CanaryMetric{Name: "errors", Query: `x{a="{{ args.name }}"}`},
			t:       target(meshv1alpha1.ProviderIstio),
			wantErr: `unknown placeholder {{ args.name }}`},
		{name: "custom name without query",
			m:       meshv1alpha1.CanaryMetric{Name: "errors"},
			t:       target(meshv1alpha1.ProviderIstio),
			wantErr: `metric "errors" is not built in`},
		{name: "built-in for an unknown provider",
			m:       meshv1alpha1.CanaryMetric{Name: RequestDuration},
			t:       Target{Provider: "Consul"},
			wantErr: `provider "Consul" has no built-in query for metric "request-duration"`},
		{name: "built-in without provider",
			m:       meshv1alpha1.CanaryMetric{Name: RequestDuration},
			t:       Target{},
			wantErr: `provider is not known`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Query(tc.m, tc.t)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error containing %q, got %q, %v", tc.wantErr, got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// balanced checks the brackets of a query outside string literals: a cheap
// guard against a malformed built-in (no PromQL parser in this module).
func balanced(q string) string {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inStr := false
	for i, r := range q {
		switch {
		case r == '"' && (i == 0 || q[i-1] != '\\'):
			inStr = !inStr
		case inStr:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return "unbalanced " + string(r)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if inStr {
		return "unterminated string"
	}
	if len(stack) > 0 {
		return "unclosed " + string(stack)
	}
	return ""
}

func TestBalanced(t *testing.T) {
	for q, want := range map[string]string{
		`sum(rate(x{a="(}"}[1m]))`: "",
		`sum(rate(x{a="b"}[1m])`:   "unclosed (",
		`x{a="b"]`:                 "unbalanced ]",
		`x{a="b}`:                  "unterminated string",
	} {
		if got := balanced(q); got != want {
			t.Errorf("balanced(%s) = %q, want %q", q, got, want)
		}
	}
}
