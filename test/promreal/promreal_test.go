package promreal

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	meshv1alpha1 "github.com/meshplane/meshplane/api/v1alpha1"
	"github.com/meshplane/meshplane/internal/delivery/analysis"
)

func ptr[T any](v T) *T { return &v }

// TestBuiltinQueriesOnRealPrometheus: Prometheus scrapes the exporter; every
// built-in query of every mesh, rendered and sent by the Canary's analysis
// checker over Prometheus's HTTP API, returns exactly what the exporter
// served; the healthy canary passes request-success-rate >= 99 and
// request-duration <= 500 ms, the failing one fails both.
func TestBuiltinQueriesOnRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus")
	}
	healthy := Workload{Namespace: "shop", Name: "checkout", Requests: 200, Errors: 1, Latency: 42 * time.Millisecond}
	failing := Workload{Namespace: "shop", Name: "payments", Requests: 200, Errors: 40, Latency: 900 * time.Millisecond}
	ambient := Workload{Namespace: "mall", Name: "checkout", Requests: 100, Errors: 0, Latency: 7 * time.Millisecond, Ambient: true}
	exp := StartExporter(t, healthy, failing, ambient)
	prom := Start(t, time.Second, exp.Addr)

	metrics := []meshv1alpha1.CanaryMetric{
		{Name: analysis.RequestSuccessRate, ThresholdRange: meshv1alpha1.ThresholdRange{Min: ptr("99")}},
		{Name: analysis.RequestDuration, ThresholdRange: meshv1alpha1.ThresholdRange{Max: ptr("500")}},
	}
	buckets := map[meshv1alpha1.Provider][]float64{
		meshv1alpha1.ProviderIstio: IstioBuckets, meshv1alpha1.ProviderLinkerd: LinkerdBuckets, meshv1alpha1.ProviderCilium: HubbleBuckets,
	}
	checker := &analysis.Checker{}
	for _, p := range meshv1alpha1.Providers {
		cases := []struct {
			w    Workload
			pass bool
		}{{healthy, true}, {failing, false}}
		if p == meshv1alpha1.ProviderIstio {
			cases = append(cases, struct {
				w    Workload
				pass bool
			}{ambient, true})
		}
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%s/%s", p, tc.w.Namespace, tc.w.Name), func(t *testing.T) {
				target := analysis.Target{Provider: p, Namespace: tc.w.Namespace, Workload: tc.w.Name, Service: tc.w.Name, Interval: 10 * time.Second}
				wantRate := float64(tc.w.Requests-tc.w.Errors) / float64(tc.w.Requests) * 100
				wantP99 := Quantile(0.99, float64(tc.w.Latency)/float64(time.Millisecond), buckets[p])
				if p == meshv1alpha1.ProviderCilium {
					wantP99 = Quantile(0.99, tc.w.Latency.Seconds(), buckets[p]) * 1000
				}
				var rs []analysis.Result
				// Two scrapes are needed before rate() has a value.
				deadline := time.Now().Add(30 * time.Second)
				for {
					rs = checker.Check(context.Background(), meshv1alpha1.MetricsServer{Address: prom.URL}, nil, metrics, target)
					if (!math.IsNaN(rs[0].Value) && !math.IsNaN(rs[1].Value)) || time.Now().After(deadline) {
						break
					}
					time.Sleep(500 * time.Millisecond)
				}
				for i, want := range []float64{wantRate, wantP99} {
					r := rs[i]
					t.Logf("%s = %g (passed %t) %s", r.Metric, r.Value, r.Passed, r.Message)
					if math.IsNaN(r.Value) || math.Abs(r.Value-want) > 1e-9*math.Max(1, math.Abs(want)) {
						t.Errorf("%s: Prometheus answered %g, the exporter served %g\nquery: %s\n%s", r.Metric, r.Value, want, r.Query, r.Message)
					}
					if r.Passed != tc.pass {
						t.Errorf("%s: passed %t, want %t (%s)", r.Metric, r.Passed, tc.pass, r.Message)
					}
				}
				if !strings.Contains(rs[0].Query, tc.w.Name) {
					t.Errorf("query %s does not select %s", rs[0].Query, tc.w.Name)
				}
			})
		}
	}
}
