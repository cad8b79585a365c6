package analysis

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
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
				expr, err := Parse(q)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				// One value per check: the built-ins aggregate to a
				// single instant-vector series.
				if expr.Type() != parser.ValueTypeVector {
					t.Errorf("%s: type %s, want an instant vector: %s", name, expr.Type(), q)
				}
				checkBuiltinAST(t, p, name, expr)
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

// checkBuiltinAST checks the parsed built-in: the metric each selector
// reads, that every selector pins the namespace and the workload with an
// exact matcher, and the range window.
func checkBuiltinAST(t *testing.T, p meshv1alpha1.Provider, name string, expr parser.Expr) {
	t.Helper()
	metrics := map[string]bool{}
	var windows []time.Duration
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.MatrixSelector:
			windows = append(windows, n.Range)
		case *parser.VectorSelector:
			metrics[n.Name] = true
			exact := map[string]string{}
			for _, m := range n.LabelMatchers {
				if m.Type == labels.MatchEqual {
					exact[m.Name] = m.Value
				}
			}
			ns, wl := "namespace", "deployment"
			switch p {
			case meshv1alpha1.ProviderIstio:
				ns, wl = "destination_workload_namespace", "destination_workload"
			case meshv1alpha1.ProviderCilium:
				ns, wl = "destination_namespace", "destination_workload"
			}
			if exact[ns] != "shop" || exact[wl] != "checkout" {
				t.Errorf("%s %s: selector %s does not pin %s=shop and %s=checkout exactly", p, name, n, ns, wl)
			}
		}
		return nil
	})
	want := map[meshv1alpha1.Provider]map[string]string{
		meshv1alpha1.ProviderIstio:   {RequestSuccessRate: "istio_requests_total", RequestDuration: "istio_request_duration_milliseconds_bucket"},
		meshv1alpha1.ProviderLinkerd: {RequestSuccessRate: "response_total", RequestDuration: "response_latency_ms_bucket"},
		meshv1alpha1.ProviderCilium:  {RequestSuccessRate: "hubble_http_requests_total", RequestDuration: "hubble_http_request_duration_seconds_bucket"},
	}[p][name]
	if len(metrics) != 1 || !metrics[want] {
		t.Errorf("%s %s: reads %v, want only %s", p, name, metrics, want)
	}
	for _, w := range windows {
		if w != 30*time.Second {
			t.Errorf("%s %s: range window %s, want the analysis interval 30s", p, name, w)
		}
	}
	if len(windows) == 0 {
		t.Errorf("%s %s: no range selector", p, name)
	}
}

// TestParseRefusesMalformedQueries: what the bracket-balance guard caught,
// and what only a real parser catches.
func TestParseRefusesMalformedQueries(t *testing.T) {
	for _, q := range []string{
		`sum(rate(x{a="b"}[1m])`,          // unclosed (
		`x{a="b"]`,                        // wrong closing bracket
		`x{a="b}`,                         // unterminated string
		`sum(rate(x[1m])) by`,             // dangling by
		`rate(x)`,                         // rate needs a range vector
		`histogram_quantile(0.99, x[5m])`, // a range vector where an instant one is needed
		`x{a=~"("}`,                       // invalid regular expression
		`sum(rate(x[1q]))`,                // unknown duration unit
		`nosuchfunction(x)`,               // unknown function
	} {
		if _, err := Parse(q); err == nil {
			t.Errorf("Parse(%s) accepted a malformed query", q)
		}
	}
	for _, q := range []string{`sum(rate(x{a="(}"}[1m]))`, `vector(99)`, `up`, `x{ns="shop"}[30s]`} {
		if _, err := Parse(q); err != nil {
			t.Errorf("Parse(%s): %v", q, err)
		}
	}
}

// TestTemplatedQueriesParse renders every templated query Meshplane ships
// (the Canary sample, the examples in docs/canary-analysis.md) and parses
// it; Query refuses one that does not parse before anything is sent.
func TestTemplatedQueriesParse(t *testing.T) {
	var queries []string
	for _, f := range []string{"../../../config/samples/meshplane_v1alpha1_canary.yaml", "../../../docs/canary-analysis.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			l = strings.TrimSpace(l)
			switch {
			case strings.HasPrefix(l, "query: |") && i+1 < len(lines):
				queries = append(queries, strings.TrimSpace(lines[i+1]))
			case strings.HasPrefix(l, "query:"):
				queries = append(queries, strings.TrimSpace(strings.TrimPrefix(l, "query:")))
			}
		}
	}
	if len(queries) < 2 {
		t.Fatalf("found %d templated queries in the sample and docs, want at least 2", len(queries))
	}
	for _, p := range meshv1alpha1.Providers {
		for _, q := range queries {
			out, err := Query(meshv1alpha1.CanaryMetric{Name: "custom", Query: q}, target(p))
			if err != nil {
				t.Errorf("%s: %v", q, err)
				continue
			}
			if strings.Contains(out, "{{") {
				t.Errorf("placeholder left in %s", out)
			}
		}
	}
	if _, err := Query(meshv1alpha1.CanaryMetric{Name: "broken", Query: `sum(rate(x{ns="{{ namespace }}"}[{{ interval }}])`}, target(meshv1alpha1.ProviderIstio)); err == nil ||
		!strings.Contains(err.Error(), "not valid PromQL") {
		t.Errorf("a query with an unclosed parenthesis rendered: %v", err)
	}
}
